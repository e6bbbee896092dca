"""API tokens that are stored as SHA-256 digests, never in the clear.

The raw key is shown once, when it is issued. Keys carry 256 bits of entropy,
so a fast digest is enough: there is nothing to brute-force that a slow hash
would protect.
"""

from __future__ import annotations

import hashlib
import secrets

from django.db import models
from django.utils import timezone


def digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


class HashedToken(models.Model):
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=8, editable=False, help_text="First characters of the key, to tell keys apart")
    name = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.prefix}…"

    @classmethod
    def issue(cls, **fields: object) -> tuple[HashedToken, str]:
        """Create a token; return it with the raw key, which is not stored."""
        raw_key = secrets.token_urlsafe(32)
        token = cls.objects.create(key_digest=digest(raw_key), prefix=raw_key[:8], **fields)
        return token, raw_key

    @classmethod
    def lookup(cls, raw_key: str) -> HashedToken | None:
        if not raw_key or len(raw_key) > 128:
            return None
        return cls.objects.select_related("user").filter(key_digest=digest(raw_key)).first()
