"""What a valid request to change a tenant's users or settings looks like, for the API and the pages.

The JSON API and the dashboard's forms validate with the same serializers, so a form
refuses exactly what the API refuses, with the same message.
"""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import USERNAME_VALIDATOR, Role
from core.validation import StrictCharField, StrictSerializer, is_hex_color

PLAN_GOVERNED_SETTINGS = ("max_users", "features", "rate_limit_per_minute")
EDITABLE_SETTINGS = ("display_name", "timezone", "theme_color")


class RoleField(serializers.ChoiceField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(choices=Role.values, **kwargs)

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class NameField(StrictCharField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_length=200, **kwargs)


class PasswordField(StrictCharField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_length=1024, trim_whitespace=False, write_only=True, **kwargs)


class UserCreateSerializer(StrictSerializer):
    name = NameField()
    role = RoleField(required=False, default=Role.MEMBER)
    username = StrictCharField(required=False, max_length=150, validators=[USERNAME_VALIDATOR])
    email = serializers.EmailField(required=False, default="", max_length=254)
    password = PasswordField(required=False)


class UserUpdateSerializer(StrictSerializer):
    name = NameField(required=False)
    role = RoleField(required=False)
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    password = PasswordField(required=False)

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("Nothing to change: give name, role, email or password.")
        return attrs


class FirstAdminSerializer(StrictSerializer):
    """The first admin of a new tenant, created with it."""

    username = StrictCharField(max_length=150, validators=[USERNAME_VALIDATOR])
    name = NameField()
    password = PasswordField()
    email = serializers.EmailField(required=False, default="", max_length=254)


class SettingsUpdateSerializer(StrictSerializer):
    """Tenant-editable keys; plan-governed keys are let through to be refused with 403 by the service."""

    display_name = StrictCharField(required=False, max_length=100, allow_blank=True)
    timezone = StrictCharField(required=False, max_length=64)
    theme_color = StrictCharField(required=False, max_length=7)
    max_users = serializers.JSONField(required=False)
    features = serializers.JSONField(required=False)
    rate_limit_per_minute = serializers.JSONField(required=False)

    def validate_theme_color(self, value: str) -> str:
        if not is_hex_color(value):
            raise serializers.ValidationError("Use a colour of the form #rrggbb.")
        return value.lower()

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("Nothing to change: give display_name, timezone or theme_color.")
        return attrs


class CredentialsSerializer(StrictSerializer):
    """A username and password, exchanged for a token (platform and tenant alike)."""

    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=1024, trim_whitespace=False)
