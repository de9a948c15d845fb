"""The logged-in person's API tokens: list, create (the secret shown once), revoke."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from knox.models import AuthToken

from config.errors import AppError
from dashboard.services import api_token_create, api_token_revoke


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    secret = ""
    if request.method == "POST":
        _row, secret = api_token_create(user=request.user)  # type: ignore[arg-type]
    tokens = AuthToken.objects.filter(user=request.user).order_by("-created")
    response = render(request, "dashboard/api_tokens.html", {"tokens": tokens, "secret": secret})
    response["Cache-Control"] = "no-store"  # the secret is on the page once
    return response


@login_required
@require_POST
def api_token_revoke_view(request: HttpRequest, key: str) -> HttpResponse:
    try:
        api_token_revoke(user=request.user, token_key=key)  # type: ignore[arg-type]
    except AppError as exc:
        raise Http404(exc.message) from exc
    messages.success(request, f"Token {key}… revoked.")
    return redirect("dashboard:api-tokens")
