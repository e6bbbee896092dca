"""The tenant archive: one tenant, whole, in a file any server running this project can import.

Format ``tenant-archive``, version 1: a gzip-compressed tar holding, in this order,

* ``manifest.json``: the format and its version, when it was made, the tenant (id and name) and
  its schema, the schema's migration state (its ``django_migrations``), the PostgreSQL version,
  and for every table its file, its columns, its row count, the SHA-256 and size of its file and
  the values of its sequences; and the SHA-256 and size of ``registry.json``;
* ``registry.json``: the tenant's row in the registry (plan overrides, state, creation time), its
  plan and its domains;
* ``tables/<table>.jsonl``: every row of every table of the tenant's schema (its users with their
  password hashes, tokens as digests, sessions, settings, audit trail), one JSON object per line,
  keyed by column name, as PostgreSQL's ``row_to_json`` writes it.

Why this and not ``pg_dump``: the project writes and reads it through its own connection, so it
works on the embedded PostgreSQL and on any server without a ``pg_dump`` of a matching version;
rows are keyed by column name and typed by PostgreSQL's own JSON conversions in both directions,
so an archive loads into tables of the shape its migration state gives, and the schema can be
migrated on from there; nothing in it is executed, so it can be checked entry by entry (paths,
sizes, checksums, JSON, columns) before a single row is written; and a person can read it with
``tar`` and a text editor.

Reading is strict: the entries must be exactly those the manifest names (regular files, no other
path), every checksum, row count and column set must match, and sizes are bounded
(``TENANT_ARCHIVE_MAX_UNPACKED_BYTES``), so a corrupt, truncated, tampered or foreign archive is
refused with the reason, and a bomb is refused before it is unpacked.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import re
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import DataError, IntegrityError, connection
from django.utils import timezone
from psycopg import sql

from core.db import read_only_snapshot
from core.errors import Invalid
from tenants.ids import is_well_formed_tenant_id
from tenants.migrator import MigrationKey, migrate_with_executor, unknown_tenant_migrations
from tenants.models import Tenant

FORMAT = "tenant-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REGISTRY = "registry.json"
# Kept in the manifest (as the migration state), not as rows: an import migrates its own.
MIGRATIONS_TABLE = "django_migrations"

_NAME = re.compile(r"[a-z_][a-z0-9_$]{0,62}\Z")
_MIGRATION_PART = re.compile(r"[A-Za-z0-9_]{1,255}\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_MAX_DOCUMENT_BYTES = 16 * 1024 * 1024  # manifest.json and registry.json
_ROWS_PER_INSERT = 1000

ProgressFn = Callable[[float], None]


class ArchiveInvalid(Invalid):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid archive: {reason}", field="archive")


@dataclass(frozen=True)
class TableEntry:
    name: str
    columns: tuple[str, ...]
    rows: int
    sha256: str
    bytes: int
    sequences: dict[str, tuple[int, bool]] = field(default_factory=dict)

    @property
    def file(self) -> str:
        return f"tables/{self.name}.jsonl"


@dataclass
class TenantArchive:
    """What a read archive holds, once checked."""

    manifest: dict
    registry: dict
    tables: list[TableEntry]
    migrations: frozenset[MigrationKey]
    sha256: str = ""
    size: int = 0

    @property
    def tenant_id(self) -> str:
        return self.manifest["tenant"]["id"]

    @property
    def row_counts(self) -> dict[str, int]:
        return {table.name: table.rows for table in self.tables}


# --- The tenant's schema, as the catalogue describes it ------------------------------------------


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]  # primary key columns, for a stable row order


def schema_tables(schema: str) -> list[Table]:
    """The tables of ``schema`` with their columns (generated ones excepted) and primary keys."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, "
            "  array_agg(a.attname ORDER BY a.attnum) FILTER (WHERE a.attgenerated = ''), "
            "  coalesce((SELECT array_agg(k.attname ORDER BY k.attnum) FROM pg_index i "
            "            JOIN pg_attribute k ON k.attrelid = i.indrelid AND k.attnum = ANY(i.indkey) "
            "            WHERE i.indrelid = c.oid AND i.indisprimary), '{}') "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') GROUP BY c.oid, c.relname ORDER BY c.relname",
            [schema],
        )
        return [Table(name, tuple(columns), tuple(key)) for name, columns, key in cursor.fetchall()]


def _qualified(schema: str, table: str) -> str:
    return sql.Identifier(schema, table).as_string(connection.connection)


def _sequences(schema: str, table: Table) -> dict[str, tuple[int, bool]]:
    """The sequences behind the table's serial or identity columns: their last value and whether it was used."""
    found = {}
    with connection.cursor() as cursor:
        for column in table.columns:
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [_qualified(schema, table.name), column])
            sequence = cursor.fetchone()[0]
            if sequence:
                # A name the catalogue gave, already quoted as needed.
                cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
                last_value, is_called = cursor.fetchone()
                found[column] = (last_value, is_called)
    return found


def _applied_migrations(schema: str) -> list[list[str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT app, name FROM {} ORDER BY id")
            .format(sql.Identifier(schema, MIGRATIONS_TABLE))
            .as_string(cursor.connection)
        )
        return [[app, name] for app, name in cursor.fetchall()]


# --- Writing -------------------------------------------------------------------------------------


def registry_document(tenant: Tenant) -> dict:
    """The tenant's registry row, plan and domains, as the archive keeps them."""
    plan = tenant.plan
    return {
        "tenant": {
            "id": tenant.id,
            "name": tenant.name,
            "plan": tenant.plan_id,
            "active": tenant.active,
            "created_at": tenant.created_at.isoformat(),
            "max_users_override": tenant.max_users_override,
            "features_override": tenant.features_override,
            "rate_limit_override": tenant.rate_limit_override,
        },
        "plan": {
            "id": plan.id,
            "name": plan.name,
            "max_users": plan.max_users,
            "features": plan.features,
            "rate_limit_per_minute": plan.rate_limit_per_minute,
        },
        "domains": [
            {"domain": domain.domain, "is_primary": domain.is_primary}
            for domain in tenant.domains.order_by("-is_primary", "domain")
        ],
    }


def _dump_table(schema: str, table: Table, out: IO[bytes], on_rows: Callable[[int], None]) -> tuple[int, str, int]:
    """Write every row of a table as JSON lines; returns rows, SHA-256 and bytes written."""
    digest, rows, size = hashlib.sha256(), 0, 0
    order = sql.SQL(", ").join(sql.Identifier(column) for column in table.key) if table.key else sql.SQL("ctid")
    query = sql.SQL("SELECT row_to_json(t)::text FROM {} AS t ORDER BY {}").format(
        sql.Identifier(schema, table.name), order
    )
    # A server-side cursor: the rows stream in batches, whatever the table's size.
    with connection.connection.cursor(name=f"export_{table.name}") as cursor:
        cursor.itersize = 2000
        cursor.execute(query)
        pending = 0
        for (line,) in cursor:
            data = line.encode() + b"\n"
            digest.update(data)
            out.write(data)
            rows, size, pending = rows + 1, size + len(data), pending + 1
            if pending == 2000:
                on_rows(pending)
                pending = 0
        on_rows(pending)
    return rows, digest.hexdigest(), size


def _add(tar: tarfile.TarFile, name: str, content: IO[bytes], size: int, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o644
    tar.addfile(info, content)


def _dump_schema(
    tenant: Tenant, workdir: Path, progress: ProgressFn
) -> tuple[list[TableEntry], bytes, list[list[str]], str]:
    """Every table of the tenant's schema into ``workdir``, with the registry and the migration state."""
    schema = tenant.schema_name
    tables = [table for table in schema_tables(schema) if table.name != MIGRATIONS_TABLE]
    with connection.cursor() as cursor:
        counts = []
        for table in tables:
            cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table.name)))
            counts.append(cursor.fetchone()[0])
        cursor.execute("SHOW server_version")
        server_version = cursor.fetchone()[0]
    total, done = max(1, sum(counts)), 0

    def on_rows(count: int) -> None:
        nonlocal done
        done += count
        progress(2 + 88 * done / total)

    entries = []
    for table in tables:
        with open(workdir / f"{table.name}.jsonl", "wb") as rows_file:
            rows, digest, size = _dump_table(schema, table, rows_file, on_rows)
        entries.append(TableEntry(table.name, table.columns, rows, digest, size, _sequences(schema, table)))
    registry = json.dumps(registry_document(tenant), indent=2, sort_keys=True).encode()
    return entries, registry, _applied_migrations(schema), server_version


def _manifest(
    tenant: Tenant,
    made_at: datetime.datetime,
    server_version: str,
    migrations: list[list[str]],
    registry: bytes,
    entries: list[TableEntry],
) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": made_at.isoformat(),
        "tenant": {"id": tenant.id, "name": tenant.name},
        "schema": tenant.schema_name,
        "postgresql": server_version,
        "migrations": migrations,
        "registry": {"file": REGISTRY, "sha256": hashlib.sha256(registry).hexdigest(), "bytes": len(registry)},
        "tables": [
            {
                "name": entry.name,
                "file": entry.file,
                "columns": list(entry.columns),
                "rows": entry.rows,
                "sha256": entry.sha256,
                "bytes": entry.bytes,
                "sequences": {column: list(value) for column, value in entry.sequences.items()},
            }
            for entry in entries
        ],
    }


def write_archive(tenant: Tenant, out: IO[bytes], progress: ProgressFn = lambda percent: None) -> TenantArchive:
    """Write ``tenant``'s archive to ``out``, from one consistent snapshot of the database."""
    made_at = timezone.now()
    with tempfile.TemporaryDirectory(prefix="tenant-export-") as workdir:
        with read_only_snapshot():
            entries, registry, migrations, server_version = _dump_schema(tenant, Path(workdir), progress)
        manifest = _manifest(tenant, made_at, server_version, migrations, registry, entries)
        manifest_bytes = json.dumps(manifest, indent=2).encode()
        hashing = _HashingWriter(out)
        with tarfile.open(fileobj=hashing, mode="w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
            _add(tar, MANIFEST, io.BytesIO(manifest_bytes), len(manifest_bytes), made_at.timestamp())
            _add(tar, REGISTRY, io.BytesIO(registry), len(registry), made_at.timestamp())
            for index, entry in enumerate(entries):
                with open(Path(workdir) / f"{entry.name}.jsonl", "rb") as rows_file:
                    _add(tar, entry.file, rows_file, entry.bytes, made_at.timestamp())
                progress(90 + 9 * (index + 1) / max(1, len(entries)))
    return TenantArchive(
        manifest=manifest,
        registry=json.loads(registry),
        tables=entries,
        migrations=frozenset((app, name) for app, name in migrations),
        sha256=hashing.digest.hexdigest(),
        size=hashing.size,
    )


class _HashingWriter(io.RawIOBase):
    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.digest, self.size = out, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.out.write(data) or len(data)


class _HashingReader(io.RawIOBase):
    """Counts and hashes what tarfile reads of the compressed file."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source, self.digest, self.size = source, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        self.digest.update(data)
        self.size += len(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


# --- Reading -------------------------------------------------------------------------------------


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise ArchiveInvalid(reason)


def _is_int(value: object, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _parse_table(raw: object) -> TableEntry:
    _require(isinstance(raw, dict), "a table entry of the manifest is not an object")
    name = raw.get("name")
    _require(isinstance(name, str) and _NAME.match(name) is not None, f"bad table name {str(name)[:80]!r}")
    _require(raw.get("file") == f"tables/{name}.jsonl", f"table {name}: its file must be tables/{name}.jsonl")
    columns = raw.get("columns")
    _require(
        isinstance(columns, list) and columns and all(isinstance(c, str) and _NAME.match(c) for c in columns),
        f"table {name}: bad column list",
    )
    _require(len(set(columns)) == len(columns), f"table {name}: a column is listed twice")
    _require(_is_int(raw.get("rows")) and _is_int(raw.get("bytes")), f"table {name}: bad row count or size")
    _require(isinstance(raw.get("sha256"), str) and _SHA256.match(raw["sha256"]), f"table {name}: bad checksum")
    sequences = raw.get("sequences", {})
    _require(
        isinstance(sequences, dict)
        and all(
            column in columns
            and isinstance(v, list)
            and len(v) == 2
            and _is_int(v[0], -(2**63))
            and isinstance(v[1], bool)
            for column, v in sequences.items()
        ),
        f"table {name}: bad sequences",
    )
    return TableEntry(
        name, tuple(columns), raw["rows"], raw["sha256"], raw["bytes"], {c: tuple(v) for c, v in sequences.items()}
    )


def parse_manifest(manifest: object) -> tuple[list[TableEntry], frozenset[MigrationKey]]:
    """Check a manifest's shape and what it says; return its tables and its migration state."""
    _require(isinstance(manifest, dict) and manifest.get("format") == FORMAT, "not a tenant archive")
    version = manifest.get("format_version")
    _require(version == FORMAT_VERSION, f"format version {str(version)[:20]} is not supported (this server reads 1)")
    tenant = manifest.get("tenant")
    _require(
        isinstance(tenant, dict) and isinstance(tenant.get("id"), str) and is_well_formed_tenant_id(tenant["id"]),
        "the manifest names no valid tenant",
    )
    _require(isinstance(tenant.get("name"), str), "the manifest names no tenant name")
    _require(
        manifest.get("schema") == tenant["id"],
        f"the manifest names schema {str(manifest.get('schema'))[:80]!r}, not the tenant's own",
    )
    migrations = manifest.get("migrations")
    _require(
        isinstance(migrations, list)
        and all(
            isinstance(m, list) and len(m) == 2 and all(isinstance(p, str) and _MIGRATION_PART.match(p) for p in m)
            for m in migrations
        ),
        "bad migration state",
    )
    state = frozenset((app, name) for app, name in migrations)
    unknown = unknown_tenant_migrations(state)
    _require(
        not unknown,
        "it was made by a newer or another version of the platform (unknown migrations: "
        + ", ".join(f"{app}.{name}" for app, name in unknown[:5])
        + ")",
    )
    registry = manifest.get("registry")
    _require(
        isinstance(registry, dict)
        and registry.get("file") == REGISTRY
        and isinstance(registry.get("sha256"), str)
        and _SHA256.match(registry["sha256"])
        and _is_int(registry.get("bytes")),
        "bad registry entry",
    )
    raw_tables = manifest.get("tables")
    _require(isinstance(raw_tables, list) and len(raw_tables) <= 10_000, "bad table list")
    tables = [_parse_table(raw) for raw in raw_tables]
    _require(len({table.name for table in tables}) == len(tables), "a table is listed twice")
    return tables, state


def _check_registry(document: object, tenant_id: str) -> dict:
    _require(isinstance(document, dict), "registry.json is not an object")
    tenant, plan, domains = document.get("tenant"), document.get("plan"), document.get("domains")
    _require(isinstance(tenant, dict) and tenant.get("id") == tenant_id, "registry.json is about another tenant")
    _require(isinstance(tenant.get("name"), str) and len(tenant["name"]) <= 200, "registry.json: bad name")
    _require(isinstance(tenant.get("active"), bool), "registry.json: bad state")
    try:
        created_at = datetime.datetime.fromisoformat(tenant.get("created_at"))
    except (TypeError, ValueError):
        created_at = None
    _require(created_at is not None and created_at.tzinfo is not None, "registry.json: bad creation time")
    for key in ("max_users_override", "rate_limit_override"):
        _require(tenant.get(key) is None or _is_int(tenant[key]), f"registry.json: bad {key}")
    features = tenant.get("features_override")
    _require(
        features is None or (isinstance(features, list) and all(isinstance(f, str) for f in features)), "bad features"
    )
    _require(
        isinstance(plan, dict)
        and isinstance(plan.get("id"), str)
        and re.fullmatch(r"[-a-zA-Z0-9_]{1,32}", plan["id"]) is not None
        and plan["id"] == tenant.get("plan")
        and isinstance(plan.get("name"), str)
        and _is_int(plan.get("max_users"))
        and _is_int(plan.get("rate_limit_per_minute"))
        and isinstance(plan.get("features"), list),
        "registry.json: bad plan",
    )
    _require(
        isinstance(domains, list)
        and all(
            isinstance(d, dict)
            and isinstance(d.get("domain"), str)
            and 0 < len(d["domain"]) <= 253
            and isinstance(d.get("is_primary"), bool)
            for d in domains
        ),
        "registry.json: bad domains",
    )
    return document


def _member_name_check(member: tarfile.TarInfo) -> None:
    parts = member.name.split("/")
    _require(not member.name.startswith("/") and ".." not in parts, f"unsafe path {member.name[:100]!r}")
    _require(member.isreg(), f"{member.name[:100]!r} is not a regular file")


def _read_document(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str) -> tuple[object, bytes]:
    _member_name_check(member)
    if name == MANIFEST:
        _require(member.name == MANIFEST, "not a tenant archive (its first entry must be manifest.json)")
    _require(member.name == name, f"{name} must be its second entry")
    _require(member.size <= _MAX_DOCUMENT_BYTES, f"{name} is too large")
    data = tar.extractfile(member).read()
    try:
        return json.loads(data), data
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArchiveInvalid(f"{name} is not valid JSON") from exc


def _rows(tar: tarfile.TarFile, member: tarfile.TarInfo, entry: TableEntry) -> Iterator[list[str]]:
    """The table file's lines in batches, each line checked as a JSON object with the table's columns."""
    digest, rows, size = hashlib.sha256(), 0, 0
    expected = set(entry.columns)
    batch: list[str] = []
    for raw in tar.extractfile(member):
        digest.update(raw)
        size += len(raw)
        rows += 1
        try:
            row = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ArchiveInvalid(f"{entry.file}, line {rows}: not valid JSON") from exc
        _require(isinstance(row, dict) and set(row) == expected, f"{entry.file}, line {rows}: not a row of the table")
        batch.append(raw.decode().rstrip("\n"))
        if len(batch) == _ROWS_PER_INSERT:
            yield batch
            batch = []
    if batch:
        yield batch
    _require(digest.hexdigest() == entry.sha256, f"{entry.file} does not match its checksum")
    _require((rows, size) == (entry.rows, entry.bytes), f"{entry.file} does not match its row count or size")


ReadyFn = Callable[[TenantArchive], None]
LoadFn = Callable[[TableEntry, Iterator[list[str]]], None]


def read_archive(
    source: IO[bytes],
    *,
    ready: ReadyFn | None = None,
    load: LoadFn | None = None,
    progress: ProgressFn = lambda percent: None,
    size: int = 0,
) -> TenantArchive:
    """Read and check a whole archive in one pass, from a binary file.

    ``ready(archive)`` is called once the manifest and registry are read and checked, before any
    table; ``load(entry, batches)`` may then consume each table's rows (lists of JSON lines),
    which are checked as they are read: a checksum or count that does not match raises after
    the table's last batch, so a caller that writes inside a transaction writes nothing.
    """
    hashing = _HashingReader(source)
    try:
        with tarfile.open(fileobj=hashing, mode="r|gz") as tar:
            archive = _read(tar, ready, load, progress, hashing, size)
            hashing.drain()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, EOFError) or "unexpected end" in reason:
            raise ArchiveInvalid("it is truncated") from exc
        raise ArchiveInvalid(f"not a gzip-compressed tar file ({reason[:100]})") from exc
    archive.sha256, archive.size = hashing.digest.hexdigest(), hashing.size
    return archive


def _read(
    tar: tarfile.TarFile,
    ready: ReadyFn | None,
    load: LoadFn | None,
    progress: ProgressFn,
    hashing: _HashingReader,
    size: int,
) -> TenantArchive:
    budget = settings.TENANT_ARCHIVE_MAX_UNPACKED_BYTES
    member = tar.next()
    _require(member is not None, "it is empty")
    manifest, _ = _read_document(tar, member, MANIFEST)
    tables, state = parse_manifest(manifest)
    member = tar.next()
    _require(member is not None, "registry.json is missing")
    registry_doc, registry_bytes = _read_document(tar, member, REGISTRY)
    _require(
        hashlib.sha256(registry_bytes).hexdigest() == manifest["registry"]["sha256"],
        "registry.json does not match its checksum",
    )
    archive = TenantArchive(manifest, _check_registry(registry_doc, manifest["tenant"]["id"]), tables, state)
    declared = sum(table.bytes for table in tables)
    _require(declared <= budget, f"it unpacks to more than the limit of {budget} bytes")
    if ready is not None:
        ready(archive)
    pending = {table.file: table for table in tables}
    unpacked = 0
    last_shown = time.monotonic()
    while (member := tar.next()) is not None:
        _member_name_check(member)
        entry = pending.pop(member.name, None)
        _require(entry is not None, f"unexpected entry {member.name[:100]!r}")
        unpacked += member.size
        _require(unpacked <= budget, f"it unpacks to more than the limit of {budget} bytes")
        _require(member.size == entry.bytes, f"{entry.file} does not match its size")
        batches = _rows(tar, member, entry)
        if load is not None:
            load(entry, batches)
        for _ in batches:  # whatever the loader left unread is still checked
            pass
        if size and time.monotonic() - last_shown > 0.2:
            progress(100 * hashing.size / size)
            last_shown = time.monotonic()
    _require(not pending, f"it lacks {', '.join(sorted(pending))[:200]}")
    return archive


def inspect_archive(path: str | Path) -> TenantArchive:
    """Read and check the archive at ``path`` without writing anything."""
    with open(path, "rb") as source:
        return read_archive(source)


# --- Loading into a schema (an import) -----------------------------------------------------------


def load_archive(
    source: IO[bytes], schema: str, *, ready: ReadyFn | None = None, progress: ProgressFn, size: int
) -> TenantArchive:
    """Fill the new, empty ``schema`` from an archive, in the caller's transaction.

    The schema is migrated to the archive's own migration state, its tables must then be
    exactly the archive's with exactly its columns, and every row goes in as PostgreSQL reads
    it from JSON; sequences take the archive's values. The caller migrates it on afterwards.
    """
    loaded: dict[str, int] = {}

    def prepare(archive: TenantArchive) -> None:
        if ready is not None:
            ready(archive)
        migrate_with_executor(schema, state=archive.migrations)
        present = {table.name: table for table in schema_tables(schema) if table.name != MIGRATIONS_TABLE}
        wanted = {table.name: table for table in archive.tables}
        _require(
            present.keys() == wanted.keys(),
            "its tables do not match its migration state (extra: {}; missing: {})".format(
                ", ".join(sorted(wanted.keys() - present.keys())[:5]) or "none",
                ", ".join(sorted(present.keys() - wanted.keys())[:5]) or "none",
            ),
        )
        for name, table in wanted.items():
            _require(
                set(table.columns) == set(present[name].columns),
                f"table {name}: its columns do not match its migration state",
            )
        with connection.cursor() as cursor:
            # Django's foreign keys are deferrable: checked at commit, so tables load in any order.
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    def load(entry: TableEntry, batches: Iterator[list[str]]) -> None:
        target = sql.Identifier(schema, entry.name)
        statement = sql.SQL(
            "INSERT INTO {} OVERRIDING SYSTEM VALUE SELECT * FROM json_populate_recordset(NULL::{}, %s)"
        )
        with connection.cursor() as cursor:
            query = statement.format(target, target).as_string(cursor.connection)
            for batch in batches:
                cursor.execute(query, ["[" + ",".join(batch) + "]"])
                loaded[entry.name] = loaded.get(entry.name, 0) + len(batch)

    try:
        archive = read_archive(source, ready=prepare, load=load, progress=progress, size=size)
        with connection.cursor() as cursor:
            # Check the deferred foreign keys now, so that a broken reference is the archive's fault, named.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    except (IntegrityError, DataError) as exc:
        raise ArchiveInvalid(f"its rows break the rules of their tables ({str(exc).splitlines()[0][:200]})") from exc
    with connection.cursor() as cursor:
        for table in archive.tables:
            for column, (value, is_called) in table.sequences.items():
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, %s), %s, %s)",
                    [_qualified(schema, table.name), column, value, is_called],
                )
    return archive
