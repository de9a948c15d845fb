"""Guards applied to every request before any view, and the request context.

The request context belongs to the ground layer: CurrentRequest sets it for the
request's duration, and code that runs without the request (a signal receiver:
recon.services.grants records who granted a permission) reads it with request_current().
"""

import logging
from collections.abc import Callable
from contextvars import ContextVar

from django.conf import settings
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.utils.log import log_response

from config import errors

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


class ErrorPagesInDebug:
    """With DEBUG on, a 404 or a 400 is still the product's page (templates/404.html, 400.html) and
    under /api/ the one JSON error shape (config.errors), as with DEBUG off; a 500 keeps Django's
    debug page (the traceback is what a developer running with DEBUG wants). With DEBUG off
    Django calls config.errors itself and this does nothing.

    Placed before CommonMiddleware, which refuses a bad Host (DisallowedHost) before any view:
    the Host is checked here first. A URL nothing matches is answered after the inner
    middleware ran (so the page knows who is logged in, and CommonMiddleware's APPEND_SLASH
    redirect still wins); Http404 or a bad request raised by a view arrives in process_exception.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not settings.DEBUG:
            return self.get_response(request)
        try:
            request.get_host()
        except SuspiciousOperation as exc:  # DisallowedHost
            return _bad_request(request, exc)
        try:
            resolve(request.path_info, getattr(request, "urlconf", None))
        except Resolver404 as exc:
            response = self.get_response(request)
            if response.status_code != 404:  # a redirect to the path with a slash, a login wall
                return response
            return errors.page_not_found(request, exc)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not settings.DEBUG:
            return None
        if isinstance(exception, Http404):  # logged as every 4xx is, by Django's handler
            return errors.page_not_found(request, exception)
        if isinstance(exception, BadRequest | SuspiciousOperation):
            return _bad_request(request, exception)
        return None  # a 403 is config.errors' already; a 500 is Django's debug page


def _bad_request(request: HttpRequest, exc: Exception) -> HttpResponse:
    response = errors.bad_request(request, exc)
    # Recorded where Django records it with DEBUG off: django.security.<kind> for a suspicious request.
    logger = logging.getLogger(
        f"django.security.{exc.__class__.__name__}" if isinstance(exc, SuspiciousOperation) else "django.request"
    )
    log_response(str(exc), exception=exc, request=request, response=response, level="error", logger=logger)
    return response
