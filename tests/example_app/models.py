"""A tenant-scoped model: its table exists in every tenant schema, and only there."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import TenantUser


class Note(models.Model):
    """A note by a user of the tenant; the foreign key resolves within the tenant's own schema."""

    author = models.ForeignKey(TenantUser, on_delete=models.CASCADE, related_name="notes")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.title
