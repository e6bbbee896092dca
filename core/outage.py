"""A database out of reach is the operator's problem, not the client's: 503 with Retry-After, never a 500.

Covers the server stopped, restarting or out of connection slots. A query that fails on a
working server (a timeout, a deadlock) is not an outage and stays an error of its own.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import psycopg
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse

from core.http import wants_html

db_log = logging.getLogger("saas.db")

DATABASE_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
UNAVAILABLE_MESSAGE = "Service temporarily unavailable"
RETRY_AFTER_SECONDS = 2

# SQLSTATEs of a server that is going away or refusing sessions: connection exceptions (08),
# shutdown or not yet accepting connections (57P01-57P03), no connection slot left (53300).
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")

_UNAVAILABLE_PAGE = (
    '<!doctype html><html><head><meta charset="utf-8"><title>Temporarily unavailable</title></head>'
    "<body><h1>Temporarily unavailable</h1><p>The service is briefly unavailable. "
    "Please try again in a few seconds.</p></body></html>"
)


def is_database_unavailable(exc: BaseException | None) -> bool:
    """True for a lost or refused connection; False for a query's own failure (timeout, deadlock...)."""
    if not isinstance(exc, DATABASE_ERRORS):
        return False
    if isinstance(exc, (InterfaceError, psycopg.InterfaceError)):
        return True
    cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    # No SQLSTATE: the client library itself gave up (refused, no socket, closed mid-query).
    return sqlstate is None or sqlstate.startswith(UNAVAILABLE_SQLSTATES)


def discard_broken_connections() -> None:
    """Close this thread's connections that no longer work, so the next request opens a fresh one."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.in_atomic_block:
            try:
                conn.close_if_unusable_or_obsolete()
            except DATABASE_ERRORS:
                conn.close()


def transaction_depths() -> dict[str, int]:
    """How many atomic blocks each of this thread's connections has open."""
    return {conn.alias: len(conn.atomic_blocks) for conn in connections.all(initialized_only=True)}


def drop_leaked_transactions(depths_before: dict[str, int]) -> list[str]:
    """Close connections that leave a request inside more atomic blocks than they entered it with.

    When the server dies in the middle of a transaction, Django's atomic bookkeeping can
    end up believing a block is still open on a connection that is already closed; from
    then on that thread refuses to reconnect ("the connection is closed") for every
    request it serves. No transaction may outlive the request that began it, so the
    request boundary is where the bookkeeping is put right and the connection dropped.
    """
    dropped = []
    for conn in connections.all(initialized_only=True):
        before = depths_before.get(conn.alias, 0)
        leaked = len(conn.atomic_blocks) > before or (conn.in_atomic_block and before == 0)
        if not leaked:
            continue
        conn.atomic_blocks.clear()
        conn.savepoint_ids.clear()
        conn.in_atomic_block = False
        conn.needs_rollback = False
        conn.commit_on_exit = True
        conn.closed_in_transaction = False
        try:
            conn.close()
        except DATABASE_ERRORS:
            conn.connection = None
        dropped.append(conn.alias)
    if dropped:
        db_log.warning("dropped connections left inside a transaction after a request: %s", ", ".join(dropped))
    return dropped


def note_database_unavailable(request: HttpRequest | None, exc: BaseException) -> None:
    discard_broken_connections()
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    db_log.warning(
        "database unavailable: %s %s: %s", getattr(request, "method", "-"), getattr(request, "path", "-"), first_line
    )


def database_unavailable_response(response_class: Callable[..., HttpResponse] = JsonResponse) -> HttpResponse:
    """The JSON 503, built by ``response_class`` (Django's JsonResponse, or DRF's Response inside a view)."""
    response = response_class({"error": UNAVAILABLE_MESSAGE}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """The answer while the database cannot be reached, built without templates or the session,
    which could themselves need the database."""
    if not wants_html(request):
        return database_unavailable_response()
    response = HttpResponse(_UNAVAILABLE_PAGE, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class SkipDatabaseUnavailable(logging.Filter):
    """Drop Django's 500 traceback for a database outage: the 503 path logs one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and is_database_unavailable(record.exc_info[1]))


def _remember_database_failure(sender: object, request: HttpRequest | None = None, **kwargs: object) -> None:
    exc = sys.exc_info()[1]
    if request is not None and is_database_unavailable(exc):
        request.database_failure = exc


class DatabaseUnavailableMiddleware:
    """503 ``{"error": "Service temporarily unavailable"}`` when the database is out of reach.

    Django turns an exception in any inner middleware (the tenant lookup, sessions)
    into a 500 before an outer middleware sees it, so this one learns of it from
    ``got_request_exception`` and swaps that 500 for a 503. View exceptions arrive
    through ``process_exception``; DRF views have their own handler (core.errors).
    After every request it also drops a connection whose transaction bookkeeping a
    database failure left open (``drop_leaked_transactions``), so a thread recovers.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        got_request_exception.connect(_remember_database_failure, dispatch_uid="saas-database-unavailable")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        depths = transaction_depths()
        try:
            response = self.get_response(request)
        finally:
            drop_leaked_transactions(depths)
        failure = getattr(request, "database_failure", None)
        if failure is not None and response.status_code == 500:
            note_database_unavailable(request, failure)
            return unavailable_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_unavailable(exception):
            note_database_unavailable(request, exception)
            return unavailable_response(request)
        return None
