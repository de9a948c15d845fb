"""Writes of the monitoring app: evaluate rules, raise and resolve alerts,
deliver notifications, acknowledge."""

import datetime as dt
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from config.errors import Conflict
from monitoring import webhooks
from monitoring.lag import consumer_lag, group_active
from monitoring.lag_status import NOT_OK
from monitoring.models import Alert, AlertRule, LagSample, Notification
from monitoring.selectors import lag_statuses
from recon.models import Finding, Topic
from recon.selectors import breaks_over_sla
from recon.services import operator_action_record

logger = logging.getLogger(__name__)

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
MAX_ATTEMPTS = 5


def _firing_discrepancies(rule: AlertRule, now: dt.datetime) -> dict[int, int]:
    """{topic_id: findings in the rule's window}, for topics at or over threshold."""
    severities = [s for s, rank in SEVERITY_RANK.items() if rank >= SEVERITY_RANK[rule.min_severity]]
    findings = Finding.objects.filter(
        created_at__gte=now - dt.timedelta(minutes=rule.window_minutes),
        created_at__lte=now,
        severity__in=severities,
    ).exclude(classification=Finding.Classification.MATCH)
    if rule.topic_id:
        findings = findings.filter(topic_id=rule.topic_id)
    if rule.category:
        findings = findings.filter(category=rule.category)
    counts = findings.values("topic_id").annotate(n=Count("id")).values_list("topic_id", "n")
    return {topic_id: n for topic_id, n in counts if n >= rule.threshold}


def _firing_lag(rule: AlertRule, now: dt.datetime) -> dict[int, int]:
    topics = [rule.topic] if rule.topic else list(Topic.objects.all())
    firing = {}
    for topic in topics:
        lag = sum(p.lag for p in consumer_lag(topic.consumer_group, [topic.name]))
        if lag >= rule.threshold:
            firing[topic.pk] = lag
    return firing


def _firing_break_sla(rule: AlertRule, now: dt.datetime) -> dict[int, int]:
    """{topic_id: unresolved breaks past their severity's SLA (BREAK_SLA_HOURS)}, at or over threshold."""
    severities = [s for s, rank in SEVERITY_RANK.items() if rank >= SEVERITY_RANK[rule.min_severity]]
    late = breaks_over_sla(now=now, topic_id=rule.topic_id, severities=severities, category=rule.category)
    return {topic_id: n for topic_id, n in late.items() if n >= rule.threshold}


def _firing_lag_status(rule: AlertRule, now: dt.datetime) -> dict[int, int]:
    """{topic_id: partitions of the topic's group judged WARNING, STALLED, STOPPED or REWIND}, at or over threshold."""
    topics = Topic.objects.filter(pk=rule.topic_id) if rule.topic_id else Topic.objects.all()
    firing = {}
    for topic_status in lag_statuses(topics=topics, now=now):
        bad = sum(1 for p in topic_status.partitions if p.judgement.status in NOT_OK)
        if bad >= rule.threshold:
            firing[topic_status.topic.pk] = bad
    return firing


_EVALUATORS: dict[str, Callable[[AlertRule, dt.datetime], dict[int, int]]] = {
    AlertRule.Kind.DISCREPANCY: _firing_discrepancies,
    AlertRule.Kind.LAG: _firing_lag,
    AlertRule.Kind.BREAK_SLA: _firing_break_sla,
    AlertRule.Kind.LAG_STATUS: _firing_lag_status,
}


def lag_sample(*, now: dt.datetime | None = None) -> int:
    """Beat: one sample of every topic's group per partition (committed, end, lag, members); old ones pruned.

    Kafka is asked before any write (no network inside a transaction); a topic Kafka
    does not answer for gets no sample (its window then goes stale: UNKNOWN)."""
    now = now or timezone.now()
    rows: list[LagSample] = []
    for topic in Topic.objects.all():
        try:
            partitions = consumer_lag(topic.consumer_group, [topic.name])
            active = group_active(topic.consumer_group) if partitions else None
        except Exception:
            logger.warning("lag of %s/%s not sampled", topic.consumer_group, topic.name, exc_info=True)
            continue
        rows += [
            LagSample(
                group=p.group,
                topic=p.topic,
                partition=p.partition,
                committed=p.committed,
                end=p.end,
                lag=p.lag,
                active=active,
                at=now,
            )
            for p in partitions
        ]
    keep = dt.timedelta(seconds=settings.LAG_SAMPLE_SECONDS * settings.LAG_WINDOW_SAMPLES * 3)
    with transaction.atomic():
        LagSample.objects.bulk_create(rows)
        LagSample.objects.filter(at__lt=now - keep).delete()
    return len(rows)


def alerts_evaluate(*, now: dt.datetime | None = None) -> list[Notification]:
    """Evaluate every enabled rule once; answer the notifications it queued.

    The caller sends them (outside this transaction: no network inside it).
    """
    now = now or timezone.now()
    queued: list[Notification] = []
    for rule in AlertRule.objects.filter(enabled=True).select_related("topic"):
        try:
            firing = _EVALUATORS[rule.kind](rule, now)
        except Exception:  # one broken rule (e.g. Kafka down for lag) must not stop the others
            logger.exception("alert rule %s could not be evaluated", rule.name)
            continue
        with transaction.atomic():
            queued += _rule_apply(rule, firing, now)
    return queued


def _rule_apply(rule: AlertRule, firing: dict[int, int], now: dt.datetime) -> list[Notification]:
    live = {
        a.topic_id: a
        for a in Alert.objects.select_for_update().filter(
            rule=rule, status__in=[Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED]
        )
    }
    queued = []
    for topic_id, value in firing.items():
        alert = live.pop(topic_id, None)
        if alert is None:
            alert = Alert.objects.create(rule=rule, topic_id=topic_id, value=value, first_at=now, last_at=now)
            notify = True
        else:
            alert.value, alert.last_at, alert.evaluations = value, now, alert.evaluations + 1
            quiet_over = alert.last_notified_at is None or now - alert.last_notified_at >= dt.timedelta(
                minutes=rule.quiet_minutes
            )
            notify = alert.status == Alert.Status.OPEN and quiet_over
        if notify:
            alert.last_notified_at = now
            queued += _notifications_create(alert)
        alert.save()
    for alert in live.values():  # live alerts whose rule no longer fires
        alert.status, alert.resolved_at = Alert.Status.RESOLVED, now
        alert.save(update_fields=["status", "resolved_at"])
    return queued


def _notifications_create(alert: Alert) -> list[Notification]:
    rule = alert.rule
    targets = [(Notification.Channel.EMAIL, addr.strip()) for addr in rule.email_to.split(",") if addr.strip()]
    if rule.webhook_url:
        targets.append((Notification.Channel.WEBHOOK, rule.webhook_url))
    return [Notification.objects.create(alert=alert, channel=channel, target=target) for channel, target in targets]


def alert_payload(alert: Alert) -> dict:
    return {
        "alert_id": alert.pk,
        "rule": alert.rule.name,
        "kind": alert.rule.kind,
        "topic": alert.topic.name,
        "category": alert.rule.category or None,
        "value": alert.value,
        "threshold": alert.rule.threshold,
        "window_minutes": alert.rule.window_minutes,
        "status": alert.status,
        "first_at": alert.first_at.isoformat(),
        "last_at": alert.last_at.isoformat(),
    }


def notification_deliver(*, notification_id: int) -> Notification:
    """One delivery attempt. Raises webhooks.DeliveryError when it failed and may be retried."""
    notification = Notification.objects.select_related("alert__rule", "alert__topic").get(pk=notification_id)
    if notification.status != Notification.Status.PENDING:
        return notification
    Notification.objects.filter(pk=notification.pk).update(attempts=notification.attempts + 1)
    notification.attempts += 1
    payload = alert_payload(notification.alert)
    try:
        if notification.channel == Notification.Channel.EMAIL:
            subject = f"[kafkacache] {payload['rule']}: {payload['value']} on {payload['topic']}"
            body = "\n".join(f"{k}: {v}" for k, v in payload.items())
            send_mail(subject, body, None, [notification.target])
        else:
            webhooks.post(notification.target, payload, secret=notification.alert.rule.webhook_secret)
    except Exception as exc:
        failed = notification.attempts >= MAX_ATTEMPTS
        notification.status = Notification.Status.FAILED if failed else Notification.Status.PENDING
        notification.last_error = str(exc)[:2000]
        notification.save(update_fields=["status", "last_error"])
        raise webhooks.DeliveryError(str(exc)) from exc
    notification.status, notification.sent_at, notification.last_error = Notification.Status.SENT, timezone.now(), ""
    notification.save(update_fields=["status", "sent_at", "last_error"])
    return notification


def alert_acknowledge(*, alert: Alert, user, comment: str) -> Alert:
    with transaction.atomic():
        updated = Alert.objects.filter(pk=alert.pk, status=Alert.Status.OPEN).update(
            status=Alert.Status.ACKNOWLEDGED, acknowledged_by=user, acknowledged_at=timezone.now(), comment=comment
        )
        if not updated:
            raise Conflict("Only an open alert can be acknowledged.", details={"status": alert.status})
        operator_action_record(
            user=user,
            action="alert.acknowledge",
            topic=alert.topic,
            target=f"alert:{alert.pk}",
            detail={"comment": comment},
        )
    alert.refresh_from_db()
    return alert
