"""The two models every layer above may build on: hashed credentials and the audit trail."""

from __future__ import annotations

import hashlib
import secrets
from typing import Self

from django.db import models
from django.utils import timezone


def digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


class HashedToken(models.Model):
    """An API token stored as a SHA-256 digest, never in the clear.

    The raw key is shown once, when it is issued. Keys carry 256 bits of entropy,
    so a fast digest is enough: there is nothing to brute-force that a slow hash
    would protect. Subclasses add the ``user`` the token belongs to.
    """

    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=8, editable=False, help_text="First characters of the key, to tell keys apart")
    name = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.prefix}…"

    @classmethod
    def issue(cls, **fields: object) -> tuple[Self, str]:
        """Create a token; return it with the raw key, which is not stored."""
        raw_key = secrets.token_urlsafe(32)
        token = cls.objects.create(key_digest=digest(raw_key), prefix=raw_key[:8], **fields)
        return token, raw_key

    @classmethod
    def lookup(cls, raw_key: str) -> Self | None:
        """The token of ``raw_key`` with its ``user``, or None."""
        return cls.objects.select_related("user").filter(key_digest=digest(raw_key)).first()


class AuditEvent(models.Model):
    """Something a platform operator or a tenant admin changed, with the values before and after.

    Kept in each tenant's own schema (platform actions on the tenant included), written in
    the same transaction as the change, so an event exists exactly when its change does.
    The table keeps the name it was created with when the model lived in ``accounts``.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_kind = models.CharField(max_length=10)  # platform, tenant, key or system
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=40)
    target = models.CharField(max_length=100)
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)

    class Meta:
        db_table = "accounts_auditevent"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.target} by {self.actor_kind}:{self.actor}"
