"""Guards applied to every request before any view, and the request context.

The request context belongs to the ground layer: CurrentRequest sets it for the
request's duration, and code that runs without the request (a signal receiver:
recon.services.grants records who granted a permission) reads it with request_current().
"""

from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse, JsonResponse

_current_request: ContextVar[HttpRequest | None] = ContextVar("current_request", default=None)


def request_current() -> HttpRequest | None:
    """The request being answered in this context (None outside a request: a command, a worker)."""
    return _current_request.get()


class CurrentRequest:
    """Makes the request known to code that runs without it (request_current)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)


class RejectNulBytes:
    """Under /api/, a NUL byte in the path or a query parameter is a 400 before any view sees it.

    PostgreSQL text cannot hold NUL: a filter or an id carrying one would fail inside
    the database (a 500) instead of being the bad request it is. API views read query
    parameters without a form; the pages filter through Django forms, whose character
    fields refuse NUL themselves (and say so on the page), as DRF's do for API bodies.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/") and (
            "\x00" in request.path
            or any("\x00" in name or any("\x00" in value for value in values) for name, values in request.GET.lists())
        ):
            message = "NUL characters are not allowed in the URL or its parameters."
            return JsonResponse({"error": {"code": "invalid", "message": message, "details": {}}}, status=400)
        return self.get_response(request)
