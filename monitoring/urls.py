from django.urls import path

from monitoring import apis

urlpatterns = [
    path("alerts/", apis.AlertListApi.as_view(), name="api-alerts"),
    path("alerts/<int:alert_id>/acknowledge", apis.AlertAcknowledgeApi.as_view(), name="api-alert-acknowledge"),
    path("lag/", apis.LagStatusApi.as_view(), name="api-lag-status"),
    path("alert-rules", apis.AlertRuleListCreateApi.as_view(), name="api-alert-rules"),
    path("alert-rules/<int:rule_id>", apis.AlertRuleDetailApi.as_view(), name="api-alert-rule"),
    path("alert-rules/<int:rule_id>/test", apis.AlertRuleTestApi.as_view(), name="api-alert-rule-test"),
    path("silences", apis.SilenceListCreateApi.as_view(), name="api-silences"),
    path("silences/<int:silence_id>/end", apis.SilenceEndApi.as_view(), name="api-silence-end"),
]
