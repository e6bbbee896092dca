"""Request bodies, validated: the one step every write route takes before calling a service."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request


def validated(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    """The body of ``request`` as ``serializer_class`` accepts it; a 400 JSON error (ValidationError) otherwise."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
