"""One error type for the application and one JSON shape for every API error."""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class AppError(Exception):
    """A refusal the caller can act on: a message, a machine-readable code, details."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.details = details or {}


class NotFound(AppError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Conflict(AppError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Every API error as {"error": {"code", "message", "details"}}."""
    if isinstance(exc, AppError):
        return Response(
            {"error": {"code": exc.code, "message": exc.message, "details": exc.details}},
            status=exc.status_code,
        )
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and set(data) == {"detail"}:
        message, details = str(data["detail"]), {}
        code = getattr(data["detail"], "code", "error")
    else:
        message, details, code = "Invalid input.", data, "invalid"
    response.data = {"error": {"code": code, "message": message, "details": details}}
    return response


def _api_error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "details": {}}}, status=status)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A URL nothing matches: under /api/ the one JSON error shape (clients parse it), elsewhere the page."""
    if _is_api(request):
        return _api_error("not_found", "No such endpoint or object.", 404)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A request Django refused before any view (a bad Host, a malformed body): 400.html, or JSON under /api/."""
    if _is_api(request):
        return _api_error("bad_request", "Bad request.", 400)
    return defaults.bad_request(request, exception or Exception())


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return _api_error("permission_denied", "You do not have permission to perform this action.", 403)
    return defaults.permission_denied(request, exception or Exception())


def server_error(request: HttpRequest) -> HttpResponse:
    """An unexpected failure: 500.html (no internals; the log has the traceback), or JSON under /api/."""
    if _is_api(request):
        return _api_error("server_error", "Internal error; it has been logged.", 500)
    return defaults.server_error(request)
