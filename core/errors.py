"""Errors: one exception family, and the one place each kind of client gets its answer.

Services raise ``ServiceError`` (or a subclass) with the message a client may read and the
HTTP status that says why. The API's exception handler turns it, and DRF's own exceptions,
into ``{"error": "..."}`` (invalid fields add ``"detail"``); ``error_response`` does the same
outside DRF (middleware, URL handlers) and renders a page instead for a person in a browser.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.http import is_api_path, wants_html
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
    if is_database_unavailable(exc):
        # DRF catches view exceptions before any middleware sees them.
        note_database_unavailable(context.get("request"), exc)
        return database_unavailable_response(Response)
    if isinstance(exc, ServiceError):
        return Response(error_body(str(exc), exc.detail), status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("Request body too large"), status=413)
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
        response.data = error_body(str(getattr(exc, "detail", exc)))
    return response


# URL conf handlers (handler404, handler500): JSON on API routes, Django's pages elsewhere.


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    from django.views.defaults import page_not_found

    if is_api_path(request.path_info):
        return json_error("Not found", 404)
    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    from django.views.defaults import server_error as html_server_error

    if is_api_path(request.path_info):
        return json_error("Internal server error", 500)
    return html_server_error(request)
