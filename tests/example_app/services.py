"""Writes of the example app, made the way the project's services make them.

The connection must be on the tenant's schema (a tenant request, or ``schema_context``).
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import TenantUser
from core import audit
from tests.example_app.models import Note


def note_json(note: Note) -> dict:
    return {"id": str(note.pk), "author": str(note.author_id), "title": note.title, "body": note.body}


def create_note(author: TenantUser, *, title: str, body: str = "") -> Note:
    """Write a note and its audit event in one transaction: the event exists exactly when the note does."""
    with transaction.atomic():
        note = Note.objects.create(author=author, title=title, body=body)
        audit.record("note.create", audit.Actor.of(author), f"note:{note.pk}", None, note_json(note))
    return note
