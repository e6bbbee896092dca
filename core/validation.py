"""Strict request validation shared by every JSON body and form of the project.

JSON bodies must be objects with known keys and values of the right type:
DRF's defaults would turn ``123`` into ``"123"`` and ignore unknown keys. They are
parsed by ``StrictJSONParser``, which refuses deep nesting, and time zones are
names of the IANA list that the tzdata package ships.
"""

from __future__ import annotations

import functools
import importlib.resources
import re

from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

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


# --- JSON bodies ----------------------------------------------------------------------------------

# No body of the project nests deeper than 3 levels; the bound keeps every parser, serializer
# and renderer far from Python's recursion limit.
MAX_JSON_DEPTH = 32


def json_depth(value: object) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0), counted without recursion."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_JSON_DEPTH:
            break
        pending.extend((child, depth + 1) for child in children)
    return deepest


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing bodies nested deeper than MAX_JSON_DEPTH (400, never a RecursionError)."""

    def parse(self, stream: object, media_type: str | None = None, parser_context: dict | None = None) -> object:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from exc
        if json_depth(data) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return data


# --- Time zones -----------------------------------------------------------------------------------

# In the tzdata package's list, yet no place's time: "Factory" is a placeholder zone.
NOT_A_PLACE = frozenset({"Factory"})


@functools.cache
def iana_time_zones() -> frozenset[str]:
    """The IANA time zone names, from the tzdata package: the same on every host.

    ``zoneinfo.available_timezones()`` would also list what the host's zoneinfo directory
    holds, such as ``localtime`` (a link to whatever the host is set to).
    """
    listed = importlib.resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    return frozenset(listed) - NOT_A_PLACE
