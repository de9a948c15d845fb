"""Alerts that route right: the severity and labels a receiver gets are those of the findings that
fired (not the rule's minimum), and the rule page previews the exact body and the findings it counts
before anything is saved. Receivers are real local HTTP servers (conftest.webhook_receiver)."""

import html
import json
import re

import pytest
from django.urls import reverse

from monitoring import services
from monitoring.models import Alert, AlertRule, Notification
from recon.models import Finding, OperatorAction, Topic
from tests.people import people_make

pytestmark = pytest.mark.django_db

SECRET = "s3cret-hook-key"


@pytest.fixture
def topic():
    return Topic.objects.create(name="cards.routing", consumer_group="g")


@pytest.fixture
def people(topic):
    return people_make(
        viewed=[topic],
        operated=[topic],
        usernames={"viewer": "viewer", "operator": "op", "admin": "boss", "outsider": "stranger"},
        password="pw",
        role_groups=False,
    )


def _findings(topic, n, *, severity, category=Finding.Category.MISSING):
    return Finding.objects.bulk_create(
        Finding(topic=topic, category=category, classification="exception", severity=severity, key=f"client:{i}")
        for i in range(n)
    )


def _rule(topic, url, **overrides):
    fields = {
        "name": "losses",
        "topic": topic,
        "min_severity": "warning",
        "threshold": 5,
        "window_minutes": 15,
        "webhook_url": url,
        "webhook_secret": SECRET,
        "webhook_format": AlertRule.WebhookFormat.ALERTMANAGER,
    }
    fields.update(overrides)
    return AlertRule.objects.create(**fields)


def _deliver_all(notifications):
    for notification in notifications:
        services.notification_deliver(notification_id=notification.pk)


def test_critical_findings_reach_alertmanager_as_critical_with_their_categories(topic, webhook_receiver):
    _rule(topic, webhook_receiver.url)  # its minimum is warning
    _findings(topic, 14, severity="critical")
    _findings(topic, 2, severity="warning", category=Finding.Category.DUPLICATE)
    _deliver_all(services.alerts_evaluate())
    [sent] = json.loads(webhook_receiver.received[-1][1])
    assert sent["labels"]["severity"] == "critical"
    assert sent["labels"]["category"] == "duplicate,missing"
    assert sent["labels"]["topic"] == "cards.routing"
    assert Alert.objects.get().labels == {"severity": "critical", "category": "duplicate,missing"}


def test_warnings_alone_are_sent_as_warning_and_the_signed_payload_says_so_too(topic, webhook_receiver):
    _rule(topic, webhook_receiver.url, webhook_format=AlertRule.WebhookFormat.SIGNED, min_severity="info")
    _findings(topic, 6, severity="warning")
    _findings(topic, 3, severity="info", category=Finding.Category.ORPHAN)
    _deliver_all(services.alerts_evaluate())
    sent = json.loads(webhook_receiver.received[-1][1])
    assert (sent["severity"], sent["category"]) == ("warning", "missing,orphan")


def test_the_rule_page_previews_the_exact_body_a_receiver_then_gets(client, topic, people, webhook_receiver):
    rule = _rule(topic, webhook_receiver.url)
    made = _findings(topic, 7, severity="critical")
    client.force_login(people["operator"])
    page = client.get(reverse("dashboard:alert-rule", args=[rule.pk]))
    preview = page.context["preview"]
    assert preview.firing == [("cards.routing", 7, {"severity": "critical", "category": "missing"})]
    assert {f.pk for f in preview.findings} == {f.pk for f in made}
    text = page.content.decode()
    shown = html.unescape(
        re.search(r'<pre class="mono preview-body" data-channel="webhook">(.*?)</pre>', text, re.S)[1]
    )
    _deliver_all(services.alerts_evaluate())
    received = webhook_receiver.received[-1][1].decode()
    # The same bytes but for the moments it was built and sent.
    moments = re.compile(r'"(startsAt|endsAt)":"[^"]+"')
    assert moments.sub("", shown) == moments.sub("", received)
    assert json.loads(shown)[0]["labels"]["severity"] == "critical"
    # A viewer may not change the rule: no preview for them.
    client.force_login(people["viewer"])
    assert client.get(reverse("dashboard:alert-rule", args=[rule.pk])).context["preview"] is None


def test_a_preview_before_saving_changes_nothing(client, topic, people, webhook_receiver):
    _findings(topic, 3, severity="critical", category=Finding.Category.ALTERED)
    _findings(topic, 4, severity="warning")
    client.force_login(people["operator"])
    form = {
        "name": "new altered rule",
        "kind": "discrepancy",
        "topic": topic.pk,
        "measure": "open",
        "categories": ["altered"],
        "min_severity": "warning",
        "threshold": 2,
        "window_minutes": 15,
        "grace_minutes": 0,
        "quiet_minutes": 60,
        "webhook_url": webhook_receiver.url,
        "webhook_format": "alertmanager",
        "enabled": "on",
        "preview": "1",
    }
    page = client.post(reverse("dashboard:alert-rule-create"), form)
    assert page.status_code == 200, page.content.decode()[:2000]
    preview = page.context["preview"]
    assert preview.findings_total == 3 and {f.category for f in preview.findings} == {"altered"}
    assert preview.firing == [("cards.routing", 3, {"severity": "critical", "category": "altered"})]
    assert not AlertRule.objects.exists() and not webhook_receiver.received and not Notification.objects.exists()


def test_send_a_test_carries_the_severity_of_the_findings_and_is_audited(client, topic, people, webhook_receiver):
    rule = _rule(topic, webhook_receiver.url)
    _findings(topic, 5, severity="critical")
    client.force_login(people["operator"])
    client.post(reverse("dashboard:alert-rule-test", args=[rule.pk]))
    [sent] = json.loads(webhook_receiver.received[-1][1])
    assert (sent["labels"]["severity"], sent["labels"]["test"]) == ("critical", "true")
    action = OperatorAction.objects.get(action="alert-rule.test")
    assert action.outcome == "sent, HTTP 200" and json.loads(action.detail["body"]) == [sent]
    assert not Alert.objects.exists()
