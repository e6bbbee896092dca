"""Migrate the public schema and every tenant's schema, skipping what is up to date.

Replaces ``migrate_schemas`` for the whole platform: see ``tenants.migrator``. Each tenant
schema is migrated under its own transaction-level advisory lock (``tenants.migrator``), so
runs at once are safe there, and it works through a pooler in transaction mode.

The public schema is migrated as Django's ``migrate`` does, one transaction per migration:
some migrations must commit before the next can run (a new enum value, then its use, in the
job queue's). Runs at once wait for each other there on a session-level advisory lock in
direct mode; behind a transaction pooler, where no session lock holds, run one at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from tenants.migrator import applied_by_schema, expected_migrations, migrate_schemas
from tenants.models import Tenant
from tenants.provisioning import fill_pool

_LOCK_MIGRATE_PUBLIC = (0x5EEE, 2)


@contextlib.contextmanager
def _public_migration_lock() -> Iterator[None]:
    """A session-level advisory lock around the public schema's migration, in direct mode only."""
    session = getattr(connection, "pool_mode", "direct") == "direct"
    if session:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", list(_LOCK_MIGRATE_PUBLIC))
    try:
        yield
    finally:
        if session:
            connection.set_schema_to_public()
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", list(_LOCK_MIGRATE_PUBLIC))


class Command(BaseCommand):
    help = "Apply pending migrations to the public schema, every tenant schema and the schema pool."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--skip-public", action="store_true", help="leave the public schema alone")
        parser.add_argument("--no-pool", action="store_true", help="do not drop stale pool schemas and refill")
        parser.add_argument("--pool-size", type=int, default=None, help="pool schemas to keep (TENANT_POOL_SIZE)")
        parser.add_argument(
            "--recheck",
            action="store_true",
            help="read every schema's migrations, whatever its up-to-date mark (after a migration made by hand)",
        )

    def handle(self, *args: object, **options: object) -> None:
        try:
            self._migrate(options)
        finally:
            connection.set_schema_to_public()

    def _migrate(self, options: dict) -> None:
        verbosity = int(options["verbosity"])
        if not options["skip_public"]:
            connection.set_schema_to_public()
            with _public_migration_lock():
                public = applied_by_schema(["public"])["public"]
                if public is None or not public >= expected_migrations():
                    call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)

        schemas = list(Tenant.objects.order_by("pk").values_list("schema_name", flat=True))

        def progress(line: str) -> None:
            if verbosity >= 2 or line.startswith("FAILED"):
                self.stderr.write(line) if line.startswith("FAILED") else self.stdout.write(line)

        report = migrate_schemas(schemas, progress=progress, recheck=options["recheck"])
        if verbosity >= 1:
            self.stdout.write(
                f"{len(schemas)} tenant schemas: {len(report.up_to_date)} up to date, "
                f"{len(report.migrated)} migrated, {len(report.failed)} failed ({report.seconds:.2f} s)"
            )
        if not options["no_pool"]:
            added = fill_pool(options["pool_size"])
            if verbosity >= 1 and added:
                self.stdout.write(f"schema pool: {added} schemas added")
        if report.failed:
            lines = [f"  {schema}: {error}" for schema, error in sorted(report.failed.items())]
            raise CommandError(
                f"{len(report.failed)} tenant schemas failed to migrate (left at their previous state; "
                "run the command again once fixed):\n" + "\n".join(lines)
            )
