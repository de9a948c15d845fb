from django.urls import path
from rest_framework.routers import SimpleRouter

from dashboard import apis, break_apis, evidence_views

# SimpleRouter: no API root view, since other apps also mount under api/.
router = SimpleRouter()
router.register("topics", apis.TopicViewSet, basename="api-topic")
router.register("windows", apis.WindowViewSet, basename="api-window")
router.register("findings", apis.FindingViewSet, basename="api-finding")
router.register("rebalances", apis.RebalanceViewSet, basename="api-rebalance")
router.register("operator-actions", apis.OperatorActionViewSet, basename="api-operator-action")

urlpatterns = [
    *router.urls,
    path("messages/<uuid:uuid>/", apis.MessageApi.as_view(), name="api-message"),
    path("breaks/mine/", break_apis.MyBreaksApi.as_view(), name="api-my-breaks"),
    path("breaks/ageing/", break_apis.AgeingApi.as_view(), name="api-breaks-ageing"),
    path("reason-codes/", break_apis.ReasonCodeApi.as_view(), name="api-reason-codes"),
    path("evidence/", evidence_views.EvidenceApi.as_view(), name="api-evidence"),
]
