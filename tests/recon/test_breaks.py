"""The finding lifecycle (recon.services.finding_lifecycle): owners, transitions, history, thread, audit trail."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from config.errors import AppError, Conflict
from recon import access
from recon.models import Finding, FindingComment, FindingTransition, OperatorAction, PublishedMessage, Window
from recon.selectors.findings import findings_ageing, findings_assigned, findings_over_sla
from recon.services import finding_lifecycle
from recon.services.ledger import ConsumedRow, consumed_record
from recon.services.windows import window_reconcile
from tests.factories import UserFactory

from .helpers import T0, scenario_write, topic_make

pytestmark = pytest.mark.django_db
LATER = T0 + dt.timedelta(hours=1)


@pytest.fixture
def team():
    return Group.objects.create(name="recon-team")


@pytest.fixture
def people(team):
    return {
        name: UserFactory(username=name, password="x", groups=[team] if name == "op2" else None)
        for name in ("op", "op2", "viewer", "outsider")
    }


@pytest.fixture
def missing(people):
    topic = topic_make("breaks")
    for name in ("op", "op2"):
        access.topic_grant(people[name], topic, "operator")
    access.topic_grant(people["viewer"], topic, "viewer")
    scenario_write(topic, n=10, missing=1)
    window_reconcile(window_id=Window.objects.get(topic=topic).pk, now=LATER)
    return Finding.objects.get(topic=topic, category="missing")


def _deliver(finding: Finding) -> None:
    lost = PublishedMessage.objects.get(uuid=finding.uuid)
    consumed_record(
        topic=finding.topic,
        rows=[
            ConsumedRow(
                lost.uuid,
                "g",
                lost.partition,
                lost.offset,
                lost.key,
                bytes(lost.content_hash),
                lost.published_at,
                lost.published_at + dt.timedelta(milliseconds=5),
                "stored",
            )
        ],
    )


def test_assign_investigate_fix_and_the_next_reconcile_verifies(missing, people, team):
    op = people["op"]
    finding_lifecycle.finding_assign(finding=missing, user=op, assignee=people["op2"], group=team, comment="yours")
    assert (missing.assigned_user, missing.assigned_group) == (people["op2"], team)
    assert list(findings_assigned(user=people["op2"], topics=access.topics_visible(people["op2"]))) == [missing]
    finding_lifecycle.finding_investigate(finding=missing, user=people["op2"])
    assert missing.status == Finding.Status.INVESTIGATING
    finding_lifecycle.finding_fix(finding=missing, user=people["op2"], comment="ODS re-sent it")
    assert missing.status == Finding.Status.FIXED
    # Verify: the message arrives and the window is reconciled again; the break resolves.
    _deliver(missing)
    window_reconcile(window_id=missing.window_id, now=LATER + dt.timedelta(minutes=5))
    missing.refresh_from_db()
    assert missing.status == Finding.Status.RESOLVED and missing.detail["resolved_by"] == "reconcile"
    history = list(
        FindingTransition.objects.filter(finding=missing)
        .order_by("id")
        .values_list("action", "from_status", "to_status")
    )
    assert history == [
        ("assign", "open", "open"),
        ("investigate", "open", "investigating"),
        ("fix", "investigating", "fixed"),
        ("resolve", "fixed", "resolved"),
    ]
    assert [c.text for c in FindingComment.objects.filter(finding=missing)] == ["yours", "ODS re-sent it"]
    actions = list(OperatorAction.objects.filter(target=f"finding:{missing.pk}").order_by("at", "id"))
    assert [(a.action, a.user.username) for a in actions] == [
        ("finding.assign", "op"),
        ("finding.investigate", "op2"),
        ("finding.fix", "op2"),
    ]
    assert actions[0].detail["assignee"] == "op2" and actions[0].detail["group"] == "recon-team"
    assert findings_assigned(user=people["op2"], topics=access.topics_visible(people["op2"])).count() == 0


def test_a_fix_that_did_not_work_reopens_at_the_next_reconcile(missing, people):
    finding_lifecycle.finding_fix(finding=missing, user=people["op"], comment="restarted")
    window_reconcile(window_id=missing.window_id, now=LATER + dt.timedelta(minutes=5))
    missing.refresh_from_db()
    assert missing.status == Finding.Status.REOPENED
    last = FindingTransition.objects.filter(finding=missing).order_by("id").last()
    assert (last.action, last.from_status, last.to_status, last.user) == ("recur", "fixed", "reopened", None)
    # A reopened break can be acknowledged again (the old acknowledge path is this lifecycle's).
    finding_lifecycle.finding_acknowledge(finding=missing, user=people["op"], comment="looking again")
    assert missing.status == Finding.Status.ACKNOWLEDGED and missing.acknowledged_by == people["op"]


def test_accept_needs_a_configured_reason_code_and_unknown_ones_are_refused_and_recorded(missing, people, reason_codes):
    with pytest.raises(AppError) as refused:
        finding_lifecycle.finding_accept(finding=missing, user=people["op"], reason_code="because")
    assert refused.value.code == "bad_reason_code" and "timing" in refused.value.details["known"]
    assert OperatorAction.objects.filter(action="finding.accept", outcome__startswith="refused").count() == 1
    finding_lifecycle.finding_accept(
        finding=missing, user=people["op"], reason_code="timing", comment="late, within tolerance"
    )
    assert missing.status == Finding.Status.ACCEPTED and missing.reason_code.code == "timing"
    # An accepted break is not open: a second accept is a clear conflict.
    with pytest.raises(Conflict):
        finding_lifecycle.finding_accept(finding=missing, user=people["op"], reason_code="timing")
    finding_lifecycle.finding_reopen(finding=missing, user=people["op"], comment="the tolerance changed")
    assert missing.status == Finding.Status.REOPENED and missing.reason_code is None


def test_transitions_refuse_the_wrong_state_viewers_and_outsiders(missing, people):
    with pytest.raises(Conflict) as conflict:
        finding_lifecycle.finding_reopen(finding=missing, user=people["op"], comment="x")  # it is open
    assert conflict.value.details["status"] == "open"
    with pytest.raises(AppError):
        finding_lifecycle.finding_reopen(finding=missing, user=people["op"], comment="  ")
    with pytest.raises(PermissionDenied):
        finding_lifecycle.finding_fix(finding=missing, user=people["viewer"])
    with pytest.raises(Http404):
        finding_lifecycle.finding_fix(finding=missing, user=people["outsider"])
    with pytest.raises(AppError) as bad:
        finding_lifecycle.finding_assign(finding=missing, user=people["op"], assignee=people["outsider"])
    assert bad.value.code == "bad_assignee"
    assert OperatorAction.objects.filter(action="finding.fix", outcome="refused", user=people["viewer"]).count() == 1
    missing.refresh_from_db()
    assert missing.status == Finding.Status.OPEN and not FindingTransition.objects.filter(finding=missing).exists()


def test_ageing_buckets_oldest_and_sla(missing, people):
    topic = missing.topic
    Finding.objects.filter(pk=missing.pk).update(status="accepted")  # only the breaks made here age
    now = timezone.now()
    ages = {"lt_1h": dt.timedelta(minutes=10), "h1_24": dt.timedelta(hours=3), "d1_7": dt.timedelta(days=2)}
    made = {}
    for name, age in ages.items():
        f = Finding.objects.create(topic=topic, category="missing", classification="exception", severity="critical")
        Finding.objects.filter(pk=f.pk).update(created_at=now - age)
        made[name] = f
    old = Finding.objects.create(topic=topic, category="missing", classification="exception", severity="critical")
    Finding.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(days=9))
    done = Finding.objects.create(
        topic=topic, category="missing", classification="exception", severity="critical", status="accepted"
    )
    Finding.objects.filter(pk=done.pk).update(created_at=now - dt.timedelta(days=20))  # accepted: not ageing
    rows = {r["severity"]: r for r in findings_ageing(topics=access.topics_visible(people["op"]), now=now)}
    critical = rows["critical"]
    # Each is its own problem (no shared cause): four problems, one per bucket, four findings.
    assert [n for _, n in critical["buckets"]] == [1, 1, 1, 1] and critical["total"] == critical["findings"] == 4
    assert critical["oldest"].pk == old.pk and critical["over_sla"]
    # critical SLA is 4 h (BREAK_SLA_HOURS default): the 2-day and 9-day ones are late, the 3-hour one is not
    assert findings_over_sla(now=now, topic_id=topic.pk, severities=["critical"]) == {topic.pk: 2}
