"""Load the seed's demo tenants, users and platform admin. Safe to run any number of times."""

from __future__ import annotations

import datetime
import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django_tenants.utils import schema_context

from accounts.models import AuthToken, TenantUser
from tenants import selectors, services
from tenants.models import Plan, StaffToken

DEFAULT_DEMO_PASSWORD = "demo-pass-2024"

DEMO_TENANTS = [
    {
        "id": "acme",
        "name": "Acme Corporation",
        "plan": "enterprise",
        "created_at": 1700000000,
        "users": [("alice", "Alice", "admin"), ("bob", "Bob", "member")],
    },
    {
        "id": "globex",
        "name": "Globex Inc.",
        "plan": "starter",
        "created_at": 1700100000,
        "users": [("charlie", "Charlie", "admin")],
    },
]
DEMO_TOKEN_NAME = "demo"


class Command(BaseCommand):
    help = "Create or restore the demo tenants acme and globex, their users, and the platform admin."

    def handle(self, *args, **options) -> None:
        password = os.environ.get("DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD
        port = os.environ.get("PORT", "8000")
        lines = ["Demo data ready. Password for every demo user: " + password, ""]

        admin_key = self._platform_admin(password)
        lines += [
            f"Platform admin: http://127.0.0.1:{port}/django-admin/  (user: admin)",
            f"  staff API token: {admin_key}",
            "",
        ]
        for spec in DEMO_TENANTS:
            tenant = self._tenant(spec)
            lines.append(f"{tenant.name}: http://{tenant.id}.{settings.TENANT_BASE_DOMAIN}:{port}/")
            with schema_context(tenant.id):
                for username, name, role in spec["users"]:
                    key = self._tenant_user(username, name, role, password)
                    lines.append(f"  {username} ({role}) API token: {key}")
            lines.append("")
        self.stdout.write("\n".join(lines))

    @transaction.atomic
    def _platform_admin(self, password: str) -> str:
        user, _ = get_user_model().objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        StaffToken.objects.filter(user=user, name=DEMO_TOKEN_NAME).delete()
        _, key = StaffToken.issue(user=user, name=DEMO_TOKEN_NAME)
        return key

    def _tenant(self, spec: dict):
        created_at = datetime.datetime.fromtimestamp(spec["created_at"], tz=datetime.UTC)
        tenant = selectors.get_tenant(spec["id"])
        if tenant is None:
            return services.provision_tenant(
                tenant_id=spec["id"], name=spec["name"], plan=spec["plan"], created_at=created_at
            )
        tenant.name = spec["name"]
        tenant.plan = Plan.objects.get(pk=spec["plan"])
        tenant.created_at = created_at
        tenant.max_users_override = tenant.features_override = tenant.rate_limit_override = None
        tenant.save()
        return tenant

    @transaction.atomic
    def _tenant_user(self, username: str, name: str, role: str, password: str) -> str:
        user = TenantUser.objects.filter(username=username).first() or TenantUser(username=username)
        user.name, user.role, user.is_active = name, role, True
        user.set_password(password)
        user.save()
        AuthToken.objects.filter(user=user, name=DEMO_TOKEN_NAME).delete()
        _, key = AuthToken.issue(user=user, name=DEMO_TOKEN_NAME)
        return key
