import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from monitoring.lag_status import Judgement, Sample, lag_evaluate, worst
from monitoring.models import Alert, AlertRule, LagSample
from recon import access
from recon.models import Finding, Topic
from recon.selectors.findings import findings_past_sla

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


def severities_from(minimum: str) -> list[str]:
    return [s for s, rank in SEVERITY_RANK.items() if rank >= SEVERITY_RANK[minimum]]


def rule_findings(rule: AlertRule, *, now: dt.datetime) -> QuerySet[Finding] | None:
    """The findings a rule counts now, on every topic it watches; None for a rule that counts none (lag).

    Discrepancy: NEW counts those created over the window, OPEN and AGE those still open; findings
    younger than the grace are left out (the loop, a replay or a verification, may still close
    them by itself). Break SLA: the unresolved findings past their severity's SLA."""
    severities = severities_from(rule.min_severity)
    if rule.kind == AlertRule.Kind.BREAK_SLA:
        return findings_past_sla(
            now=now, topic_id=rule.topic_id, severities=severities, categories=rule.category_list()
        )
    if rule.kind != AlertRule.Kind.DISCREPANCY:
        return None
    findings = Finding.objects.filter(
        created_at__lte=now - dt.timedelta(minutes=rule.grace_minutes), severity__in=severities
    ).exclude(classification=Finding.Classification.MATCH)
    if rule.measure == AlertRule.Measure.NEW:
        findings = findings.filter(created_at__gte=now - dt.timedelta(minutes=rule.window_minutes))
    else:
        findings = findings.filter(status=Finding.Status.OPEN)
    if rule.topic_id:
        findings = findings.filter(topic_id=rule.topic_id)
    if rule.category_list():
        findings = findings.filter(category__in=rule.category_list())
    return findings


def findings_labels(findings: QuerySet[Finding] | None, *, topic_ids) -> dict[int, dict[str, str]]:
    """{topic_id: {"severity": the highest of these findings', "category": theirs, comma-separated}}."""
    if findings is None:
        return {}
    rows = findings.filter(topic_id__in=list(topic_ids)).order_by().values_list("topic_id", "severity", "category")
    seen: dict[int, tuple[set[str], set[str]]] = {}
    for topic_id, severity, category in rows.distinct():
        severities, categories = seen.setdefault(topic_id, (set(), set()))
        severities.add(severity)
        categories.add(category)
    return {
        topic_id: {"severity": max(sev, key=SEVERITY_RANK.__getitem__), "category": ",".join(sorted(cats))}
        for topic_id, (sev, cats) in seen.items()
    }


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
