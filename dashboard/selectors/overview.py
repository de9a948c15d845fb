"""The overview page's read: per visible topic, the flow of its windows over a range (folded into
wider buckets on long ranges), its findings by category and severity, the busiest second,
the consumer lag. Every figure reads the windows table (one row per topic per window, kept up
to date by the ledger writers) and the findings, never a ledger row: the busiest second is
the largest of the windows' peaks (Window.published_peak), so a page costs the same over a
ledger of any size."""

import datetime as dt
import math
from dataclasses import dataclass, field

from django.db.models import Count, DateTimeField, F, Func, Max, Sum, Value

from dashboard.selectors.lag import Lag, sampled_lag
from recon import access
from recon.models import (
    Finding,
    Topic,
    Window,
)
from recon.selectors.topics import topics_visible

# More windows than this in a range are added up into wider buckets: 96 keeps two grouped
# bars per bucket several pixels wide at the default 24 h (15-minute bars of 5-minute windows).
MAX_CHART_POINTS = 96


@dataclass
class SeriesPoint:
    start: dt.datetime
    published: int
    consumed: int
    consumed_other: int = 0  # consume rows that delivered no message the topic published (Window.consumed_other)
    peak: int = 0  # the busiest second's published messages (Window.published_peak)

    @property
    def gap(self) -> int:
        """Published and never consumed: another producer's messages or redeliveries hide no loss."""
        return self.published - self.consumed + self.consumed_other


@dataclass
class TopicOverview:
    topic: Topic
    series: list[SeriesPoint]
    bucket_seconds: int
    published: int
    consumed: int
    windows_by_status: dict[str, int]
    findings_by_category: dict[str, int]
    open_findings: int
    throughput_avg: float  # published messages per second over the range
    throughput_peak: float  # the busiest second's published messages (of the windows in the range)
    lag: Lag | None
    can_operate: bool
    findings_by_severity: dict[str, dict[str, int]] = field(default_factory=dict)  # category -> severity -> n
    pending: int = 0  # published, not consumed yet, in windows not yet judged
    pending_judged_at: dt.datetime | None = None  # when the first of those windows is judged
    consumed_other: int = 0  # of `consumed`: not a delivery of a message the topic published

    @property
    def state(self) -> str:
        """bad: something is known to be wrong (open findings, a gap in judged windows); warn: not yet
        known (messages pending judgement, lag, no recent lag sample); ok otherwise."""
        if self.open_findings or self.windows_by_status.get("discrepant"):
            return "bad"
        if self.pending or (self.lag is not None and self.lag.messages != 0):
            return "warn"
        return "ok"

    @property
    def gap(self) -> int:
        return self.published - self.consumed + self.consumed_other


def overview(*, user, start: dt.datetime, end: dt.datetime, with_lag: bool = True) -> list[TopicOverview]:
    topics = list(topics_visible(user))
    findings = _findings_by_category(topics, start, end)
    severities = _findings_by_severity(topics, start, end)
    open_counts = dict(
        Finding.objects.filter(topic__in=topics, status=Finding.Status.OPEN)
        .values_list("topic_id")
        .annotate(n=Count("id"))
        .values_list("topic_id", "n")
    )
    result = []
    for topic in topics:
        series, bucket_seconds, by_status = _window_series(topic, start, end)
        published = sum(p.published for p in series)
        consumed = sum(p.consumed for p in series)
        consumed_other = sum(p.consumed_other for p in series)
        span = max((end - start).total_seconds(), 1.0)
        pending, judged_at = _pending(topic)
        result.append(
            TopicOverview(
                topic=topic,
                series=series,
                bucket_seconds=bucket_seconds,
                published=published,
                consumed=consumed,
                windows_by_status=by_status,
                findings_by_category=findings.get(topic.pk, {}),
                open_findings=open_counts.get(topic.pk, 0),
                throughput_avg=published / span,
                throughput_peak=max((p.peak for p in series), default=0),
                lag=sampled_lag(topic.name, topic.consumer_group) if with_lag else None,
                can_operate=access.can_operate(user, topic),
                findings_by_severity=severities.get(topic.pk, {}),
                pending=pending,
                pending_judged_at=judged_at,
                consumed_other=consumed_other,
            )
        )
    return result


def _pending(topic: Topic) -> tuple[int, dt.datetime | None]:
    """Messages published and not consumed yet in the topic's open windows (not judged yet), and when
    the first such window is judged (its end plus the grace). Served by window_topic_start."""
    rows = (
        Window.objects.filter(
            topic=topic,
            status=Window.Status.OPEN,
            published_count__gt=F("consumed_count") - F("consumed_other"),
        )
        .order_by()
        .values_list("end", "published_count", "consumed_count", "consumed_other")
    )
    pending, first = 0, None
    for window_end, published, consumed, other in rows:
        pending += published - consumed + other
        first = window_end if first is None else min(first, window_end)
    return pending, (first + dt.timedelta(seconds=topic.grace_seconds) if first else None)


def _findings_by_severity(
    topics: list[Topic], start: dt.datetime, end: dt.datetime
) -> dict[int, dict[str, dict[str, int]]]:
    rows = (
        Finding.objects.filter(topic__in=topics, created_at__gte=start, created_at__lt=end)
        .order_by()
        .values_list("topic_id", "category", "severity")
        .annotate(n=Count("id"))
    )
    out: dict[int, dict[str, dict[str, int]]] = {}
    for topic_id, category, severity, n in rows:
        out.setdefault(topic_id, {}).setdefault(category, {})[severity] = n
    return out


def _window_series(topic: Topic, start: dt.datetime, end: dt.datetime) -> tuple[list[SeriesPoint], int, dict]:
    windows = Window.objects.filter(topic=topic, start__gte=start, start__lt=end)
    by_status = dict(windows.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    span = (end - start).total_seconds()
    per_bucket = max(1, math.ceil(span / topic.window_seconds / MAX_CHART_POINTS))
    bucket_seconds = per_bucket * topic.window_seconds
    if per_bucket == 1:
        rows = windows.order_by("start").values_list(
            "start", "published_count", "consumed_count", "consumed_other", "published_peak"
        )
    else:
        # date_bin (PostgreSQL 14+) folds windows into wider buckets inside the database.
        bucket = Func(
            Value(dt.timedelta(seconds=bucket_seconds)),
            F("start"),
            Value(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)),
            function="date_bin",
            output_field=DateTimeField(),
        )
        rows = (
            windows.annotate(bucket=bucket)
            .values("bucket")
            .annotate(
                p=Sum("published_count"), c=Sum("consumed_count"), o=Sum("consumed_other"), k=Max("published_peak")
            )
            .order_by("bucket")
            .values_list("bucket", "p", "c", "o", "k")
        )
    series = [
        SeriesPoint(start=s, published=int(p), consumed=int(c), consumed_other=int(o), peak=int(k))
        for s, p, c, o, k in rows
    ]
    return series, bucket_seconds, by_status


def _findings_by_category(topics: list[Topic], start: dt.datetime, end: dt.datetime) -> dict[int, dict[str, int]]:
    rows = (
        Finding.objects.filter(topic__in=topics, created_at__gte=start, created_at__lt=end)
        .order_by()
        .values_list("topic_id", "category")
        .annotate(n=Count("id"))
    )
    out: dict[int, dict[str, int]] = {}
    for topic_id, category, n in rows:
        out.setdefault(topic_id, {})[category] = n
    return out
