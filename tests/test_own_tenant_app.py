"""A team's own tenant app under the project's checks: isolation, the schema pool, migrations, audit.

The app is tests/example_app (label ``notes``), installed by the test settings only: a
note with a foreign key to a tenant user, and a service that writes it. A deploy that
adds a migration to it is played with a scratch copy of its migrations package
(MIGRATION_MODULES), so the source tree is never written.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.test.utils import override_settings
from django_tenants.utils import schema_context

from accounts.models import TenantUser
from core import audit
from tenants import citus, migrator, services
from tenants.migrator import migrations_fingerprint
from tenants.models import Tenant
from tenants.provisioning import fill_pool, pool_schemas
from tests.catalog import describe
from tests.conftest import schema_exists
from tests.example_app.models import Note
from tests.example_app.services import create_note

APP = "notes"
MIGRATIONS = Path(__file__).parent / "example_app" / "migrations"


def execute(statement: str, params: list | None = None) -> list[tuple]:
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def user_ids(tenant_id: str) -> set[int]:
    with schema_context(tenant_id):
        return set(TenantUser.objects.values_list("pk", flat=True))


def app_part(description: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """The app's share of tests.catalog.describe(): rows of its tables, and its recorded migrations."""
    return {
        key: [row for row in rows if row[0] == APP or str(row[0]).startswith(f"{APP}_")]
        for key, rows in description.items()
    }


def has_column(schema: str, column: str) -> bool:
    return bool(
        execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'notes_note' AND column_name = %s",
            [schema, column],
        )
    )


# --- Isolation -------------------------------------------------------------------------


@pytest.mark.django_db
def test_notes_of_one_tenant_are_invisible_from_the_other():
    with schema_context("acme"):
        create_note(TenantUser.objects.get(username="alice"), title="Acme roadmap")
    with schema_context("globex"):
        create_note(TenantUser.objects.get(username="charlie"), title="Globex roadmap")
    for tenant_id, title in (("acme", "Acme roadmap"), ("globex", "Globex roadmap")):
        with schema_context(tenant_id):
            assert list(Note.objects.values_list("title", flat=True)) == [title]
    assert not execute("SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = 'notes_note'")


def test_a_note_cannot_point_at_a_user_of_another_tenant(committed_db):
    only_in_acme = sorted(user_ids("acme") - user_ids("globex"))
    assert only_in_acme  # bob
    # Django's foreign keys are checked at commit, so the write commits for real. On Citus the
    # worker holding globex refuses that commit, which the coordinator reports as a failed
    # commit rather than as IntegrityError (and SET CONSTRAINTS does not reach the worker).
    refused = DatabaseError if citus.enabled(connection) else IntegrityError
    with schema_context("globex"):
        with pytest.raises(refused), transaction.atomic():
            Note.objects.create(author_id=only_in_acme[0], title="Borrowed author")
        assert not Note.objects.filter(title="Borrowed author").exists()
    # Each schema's foreign key points at that schema's own user table, never at another schema's.
    for tenant_id in ("acme", "globex"):
        targets = execute(
            "SELECT tn.nspname, t.relname FROM pg_constraint k "
            "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_class t ON t.oid = k.confrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace "
            "WHERE k.contype = 'f' AND n.nspname = %s AND c.relname = 'notes_note'",
            [tenant_id],
        )
        assert targets == [(tenant_id, "accounts_tenantuser")]


@pytest.mark.django_db
def test_the_same_author_id_is_a_different_user_in_each_tenant():
    shared_id = min(user_ids("acme") & user_ids("globex"))
    authors = {}
    for tenant_id in ("acme", "globex"):
        with schema_context(tenant_id):
            create_note(TenantUser.objects.get(pk=shared_id), title=f"By user {shared_id}")
            authors[tenant_id] = list(Note.objects.values_list("author_id", "author__username"))
    assert authors == {"acme": [(shared_id, "alice")], "globex": [(shared_id, "charlie")]}


# --- Audit -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_note_written_through_the_service_is_in_the_tenants_audit_trail(alice, charlie):
    with schema_context("acme"):
        note = create_note(TenantUser.objects.get(username="alice"), title="Roadmap", body="Ship it")
    latest = alice.get("/api/events").json()["events"][0]
    assert latest["action"] == "note.create"
    assert latest["target"] == f"note:{note.pk}"
    assert latest["actor"] == {"kind": "tenant", "name": "alice"}
    assert latest["before"] is None and latest["after"]["title"] == "Roadmap"
    assert "note.create" not in [event["action"] for event in charlie.get("/api/events").json()["events"]]


@pytest.mark.django_db
def test_a_note_whose_event_fails_is_not_written(monkeypatch):
    def failing_record(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(audit, "record", failing_record)
    with schema_context("acme"):
        with pytest.raises(RuntimeError):
            create_note(TenantUser.objects.get(username="alice"), title="Unrecorded")
        assert not Note.objects.filter(title="Unrecorded").exists()


# --- Schema pool and migrations (real commits) ----------------------------------------------


@pytest.fixture
def public(committed_db) -> list[str]:
    connection.set_schema_to_public()  # whatever the previous test's requests left selected
    return committed_db


@pytest.fixture
def migrated_by_django_tenants(public) -> Iterator[Callable[[str], str]]:
    """Makes a schema the stock way: CREATE SCHEMA, then django-tenants' migrate for that schema."""
    made: list[str] = []

    def make(name: str) -> str:
        execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        execute(f'CREATE SCHEMA "{name}"')
        made.append(name)
        call_command("migrate_schemas", tenant=True, schema_name=name, interactive=False, verbosity=0)
        connection.set_schema_to_public()
        return name

    yield make
    for name in made:
        execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


ADD_FIELD = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("notes", "{leaf}")]

    operations = [
        migrations.AddField("note", "priority", models.PositiveSmallIntegerField(default=0)),
    ]
"""

RUN_PYTHON = """from django.db import migrations


def upper_titles(apps, schema_editor):
    Note = apps.get_model("notes", "Note")
    for note in Note.objects.all():
        note.title = note.title.upper()
        note.save(update_fields=["title"])


class Migration(migrations.Migration):
    dependencies = [("notes", "{leaf}")]

    operations = [migrations.RunPython(upper_titles, migrations.RunPython.noop)]
"""


@pytest.fixture
def new_migration(public, tmp_path, monkeypatch) -> Iterator[Callable[[str, str], None]]:
    """Deploys one more migration of the app: its migrations package, copied, plus the new file.

    Afterwards every schema is put back (the new column dropped, the migration unrecorded)
    and the pool schemas built meanwhile, stale again, are dropped.
    """
    overrides: list[override_settings] = []
    names: list[str] = []

    def deploy(name: str, template: str) -> None:
        (leaf,) = MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes(APP)
        package = f"scratch_{APP}_{secrets.token_hex(4)}"
        shutil.copytree(MIGRATIONS, tmp_path / package / "migrations", ignore=shutil.ignore_patterns("__pycache__"))
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "migrations" / f"{name}.py").write_text(template.replace("{leaf}", leaf[1]))
        monkeypatch.syspath_prepend(str(tmp_path))
        overrides.append(override_settings(MIGRATION_MODULES={APP: f"{package}.migrations"}))
        overrides[-1].enable()
        names.append(name)
        migrator._disk_migrations.cache_clear()  # a process reads its migrations once; a deploy restarts it

    yield deploy
    for override in reversed(overrides):
        override.disable()
    migrator._disk_migrations.cache_clear()
    for (schema,) in execute("SELECT schemaname FROM pg_tables WHERE tablename = 'notes_note'"):
        execute(f'ALTER TABLE "{schema}".notes_note DROP COLUMN IF EXISTS priority')
    for (schema,) in execute("SELECT schemaname FROM pg_tables WHERE tablename = 'django_migrations'"):
        execute(f'DELETE FROM "{schema}".django_migrations WHERE app = %s AND name = ANY(%s)', [APP, names])
    fill_pool(0)  # drops the pool schemas of the scratch fingerprint


@pytest.fixture
def migration_paths(monkeypatch) -> list[tuple[str, str]]:
    """(schema, "executor" or "replay"): how migrate_schemas migrated each schema."""
    calls: list[tuple[str, str]] = []
    real_executor, real_replay = migrator.migrate_with_executor, migrator.replay

    def executor(schema: str, record: bool = False) -> migrator.Recorded:
        calls.append((schema, "executor"))
        return real_executor(schema, record=record)

    def replay(schema: str, recorded: migrator.Recorded) -> None:
        calls.append((schema, "replay"))
        real_replay(schema, recorded)

    monkeypatch.setattr(migrator, "migrate_with_executor", executor)
    monkeypatch.setattr(migrator, "replay", replay)
    return calls


def test_tenants_provisioned_from_the_pool_have_the_apps_tables_as_django_tenants_makes_them(
    public, migrated_by_django_tenants
):
    for name in pool_schemas():
        execute(f'DROP SCHEMA "{name}" CASCADE')
    fill_pool(2)  # the first schema made by Django's executor, the second by replaying its SQL
    ids = ["notes-pooled-a", "notes-pooled-b"]
    public.extend(ids)
    for tenant_id in ids:
        services.provision_tenant(tenant_id=tenant_id, name=tenant_id)
    assert pool_schemas() == []  # both came from the pool
    reference = app_part(describe(migrated_by_django_tenants("notes-reference")))
    assert ("notes_note", "r") in reference["tables"]
    for tenant_id in ids:
        assert app_part(describe(tenant_id)) == reference


def test_a_new_migration_of_the_app_makes_the_pool_stale_until_refilled(public, new_migration):
    fill_pool(1)
    before, old_pool = migrations_fingerprint(), pool_schemas()
    assert old_pool
    new_migration("9999_note_priority", ADD_FIELD)
    assert migrations_fingerprint() != before
    assert pool_schemas() == []  # the old pool is never claimed
    public.append("notes-after-deploy")
    services.provision_tenant(tenant_id="notes-after-deploy", name="After deploy")  # migrated on the spot
    assert has_column("notes-after-deploy", "priority")
    assert all(schema_exists(name) for name in old_pool)
    fill_pool(1)
    assert not any(schema_exists(name) for name in old_pool)
    (rebuilt,) = pool_schemas()
    assert has_column(rebuilt, "priority")


def test_migrate_tenants_replays_a_new_field_of_the_app_in_every_tenant(
    public, new_migration, migration_paths, migrated_by_django_tenants
):
    ids = ["notes-mig-a", "notes-mig-b"]
    public.extend(ids)
    for tenant_id in ids:
        services.provision_tenant(tenant_id=tenant_id, name=tenant_id)
    new_migration("9999_note_priority", ADD_FIELD)
    call_command("migrate_tenants", "--skip-public", "--no-pool", verbosity=0)
    schemas = list(Tenant.objects.values_list("schema_name", flat=True))
    assert all(has_column(schema, "priority") for schema in schemas)
    ours = dict(call for call in migration_paths if call[0] in ("acme", "globex", *ids))
    assert sorted(ours) == sorted(["acme", "globex", *ids])
    # One schema through Django's executor, the others by replaying the SQL it sent.
    assert sorted(ours.values()) == ["executor", "replay", "replay", "replay"]
    reference = app_part(describe(migrated_by_django_tenants("notes-reference")))
    for tenant_id in ids:
        assert app_part(describe(tenant_id)) == reference


def test_a_runpython_migration_of_the_app_runs_in_each_schema_through_the_executor(
    public, new_migration, migration_paths
):
    titles = {"notes-py-a": "alpha plan", "notes-py-b": "beta plan"}
    public.extend(titles)
    for tenant_id, title in titles.items():
        services.provision_tenant(tenant_id=tenant_id, name=tenant_id)
        with schema_context(tenant_id):
            author = TenantUser.objects.create(username="writer", name="Writer", role="admin")
            Note.objects.create(author=author, title=title)  # same note id in both schemas
    new_migration("9999_upper_titles", RUN_PYTHON)
    call_command("migrate_tenants", "--skip-public", "--no-pool", verbosity=0)
    for tenant_id, title in titles.items():
        with schema_context(tenant_id):
            assert list(Note.objects.values_list("title", flat=True)) == [title.upper()]
    ours = dict(call for call in migration_paths if call[0] in ("acme", "globex", *titles))
    assert ours == dict.fromkeys(["acme", "globex", *titles], "executor")


def test_only_the_test_settings_install_the_example_app():
    from config import settings as production

    assert "tests.example_app" in settings.TENANT_APPS
    assert "tests.example_app" not in production.TENANT_APPS + production.INSTALLED_APPS
