"""Purge the deleted tenants whose grace period is over (also run hourly by the job worker)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from tenants import services


class Command(BaseCommand):
    help = "Drop the schemas of tenants deleted more than TENANT_DELETE_GRACE_DAYS ago; keep their tombstones."

    def handle(self, *args: object, **options: object) -> None:
        purged = services.purge_due_tenants()
        if int(options["verbosity"]) >= 1:
            self.stdout.write(f"purged {len(purged)} tenants" + (f": {', '.join(purged)}" if purged else ""))
