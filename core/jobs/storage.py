"""Where jobs keep the files they make and read: Django's storage ``archives`` (settings.STORAGES)."""

from __future__ import annotations

from django.core.files.storage import Storage, storages


def archives() -> Storage:
    return storages["archives"]
