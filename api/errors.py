"""Every API error is JSON ``{"error": "..."}``; field errors add ``"detail"``."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


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


def json_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        return error_response("Request body too large", status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        field, message = _first_message(exc.detail)
        summary = f"Invalid {field}: {message}" if field else message
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
