from django.urls import path

from recon import apis, replay_apis

# Mounted at api/recon/.
urlpatterns = [
    path("runs", apis.RunListCreateApi.as_view(), name="api-recon-runs"),
    path("runs/<uuid:run_id>", apis.RunDetailApi.as_view(), name="api-recon-run"),
    path("replays", replay_apis.ReplayListCreateApi.as_view(), name="api-recon-replays"),
    path("replays/dry-run", replay_apis.ReplayDryRunApi.as_view(), name="api-recon-replay-dry-run"),
    path("replays/<uuid:replay_id>", replay_apis.ReplayDetailApi.as_view(), name="api-recon-replay"),
    path("replays/<uuid:replay_id>/approve", replay_apis.ReplayApproveApi.as_view(), name="api-recon-replay-approve"),
    path("replays/<uuid:replay_id>/reject", replay_apis.ReplayRejectApi.as_view(), name="api-recon-replay-reject"),
    path("reprocess", replay_apis.ReprocessApi.as_view(), name="api-recon-reprocess"),
]
