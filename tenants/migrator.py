"""Migrations across many tenant schemas in one process.

Stock ``migrate_schemas`` runs Django's whole ``migrate`` command once per schema: it
loads the migration graph, renders the project state and asks the database what is
applied, for every tenant, even when nothing is pending (about 65 ms a schema). Here:

* a schema found up to date is marked so (``COMMENT ON SCHEMA``, with the fingerprint of the
  code's migrations), in the transaction that migrated it, or under its lock once read.
  The next run reads the marks of every schema in one catalogue query and skips the marked
  ones without opening their tables: opening ten thousand ``django_migrations`` tables
  costs a new backend about a millisecond each. A new migration in the code changes the
  fingerprint, and so every mark at once. Only a hand-made change behind this module's back
  (a backward ``migrate_schemas``) could leave a wrong mark: ``migrate_tenants --recheck``
  reads every schema whatever its mark;
* the other schemas' ``django_migrations`` are read in a few queries, whatever their number;
* schemas are grouped by what they have applied. In each group the first schema is
  migrated by Django's own ``MigrationExecutor`` while the SQL it sends is recorded;
  every other schema of the group then gets the same statements replayed, since the
  same plan on the same starting structure yields the same SQL (names of indexes and
  constraints derive from table and column names, never from the schema). A group whose
  pending migrations run Python code in a tenant app is not replayed: each of its schemas
  gets the executor;
* every schema is migrated in its own transaction, its ``django_migrations`` rows
  included: a schema is either fully at the new state or untouched. A failure is
  recorded with the schema's name and the others go on; running again finishes the work;
* that transaction first takes a transaction-level advisory lock on the schema's name and
  reads its state again, so two runs at once never migrate one schema twice: the second
  waits for the first and then finds the schema up to date. Only transaction-level locks
  are used, which a pooler in transaction mode keeps (a session-level one would stay with
  whichever server connection took it).
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cache

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.special import RunPython
from django.db.migrations.recorder import MigrationRecorder
from django_tenants.routers import TenantSyncRouter
from psycopg import sql

MigrationKey = tuple[str, str]

# Statements of a recorded migration that must not be replayed: reads (introspection,
# whose answers shaped the recorded DDL already), the backend's own SET search_path,
# savepoints of nested atomic blocks, and the recorder's rows (written afresh per schema).
_NOT_REPLAYED = ("SELECT", "SET ", "SHOW", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO")
_RECORDER_TABLE = '"django_migrations"'
# Advisory lock class of a schema being migrated (with hashtext(schema) as the object).
_LOCK_CLASS_MIGRATE = 0x5EEF
# Schemas whose up-to-date mark is set in one transaction (each under its advisory lock).
_MARK_BATCH = 100


def advisory_xact_lock(lock_class: int, key: int | str, wait: bool = True) -> bool:
    """Take a transaction-level advisory lock on (lock_class, key), a string key by its hash.

    Must run inside a transaction (``transaction.atomic()``): the lock goes with it. With
    ``wait=False`` returns False at once when another transaction holds it.
    """
    object_sql = "hashtext(%s)" if isinstance(key, str) else "%s"
    with connection.cursor() as cursor:
        if wait:
            cursor.execute(f"SELECT pg_advisory_xact_lock(%s, {object_sql})", [lock_class, key])
            return True
        cursor.execute(f"SELECT pg_try_advisory_xact_lock(%s, {object_sql})", [lock_class, key])
        return cursor.fetchone()[0]


@cache
def _disk_migrations() -> frozenset[MigrationKey]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return frozenset(loader.graph.nodes)


def expected_migrations() -> frozenset[MigrationKey]:
    """What a fully migrated tenant schema has recorded: every migration of the project."""
    return _disk_migrations()


def migrations_fingerprint() -> str:
    """Names the migration state of this code; a pool schema built under another one is stale."""
    digest = hashlib.sha256("\n".join(f"{app}.{name}" for app, name in sorted(expected_migrations())).encode())
    return digest.hexdigest()[:12]


def up_to_date_mark() -> str:
    """The comment of a schema that has every migration of this code applied."""
    return f"migrations {migrations_fingerprint()}"


def marked_up_to_date(schemas: Iterable[str]) -> set[str]:
    """Those of ``schemas`` marked up to date for this code's migrations (one catalogue query)."""
    schemas = list(schemas)
    if not schemas:
        return set()
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s) AND obj_description(oid, 'pg_namespace') = %s",
            [schemas, up_to_date_mark()],
        )
        return {row[0] for row in cursor.fetchall()}


def _mark_up_to_date(schema: str) -> None:
    """Mark ``schema`` up to date; inside the transaction that holds its lock and made it so."""
    with connection.cursor() as cursor:
        statement = sql.SQL("COMMENT ON SCHEMA {} IS {}").format(sql.Identifier(schema), sql.Literal(up_to_date_mark()))
        cursor.execute(statement.as_string(cursor.connection))


def _mark_found_up_to_date(schemas: list[str], expected: frozenset[MigrationKey]) -> None:
    """Mark schemas read as up to date, in batches; each is locked and read again, as a migration would."""
    for start in range(0, len(schemas), _MARK_BATCH):
        batch = schemas[start : start + _MARK_BATCH]
        with transaction.atomic():
            connection.set_schema_to_public()
            for schema in batch:
                advisory_xact_lock(_LOCK_CLASS_MIGRATE, schema)
            for schema, applied in applied_by_schema(batch).items():
                if applied is not None and applied >= expected:
                    _mark_up_to_date(schema)


def applied_by_schema(schemas: Iterable[str]) -> dict[str, frozenset[MigrationKey] | None]:
    """Applied migrations of each schema, read in a few queries whatever the number of schemas.

    None for a schema without a ``django_migrations`` table (never migrated).
    """
    schemas = list(dict.fromkeys(schemas))
    result: dict[str, frozenset[MigrationKey] | None] = dict.fromkeys(schemas)
    if not schemas:
        return result
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid "
            "WHERE c.relname = 'django_migrations' AND c.relkind = 'r' AND n.nspname = ANY(%s)",
            [schemas],
        )
        with_table = [row[0] for row in cursor.fetchall()]
        found: dict[str, set[MigrationKey]] = {schema: set() for schema in with_table}
        for start in range(0, len(with_table), 500):
            chunk = with_table[start : start + 500]
            query = sql.SQL(" UNION ALL ").join(
                sql.SQL("SELECT {schema}, app, name FROM {table}").format(
                    schema=sql.Literal(schema), table=sql.Identifier(schema, "django_migrations")
                )
                for schema in chunk
            )
            cursor.execute(query.as_string(cursor.connection))
            for schema, app, name in cursor.fetchall():
                found[schema].add((app, name))
    for schema, keys in found.items():
        result[schema] = frozenset(keys)
    return result


@dataclass
class Recorded:
    """The SQL one schema's migration sent, and the migrations it recorded as applied."""

    statements: list[tuple[str, object, bool]]
    applied: list[MigrationKey]


@dataclass
class MigrateReport:
    up_to_date: list[str] = field(default_factory=list)
    migrated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _tenant_apps() -> set[str]:
    """Labels of the apps migrated in tenant schemas, by django-tenants' own rule.

    An entry of TENANT_APPS is a module path or an AppConfig path, and its label need not be
    the path's last part ("tests.example_app" is labelled "notes").
    """
    router = TenantSyncRouter()
    return {config.label for config in apps.get_app_configs() if router.app_in_list(config.label, settings.TENANT_APPS)}


def unknown_tenant_migrations(state: Iterable[MigrationKey]) -> list[MigrationKey]:
    """Migrations of tenant apps in ``state`` that this code does not have (a newer or a foreign schema)."""
    tenant_apps = _tenant_apps()
    return sorted(key for key in state if key[0] in tenant_apps and key not in _disk_migrations())


def _targets(executor: MigrationExecutor, state: frozenset[MigrationKey] | None) -> list[MigrationKey]:
    """What to migrate to: the latest migrations, or the last ones of ``state`` (others' unknown ones ignored)."""
    graph = executor.loader.graph
    if state is None:
        return graph.leaf_nodes()
    known = {key for key in state if key in graph.nodes}
    depended_on = {parent.key for key in known for parent in graph.node_map[key].parents}
    return sorted(known - depended_on)


def _runs_python(keys: Iterable[MigrationKey], loader: MigrationLoader) -> bool:
    tenant_apps = _tenant_apps()
    for app, name in keys:
        if app not in tenant_apps:
            continue  # the router skips other apps' operations in tenant schemas
        migration = loader.graph.nodes[(app, name)]
        if any(isinstance(operation, RunPython) for operation in migration.operations):
            return True
    return False


def migrate_with_executor(schema: str, record: bool = False, state: frozenset[MigrationKey] | None = None) -> Recorded:
    """Migrate one schema with Django's executor, in one transaction.

    To the latest state, or to ``state`` (the migrations a schema had applied: an imported
    archive's, whose rows must go into tables of that shape before they are migrated on).
    """
    statements: list[tuple[str, object, bool]] = []

    def recorder(execute, sql_text, params, many, context):
        statements.append((sql_text, params, many))
        return execute(sql_text, params, many, context)

    applied: list[MigrationKey] = []
    with transaction.atomic(), connection.execute_wrapper(recorder) if record else nullcontext():
        # As django-tenants does: create the schema's own django_migrations first, or the
        # recorder would find public's through the search path.
        connection.set_schema(schema, include_public=False)
        MigrationRecorder(connection).ensure_schema()
        connection.set_schema(schema)
        executor = MigrationExecutor(connection)
        targets = _targets(executor, state)
        plan = executor.migration_plan(targets)
        applied = [(migration.app_label, migration.name) for migration, _ in plan]
        if plan:
            executor.migrate(targets, plan=plan)
    connection.set_schema_to_public()
    replayable = [
        (text, params, many)
        for text, params, many in statements
        if (not text.lstrip().upper().startswith(_NOT_REPLAYED) and _RECORDER_TABLE not in text)
        # ensure_schema's CREATE TABLE of the recorder's own table: needed by a schema that lacks it.
        or text.lstrip().upper().startswith("CREATE TABLE")
    ]
    return Recorded(statements=replayable, applied=applied)


def replay(schema: str, recorded: Recorded) -> None:
    """Apply a recorded migration to another schema that is in the same state, in one transaction."""
    with transaction.atomic():
        connection.set_schema(schema)
        with connection.cursor() as cursor:
            for text, params, many in recorded.statements:
                if many:
                    cursor.executemany(text, params)
                else:
                    cursor.execute(text, params)
            if recorded.applied:
                cursor.executemany(
                    'INSERT INTO "django_migrations" ("app", "name", "applied") VALUES (%s, %s, now())',
                    recorded.applied,
                )
    connection.set_schema_to_public()


def migrate_schemas(
    schemas: Iterable[str],
    *,
    after_each: Callable[[str], None] | None = None,
    progress: Callable[[str], None] | None = None,
    recordings: dict[frozenset[MigrationKey] | None, Recorded] | None = None,
    recheck: bool = False,
) -> MigrateReport:
    """Bring every schema in ``schemas`` to the latest migrations; see the module's docstring.

    ``recordings`` keeps the recorded SQL per starting state across calls (the pool is
    filled in batches), so that only the first schema of all pays for the executor.

    ``after_each(schema)`` runs inside the schema's transaction once it is migrated (the
    pool uses it to publish a finished schema atomically).

    ``recheck`` reads every schema's ``django_migrations``, whatever its up-to-date mark.
    """
    started = time.perf_counter()
    report = MigrateReport()
    expected = expected_migrations()
    schemas = list(dict.fromkeys(schemas))
    marked = set() if recheck else marked_up_to_date(schemas)
    report.up_to_date.extend(schema for schema in schemas if schema in marked)
    state = applied_by_schema(schema for schema in schemas if schema not in marked)
    groups: dict[frozenset[MigrationKey] | None, list[str]] = defaultdict(list)
    found_up_to_date = []
    for schema, applied in state.items():
        if applied is not None and applied >= expected:
            report.up_to_date.append(schema)
            found_up_to_date.append(schema)
        else:
            groups[applied].append(schema)
    if found_up_to_date:
        _mark_found_up_to_date(found_up_to_date, expected)

    loader = MigrationLoader(None, ignore_no_migrations=True) if groups else None
    for applied, members in groups.items():
        pending = expected - (applied or frozenset())
        use_replay = not _runs_python(pending, loader)
        recorded: Recorded | None = recordings.get(applied) if recordings is not None and use_replay else None
        for schema in members:
            try:
                # The executor must commit the schema before after_each: run both in one transaction.
                with transaction.atomic():
                    connection.set_schema_to_public()
                    advisory_xact_lock(_LOCK_CLASS_MIGRATE, schema)
                    now = applied_by_schema([schema])[schema]
                    if now is not None and now >= expected:
                        report.up_to_date.append(schema)  # migrated meanwhile by another run
                        _mark_up_to_date(schema)
                        continue
                    if recorded is None or not use_replay or now != applied:
                        result = migrate_with_executor(schema, record=use_replay and now == applied)
                        if recorded is None and use_replay and now == applied:
                            recorded = result
                            if recordings is not None:
                                recordings[applied] = result
                    else:
                        replay(schema, recorded)
                    _mark_up_to_date(schema)
                    if after_each is not None:
                        after_each(schema)
            except Exception as exc:  # reported per schema; the other schemas go on
                connection.set_schema_to_public()
                report.failed[schema] = f"{type(exc).__name__}: {exc}".strip()
                if progress is not None:
                    progress(f"FAILED {schema}: {report.failed[schema]}")
                continue
            report.migrated.append(schema)
            if progress is not None:
                progress(f"migrated {schema}")
    report.seconds = time.perf_counter() - started
    return report
