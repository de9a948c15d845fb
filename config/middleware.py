"""Guards applied to every request before any view."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from recon.grants import current_request


class CurrentRequest:
    """Makes the request known to code that runs without it (recon.grants: who granted)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)


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
