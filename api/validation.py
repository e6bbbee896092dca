"""Strict request validation shared by the platform and tenant APIs.

JSON bodies must be objects with known keys and values of the right type:
DRF's defaults would turn ``123`` into ``"123"`` and ignore unknown keys.
"""

from __future__ import annotations

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


def pagination_params(request, default_limit: int = 100, max_limit: int = 1000) -> tuple[int, int]:
    """``?limit=`` and ``?offset=`` as validated integers (400 on nonsense)."""
    values = {}
    for name, default, maximum in (("limit", default_limit, max_limit), ("offset", 0, None)):
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            values[name] = default
            continue
        if not raw.isdigit() or (maximum is not None and int(raw) > maximum) or (name == "limit" and int(raw) < 1):
            bound = f"1 to {maximum}" if maximum else "0 or more"
            raise serializers.ValidationError({name: [f"Must be a whole number, {bound}."]})
        values[name] = int(raw)
    return values["limit"], values["offset"]
