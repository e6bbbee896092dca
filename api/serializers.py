"""Request bodies of the tenant API, and the JSON shape of a user."""

from __future__ import annotations

import re

from rest_framework import serializers

from accounts.models import USERNAME_VALIDATOR, Role
from api.validation import StrictCharField, StrictSerializer

HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}\Z")


class RoleField(serializers.ChoiceField):
    def __init__(self, **kwargs) -> None:
        super().__init__(choices=Role.values, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class UserCreateSerializer(StrictSerializer):
    name = StrictCharField(max_length=200)
    role = RoleField(required=False, default=Role.MEMBER)
    username = StrictCharField(required=False, max_length=150, validators=[USERNAME_VALIDATOR])
    email = serializers.EmailField(required=False, default="", max_length=254)
    password = StrictCharField(required=False, max_length=1024, trim_whitespace=False, write_only=True)


class UserUpdateSerializer(StrictSerializer):
    name = StrictCharField(required=False, max_length=200)
    role = RoleField(required=False)
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    password = StrictCharField(required=False, max_length=1024, trim_whitespace=False, write_only=True)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Nothing to change: give name, role, email or password.")
        return attrs


class SettingsUpdateSerializer(StrictSerializer):
    """Tenant-editable keys; plan-governed keys are let through to be refused with 403."""

    display_name = StrictCharField(required=False, max_length=100, allow_blank=True)
    timezone = StrictCharField(required=False, max_length=64)
    theme_color = StrictCharField(required=False, max_length=7)
    max_users = serializers.JSONField(required=False)
    features = serializers.JSONField(required=False)
    rate_limit_per_minute = serializers.JSONField(required=False)

    def validate_theme_color(self, value: str) -> str:
        if not HEX_COLOR.match(value):
            raise serializers.ValidationError("Use a colour of the form #rrggbb.")
        return value.lower()

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Nothing to change: give display_name, timezone or theme_color.")
        return attrs
