"""Load the seed's demo tenants, users and platform admin. Safe to run any number of times.

Tenants and their users are written through the services, like every other write, so the
rules apply and the audit trail records what the command changed (as the system).
"""

from __future__ import annotations

import datetime
import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django_tenants.utils import schema_context

from accounts import services
from accounts.models import TenantUser
from tenants import plans
from tenants import services as tenant_services
from tenants.models import StaffToken, Tenant
from tenants.selectors import get_tenant

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

    def handle(self, *args: object, **options: object) -> None:
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
            with schema_context(tenant.schema_name):
                for username, name, role in spec["users"]:
                    key = self._tenant_user(tenant, username, name, role, password)
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

    def _tenant(self, spec: dict) -> Tenant:
        wanted = {
            "name": spec["name"],
            "plan": spec["plan"],
            "created_at": datetime.datetime.fromtimestamp(spec["created_at"], tz=datetime.UTC),
            **dict.fromkeys(plans.OVERRIDE_FIELDS),
        }
        tenant = get_tenant(spec["id"])
        if tenant is None:
            return tenant_services.provision_tenant(
                tenant_id=spec["id"], name=spec["name"], plan=spec["plan"], created_at=wanted["created_at"]
            )
        current = {"name": tenant.name, "plan": tenant.plan_id, "created_at": tenant.created_at}
        current.update(plans.overrides_of(tenant))
        changes = {key: value for key, value in wanted.items() if current[key] != value}
        if changes:
            tenant = tenant_services.update_tenant(tenant.id, changes)
        if not tenant.active:
            tenant = tenant_services.set_tenant_active(tenant.id, True)
        return tenant

    def _tenant_user(self, tenant: Tenant, username: str, name: str, role: str, password: str) -> str:
        user = TenantUser.objects.filter(username=username).first()
        if user is None:
            user = services.create_user(tenant, name=name, role=role, username=username, password=password)
        else:
            changes = {key: value for key, value in (("name", name), ("role", role)) if getattr(user, key) != value}
            if not user.is_active:
                changes["is_active"] = True
            if not user.check_password(password):
                changes["password"] = password
            if changes:
                user = services.update_user(user.pk, changes)
        return services.issue_token(user, DEMO_TOKEN_NAME, replace=True)
