"""URL routing over every app. The one rule for the HTTP edges (docs/architecture.md): every JSON
API under /api/, in the apis of the app whose records it serves (kafkacache: loads, changes,
cache reads; recon: the record and its runs; replay: replays, at /api/recon/; monitoring:
alerts, rules, silences, lag); every page in dashboard.views. The probes outside /api/:
/healthz (config.health) and /metrics (monitoring.apis), where their scrapers look."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.health import healthz, healthz_queue, healthz_role
from config.openapi import api_docs
from monitoring.apis import metrics

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("healthz/queue/<str:queue>", healthz_queue, name="healthz-queue"),
    path("healthz/<str:role>", healthz_role, name="healthz-role"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Split: the page's init script is a request of its own (the CSP allows no inline script).
    # Logged out: the login page, then back here (config.openapi.api_docs).
    path("api/docs/", api_docs(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path("api/", include("kafkacache.urls")),
    path("api/", include("recon.urls")),
    path("api/recon/", include("replay.urls")),
    path("api/", include("monitoring.urls")),
    path("", include("dashboard.urls")),
]

if settings.OIDC_RP_CLIENT_ID:  # optional login through the bank's OIDC provider (config/directory.py)
    urlpatterns.insert(0, path("oidc/", include("mozilla_django_oidc.urls")))

# Under /api/ every Django-level error answers the API's one JSON error shape (config.errors);
# elsewhere the pages 400.html, 403.html, 404.html and 500.html.
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
