from django.urls import path

from monitoring import apis

urlpatterns = [
    path("alerts/", apis.AlertListApi.as_view(), name="api-alerts"),
    path("alerts/<int:alert_id>/acknowledge", apis.AlertAcknowledgeApi.as_view(), name="api-alert-acknowledge"),
    path("lag/", apis.LagStatusApi.as_view(), name="api-lag-status"),
]
