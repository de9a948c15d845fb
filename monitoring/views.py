import hmac

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from rest_framework.authtoken.models import Token

from config.errors import AppError
from monitoring import selectors, services
from monitoring.metrics import PipelineCollector
from monitoring.models import Alert
from recon import access


def _scrape_user(request: HttpRequest):
    """Who scrapes: the scrape token ("token"), a user (session or API token), or None."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme == "Bearer" and settings.METRICS_TOKEN and hmac.compare_digest(credential, settings.METRICS_TOKEN):
        return "token"
    if request.user.is_authenticated:
        return request.user
    if scheme == "Token" and credential:
        token = Token.objects.filter(key=credential, user__is_active=True).select_related("user").first()
        return token.user if token else None
    return None


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics. They cover every topic, so only staff and the scrape token see them."""
    scraper = _scrape_user(request)
    if scraper is None:
        response = HttpResponse("authentication required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if scraper != "token" and not scraper.is_staff:
        return HttpResponse("metrics are for staff and the scrape token\n", status=403, content_type="text/plain")
    if request.method not in ("GET", "HEAD"):  # after the credentials: strangers learn nothing
        return HttpResponseNotAllowed(["GET", "HEAD"])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


@login_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    if status not in Alert.Status.values:
        status = None  # an unknown status filters nothing (and never reaches the database)
    alerts = selectors.alerts_visible(request.user, status=status)
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
