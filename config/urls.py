from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.health import healthz, healthz_queue, healthz_role
from monitoring import views as monitoring_views

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("healthz/queue/<str:queue>", healthz_queue, name="healthz-queue"),
    path("healthz/<str:role>", healthz_role, name="healthz-role"),
    path("metrics", monitoring_views.metrics, name="metrics"),
    path("alerts/", include("monitoring.urls")),
    path("api/", include("monitoring.api_urls")),  # alerts
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Split: the page's init script is a request of its own (the CSP allows no inline script).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("kafkacache.urls")),  # loads, change events, cache retrieval
    path("api/recon/", include("recon.urls")),  # on-demand reconcile, runs
    path("api/recon/", include("replay.urls")),  # replays, reprocess
    path("api/", include("dashboard.api_urls")),  # topics, windows, findings, messages, audit trail
    path("", include("dashboard.urls")),
]

if settings.OIDC_RP_CLIENT_ID:  # optional login through the bank's OIDC provider (config/directory.py)
    urlpatterns.insert(0, path("oidc/", include("mozilla_django_oidc.urls")))

# An unknown URL under /api/ answers the API's one JSON error shape (config.errors).
handler404 = "config.errors.page_not_found"
