from django.urls import path

from monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("", views.alert_list, name="alerts"),
    path("<int:alert_id>/acknowledge", views.alert_acknowledge, name="alert-acknowledge"),
]
