"""One action on many findings from the list (recon.services.finding_bulk): each finding through
its own lifecycle service, permission-checked and audited on its own; what one refuses is counted
with its reason and never stops the rest. And the finding page's one primary next step."""

import uuid

import pytest
from django.urls import reverse

from recon.models import Finding, FindingComment, OperatorAction, ReasonCode, Topic
from tests.factories import TopicFactory

pytestmark = pytest.mark.django_db


def _finding(topic: Topic, *, status=Finding.Status.OPEN) -> Finding:
    return Finding.objects.create(
        topic=topic,
        uuid=uuid.uuid4(),
        key=f"client:{uuid.uuid4().int % 10**6}",
        category=Finding.Category.DUPLICATE,
        classification=Finding.Classification.EXCEPTION,
        severity=Finding.Severity.WARNING,
        status=status,
        detail={},
    )


@pytest.fixture
def operator(people, client_for):
    return client_for("operator")


def _bulk(client, findings, action, **fields):
    return client.post(
        reverse("dashboard:findings-bulk"),
        {"findings": [f.pk for f in findings], "action": action, **fields},
        follow=True,
    )


def _message(response) -> str:
    return [str(m) for m in response.context["messages"]][-1]


def test_bulk_assign_to_me_does_the_operable_ones_and_counts_the_refused_with_why(people, operator, topic_a, topic_b):
    mine = [_finding(topic_a) for _ in range(3)]
    viewed_only = _finding(topic_b)  # operator1 only views topic B
    hidden = _finding(TopicFactory(name=f"bulk.hidden-{uuid.uuid4().hex[:6]}"))  # not even visible
    resolved = _finding(topic_a, status=Finding.Status.RESOLVED)

    response = _bulk(operator, [*mine, viewed_only, hidden, resolved], "assign_me")
    assert _message(response) == (
        "3 done, 3 refused: you may not act on its topic (1); no such finding (1); its status does not allow it (1)."
    )
    for f in mine:
        f.refresh_from_db()
        assert f.assigned_user == people["operator"]
        assert OperatorAction.objects.filter(action="finding.assign", target=f"finding:{f.pk}", outcome="accepted")
    for f in (viewed_only, hidden, resolved):
        f.refresh_from_db()
        assert f.assigned_user is None
    # The refusal on the viewed-only topic is in the audit trail like a click on its page; the
    # hidden one left no trace that would disclose it.
    assert OperatorAction.objects.filter(target=f"finding:{viewed_only.pk}", outcome="refused").exists()
    assert not OperatorAction.objects.filter(target=f"finding:{hidden.pk}").exists()


def test_bulk_accept_needs_a_reason_code_and_records_it_per_finding(operator, topic_a):
    code = ReasonCode.objects.filter(enabled=True).first() or ReasonCode.objects.create(code="known", label="Known")
    findings = [_finding(topic_a) for _ in range(2)]
    response = _bulk(operator, findings, "accept")
    assert _message(response).startswith("Nothing done: Choose a reason code.")
    response = _bulk(operator, findings, "accept", reason_code=code.code, comment="expected after the reload")
    assert _message(response) == "2 done."
    for f in findings:
        f.refresh_from_db()
        assert (f.status, f.reason_code) == (Finding.Status.ACCEPTED, code)
        entry = OperatorAction.objects.get(action="finding.accept", target=f"finding:{f.pk}")
        assert entry.detail["reason_code"] == code.code
    response = _bulk(operator, findings, "accept", reason_code="no-such-code")
    assert _message(response) == "0 done, 2 refused: Choose a reason code from the list (2)."


def test_bulk_comment_and_assign_to_a_person(people, operator, topic_a):
    findings = [_finding(topic_a) for _ in range(2)]
    assert _message(_bulk(operator, findings, "comment", comment="one cause: the reload")) == "2 done."
    assert FindingComment.objects.filter(finding__in=findings, text="one cause: the reload").count() == 2
    assert _message(_bulk(operator, findings, "assign", assignee="Viewer1")) == "2 done."
    assert {f.assigned_user for f in Finding.objects.filter(pk__in=[f.pk for f in findings])} == {people["viewer"]}
    assert _message(_bulk(operator, findings, "assign", assignee="nobody")) == "Nothing done: no user nobody."


def test_someone_who_operates_nothing_is_refused_the_bulk_form_and_learns_nothing(people, client_for, topic_a):
    findings = [_finding(topic_a) for _ in range(2)]
    for fields in ({"action": "assign_me"}, {"action": "assign", "assignee": "nobody"}, {"action": "bogus"}):
        response = client_for("viewer").post(
            reverse("dashboard:findings-bulk"), {"findings": [f.pk for f in findings], **fields}
        )
        assert response.status_code == 403
    assert not Finding.objects.filter(pk__in=[f.pk for f in findings], assigned_user__isnull=False).exists()
    assert OperatorAction.objects.filter(user=people["viewer"], action="finding.bulk", outcome="refused").count() == 3


@pytest.mark.parametrize(
    ("status", "primary"),
    [
        (Finding.Status.OPEN, "acknowledge"),
        (Finding.Status.ACKNOWLEDGED, "investigate"),
        (Finding.Status.INVESTIGATING, "fix"),
        (Finding.Status.FIXED, "none"),
    ],
)
def test_the_finding_page_has_one_primary_next_step_per_state(operator, topic_a, status, primary):
    finding = _finding(topic_a, status=status)
    page = operator.get(reverse("dashboard:finding", args=[finding.pk])).content.decode()
    assert f'data-next="{primary}"' in page
    assert page.count("Assign to me") == 1
