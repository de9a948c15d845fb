from django.db.models import QuerySet

from monitoring.models import Alert
from recon import access


def alerts_visible(user, *, status: str | None = None) -> QuerySet[Alert]:
    alerts = Alert.objects.filter(topic__in=access.topics_visible(user)).select_related(
        "rule", "topic", "acknowledged_by"
    )
    if status:
        alerts = alerts.filter(status=status)
    return alerts.order_by("-last_at")
