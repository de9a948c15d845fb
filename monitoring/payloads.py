"""What a notification carries: the kafkacache payload of an alert (or of a test) and its
Alertmanager form, built in one place for the sender and for the preview, so the preview is
the body a receiver gets. Plain functions of a rule, an alert and the labels of the findings
that fired (monitoring.selectors.findings_labels); no network, no writes."""

import datetime as dt

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from monitoring.models import Alert, AlertRule


def _absolute(path: str) -> str:
    return settings.ALERTS_BASE_URL.rstrip("/") + path


def alert_payload(alert: Alert) -> dict:
    """An alert's payload. Its severity and category are those of the findings that fired it
    (Alert.labels, kept at each evaluation); a rule that counts no finding (lag) has the rule's."""
    rule = alert.rule
    labels = alert.labels or {}
    return {
        "alert_id": alert.pk,
        "rule": rule.name,
        "kind": rule.kind,
        "topic": alert.topic.name,
        "severity": labels.get("severity") or rule.min_severity,
        "category": labels.get("category") or ",".join(rule.category_list()) or None,
        "value": alert.value,
        "threshold": rule.threshold,
        "window_minutes": rule.window_minutes,
        "status": alert.status,
        "first_at": alert.first_at.isoformat(),
        "last_at": alert.last_at.isoformat(),
        "measure": rule.measure,
        "url": alerts_url(alert.rule),
    }


def alerts_url(rule: AlertRule) -> str:
    """The alert history of a rule, where a notification links to."""
    return _absolute(reverse("dashboard:alerts") + f"?rule={rule.pk}")


def test_payload(rule: AlertRule, *, topic: str, labels: dict, value: int, now: dt.datetime) -> dict:
    """What "Send a test" sends: the payload the rule would send now, marked as a test."""
    return {
        "alert_id": None,
        "rule": rule.name,
        "kind": rule.kind,
        "topic": topic,
        "severity": labels.get("severity") or rule.min_severity,
        "category": labels.get("category") or ",".join(rule.category_list()) or None,
        "value": value,
        "threshold": rule.threshold,
        "window_minutes": rule.window_minutes,
        "status": "test",
        "first_at": now.isoformat(),
        "last_at": now.isoformat(),
        "measure": rule.measure,
        "url": _absolute(reverse("dashboard:alert-rule", args=[rule.pk])) if rule.pk else "",
        "test": True,
    }


def alertmanager_payload(rule: AlertRule, payload: dict, alert: Alert | None) -> list[dict]:
    """The body of Alertmanager's POST /api/v2/alerts: one alert, labels to route on.

    `severity` is the highest among the findings that fired (so severity routing pages the
    right people), `category` theirs. A firing alert's endsAt lies past the rule's quiet
    period (when it is sent again), so Alertmanager keeps it firing in between; a resolved
    one ends at its resolution.
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
        "severity": payload.get("severity") or rule.min_severity,
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
        AlertRule.Kind.NOT_REPROVED: "hours since every key was last re-proved",
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


def webhook_body(rule: AlertRule, payload: dict, alert: Alert | None) -> dict | list:
    """The JSON a webhook of this rule posts for this payload (its format decides)."""
    if rule.webhook_format == AlertRule.WebhookFormat.ALERTMANAGER:
        return alertmanager_payload(rule, payload, alert)
    return payload
