"""Database plumbing that knows no tenant rule."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def read_only_snapshot() -> Iterator[None]:
    """Run the block in one REPEATABLE READ, READ ONLY transaction: every read sees the same instant.

    Long reads of several tables (exports) need that, or rows written between two of their
    queries would leave the result inconsistent (a token whose user is missing). Inside an
    outer transaction (a test's) the block reads with that transaction's view instead.
    """
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield
