import hmac

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from rest_framework.authtoken.models import Token

from config.errors import AppError
from monitoring import selectors, services
from monitoring.metrics import PipelineCollector
from recon import access


def _scrape_allowed(request: HttpRequest) -> bool:
    """A logged-in user, a user's API token, or the configured scrape token."""
    if request.user.is_authenticated:
        return True
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme == "Bearer" and settings.METRICS_TOKEN:
        return hmac.compare_digest(credential, settings.METRICS_TOKEN)
    if scheme == "Token" and credential:
        return Token.objects.filter(key=credential, user__is_active=True).exists()
    return False


def metrics(request: HttpRequest) -> HttpResponse:
    if not _scrape_allowed(request):
        response = HttpResponse("authentication required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


@login_required
def alert_list(request: HttpRequest) -> HttpResponse:
    alerts = selectors.alerts_visible(request.user, status=request.GET.get("status") or None)
    operable = set(access.topics_operable(request.user).values_list("pk", flat=True))
    return render(request, "monitoring/alerts.html", {"alerts": alerts[:200], "operable": operable})


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = get_object_or_404(selectors.alerts_visible(request.user), pk=alert_id)
    access.topic_for_operate(request.user, alert.topic)
    try:
        services.alert_acknowledge(alert=alert, user=request.user, comment=request.POST.get("comment", "")[:2000])
        messages.success(request, f"Alert {alert.pk} acknowledged.")
    except AppError as exc:
        messages.error(request, exc.message)
    return redirect("monitoring:alerts")
