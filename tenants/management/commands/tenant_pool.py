"""Show or refill the pool of pre-migrated schemas that provisioning takes from."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from tenants.provisioning import fill_pool, pool_schemas


class Command(BaseCommand):
    help = "Refill the pool of migrated schemas used to provision tenants (drops stale ones)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--size", type=int, default=settings.TENANT_POOL_SIZE, help="schemas to keep ready")
        parser.add_argument("--status", action="store_true", help="only print how many are ready")

    def handle(self, *args: object, **options: object) -> None:
        if not options["status"]:
            added = fill_pool(options["size"])
            self.stdout.write(f"added {added} schemas")
        self.stdout.write(f"{len(pool_schemas())} pool schemas ready")
