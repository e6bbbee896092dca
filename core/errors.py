"""Errors: one exception family, and the one place each kind of client gets its answer.

Services raise ``ServiceError`` (or a subclass) with the message a client may read and the
HTTP status that says why. The API's exception handler turns it, and DRF's own exceptions,
into ``{"error": "..."}`` (invalid fields add ``"detail"``); ``error_response`` does the same
outside DRF (middleware, URL handlers) and renders a page instead for a person in a browser.
"""

from __future__ import annotations

import logging
import sys

from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework import exceptions
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.http import wants_html
from core.outage import database_unavailable_response, is_database_unavailable, note_database_unavailable


class ServiceError(Exception):
    """A rule refused the operation.

    ``field`` names the input at fault, if one is; ``detail`` replaces the default
    ``{field: [message]}`` for nested inputs; ``status`` overrides the class's.
    """

    status = 400

    def __init__(
        self, message: str, field: str | None = None, *, detail: dict | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self._detail = detail
        if status is not None:
            self.status = status

    @property
    def detail(self) -> dict | None:
        if self._detail is not None:
            return self._detail
        return {self.field: [str(self)]} if self.field else None


class Invalid(ServiceError):
    status = 400


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class RateLimited(ServiceError):
    """Too many requests: the answer carries ``Retry-After``."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


bad_input_log = logging.getLogger("saas.bad_input")


def client_error(exc: BaseException) -> ServiceError | None:
    """The client's error behind an exception that is not a bug: its status and message, or None.

    - ``ServiceError``: a rule refused the request.
    - ``DataError`` (SQLSTATE class 22): the database refused a value the client sent (a NUL
      byte, a number out of range) that no earlier check caught; nothing was written, since
      the statement failed.
    - Django's ``BadRequest`` and ``SuspiciousOperation`` (a disallowed Host, too many
      parameters, a broken multipart body), ``PermissionDenied`` and ``Http404``.
    """
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, DataError):
        first_line = (str(exc).strip().splitlines() or [""])[0]
        bad_input_log.warning("value refused by the database: %s", first_line)
        return Invalid("Invalid input: a value cannot be stored (NUL byte, or out of range)")
    if isinstance(exc, (BadRequest, SuspiciousOperation)):
        return Invalid(f"Bad request: {_sentence(exc)}" if _sentence(exc) else "Bad request")
    if isinstance(exc, PermissionDenied):
        return Forbidden("Permission denied")
    if isinstance(exc, Http404):
        return NotFound("Not found")
    return None


def _sentence(exc: BaseException) -> str:
    """Django's own message for a bad request, without the settings it names."""
    text = str(exc).split(". You may need", 1)[0]
    return text if len(text) <= 200 else text[:200] + "…"


def error_body(message: str, detail: object = None) -> dict:
    return {"error": message} if detail is None else {"error": message, "detail": detail}


def json_error(message: str, status: int, detail: object = None) -> JsonResponse:
    return JsonResponse(error_body(message, detail), status=status)


def error_response(
    request: HttpRequest, status: int, message: str, title: str = "", explanation: str = ""
) -> HttpResponse:
    """An error outside DRF: JSON for API clients, the error page for a person in a browser."""
    if not wants_html(request):
        return json_error(message, status)
    context = {"status": status, "title": title or message, "message": message, "explanation": explanation}
    return render(request, "error.html", context, status=status)


def _first_message(detail: object) -> tuple[str | None, str]:
    if isinstance(detail, dict) and detail:
        field, value = next(iter(detail.items()))
        return (None if field == "non_field_errors" else str(field)), _first_message(value)[1]
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return None, str(detail)


def first_error(detail: object) -> tuple[str, str]:
    """The top-level field (or "") and the one-line message the API answers for a validation error."""
    field, message = _first_message(detail)
    return field or "", (f"Invalid {field}: {message}" if field else message)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every exception a view raises, as the JSON error it means."""
    _answer_in_json(context.get("request"))
    if is_database_unavailable(exc):
        # DRF catches view exceptions before any middleware sees them.
        note_database_unavailable(context.get("request"), exc)
        return database_unavailable_response(Response)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("Request body too large"), status=413)
    if not isinstance(exc, (Http404, PermissionDenied)):  # DRF's own handler words these
        refusal = client_error(exc)
        if refusal is not None:
            return _with_retry_after(Response(error_body(str(refusal), refusal.detail), status=refusal.status), refusal)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(first_error(exc.detail)[1], exc.detail)
    elif isinstance(exc, exceptions.Throttled):
        # DRF has already set Retry-After from the throttle's wait.
        response.data = error_body("Rate limit exceeded")
    elif isinstance(exc, exceptions.ParseError):
        response.data = error_body(f"Invalid JSON body: {exc.detail}")
    else:
        # DRF answered with its own wording ({"detail": ...}), Http404 and PermissionDenied included.
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        response.data = error_body(str(detail or getattr(exc, "detail", "") or "Request refused"))
    return response


def _answer_in_json(request: Request | None) -> None:
    """Errors are JSON, whatever the route renders when all goes well (the schema's YAML, the docs' HTML)
    and whether or not negotiation got as far as choosing; only the browsable API shows its own."""
    if request is not None and not isinstance(
        getattr(request, "accepted_renderer", None), (JSONRenderer, BrowsableAPIRenderer)
    ):
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type


def _with_retry_after(response: HttpResponse, refusal: ServiceError) -> HttpResponse:
    if isinstance(refusal, RateLimited):
        response["Retry-After"] = str(refusal.retry_after)
    return response


def refusal_response(request: HttpRequest, refusal: ServiceError) -> HttpResponse:
    """A refusal outside DRF: JSON for API clients, the error page for a person in a browser."""
    return _with_retry_after(error_response(request, refusal.status, str(refusal)), refusal)


# URL conf handlers (handler400, handler403, handler404, handler500): JSON on API routes, pages elsewhere.
# They also answer what fails before a view runs (a disallowed Host, too many parameters), so
# they use nothing a failed request may lack.


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return refusal_response(request, client_error(exception) or Invalid("Bad request"))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return refusal_response(request, Forbidden("Permission denied"))


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return refusal_response(request, NotFound("Not found"))


def server_error(request: HttpRequest) -> HttpResponse:
    """Called while Django handles an uncaught exception: a client's error behind it is still a 4xx."""
    from django.views.defaults import server_error as html_server_error

    refusal = client_error(sys.exc_info()[1])
    if refusal is not None:
        return refusal_response(request, refusal)
    if wants_html(request):
        return html_server_error(request)  # a static page: rendering must not fail again
    return json_error("Internal server error", 500)
