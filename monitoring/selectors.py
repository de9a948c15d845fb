import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from monitoring.lag_status import Judgement, Sample, lag_evaluate, worst
from monitoring.models import Alert, LagSample
from recon import access
from recon.models import Topic


def alerts_visible(user, *, status: str | None = None) -> QuerySet[Alert]:
    alerts = Alert.objects.filter(topic__in=access.topics_visible(user)).select_related(
        "rule", "topic", "acknowledged_by"
    )
    if status:
        alerts = alerts.filter(status=status)
    return alerts.order_by("-last_at")


@dataclass
class PartitionStatus:
    partition: int
    judgement: Judgement
    committed: int | None
    end: int | None


@dataclass
class TopicLagStatus:
    topic: Topic
    group: str
    status: str
    partitions: list[PartitionStatus]


def lag_statuses(*, topics: QuerySet[Topic], now: dt.datetime) -> list[TopicLagStatus]:
    """Each topic's group judged per partition over its last LAG_WINDOW_SAMPLES samples (monitoring.lag_status).

    One query per topic, served by lagsample_group_topic_time."""
    size = settings.LAG_WINDOW_SAMPLES
    step = dt.timedelta(seconds=settings.LAG_SAMPLE_SECONDS)
    out = []
    for topic in topics.order_by("name"):
        rows = LagSample.objects.filter(
            group=topic.consumer_group, topic=topic.name, at__gte=now - step * (size * 3)
        ).order_by("-at")[: size * 64]
        windows: dict[int, list[LagSample]] = {}
        for row in rows:
            window = windows.setdefault(row.partition, [])
            if len(window) < size:
                window.append(row)
        partitions = []
        for partition, window in sorted(windows.items()):
            window.reverse()  # oldest first
            samples = [Sample(s.at, s.committed, s.end, s.lag) for s in window]
            judgement = lag_evaluate(samples, active=window[-1].active, now=now, stale_after=step * 3)
            partitions.append(PartitionStatus(partition, judgement, window[-1].committed, window[-1].end))
        status = worst([p.judgement.status for p in partitions])
        out.append(TopicLagStatus(topic=topic, group=topic.consumer_group, status=status, partitions=partitions))
    return out
