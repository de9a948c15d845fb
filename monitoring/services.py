"""Writes of the monitoring app: evaluate rules, raise and resolve alerts,
deliver notifications, acknowledge."""

import datetime as dt
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Min, Q
from django.urls import reverse
from django.utils import timezone

from config.errors import AppError, Conflict
from monitoring import webhooks
from monitoring.lag import consumer_lag, group_active
from monitoring.lag_status import NOT_OK
from monitoring.models import Alert, AlertRule, LagSample, Notification, Silence
from monitoring.selectors import lag_statuses
from recon.models import Finding, Topic
from recon.selectors.findings import findings_over_sla
from recon.services.actions import operator_action_record

logger = logging.getLogger(__name__)

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
MAX_ATTEMPTS = 5


def _firing_discrepancies(rule: AlertRule, now: dt.datetime) -> dict[int, int]:
    """{topic_id: the rule's measure}, for topics at or over threshold.

    NEW counts findings created over the window, OPEN counts those still open, AGE
    is the age in minutes of the oldest open one. Findings younger than the grace
    are left out: the loop (replay, verification) may still close them by itself.
    """
    severities = [s for s, rank in SEVERITY_RANK.items() if rank >= SEVERITY_RANK[rule.min_severity]]
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
    per_topic = findings.values("topic_id").annotate(n=Count("id"), oldest=Min("created_at"))
    if rule.measure == AlertRule.Measure.AGE:
        ages = {row["topic_id"]: int((now - row["oldest"]).total_seconds() // 60) for row in per_topic}
        return {topic_id: age for topic_id, age in ages.items() if age >= rule.threshold}
    return {row["topic_id"]: row["n"] for row in per_topic if row["n"] >= rule.threshold}


def _firing_lag(rule: AlertRule, now: dt.datetime) -> dict[int, int]:
    topics = [rule.topic] if rule.topic else list(Topic.objects.all())
    firing = {}
    for topic in topics:
        lag = sum(p.lag for p in consumer_lag(topic.consumer_group, [topic.name]))
        if lag >= rule.threshold:
            firing[topic.pk] = lag
    return firing


def _firing_over_sla(rule: AlertRule, now: dt.datetime) -> dict[int, int]:
    """{topic_id: unresolved findings past their severity's SLA (BREAK_SLA_HOURS)}, at or over threshold."""
    severities = [s for s, rank in SEVERITY_RANK.items() if rank >= SEVERITY_RANK[rule.min_severity]]
    late = findings_over_sla(now=now, topic_id=rule.topic_id, severities=severities, categories=rule.category_list())
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
    AlertRule.Kind.BREAK_SLA: _firing_over_sla,
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
    silences = list(silences_active(now=now, rule=rule))
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
        silence = next((x for x in silences if x.topic_id in (None, topic_id)), None)
        alert.silenced_by = silence
        if notify and silence is None:
            alert.last_notified_at = now
            queued += _notifications_create(alert)
        alert.save()
    for alert in live.values():  # live alerts whose rule no longer fires
        alert.status, alert.resolved_at = Alert.Status.RESOLVED, now
        alert.save(update_fields=["status", "resolved_at"])
        if (
            alert.last_notified_at is not None
            and rule.webhook_url
            and rule.webhook_format == AlertRule.WebhookFormat.ALERTMANAGER
        ):
            # Alertmanager is told the alert ended (endsAt), so it stops routing it.
            queued.append(
                Notification.objects.create(
                    alert=alert, channel=Notification.Channel.WEBHOOK, target=rule.webhook_url, event="resolved"
                )
            )
    return queued


def silences_active(*, now: dt.datetime, rule: AlertRule | None = None):
    """Silences in force now (of this rule, or of every rule)."""
    active = Silence.objects.filter(starts_at__lte=now, ends_at__gt=now)
    if rule is not None:
        active = active.filter(Q(rule=rule) | Q(rule__isnull=True))
        if rule.topic_id:
            active = active.filter(Q(topic_id=rule.topic_id) | Q(topic__isnull=True))
    return active.order_by("ends_at")


def _notifications_create(alert: Alert) -> list[Notification]:
    rule = alert.rule
    targets = [(Notification.Channel.EMAIL, addr.strip()) for addr in rule.email_to.split(",") if addr.strip()]
    if rule.webhook_url:
        targets.append((Notification.Channel.WEBHOOK, rule.webhook_url))
    return [Notification.objects.create(alert=alert, channel=channel, target=target) for channel, target in targets]


def _send(channel: str, target: str, rule: AlertRule, payload: dict, alert: Alert | None) -> None:
    if channel == Notification.Channel.EMAIL:
        subject = f"[kafkacache] {payload['rule']}: {payload['value']} on {payload['topic']}"
        body = "\n".join(f"{k}: {v}" for k, v in payload.items())
        send_mail(subject, body, None, [target])
    elif rule.webhook_format == AlertRule.WebhookFormat.ALERTMANAGER:
        webhooks.post(target, alertmanager_payload(rule, payload, alert), secret=rule.webhook_secret)
    else:
        webhooks.post(target, payload, secret=rule.webhook_secret)


def alertmanager_payload(rule: AlertRule, payload: dict, alert: Alert | None) -> list[dict]:
    """The body of Alertmanager's POST /api/v2/alerts: one alert, labels to route on.

    A firing alert's endsAt lies past the rule's quiet period (when it is sent again),
    so Alertmanager keeps it firing in between; a resolved one ends at its resolution.
    """
    now = timezone.now()
    resolved = payload["status"] == Alert.Status.RESOLVED
    ends = (
        (alert.resolved_at if alert and alert.resolved_at else now)
        if resolved
        else now + dt.timedelta(minutes=rule.quiet_minutes + 5)
    )
    labels = {
        "alertname": rule.name,
        "service": "kafkacache",
        "topic": payload["topic"],
        "severity": rule.min_severity,
        "kind": rule.kind,
    }
    if payload.get("category"):
        labels["category"] = payload["category"]
    if payload.get("test"):
        labels["test"] = "true"
    what = {"new": "new findings", "open": "open findings", "age": "minutes the oldest open finding has waited"}
    by_kind: dict[str, str] = {
        AlertRule.Kind.LAG: "messages of lag",
        AlertRule.Kind.BREAK_SLA: "findings open past their SLA",
        AlertRule.Kind.LAG_STATUS: "partitions not OK (growing, stalled, stopped or rewound)",
    }
    measure = by_kind.get(rule.kind) or what.get(rule.measure, "findings")
    return [
        {
            "labels": labels,
            "annotations": {
                "summary": f"{payload['value']} {measure} on {payload['topic']} (threshold {rule.threshold})",
                "description": f"kafkacache alert rule {rule.name!r}",
            },
            "startsAt": payload["first_at"],
            "endsAt": ends.isoformat(),
            "generatorURL": payload.get("url", ""),
        }
    ]


def alert_payload(alert: Alert) -> dict:
    return {
        "alert_id": alert.pk,
        "rule": alert.rule.name,
        "kind": alert.rule.kind,
        "topic": alert.topic.name,
        "category": ",".join(alert.rule.category_list()) or None,
        "value": alert.value,
        "threshold": alert.rule.threshold,
        "window_minutes": alert.rule.window_minutes,
        "status": alert.status,
        "first_at": alert.first_at.isoformat(),
        "last_at": alert.last_at.isoformat(),
        "measure": alert.rule.measure,
        "url": _absolute(reverse("dashboard:alerts") + f"?rule={alert.rule_id}"),
    }


def _absolute(path: str) -> str:
    return settings.ALERTS_BASE_URL.rstrip("/") + path


def alert_rule_test(*, rule: AlertRule, user) -> list[tuple[str, str, str]]:
    """Send a test notification on each of the rule's channels now; answer (channel, target, outcome).

    Called outside any transaction (it talks to the network); recorded in the audit trail.
    """
    now = timezone.now()
    topic = rule.topic.name if rule.topic else "(every topic)"
    payload = {
        "alert_id": None,
        "rule": rule.name,
        "kind": rule.kind,
        "topic": topic,
        "category": ",".join(rule.category_list()) or None,
        "value": 0,
        "threshold": rule.threshold,
        "window_minutes": rule.window_minutes,
        "status": "test",
        "first_at": now.isoformat(),
        "last_at": now.isoformat(),
        "measure": rule.measure,
        "url": _absolute(reverse("dashboard:alert-rule", args=[rule.pk])),
        "test": True,
    }
    targets = [(Notification.Channel.EMAIL, a.strip()) for a in rule.email_to.split(",") if a.strip()]
    if rule.webhook_url:
        targets.append((Notification.Channel.WEBHOOK, rule.webhook_url))
    results = []
    for channel, target in targets:
        try:
            _send(channel, target, rule, payload, None)
            results.append((str(channel), target, "sent"))
        except Exception as exc:  # the person testing sees why, in words
            results.append((str(channel), target, f"failed: {exc}"[:300]))
    operator_action_record(
        user=user,
        action="alert-rule.test",
        topic=rule.topic,
        target=f"alert-rule:{rule.pk}",
        detail={"results": [f"{c} {t}: {o}" for c, t, o in results]},
        outcome="; ".join(o for _, _, o in results)[:255] or "no channel",
    )
    return results


def notification_deliver(*, notification_id: int) -> Notification:
    """One delivery attempt. Raises webhooks.DeliveryError when it failed and may be retried."""
    notification = Notification.objects.select_related("alert__rule", "alert__topic").get(pk=notification_id)
    if notification.status != Notification.Status.PENDING:
        return notification
    Notification.objects.filter(pk=notification.pk).update(attempts=notification.attempts + 1)
    notification.attempts += 1
    payload = alert_payload(notification.alert)
    try:
        _send(notification.channel, notification.target, notification.alert.rule, payload, notification.alert)
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


# --- rules and silences: what people set --------------------------------------------------


def alert_rule_save(*, rule: AlertRule, user) -> AlertRule:
    """Create or change a rule (access checked by the caller: monitoring.access), audited."""
    created = rule.pk is None
    if created and user is not None and user.is_authenticated:
        rule.created_by = user
    rule.categories = sorted(set(rule.category_list()))  # the older single category folded into the list
    rule.category = ""
    with transaction.atomic():
        rule.save()
        operator_action_record(
            user=user,
            action="alert-rule.create" if created else "alert-rule.change",
            topic=rule.topic,
            target=f"alert-rule:{rule.pk}",
            detail={
                "name": rule.name,
                "measure": rule.measure,
                "threshold": rule.threshold,
                "categories": rule.category_list(),
                "enabled": rule.enabled,
            },
        )
    return rule


def alert_rule_delete(*, rule: AlertRule, user) -> None:
    with transaction.atomic():
        operator_action_record(
            user=user,
            action="alert-rule.delete",
            topic=rule.topic,
            target=f"alert-rule:{rule.pk}",
            detail={"name": rule.name},
        )
        rule.delete()


def silence_create(
    *,
    user,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    reason: str,
    rule: AlertRule | None = None,
    topic: Topic | None = None,
) -> Silence:
    reason = (reason or "").strip()
    if not reason:
        raise AppError("Say why: a silence needs a reason.", code="reason_required")
    if ends_at <= starts_at:
        raise AppError("A silence must end after it starts.", code="invalid_range")
    if ends_at <= timezone.now():
        raise AppError("This silence would already be over.", code="invalid_range")
    with transaction.atomic():
        silence = Silence.objects.create(
            rule=rule,
            topic=topic,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason[:500],
            created_by=user if user is not None and user.is_authenticated else None,
        )
        operator_action_record(
            user=user,
            action="silence.create",
            topic=topic,
            target=f"silence:{silence.pk}",
            detail={
                "rule": rule.name if rule else None,
                "from": starts_at.isoformat(),
                "until": ends_at.isoformat(),
                "reason": reason[:200],
            },
        )
    return silence


def silence_end(*, silence: Silence, user) -> Silence:
    now = timezone.now()
    with transaction.atomic():
        if Silence.objects.filter(pk=silence.pk, ends_at__gt=now).update(ends_at=now) != 1:
            raise Conflict("This silence is over already.")
        operator_action_record(user=user, action="silence.end", topic=silence.topic, target=f"silence:{silence.pk}")
    silence.refresh_from_db()
    return silence
