"""The approvals inbox and the header's count: what waits for an approval the user may give
(an operator of the topic, never the requester), oldest first, counted in one query."""

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from recon import access
from recon.models import OperatorAction, Replay
from replay.selectors import replays_awaiting
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def _pending(topic, by, *, reason="lost", age_minutes=0, expires_in=dt.timedelta(hours=1)) -> Replay:
    replay = Replay.objects.create(
        topic=topic,
        way="kafka",
        scope="messages",
        target={"uuids": []},
        fingerprint=f"inbox-{topic.pk}-{reason}",
        reason=reason,
        requested_by=by,
        status=Replay.Status.PENDING,
        needs_approval=True,
        size=3,
        expires_at=timezone.now() + expires_in,
    )
    Replay.objects.filter(pk=replay.pk).update(created_at=timezone.now() - dt.timedelta(minutes=age_minutes))
    return replay


@pytest.fixture
def checker(topic_a):
    user = UserFactory(username="checker1", password=PASSWORD)
    access.topic_grant(user, topic_a, "operator")
    return user


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_inbox_lists_what_the_user_may_approve_oldest_first_never_their_own(people, topic_a, topic_b, checker):
    newer = _pending(topic_a, people["operator"], reason="newer", age_minutes=1)
    older = _pending(topic_a, people["operator"], reason="older", age_minutes=30)
    own = _pending(topic_a, checker, reason="mine")
    _pending(topic_b, people["viewer"], reason="other topic")  # checker does not operate B
    _pending(topic_a, people["operator"], reason="expired", expires_in=dt.timedelta(seconds=-1))

    assert list(replays_awaiting(checker)) == [older, newer]
    assert list(replays_awaiting(people["operator"])) == [own]  # checker's request, not operator1's own
    assert list(replays_awaiting(people["viewer"])) == []  # views A and B, operates neither
    assert list(replays_awaiting(people["outsider"])) == []

    page = _client(checker).get(reverse("dashboard:approvals"))
    body = page.content.decode()
    assert page.status_code == 200
    assert body.index(f'data-replay="{older.pk}"') < body.index(f'data-replay="{newer.pk}"')
    assert f'data-replay="{own.pk}"' not in body
    assert 'id="approvals-count"' in body and ">2<" in body


def test_the_header_count_is_one_query_and_absent_for_people_with_nothing_waiting(people, topic_a, checker):
    _pending(topic_a, people["operator"])
    with CaptureQueriesContext(connection) as queries:
        assert replays_awaiting(checker).count() == 1
    assert len(queries) == 1
    for user in (people["viewer"], people["outsider"], people["operator"]):
        body = _client(user).get(reverse("dashboard:findings")).content.decode()
        assert 'id="approvals-count"' not in body
    assert 'id="approvals-count"' in _client(checker).get(reverse("dashboard:findings")).content.decode()


def test_approving_from_the_inbox_returns_to_it_and_is_audited(people, topic_a, checker):
    replay = _pending(topic_a, people["operator"])
    client = _client(checker)
    inbox = reverse("dashboard:approvals")
    response = client.post(reverse("dashboard:replay-approve", args=[replay.pk]), {"next": inbox})
    assert response.status_code == 302 and response.url == inbox
    replay.refresh_from_db()
    assert (replay.status, replay.decided_by) == (Replay.Status.QUEUED, checker)
    assert OperatorAction.objects.filter(action="replay.approve", target=f"replay:{replay.pk}", user=checker).exists()
    assert f'data-replay="{replay.pk}"' not in client.get(inbox).content.decode()
    page = client.get(reverse("dashboard:replay", args=[replay.pk])).content.decode()
    assert "Approved by" in page and "Done by" not in page


def test_the_requester_cannot_approve_their_own_even_by_forging_the_inbox_post(people, topic_a):
    replay = _pending(topic_a, people["operator"])
    response = _client(people["operator"]).post(
        reverse("dashboard:replay-approve", args=[replay.pk]), {"next": reverse("dashboard:approvals")}
    )
    assert response.status_code == 403
    replay.refresh_from_db()
    assert replay.status == Replay.Status.PENDING
    assert OperatorAction.objects.filter(action="replay.approve", outcome="refused: own request").exists()


def test_a_pending_request_says_when_verification_starts_not_queued(people, topic_a):
    replay = _pending(topic_a, people["operator"])
    page = _client(people["operator"]).get(reverse("dashboard:replay", args=[replay.pk])).content.decode()
    assert "Verification starts when the replay ends" in page
    assert "Queued:" not in page
