"""Writes of the monitoring app: evaluate rules, raise and resolve alerts,
deliver notifications, acknowledge."""

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from config.errors import AppError, Conflict
from monitoring import payloads, webhooks
from monitoring.lag import consumer_lag, group_active
from monitoring.lag_status import NOT_OK
from monitoring.models import Alert, AlertRule, LagSample, Notification, Silence
from monitoring.selectors import findings_labels, lag_statuses, rule_findings, severities_from
from recon import access
from recon.models import Finding, Topic
from recon.selectors.findings import findings_over_sla
from recon.selectors.runs import keys_reproved
from recon.services.actions import operator_action_record

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


def _firing_discrepancies(rule: AlertRule, now: dt.datetime) -> dict[int, int]:
    """{topic_id: the rule's measure}, for topics at or over threshold, over monitoring.selectors.rule_findings:
    NEW and OPEN count them, AGE is the age in minutes of the oldest."""
    findings = rule_findings(rule, now=now)
    assert findings is not None  # a discrepancy rule counts findings
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
    late = findings_over_sla(
        now=now, topic_id=rule.topic_id, severities=severities_from(rule.min_severity), categories=rule.category_list()
    )
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


def _firing_not_reproved(rule: AlertRule, now: dt.datetime) -> dict[int, int]:
    """{topic_id: hours since the topic's keys were last re-proved (since it was made, if never)}, at or
    over threshold, for the bulk and change topics: the cache leg has stopped proving the cache."""
    topics = Topic.objects.filter(kind__in=(Topic.Kind.BULK, Topic.Kind.CHANGE))
    if rule.topic_id:
        topics = topics.filter(pk=rule.topic_id)
    firing = {}
    for topic in topics:
        proof = keys_reproved(topic, at=now)
        since = proof["started_at"] if proof["run"] else topic.created_at
        hours = int((now - since).total_seconds() // 3600)
        if hours >= rule.threshold:
            firing[topic.pk] = hours
    return firing


_EVALUATORS: dict[str, Callable[[AlertRule, dt.datetime], dict[int, int]]] = {
    AlertRule.Kind.DISCREPANCY: _firing_discrepancies,
    AlertRule.Kind.LAG: _firing_lag,
    AlertRule.Kind.BREAK_SLA: _firing_over_sla,
    AlertRule.Kind.LAG_STATUS: _firing_lag_status,
    AlertRule.Kind.NOT_REPROVED: _firing_not_reproved,
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
        labels = findings_labels(rule_findings(rule, now=now), topic_ids=firing) if firing else {}
        with transaction.atomic():
            queued += _rule_apply(rule, firing, labels, now)
    return queued


def _rule_apply(
    rule: AlertRule, firing: dict[int, int], labels: dict[int, dict[str, str]], now: dt.datetime
) -> list[Notification]:
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
            alert = Alert.objects.create(
                rule=rule, topic_id=topic_id, value=value, first_at=now, last_at=now, labels=labels.get(topic_id, {})
            )
            notify = True
        else:
            alert.value, alert.last_at, alert.evaluations = value, now, alert.evaluations + 1
            alert.labels = labels.get(topic_id, {})
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
    return [
        Notification.objects.create(alert=alert, channel=channel, target=target)
        for channel, target in _targets(alert.rule)
    ]


def _send(
    channel: str, target: str, rule: AlertRule, payload: dict, alert: Alert | None, *, wire: dict | list | None = None
) -> str:
    """Send one notification; answer what happened in words ("sent", "sent, HTTP 202").

    `wire`: the webhook body, when the caller built it already (to record the very bytes it sent)."""
    if channel == Notification.Channel.EMAIL:
        subject = f"[kafkacache] {payload['severity']} {payload['rule']}: {payload['value']} on {payload['topic']}"
        text = "\n".join(f"{k}: {v}" for k, v in payload.items())
        send_mail(subject, text, None, [target])
        return "sent"
    wire = payloads.webhook_body(rule, payload, alert) if wire is None else wire
    status = webhooks.post(target, wire, secret=rule.webhook_secret)
    return f"sent, HTTP {status}"


@dataclass
class RulePreview:
    """What a rule would do now: the topics it fires on (value and labels), the findings it counts
    (the first PREVIEW_FINDINGS), and each channel's exact body for the first firing topic (or for
    a test when none fires)."""

    firing: list[tuple[str, int, dict[str, str]]]
    findings: list[Finding]
    findings_total: int
    bodies: list[tuple[str, str, str]] = field(default_factory=list)  # (channel, target, exact body)
    error: str = ""


PREVIEW_FINDINGS = 20


def alert_rule_preview(*, rule: AlertRule, user, now: dt.datetime | None = None) -> RulePreview:
    """Evaluate a rule, saved or not, with the one evaluator, and build what it would send; writes nothing.

    Beside the evaluators on purpose: the preview must be the evaluation, not a copy of it. The
    body is the one monitoring.payloads builds and webhooks signs, so the page shows what a
    receiver gets (but for the timestamps, which are those of the moment it is sent). The topics
    and findings listed are those `user` may see."""
    now = now or timezone.now()
    visible = access.topics_visible(user)
    try:
        rows = _firing_now(rule, now)
    except Exception as exc:  # Kafka down for a lag rule: the page says so
        return RulePreview(firing=[], findings=[], findings_total=0, error=f"{type(exc).__name__}: {exc}"[:300])
    findings = rule_findings(rule, now=now)
    if findings is not None:
        findings = findings.filter(topic__in=visible)
    names = set(visible.values_list("name", flat=True))
    rows = [row for row in rows if row[0] in names]
    preview = RulePreview(
        firing=rows,
        findings=list(findings.select_related("topic").order_by("-created_at")[:PREVIEW_FINDINGS])
        if findings is not None
        else [],
        findings_total=findings.count() if findings is not None else 0,
    )
    payload = _rule_payload_now(rule, rows, now, test=not rows)
    for channel, target in _targets(rule):
        if channel == Notification.Channel.EMAIL:
            text = "\n".join(f"{k}: {v}" for k, v in payload.items())
        else:
            text = webhooks.body_of(payloads.webhook_body(rule, payload, None)).decode()
        preview.bodies.append((channel, target, text))
    return preview


def _firing_now(rule: AlertRule, now: dt.datetime) -> list[tuple[str, int, dict[str, str]]]:
    """(topic name, value, labels of the findings that fire) of each topic the rule fires on now."""
    firing = _EVALUATORS[rule.kind](rule, now)
    labels = findings_labels(rule_findings(rule, now=now), topic_ids=firing) if firing else {}
    names = dict(Topic.objects.filter(pk__in=list(firing)).values_list("pk", "name"))
    return sorted(((names[t], v, labels.get(t, {})) for t, v in firing.items()), key=lambda r: r[0])


def _rule_payload_now(
    rule: AlertRule, rows: list[tuple[str, int, dict[str, str]]], now: dt.datetime, *, test: bool
) -> dict:
    """The payload of the rule's first firing topic now (marked `test` for a test); with none firing,
    a test of the rule's topic with its own severity."""
    topic, value, labels = rows[0] if rows else (rule.topic.name if rule.topic else "(every topic)", 0, {})
    payload = payloads.test_payload(rule, topic=topic, labels=labels, value=value, now=now)
    if not test:
        del payload["test"]
        payload.update(status=Alert.Status.OPEN, url=payloads.alerts_url(rule))
    return payload


def _targets(rule: AlertRule) -> list[tuple[str, str]]:
    targets: list[tuple[str, str]] = [
        (Notification.Channel.EMAIL, a.strip()) for a in rule.email_to.split(",") if a.strip()
    ]
    if rule.webhook_url:
        targets.append((Notification.Channel.WEBHOOK, rule.webhook_url))
    return targets


def alert_rule_test(*, rule: AlertRule, user) -> list[tuple[str, str, str]]:
    """Send a test notification on each of the rule's channels now; answer (channel, target, outcome).

    The test carries what the rule would send now (value, severity and category of the findings it
    counts on its first firing topic; a lag rule is not evaluated for a test), marked `test`.
    Called outside any transaction (it talks to the network); audited with the body it sent."""
    now = timezone.now()
    rows = _firing_now(rule, now) if rule_findings(rule, now=now) is not None else []
    payload = _rule_payload_now(rule, rows, now, test=True)
    wire = payloads.webhook_body(rule, payload, None)
    results = []
    for channel, target in _targets(rule):
        try:
            results.append((channel, target, _send(channel, target, rule, payload, None, wire=wire)))
        except Exception as exc:  # the person testing sees why, in words
            results.append((channel, target, f"failed: {exc}"[:300]))
    operator_action_record(
        user=user,
        action="alert-rule.test",
        topic=rule.topic,
        target=f"alert-rule:{rule.pk}",
        detail={
            "results": [f"{c} {t}: {o}" for c, t, o in results],
            "body": webhooks.body_of(wire).decode()[:4000],
        },
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
    payload = payloads.alert_payload(notification.alert)
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
