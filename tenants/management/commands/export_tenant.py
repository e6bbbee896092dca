"""Write a tenant's full archive to a file, here and now (the same archive as POST /admin/tenants/{id}/exports)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.archive import write_archive
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Export a tenant (every table of its schema, its registry row, plan and domains) to a tar.gz archive."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_id")
        parser.add_argument("path", help="where to write the archive")

    def handle(self, *args: object, tenant_id: str, path: str, **options: object) -> None:
        tenant = Tenant.objects.select_related("plan").filter(pk=tenant_id).first()
        if tenant is None:
            raise CommandError(f"no tenant {tenant_id!r}")
        with open(path, "wb") as out:
            archive = write_archive(tenant, out)
        if int(options["verbosity"]) >= 1:
            rows = sum(archive.row_counts.values())
            self.stdout.write(f"{path}: {archive.size} bytes, {len(archive.tables)} tables, {rows} rows")
