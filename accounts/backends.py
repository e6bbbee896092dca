"""Authentication backends that only ever answer for their own side of the platform.

Both user tables are reachable from a tenant request (the search path ends with
``public``), so each backend checks which schema the connection is on: platform
staff sign in only on the public schema, tenant users only in their own schema.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.db import connection
from django_tenants.utils import get_public_schema_name


def on_public_schema() -> bool:
    return connection.schema_name == get_public_schema_name()


class PlatformStaffBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if not on_public_schema():
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_user(self, user_id):
        if not on_public_schema():
            return None
        return super().get_user(user_id)


class TenantUserBackend:
    def authenticate(self, request, username=None, password=None, **kwargs):
        from accounts.models import TenantUser

        if on_public_schema() or not username or password is None:
            return None
        user = TenantUser.objects.filter(username=username.lower()).first()
        if user is None:
            # Spend the same time as a real check so that timing tells nothing about usernames.
            TenantUser().set_password(password)
            return None
        if user.is_active and user.check_password(password):
            return user
        return None

    def get_user(self, user_id):
        from accounts.models import TenantUser

        if on_public_schema():
            return None
        return TenantUser.objects.filter(pk=user_id, is_active=True).first()
