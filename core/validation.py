"""Strict request validation shared by every JSON body and form of the project.

JSON bodies must be objects with known keys and values of the right type:
DRF's defaults would turn ``123`` into ``"123"`` and ignore unknown keys.
"""

from __future__ import annotations

import re

from rest_framework import serializers

# ASCII digits only: str.isdigit() also accepts characters such as "²" that int() refuses.
DIGITS = re.compile(r"[0-9]{1,18}\Z")
HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}\Z")


class StrictCharField(serializers.CharField):
    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: object) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Refuses unknown keys instead of silently ignoring them."""

    def to_internal_value(self, data: object) -> dict:
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)


def parse_id(raw: str) -> int | None:
    """A positive database id from a URL segment, or None when it cannot be one."""
    return int(raw) if DIGITS.match(raw) else None


def is_hex_color(value: object) -> bool:
    """``#rrggbb``: the only colour form stored, and the only one ever put into a page's CSS."""
    return isinstance(value, str) and HEX_COLOR.match(value) is not None
