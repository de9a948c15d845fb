import hmac

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from rest_framework.exceptions import APIException

from config.auth import ThrottledTokenAuthentication
from config.errors import AppError
from monitoring import selectors, services
from monitoring.metrics import PipelineCollector
from monitoring.models import Alert
from recon import access


def _scrape_user(request: HttpRequest):
    """Who scrapes: the scrape token ("token"), a user (session or API token), or None."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    # Bytes, not str: compare_digest refuses non-ASCII str (a 500 on a crafted header).
    expected = settings.METRICS_TOKEN.encode()
    if scheme == "Bearer" and expected and hmac.compare_digest(credential.encode("utf-8", "replace"), expected):
        return "token"
    if request.user.is_authenticated:
        return request.user
    if scheme == "Token" and credential:
        try:  # the API's token check: hashed knox tokens, expiry, failures throttled
            found = ThrottledTokenAuthentication().authenticate(request)
        except APIException:
            return None
        return found[0] if found else None
    return None


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics: every topic for the scrape token; for a user, the topics they
    may see (recon.access.topics_visible, the rule of every list)."""
    scraper = _scrape_user(request)
    if scraper is None:
        response = HttpResponse("authentication required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if request.method not in ("GET", "HEAD"):  # after the credentials: strangers learn nothing
        return HttpResponseNotAllowed(["GET", "HEAD"])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(None if scraper == "token" else access.topics_visible(scraper)))
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
