from django.urls import path
from rest_framework.routers import SimpleRouter

from recon.apis import activity, evidence, findings, messages, runs, topics, windows

# Mounted at api/. SimpleRouter: no API root view, since other apps also mount under api/.
router = SimpleRouter()
router.register("topics", topics.TopicViewSet, basename="api-topic")
router.register("windows", windows.WindowViewSet, basename="api-window")
router.register("findings", findings.FindingViewSet, basename="api-finding")
router.register("rebalances", activity.RebalanceViewSet, basename="api-rebalance")
router.register("operator-actions", activity.OperatorActionViewSet, basename="api-operator-action")

urlpatterns = [
    *router.urls,
    path("messages/<uuid:uuid>/", messages.MessageApi.as_view(), name="api-message"),
    path("breaks/mine/", findings.MyFindingsApi.as_view(), name="api-my-breaks"),
    path("breaks/ageing/", findings.AgeingApi.as_view(), name="api-breaks-ageing"),
    path("reason-codes/", findings.ReasonCodeApi.as_view(), name="api-reason-codes"),
    path("evidence/", evidence.EvidenceApi.as_view(), name="api-evidence"),
    path("recon/runs", runs.RunListCreateApi.as_view(), name="api-recon-runs"),
    path("recon/runs/<uuid:run_id>", runs.RunDetailApi.as_view(), name="api-recon-run"),
]
