from django.urls import path

from recon import apis

# Mounted at api/recon/.
urlpatterns = [
    path("runs", apis.RunListCreateApi.as_view(), name="api-recon-runs"),
    path("runs/<uuid:run_id>", apis.RunDetailApi.as_view(), name="api-recon-run"),
]
