"""Strict request validation shared by the platform and tenant APIs.

JSON bodies must be objects with known keys and values of the right type:
DRF's defaults would turn ``123`` into ``"123"`` and ignore unknown keys.
"""

from __future__ import annotations

import re

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Refuses unknown keys instead of silently ignoring them."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)


class CredentialsSerializer(StrictSerializer):
    """A username and password, exchanged for a token (platform and tenant alike)."""

    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=1024, trim_whitespace=False)


MAX_OFFSET = 1_000_000_000
# ASCII digits only: str.isdigit() also accepts characters such as "²" that int() refuses.
_DIGITS = re.compile(r"[0-9]{1,18}\Z")


def parse_id(raw: str) -> int | None:
    """A positive database id from a URL segment, or None when it cannot be one."""
    return int(raw) if _DIGITS.match(raw) else None


def _bounded_int(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not _DIGITS.match(raw) or not low <= int(raw) <= high:
        raise serializers.ValidationError({name: [f"Must be a whole number from {low} to {high}."]})
    return int(raw)


def pagination_params(request, default_limit: int = 100, max_limit: int = 1000) -> tuple[int, int]:
    """``?limit=`` and ``?offset=`` as validated integers (400 on anything else)."""
    return (
        _bounded_int(request, "limit", default_limit, 1, max_limit),
        _bounded_int(request, "offset", 0, 0, MAX_OFFSET),
    )
