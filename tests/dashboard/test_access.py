"""The same access checks for every page and API endpoint, for each role.

viewer: sees A and B, acts on neither. operator: acts on A, only views B.
outsider: logged in, sees nothing (404 on anything of A or B). admin: everything.
"""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from recon import access
from recon.models import Finding, OperatorAction, Replay, Window
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def _detail_urls(data, topic_a) -> dict[str, str]:
    """Pages and endpoints about one object of topic A."""
    window = Window.objects.filter(topic=topic_a).first()
    missing = data["missing"]
    return {
        "finding page": reverse("dashboard:finding", args=[missing.pk]),
        "message page": reverse("dashboard:message", args=[missing.uuid]),
        "window page": reverse("dashboard:window", args=[window.pk]),
        "finding api": reverse("api-finding-detail", args=[missing.pk]),
        "window api": reverse("api-window-detail", args=[window.pk]),
        "topic api": reverse("api-topic-detail", args=[topic_a.name]),
        "message api": reverse("api-message", args=[missing.uuid]),
        "finding history api": reverse("api-finding-history", args=[missing.pk]),
        "finding comments api": reverse("api-finding-comments", args=[missing.pk]),
    }


LIST_URLS = [
    "dashboard:overview",
    "dashboard:findings",
    "dashboard:windows",
    "dashboard:loads",
    "dashboard:rebalances",
    "dashboard:actions",
    "dashboard:findings-csv",
    "api-topic-list",
    "api-window-list",
    "api-finding-list",
    "api-rebalance-list",
    "api-operator-action-list",
    "dashboard:my-breaks",
    "dashboard:evidence",
    "api-my-breaks",
    "api-breaks-ageing",
    "api-lag-status",
]


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_members_see_detail_pages(client_for, data, topic_a, role):
    client = client_for(role)
    for name, url in _detail_urls(data, topic_a).items():
        assert client.get(url).status_code == 200, name


def test_outsider_gets_404_on_everything_of_a_topic(client_for, data, topic_a):
    client = client_for("outsider")
    for name, url in _detail_urls(data, topic_a).items():
        assert client.get(url).status_code == 404, name


@pytest.mark.parametrize("url_name", LIST_URLS)
def test_lists_show_only_visible_topics(client_for, data, topic_a, topic_b, url_name):
    url = reverse(url_name)
    outsider = client_for("outsider").get(url)
    viewer = client_for("viewer").get(url)
    assert outsider.status_code == viewer.status_code == 200
    outsider_text = b"".join(outsider.streaming_content) if outsider.streaming else outsider.content
    assert topic_a.name.encode() not in outsider_text and topic_b.name.encode() not in outsider_text
    assert str(data["missing"].uuid).encode() not in outsider_text


def test_lists_show_visible_topics_to_viewer(client_for, data, topic_a, topic_b):
    for url_name in ("dashboard:overview", "dashboard:findings", "dashboard:windows", "api-topic-list"):
        content = client_for("viewer").get(reverse(url_name)).content
        assert topic_a.name.encode() in content and topic_b.name.encode() in content, url_name


def test_viewer_gets_403_on_acknowledge_page_and_api_and_it_is_recorded(client_for, data):
    missing = data["missing"]
    client = client_for("viewer")
    page = client.post(reverse("dashboard:finding-acknowledge", args=[missing.pk]), {"comment": "forged"})
    api = client.post(reverse("api-finding-acknowledge", args=[missing.pk]), {"comment": "forged"}, "application/json")
    assert page.status_code == 403
    assert api.status_code == 403
    assert api.json()["error"]["code"] == "permission_denied"
    missing.refresh_from_db()
    assert missing.status == Finding.Status.OPEN
    refused = OperatorAction.objects.filter(action="acknowledge", outcome="refused", user__username="viewer1")
    assert refused.count() == 2


def test_operator_of_a_cannot_act_on_b(client_for, data):
    altered_b = data["altered_b"]
    client = client_for("operator")
    assert (
        client.post(reverse("dashboard:finding-acknowledge", args=[altered_b.pk]), {"comment": "x"}).status_code == 403
    )
    url = reverse("api-finding-acknowledge", args=[altered_b.pk])
    assert client.post(url, {"comment": "x"}, "application/json").status_code == 403
    altered_b.refresh_from_db()
    assert altered_b.status == Finding.Status.OPEN


def test_outsider_acknowledge_is_404(client_for, data):
    missing = data["missing"]
    client = client_for("outsider")
    assert client.post(reverse("dashboard:finding-acknowledge", args=[missing.pk]), {"comment": "x"}).status_code == 404
    url = reverse("api-finding-acknowledge", args=[missing.pk])
    assert client.post(url, {"comment": "x"}, "application/json").status_code == 404


def test_operator_acknowledges_on_a_page(client_for, data, people):
    missing = data["missing"]
    client = client_for("operator")
    response = client.post(reverse("dashboard:finding-acknowledge", args=[missing.pk]), {"comment": "known outage"})
    assert response.status_code == 302
    missing.refresh_from_db()
    assert (missing.status, missing.comment, missing.acknowledged_by) == (
        "acknowledged",
        "known outage",
        people["operator"],
    )
    action = OperatorAction.objects.get(action="acknowledge", outcome="accepted")
    assert action.target == f"finding:{missing.pk}" and action.user == people["operator"]
    # A second acknowledgement is a clear refusal, not a silent overwrite.
    again = client.post(reverse("api-finding-acknowledge", args=[missing.pk]), {"comment": "again"}, "application/json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


def test_buttons_follow_permissions(client_for, data):
    missing, altered_b = data["missing"], data["altered_b"]
    ack_a = reverse("dashboard:finding-acknowledge", args=[missing.pk]).encode()
    ack_b = reverse("dashboard:finding-acknowledge", args=[altered_b.pk]).encode()
    per_finding = {"rows": "finding"}
    as_operator = client_for("operator").get(reverse("dashboard:findings"), per_finding).content
    as_viewer = client_for("viewer").get(reverse("dashboard:findings"), per_finding).content
    assert ack_a in as_operator and ack_b not in as_operator
    assert ack_a not in as_viewer and ack_b not in as_viewer
    assert (
        b"Acknowledge</button>" not in client_for("viewer").get(reverse("dashboard:finding", args=[missing.pk])).content
    )
    assert (
        b"Acknowledge</button>" in client_for("operator").get(reverse("dashboard:finding", args=[missing.pk])).content
    )


def test_forms_need_csrf(people, data):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(people["operator"])
    response = client.post(reverse("dashboard:finding-acknowledge", args=[data["missing"].pk]), {"comment": "x"})
    assert response.status_code == 403
    data["missing"].refresh_from_db()
    assert data["missing"].status == Finding.Status.OPEN


def test_audit_trail_hides_topicless_actions_from_non_admins(client_for, data):
    assert b"user-change" not in client_for("operator").get(reverse("dashboard:actions")).content
    assert b"user-change" in client_for("admin").get(reverse("dashboard:actions")).content
    assert b"reconcile" in client_for("viewer").get(reverse("dashboard:actions")).content


# --- governed operations: break transitions and four-eyes replays --------------------------------

BREAK_POSTS = {
    "finding-assign": ("api-finding-assign", {"assignee": "operator1"}),
    "finding-investigate": ("api-finding-investigate", {}),
    "finding-fix": ("api-finding-fix", {"comment": "x"}),
    "finding-accept": ("api-finding-accept", {"reason_code": "timing"}),
    "finding-reopen": ("api-finding-reopen", {"comment": "x"}),
    "finding-comment": ("api-finding-comments", {"comment": "x"}),
}


@pytest.mark.parametrize("page", sorted(BREAK_POSTS))
def test_break_transitions_refuse_viewers_outsiders_and_other_topics_operators(client_for, data, page):
    api, body = BREAK_POSTS[page]
    missing, altered_b = data["missing"], data["altered_b"]
    for role, finding, status in (
        ("viewer", missing, 403),
        ("outsider", missing, 404),
        ("operator", altered_b, 403),  # operates A, only views B
    ):
        client = client_for(role)
        assert client.post(reverse(f"dashboard:{page}", args=[finding.pk]), body).status_code == status, role
        response = client.post(reverse(api, args=[finding.pk]), body, "application/json")
        assert response.status_code == status, role
        assert set(response.json()["error"]) == {"code", "message", "details"}
    for finding in (missing, altered_b):
        finding.refresh_from_db()
        assert finding.status == Finding.Status.OPEN and finding.assigned_user is None
    assert not Finding.objects.filter(comments__isnull=False).exists()
    assert OperatorAction.objects.filter(outcome="refused", user__username="viewer1").count() == 2


def test_operator_moves_a_break_through_the_api(client_for, data, people):
    missing = data["missing"]
    client = client_for("operator")
    url = lambda name: reverse(name, args=[missing.pk])  # noqa: E731
    assert (
        client.post(url("api-finding-assign"), {"assignee": "operator1"}, "application/json").json()["assigned_user"]
        == "operator1"
    )
    assert client.post(url("api-finding-investigate"), {}, "application/json").json()["status"] == "investigating"
    bad = client.post(url("api-finding-accept"), {"reason_code": "nope"}, "application/json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_reason_code"
    accepted = client.post(url("api-finding-accept"), {"reason_code": "timing"}, "application/json").json()
    assert (accepted["status"], accepted["reason_code"]) == ("accepted", "timing")
    again = client.post(url("api-finding-fix"), {}, "application/json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    history = client.get(url("api-finding-history")).json()
    assert [h["action"] for h in history] == ["assign", "investigate", "accept"]
    mine = client.get(reverse("api-my-breaks")).json()
    assert mine == []  # accepted breaks are not "mine" any more
    viewer_history = client_for("viewer").get(url("api-finding-history"))
    assert viewer_history.status_code == 200 and len(viewer_history.json()) == 3


@pytest.fixture
def pending(data, people, topic_a):
    return Replay.objects.create(
        topic=topic_a,
        way="kafka",
        scope="messages",
        target={"uuids": [str(data["missing"].uuid)]},
        fingerprint="four-eyes",
        reason="lost",
        requested_by=people["operator"],
        status=Replay.Status.PENDING,
        needs_approval=True,
        size=1,
        expires_at=timezone.now() + dt.timedelta(hours=1),
    )


def test_the_requester_cannot_approve_their_own_replay_nor_can_viewers_outsiders_or_other_topics(
    client_for, pending, topic_b, people
):
    operator_b = UserFactory(username="operator-b1", password=PASSWORD)
    access.topic_grant(operator_b, topic_b, "operator")
    from django.test import Client

    other = Client()
    other.force_login(operator_b)
    clients = {"operator": client_for("operator"), "viewer": client_for("viewer"), "outsider": client_for("outsider")}
    expected = {"operator": 403, "viewer": 403, "outsider": 404}
    for role, client in [*clients.items(), ("operator_b", other)]:
        want = expected.get(role, 404)  # an operator of B only cannot see A's replay at all
        for name in ("approve", "reject"):
            page = client.post(reverse(f"dashboard:replay-{name}", args=[pending.pk]), {"comment": "ok"})
            api = client.post(
                reverse(f"api-recon-replay-{name}", args=[pending.pk]), {"comment": "ok"}, "application/json"
            )
            assert (page.status_code, api.status_code) == (want, want), (role, name)
    pending.refresh_from_db()
    assert pending.status == Replay.Status.PENDING and pending.decided_by is None
    own = OperatorAction.objects.filter(target=f"replay:{pending.pk}", outcome="refused: own request")
    assert own.count() == 4 and set(own.values_list("user__username", flat=True)) == {"operator1"}
    # The detail page shows the requester no approve button, a second operator one.
    assert b'id="approve"' not in clients["operator"].get(reverse("dashboard:replay", args=[pending.pk])).content
    checker = UserFactory(username="checker-a", password=PASSWORD)
    access.topic_grant(checker, pending.topic, "operator")
    second = Client()
    second.force_login(checker)
    assert b'id="approve"' in second.get(reverse("dashboard:replay", args=[pending.pk])).content
    approved = second.post(
        reverse("api-recon-replay-approve", args=[pending.pk]), {"comment": "ok"}, "application/json"
    )
    assert approved.status_code == 200 and approved.json()["status"] == "queued"
    assert approved.json()["decided_by"] == "checker-a" and approved.json()["requested_by"] == "operator1"
