"""Reads of windows: the ones due for their reconcile."""

import datetime as dt

from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, QuerySet, Value

from recon import access
from recon.models import (
    Topic,
    Window,
)
from recon.selectors.lists import in_range


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


def windows_filtered(
    *,
    user,
    topic: Topic | None = None,
    status: str = "",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[Window]:
    qs = Window.objects.filter(topic__in=access.topics_visible(user)).select_related("topic")
    if topic is not None:
        qs = qs.filter(topic=topic)
    if status:
        qs = qs.filter(status=status)
    qs = in_range(qs, "start", since, until)
    return qs


def window_visible(user, *, pk: int) -> Window:
    window = Window.objects.select_related("topic").filter(pk=pk).first()
    access.topic_for_view(user, window.topic if window else None)
    assert window is not None
    return window
