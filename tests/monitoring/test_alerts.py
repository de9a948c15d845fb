"""Alert rules fire once per burst, notify by email and signed webhook, and are acknowledged."""

import datetime as dt
import json
import time

import pytest
from django.utils import timezone

from monitoring import services, tasks, webhooks
from monitoring.models import Alert, AlertRule, Notification
from recon import access
from recon.models import Finding, OperatorAction, Topic
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SECRET = "s3cret-hook-key"


@pytest.fixture
def topic():
    return Topic.objects.create(name="cards.bulk", consumer_group="g")


def _burst(topic, n, category=Finding.Category.MISSING, severity=Finding.Severity.WARNING):
    Finding.objects.bulk_create(
        Finding(topic=topic, category=category, classification="exception", severity=severity, key=f"client:{i}")
        for i in range(n)
    )


def _rule(topic, **overrides):
    fields = {
        "name": "missing burst",
        "topic": topic,
        "category": Finding.Category.MISSING,
        "threshold": 5,
        "window_minutes": 15,
        "quiet_minutes": 60,
        "email_to": "ops@bank.example, oncall@bank.example",
        "webhook_url": "http://127.0.0.1:9/unused",
        "webhook_secret": SECRET,
    }
    fields.update(overrides)
    return AlertRule.objects.create(**fields)


def test_a_burst_raises_one_alert_and_one_round_of_notifications(topic):
    rule = _rule(topic)
    _burst(topic, 40)
    queued = services.alerts_evaluate()
    assert Alert.objects.count() == 1
    alert = Alert.objects.get()
    assert (alert.rule, alert.topic, alert.value, alert.status) == (rule, topic, 40, Alert.Status.OPEN)
    assert sorted((n.channel, n.target) for n in queued) == [
        ("email", "oncall@bank.example"),
        ("email", "ops@bank.example"),
        ("webhook", "http://127.0.0.1:9/unused"),
    ]
    _burst(topic, 10)  # the burst goes on: the same alert, no new notifications in the quiet period
    assert services.alerts_evaluate() == []
    alert.refresh_from_db()
    assert (alert.value, alert.evaluations) == (50, 2)
    assert Alert.objects.count() == 1 and Notification.objects.count() == 3


def test_below_threshold_other_category_and_low_severity_do_not_fire(topic):
    _rule(topic, min_severity=Finding.Severity.WARNING)
    _burst(topic, 4)
    _burst(topic, 10, category=Finding.Category.DELAYED)
    _burst(topic, 10, severity=Finding.Severity.INFO)
    assert services.alerts_evaluate() == []
    assert not Alert.objects.exists()


def test_quiet_period_then_renotify_and_resolution(topic):
    _rule(topic, email_to="", quiet_minutes=10)
    _burst(topic, 6)
    now = timezone.now()
    assert len(services.alerts_evaluate(now=now)) == 1
    # Still firing 11 minutes later (findings within the 15 min window): quiet is over, notify again.
    assert len(services.alerts_evaluate(now=now + dt.timedelta(minutes=11))) == 1
    # 20 minutes later the burst left the window: the alert resolves.
    assert services.alerts_evaluate(now=now + dt.timedelta(minutes=20)) == []
    alert = Alert.objects.get()
    assert alert.status == Alert.Status.RESOLVED and alert.resolved_at is not None


def test_acknowledged_alert_is_not_renotified(topic):
    _rule(topic, email_to="", quiet_minutes=1)
    _burst(topic, 6)
    now = timezone.now()
    services.alerts_evaluate(now=now)
    user = UserFactory(username="op")
    services.alert_acknowledge(alert=Alert.objects.get(), user=user, comment="looking at it")
    assert services.alerts_evaluate(now=now + dt.timedelta(minutes=5)) == []
    action = OperatorAction.objects.get(action="alert.acknowledge")
    assert (action.user, action.detail) == (user, {"comment": "looking at it"})


def test_email_notification_is_sent(topic, mailoutbox):
    _rule(topic, webhook_url="")
    _burst(topic, 5)
    for notification in services.alerts_evaluate():
        services.notification_deliver(notification_id=notification.pk)
    assert sorted(m.to[0] for m in mailoutbox) == ["oncall@bank.example", "ops@bank.example"]
    assert "missing burst: 5 on cards.bulk" in mailoutbox[0].subject
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


def test_webhook_body_is_signed_and_failures_are_retried(topic, webhook_receiver):
    _rule(topic, email_to="", webhook_url=webhook_receiver.url)
    _burst(topic, 7)
    (notification,) = services.alerts_evaluate()
    webhook_receiver.statuses = [503]
    with pytest.raises(webhooks.DeliveryError, match="503"):
        services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("pending", 1)
    services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 2)

    headers, body = webhook_receiver.received[-1]
    assert webhooks.verify(SECRET, headers["X-Kafkacache-Timestamp"], body, headers["X-Kafkacache-Signature"])
    assert not webhooks.verify("wrong-key", headers["X-Kafkacache-Timestamp"], body, headers["X-Kafkacache-Signature"])
    payload = json.loads(body)
    assert (payload["rule"], payload["topic"], payload["value"], payload["category"]) == (
        "missing burst",
        "cards.bulk",
        7,
        "missing",
    )


def test_webhook_gives_up_after_max_attempts(topic, webhook_receiver):
    _rule(topic, email_to="", webhook_url=webhook_receiver.url)
    _burst(topic, 5)
    (notification,) = services.alerts_evaluate()
    webhook_receiver.statuses = [500] * services.MAX_ATTEMPTS
    for _ in range(services.MAX_ATTEMPTS):
        with pytest.raises(webhooks.DeliveryError):
            services.notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("failed", services.MAX_ATTEMPTS)
    assert "HTTP 500" in notification.last_error


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_evaluation_task_delivers_through_a_real_worker(celery_worker_process, webhook_receiver):
    topic = Topic.objects.create(name="cards.change", consumer_group="g")
    _rule(topic, email_to="", webhook_url=webhook_receiver.url)
    _burst(topic, 9)
    assert tasks.alerts_evaluate() == 1  # queued one webhook notification for the worker
    deadline = time.monotonic() + 30
    while not webhook_receiver.received:
        assert time.monotonic() < deadline, "the worker never delivered the webhook"
        time.sleep(0.2)
    headers, body = webhook_receiver.received[0]
    assert webhooks.verify(SECRET, headers["X-Kafkacache-Timestamp"], body, headers["X-Kafkacache-Signature"])
    deadline = time.monotonic() + 10
    while Notification.objects.get().status != "sent":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_alert_pages_and_api_respect_topic_permissions(client, topic):
    other = Topic.objects.create(name="other", consumer_group="g")
    _rule(topic, email_to="", webhook_url="")
    _rule(other, name="other burst", email_to="", webhook_url="")
    _burst(topic, 5)
    _burst(other, 5)
    services.alerts_evaluate()
    mine, theirs = Alert.objects.get(topic=topic), Alert.objects.get(topic=other)
    viewer, operator = UserFactory(username="viewer", password="pw"), UserFactory(username="op", password="pw")
    access.topic_grant(viewer, topic, "viewer")
    access.topic_grant(operator, topic, "operator")

    assert client.get("/alerts/").status_code == 302
    assert client.get("/api/alerts/").status_code == 401

    client.login(username="viewer", password="pw")
    page = client.get("/alerts/").content.decode()
    assert "missing burst" in page and "other burst" not in page and "Acknowledge</button>" not in page
    assert client.post(f"/alerts/{mine.pk}/acknowledge", {"comment": "x"}).status_code == 403
    assert client.post(f"/api/alerts/{mine.pk}/acknowledge", {"comment": "x"}).status_code == 403
    assert [a["topic"] for a in client.get("/api/alerts/").json()["results"]] == ["cards.bulk"]

    client.login(username="op", password="pw")
    assert "Acknowledge</button>" in client.get("/alerts/").content.decode()
    assert client.post(f"/api/alerts/{theirs.pk}/acknowledge", {"comment": "x"}).status_code == 404
    response = client.post(f"/api/alerts/{mine.pk}/acknowledge", {"comment": "on it"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["status"] == "acknowledged"
    assert client.post(f"/api/alerts/{mine.pk}/acknowledge", {"comment": "again"}).status_code == 409


def test_a_break_past_its_severity_sla_raises_an_alert_and_it_resolves_when_dealt_with(topic, settings):
    settings.BREAK_SLA_HOURS = {"critical": 4, "warning": 24, "info": 168}
    rule = AlertRule.objects.create(name="sla", kind=AlertRule.Kind.BREAK_SLA, topic=topic, threshold=1)
    now = timezone.now()
    late = Finding.objects.create(topic=topic, category="missing", classification="exception", severity="critical")
    young = Finding.objects.create(topic=topic, category="missing", classification="exception", severity="warning")
    Finding.objects.filter(pk=late.pk).update(created_at=now - dt.timedelta(hours=5))
    Finding.objects.filter(pk=young.pk).update(created_at=now - dt.timedelta(hours=5))  # warning: 24 h
    services.alerts_evaluate(now=now)
    alert = Alert.objects.get(rule=rule)
    assert (alert.topic, alert.value, alert.status) == (topic, 1, Alert.Status.OPEN)
    Finding.objects.filter(pk=late.pk).update(status=Finding.Status.ACCEPTED)  # (a test shortcut to "dealt with")
    services.alerts_evaluate(now=now)
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED


def test_admin_edits_rules_of_the_new_kinds_and_never_shows_the_webhook_secret(client, topic):
    admin_user = UserFactory(username="rules-admin", password="pw", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    rule = _rule(topic)
    page = client.get(f"/admin/monitoring/alertrule/{rule.pk}/change/")
    assert page.status_code == 200 and SECRET.encode() not in page.content
    form = {
        "name": "breaks late",
        "kind": AlertRule.Kind.BREAK_SLA,
        "topic": topic.pk,
        "category": "",
        "measure": AlertRule.Measure.NEW,
        "min_severity": "warning",
        "threshold": 1,
        "window_minutes": 15,
        "grace_minutes": 0,
        "quiet_minutes": 60,
        "webhook_format": AlertRule.WebhookFormat.SIGNED,
        "email_to": "",
        "webhook_url": "http://127.0.0.1:9/hook",
        "webhook_secret": "",
        "enabled": "on",
    }
    assert client.post(f"/admin/monitoring/alertrule/{rule.pk}/change/", form).status_code == 302
    rule.refresh_from_db()
    assert (rule.kind, rule.webhook_secret) == (AlertRule.Kind.BREAK_SLA, SECRET)  # empty keeps the secret
    assert OperatorAction.objects.filter(action="alert-rule.change", user=admin_user).exists()


def test_keys_not_re_proved_for_the_threshold_raise_an_alert_and_a_whole_topic_leg_resolves_it():
    from recon.models import ReconRun

    bulk = Topic.objects.create(name="cards.reproved", consumer_group="g", kind=Topic.Kind.BULK)
    young = Topic.objects.create(name="cards.young", consumer_group="g", kind=Topic.Kind.CHANGE)
    rule = AlertRule.objects.create(name="not re-proved", kind=AlertRule.Kind.NOT_REPROVED, threshold=24)
    now = timezone.now()
    Topic.objects.filter(pk=bulk.pk).update(created_at=now - dt.timedelta(hours=30))  # never re-proved, 30 h old
    services.alerts_evaluate(now=now)
    alert = Alert.objects.get(rule=rule)
    assert (alert.topic, alert.value, alert.status) == (bulk, 30, Alert.Status.OPEN)  # the young topic: not yet

    def whole_leg(topic, *, hours_ago: float, status=ReconRun.Status.DONE):
        run = ReconRun.objects.create(
            kind=ReconRun.Kind.CACHE, topic=topic, range_start=now, range_end=now, status=status
        )
        run.report = {"whole_topic": True, "reference": "ods", "checked": 3, "all_matched": True, "problems": {}}
        run.save()
        ReconRun.objects.filter(pk=run.pk).update(started_at=now - dt.timedelta(hours=hours_ago))

    whole_leg(bulk, hours_ago=2, status=ReconRun.Status.FAILED)  # a failed leg proves nothing
    services.alerts_evaluate(now=now)
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN
    whole_leg(bulk, hours_ago=1)
    services.alerts_evaluate(now=now)
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED
    whole_leg(young, hours_ago=25)  # re-proved, but 25 h ago
    services.alerts_evaluate(now=now)
    assert Alert.objects.get(rule=rule, topic=young).value == 25
