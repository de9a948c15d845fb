"""The directory's word on every request of a directory account (dashboard.directory).

After Django's authentication: a session whose directory account the directory lost is
logged out here, so the request goes on as anonymous (pages redirect to the login, the
API refuses); while the directory cannot be asked, the request is refused with 503.
API tokens get the same verdict in the token check (config.auth.token_user_checked).
"""

from collections.abc import Callable

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse

from dashboard.directory import REVOKED, UNAVAILABLE, directory_account_admit

UNAVAILABLE_MESSAGE = "The directory cannot confirm your account right now; try again shortly."
_ALWAYS = ("/accounts/logout/", "/healthz")  # leaving, and the probes, never wait for the directory


class DirectoryAccountCheck:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not request.path.startswith(_ALWAYS):
            verdict = directory_account_admit(user)
            if verdict == REVOKED:
                logout(request)
            elif verdict == UNAVAILABLE:
                if request.path.startswith("/api/"):
                    error = {"code": "directory_unavailable", "message": UNAVAILABLE_MESSAGE, "details": {}}
                    return JsonResponse({"error": error}, status=503)
                return HttpResponse(UNAVAILABLE_MESSAGE, status=503, content_type="text/plain")
        return self.get_response(request)
