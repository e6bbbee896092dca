"""Create a tenant from an archive, here and now (the same import as POST /admin/tenants/import, without a worker)."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ServiceError
from tenants import services
from tenants.archive import inspect_archive


class Command(BaseCommand):
    help = "Import a tenant archive (from export_tenant or an export job) as a new tenant, on this database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="the archive (tar.gz)")
        parser.add_argument("--id", dest="tenant_id", help="the new tenant's id (default: the archive's)")
        parser.add_argument("--name", help="the new tenant's name (default: the archive's)")

    def handle(self, *args: object, path: str, tenant_id: str | None, name: str | None, **options: object) -> None:
        try:
            with open(path, "rb") as source:
                archive = inspect_archive(path)
                tenant, _ = services.import_tenant(
                    source, os.path.getsize(path), tenant_id=tenant_id or archive.tenant_id, name=name
                )
        except ServiceError as exc:
            raise CommandError(str(exc)) from exc
        if int(options["verbosity"]) >= 1:
            self.stdout.write(f"imported {tenant.id} ({sum(archive.row_counts.values())} rows)")
