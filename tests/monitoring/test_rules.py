"""Alert rules people set: count or age of open findings with a grace, categories,
silences, the Alertmanager format, "send a test", and the same access rule on the
pages, the API and the admin."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from monitoring import services, webhooks
from monitoring.models import Alert, AlertRule, Notification, Silence
from recon.models import Finding, OperatorAction, Topic
from tests.people import people_make

pytestmark = pytest.mark.django_db

SECRET = "s3cret-hook-key"


@pytest.fixture
def topic():
    return Topic.objects.create(name="cards.change", consumer_group="g")


def _findings(topic, n, *, category="dead-lettered", age_minutes=0, status="open"):
    made = Finding.objects.bulk_create(
        Finding(topic=topic, category=category, classification="exception", severity="warning", status=status)
        for _ in range(n)
    )
    if age_minutes:
        Finding.objects.filter(pk__in=[f.pk for f in made]).update(
            created_at=timezone.now() - dt.timedelta(minutes=age_minutes)
        )


def test_open_findings_count_after_their_grace(topic):
    rule = AlertRule.objects.create(
        name="standing exceptions",
        topic=topic,
        measure="open",
        threshold=30,
        grace_minutes=10,
        categories=["dead-lettered", "orphan"],
    )
    _findings(topic, 25, age_minutes=60)
    _findings(topic, 10)  # too young: the loop may still close them
    _findings(topic, 10, age_minutes=60, category="missing")  # another category
    _findings(topic, 10, age_minutes=60, status="acknowledged")  # someone is on them
    services.alerts_evaluate()
    assert not Alert.objects.exists()
    _findings(topic, 5, age_minutes=30, category="orphan")
    services.alerts_evaluate()
    alert = Alert.objects.get()
    assert (alert.rule, alert.value) == (rule, 30)


def test_age_of_the_oldest_open_finding(topic):
    AlertRule.objects.create(name="old exception", topic=topic, measure="age", threshold=120)
    _findings(topic, 1, age_minutes=90)
    services.alerts_evaluate()
    assert not Alert.objects.exists()
    _findings(topic, 1, age_minutes=180)
    services.alerts_evaluate()
    assert 179 <= Alert.objects.get().value <= 181


def test_a_silence_holds_notifications_back_and_keeps_the_alert(topic, webhook_receiver):
    rule = AlertRule.objects.create(
        name="any", topic=topic, measure="open", threshold=1, webhook_url=webhook_receiver.url, webhook_secret=SECRET
    )
    now = timezone.now()
    silence = services.silence_create(
        user=None,
        rule=rule,
        starts_at=now - dt.timedelta(minutes=1),
        ends_at=now + dt.timedelta(hours=1),
        reason="broker upgrade CHG-1",
    )
    _findings(topic, 3)
    assert services.alerts_evaluate() == []
    alert = Alert.objects.get()
    assert alert.silenced_by == silence and alert.last_notified_at is None
    services.silence_end(silence=silence, user=None)
    queued = services.alerts_evaluate()  # the silence is over: notified now
    assert [n.channel for n in queued] == ["webhook"]
    alert.refresh_from_db()
    assert alert.silenced_by is None


def test_alertmanager_format_fires_and_resolves(topic, webhook_receiver):
    AlertRule.objects.create(
        name="dead letters",
        topic=topic,
        measure="open",
        threshold=1,
        min_severity="warning",
        categories=["dead-lettered"],
        webhook_url=webhook_receiver.url,
        webhook_format="alertmanager",
    )
    _findings(topic, 2)
    [firing] = services.alerts_evaluate()
    services.notification_deliver(notification_id=firing.pk)
    _, body = webhook_receiver.received[-1]
    [sent] = json.loads(body)  # Alertmanager's POST /api/v2/alerts takes a list of alerts
    assert sent["labels"] == {
        "alertname": "dead letters",
        "service": "kafkacache",
        "topic": "cards.change",
        "severity": "warning",
        "kind": "discrepancy",
        "category": "dead-lettered",
    }
    assert "2 open findings on cards.change" in sent["annotations"]["summary"]
    assert dt.datetime.fromisoformat(sent["endsAt"]) > timezone.now() + dt.timedelta(minutes=60)
    assert sent["generatorURL"].startswith("http") and "/alerts/?rule=" in sent["generatorURL"]

    Finding.objects.filter(topic=topic).update(status="resolved")
    [resolved] = services.alerts_evaluate()
    assert resolved.event == "resolved"
    services.notification_deliver(notification_id=resolved.pk)
    [ended] = json.loads(webhook_receiver.received[-1][1])
    assert dt.datetime.fromisoformat(ended["endsAt"]) <= timezone.now()


def test_send_a_test_reaches_every_channel_and_says_what_failed(topic, webhook_receiver, mailoutbox):
    rule = AlertRule.objects.create(
        name="tested", topic=topic, email_to="ops@bank.example", webhook_url=webhook_receiver.url, webhook_secret=SECRET
    )
    results = services.alert_rule_test(rule=rule, user=None)
    assert results == [("email", "ops@bank.example", "sent"), ("webhook", webhook_receiver.url, "sent, HTTP 200")]
    assert "tested" in mailoutbox[0].subject
    headers, body = webhook_receiver.received[-1]
    assert json.loads(body)["test"] is True
    assert webhooks.verify(SECRET, headers["X-Kafkacache-Timestamp"], body, headers["X-Kafkacache-Signature"])
    webhook_receiver.statuses.append(500)
    results = services.alert_rule_test(rule=rule, user=None)
    assert results[1][2] == "failed: HTTP 500 from webhook"
    assert not Notification.objects.exists()  # a test is no alert
    assert OperatorAction.objects.filter(action="alert-rule.test", target=f"alert-rule:{rule.pk}").count() == 2


@pytest.fixture
def people(topic):
    return people_make(
        viewed=[topic],
        operated=[topic],
        usernames={"viewer": "viewer", "operator": "op", "admin": "boss", "outsider": "stranger"},
        password="pw",
        role_groups=False,
    )


def test_rules_api_follows_the_topic_permission(client, topic, people):
    body = {"name": "api rule", "topic": topic.name, "measure": "open", "threshold": 3, "categories": ["orphan"]}
    client.force_login(people["viewer"])
    assert client.post("/api/alert-rules", body, content_type="application/json").status_code == 403
    client.force_login(people["outsider"])
    assert client.post("/api/alert-rules", body, content_type="application/json").status_code == 404
    client.force_login(people["operator"])
    assert client.post("/api/alert-rules", {**body, "topic": None}, content_type="application/json").status_code == 403
    hook = {**body, "webhook_url": "http://127.0.0.1:9/x"}
    response = client.post("/api/alert-rules", hook, content_type="application/json")
    assert response.status_code == 400 and "webhook_secret" in str(response.json()["error"]["details"])
    response = client.post("/api/alert-rules", {**hook, "webhook_secret": SECRET}, content_type="application/json")
    assert response.status_code == 201, response.content
    rule = response.json()
    assert rule["has_webhook_secret"] is True and "webhook_secret" not in rule and rule["categories"] == ["orphan"]
    assert OperatorAction.objects.filter(action="alert-rule.create", user=people["operator"]).exists()

    patched = client.patch(f"/api/alert-rules/{rule['id']}", {"threshold": 9}, content_type="application/json")
    assert patched.status_code == 200 and patched.json()["threshold"] == 9
    client.force_login(people["viewer"])
    assert [r["name"] for r in client.get("/api/alert-rules").json()] == ["api rule"]
    assert (
        client.patch(f"/api/alert-rules/{rule['id']}", {"threshold": 1}, content_type="application/json").status_code
        == 403
    )
    client.force_login(people["outsider"])
    assert client.get(f"/api/alert-rules/{rule['id']}").status_code == 404
    client.force_login(people["operator"])
    assert client.delete(f"/api/alert-rules/{rule['id']}").status_code == 204
    assert not AlertRule.objects.exists()


def test_silences_api(client, topic, people):
    now = timezone.now()
    body = {
        "topic": topic.name,
        "starts_at": now.isoformat(),
        "ends_at": (now + dt.timedelta(hours=2)).isoformat(),
        "reason": "patching",
    }
    client.force_login(people["viewer"])
    assert client.post("/api/silences", body, content_type="application/json").status_code == 403
    client.force_login(people["operator"])
    response = client.post("/api/silences", body, content_type="application/json")
    assert response.status_code == 201 and response.json()["created_by"] == "op"
    ended = client.post(f"/api/silences/{response.json()['id']}/end")
    assert ended.status_code == 200 and Silence.objects.get().ends_at <= timezone.now()
    assert client.post(f"/api/silences/{response.json()['id']}/end").status_code == 409


def test_rule_pages_create_test_and_silence(client, topic, people, webhook_receiver):
    client.force_login(people["operator"])
    page = client.get("/alerts/rules/").content.decode()
    assert "No alert rules yet" in page and 'for="id_name"' in page
    response = client.post(
        "/alerts/rules/new",
        {
            "name": "page rule",
            "enabled": "on",
            "kind": "discrepancy",
            "topic": topic.pk,
            "categories": ["missing", "altered"],
            "measure": "open",
            "min_severity": "warning",
            "threshold": 1,
            "window_minutes": 15,
            "grace_minutes": 5,
            "quiet_minutes": 60,
            "email_to": "",
            "webhook_url": webhook_receiver.url,
            "webhook_format": "signed",
            "webhook_secret": SECRET,
        },
    )
    rule = AlertRule.objects.get()
    assert response.status_code == 302 and rule.categories == ["altered", "missing"] and rule.webhook_secret == SECRET
    detail = client.get(f"/alerts/rules/{rule.pk}/").content.decode()
    assert "Send a test" in detail and "5 min grace" in detail and SECRET not in detail
    response = client.post(f"/alerts/rules/{rule.pk}/test", follow=True)
    assert "Test webhook to" in response.content.decode() and ": sent" in response.content.decode()
    assert json.loads(webhook_receiver.received[-1][1])["test"] is True

    now = timezone.now()
    response = client.post(
        "/alerts/silences/",
        {
            "rule": rule.pk,
            "starts_at": now.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (now + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "reason": "maintenance",
        },
    )
    assert response.status_code == 302 and Silence.objects.get().topic == topic
    assert "in force" in client.get("/alerts/silences/").content.decode()

    client.force_login(people["viewer"])
    detail = client.get(f"/alerts/rules/{rule.pk}/").content.decode()
    assert "Send a test" not in detail and "Save rule" not in detail
    assert client.post(f"/alerts/rules/{rule.pk}/test").status_code == 403
    client.force_login(people["outsider"])
    assert client.get(f"/alerts/rules/{rule.pk}/").status_code == 404


def test_admin_has_alert_rules(client, topic, people):
    AlertRule.objects.create(name="in admin", topic=topic)
    client.force_login(people["admin"])
    for path in (
        "/admin/monitoring/alertrule/",
        "/admin/monitoring/silence/",
        "/admin/monitoring/alert/",
        "/admin/monitoring/notification/",
        "/admin/monitoring/alertrule/add/",
    ):
        assert client.get(path).status_code == 200, path
    assert "in admin" in client.get("/admin/monitoring/alertrule/").content.decode()
