"""Every API error is JSON ``{"error": "..."}``; field errors add ``"detail"``."""

from __future__ import annotations

import logging

import psycopg
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError, connections
from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

db_log = logging.getLogger("saas.db")

# A lost or refused database connection (server down, restarting, out of connection slots)
# is the operator's problem, not the client's: 503 with Retry-After, never a 500.
DATABASE_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
UNAVAILABLE_MESSAGE = "Service temporarily unavailable"
RETRY_AFTER_SECONDS = 2


# SQLSTATEs of a server that is going away or refusing sessions: connection exceptions (08),
# shutdown or not yet accepting connections (57P01-57P03), no connection slot left (53300).
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def is_database_unavailable(exc: BaseException | None) -> bool:
    """True for a lost or refused connection; False for a query's own failure (timeout, deadlock...).

    A statement that fails on a working server is a bug or a conflict to report as such,
    not an outage to hide behind a retry.
    """
    if not isinstance(exc, DATABASE_ERRORS):
        return False
    if isinstance(exc, (InterfaceError, psycopg.InterfaceError)):
        return True
    cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    # No SQLSTATE: the client library itself gave up (refused, no socket, closed mid-query).
    return sqlstate is None or sqlstate.startswith(UNAVAILABLE_SQLSTATES)


def discard_broken_connections() -> None:
    """Close this thread's connections that no longer work, so the next request opens a fresh one.

    The next request's first read would replace them too (tenants.db); closing now also
    frees the slot at once and spares that request the failed attempt.
    """
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


def note_database_unavailable(request, exc: BaseException) -> None:
    discard_broken_connections()
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    db_log.warning(
        "database unavailable: %s %s: %s", getattr(request, "method", "-"), getattr(request, "path", "-"), first_line
    )


class SkipDatabaseUnavailable(logging.Filter):
    """Drop Django's 500 traceback for a database outage: the 503 path logs one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and is_database_unavailable(record.exc_info[1]))


def error_body(message: str, **extra: object) -> dict:
    return {"error": message, **extra}


def json_error(message: str, status_code: int, **extra: object) -> JsonResponse:
    """An error outside DRF (middleware, URL handlers)."""
    return JsonResponse(error_body(message, **extra), status=status_code)


def error_response(message: str, status_code: int, **extra: object) -> Response:
    """An error from a DRF view."""
    return Response(error_body(message, **extra), status=status_code)


def _first_message(detail: object) -> tuple[str | None, str]:
    """The first (field, message) in a DRF error detail, for a one-line summary."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            _, message = _first_message(value)
            return (None if field == "non_field_errors" else str(field)), message
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return None, str(detail)


def first_error(detail: object) -> tuple[str, str]:
    """The field (or "") and the one-line message the API answers for a validation error."""
    field, message = _first_message(detail)
    return field or "", (f"Invalid {field}: {message}" if field else message)


def json_exception_handler(exc: Exception, context: dict) -> Response | None:
    if is_database_unavailable(exc):
        # DRF catches view exceptions before any middleware sees them.
        note_database_unavailable(context.get("request"), exc)
        response = error_response(UNAVAILABLE_MESSAGE, status.HTTP_503_SERVICE_UNAVAILABLE)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exc, RequestDataTooBig):
        return error_response("Request body too large", status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        _, summary = first_error(exc.detail)
        response.data = error_body(summary, detail=exc.detail)
    elif isinstance(exc, exceptions.Throttled):
        # DRF has already set Retry-After from the throttle's wait.
        response.data = error_body("Rate limit exceeded")
    elif isinstance(exc, exceptions.ParseError):
        response.data = error_body(f"Invalid JSON body: {exc.detail}")
    else:
        response.data = error_body(str(exc.detail))
    return response


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/") or path == "/admin" or path.startswith("/admin/")


def not_found(request, exception=None):
    from django.views.defaults import page_not_found

    if is_api_path(request.path_info):
        return json_error("Not found", 404)
    return page_not_found(request, exception)


def server_error(request):
    from django.views.defaults import server_error as html_server_error

    if is_api_path(request.path_info):
        return json_error("Internal server error", 500)
    return html_server_error(request)
