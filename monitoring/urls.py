from django.urls import path

from monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("", views.alert_list, name="alerts"),
    path("<int:alert_id>/acknowledge", views.alert_acknowledge, name="alert-acknowledge"),
    path("rules/", views.rule_list, name="rules"),
    path("rules/new", views.rule_create, name="rule-create"),
    path("rules/<int:rule_id>/", views.rule_detail, name="rule"),
    path("rules/<int:rule_id>/test", views.rule_test, name="rule-test"),
    path("rules/<int:rule_id>/delete", views.rule_delete, name="rule-delete"),
    path("silences/", views.silence_list, name="silences"),
    path("silences/<int:silence_id>/end", views.silence_end, name="silence-end"),
]
