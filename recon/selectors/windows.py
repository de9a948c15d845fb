"""Reads of windows: the ones due for their reconcile."""

import datetime as dt

from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, QuerySet, Value

from recon.models import Window


def windows_due(*, now: dt.datetime, limit: int = 500) -> QuerySet[Window]:
    """Open windows whose end + the topic's grace has passed, oldest first."""
    grace = ExpressionWrapper(F("topic__grace_seconds") * Value(dt.timedelta(seconds=1)), output_field=DurationField())
    return (
        Window.objects.filter(status=Window.Status.OPEN, ledger_dropped_at__isnull=True)
        .alias(due_at=ExpressionWrapper(F("end") + grace, output_field=DateTimeField()))
        .filter(due_at__lte=now)
        .select_related("topic")
        .order_by("end")[:limit]
    )
