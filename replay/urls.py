from django.urls import path

from replay import apis

# Mounted at api/recon/ (where the replay API has always been).
urlpatterns = [
    path("replays", apis.ReplayListCreateApi.as_view(), name="api-recon-replays"),
    path("replays/dry-run", apis.ReplayDryRunApi.as_view(), name="api-recon-replay-dry-run"),
    path("replays/<uuid:replay_id>", apis.ReplayDetailApi.as_view(), name="api-recon-replay"),
    path("replays/<uuid:replay_id>/approve", apis.ReplayApproveApi.as_view(), name="api-recon-replay-approve"),
    path("replays/<uuid:replay_id>/reject", apis.ReplayRejectApi.as_view(), name="api-recon-replay-reject"),
    path("reprocess", apis.ReprocessApi.as_view(), name="api-recon-reprocess"),
]
