"""Who may ask for replays: anonymous (login / 401), outsider 404, viewer 403 (recorded), operator accepted.
Pages and API alike; buttons only for operators of the topic."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken

from kafkacache.services.change_feed import change_publish
from recon.models import Finding, OperatorAction, Replay
from tests.documents import client_doc

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _api(user=None) -> Client:
    if user is None:
        return Client()
    return Client(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")


@pytest.fixture
def message(feed, client_ids):
    return change_publish(topic=feed.change, event="add", record=client_doc(next(client_ids)))


def _body(feed, message) -> dict:
    return {
        "topic": feed.change.name,
        "way": "kafka",
        "scope": "messages",
        "target": {"uuids": [str(message.uuid)]},
        "reason": "missing in Redis",
    }


def test_api_replay_permissions(feed, people, message):
    url = reverse("api-recon-replays")
    body = _body(feed, message)
    anonymous = _api().post(url, body, content_type="application/json")
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "not_authenticated")
    outsider = _api(people["outsider"]).post(url, body, content_type="application/json")
    assert outsider.status_code == 404 and outsider.json()["error"]["code"] == "not_found"
    viewer = _api(people["viewer"]).post(url, body, content_type="application/json")
    assert viewer.status_code == 403
    assert not Replay.objects.exists()
    assert OperatorAction.objects.filter(user=people["viewer"], action="replay", outcome="refused").count() == 1

    operator = _api(people["operator"])
    accepted = operator.post(url, body, content_type="application/json")
    assert accepted.status_code == 202
    data = accepted.json()
    assert (data["status"], data["way"], data["requested_by"], data["reason"]) == (
        "queued",
        "kafka",
        "operator1",
        "missing in Redis",
    )
    again = operator.post(url, body, content_type="application/json")  # same request while queued: the same replay
    assert again.status_code == 200 and again.json()["id"] == data["id"]
    assert Replay.objects.count() == 1

    detail = reverse("api-recon-replay", args=[data["id"]])
    assert _api(people["outsider"]).get(detail).status_code == 404
    assert _api(people["viewer"]).get(detail).json()["items"] == []
    assert [r["id"] for r in _api(people["viewer"]).get(url).json()["results"]] == [data["id"]]
    assert _api(people["outsider"]).get(url).json()["results"] == []


def test_api_refuses_a_malformed_replay_with_one_error_shape(feed, people, message):
    body = {**_body(feed, message), "scope": "offsets", "way": "audit"}
    answer = _api(people["operator"]).post(reverse("api-recon-replays"), body, content_type="application/json")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_scope"


def test_api_reprocess_permissions(feed, people, message):
    dead = Finding.objects.create(
        topic=feed.change,
        uuid=message.uuid,
        key=message.key,
        category=Finding.Category.DEAD_LETTERED,
        classification="exception",
        detail={"partition": 0, "offset": message.offset, "reason": "oversize"},
    )
    url = reverse("api-recon-reprocess")
    body = {"findings": [dead.pk], "reason": "limit raised"}
    anonymous = _api().post(url, body, content_type="application/json")
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "not_authenticated")
    assert _api(people["outsider"]).post(url, body, content_type="application/json").status_code == 404
    assert _api(people["viewer"]).post(url, body, content_type="application/json").status_code == 403
    accepted = _api(people["operator"]).post(url, body, content_type="application/json")
    assert accepted.status_code == 202
    assert (accepted.json()["way"], accepted.json()["scope"], accepted.json()["target"]) == (
        "dead-letter",
        "findings",
        {"findings": [dead.pk]},
    )
    assert OperatorAction.objects.get(action="reprocess", user=people["operator"]).outcome == "queued"


def test_page_buttons_and_posts_follow_the_topic_permission(feed, people, message):
    missing = Finding.objects.create(
        topic=feed.change,
        uuid=message.uuid,
        key=message.key,
        category=Finding.Category.MISSING,
        classification="exception",
    )
    page = reverse("dashboard:finding", args=[missing.pk])
    assert "Re-read from Kafka" in _client(people["operator"]).get(page).content.decode()
    assert "Re-read from Kafka" not in _client(people["viewer"]).get(page).content.decode()
    message_page = reverse("dashboard:message", args=[message.uuid])
    assert "Replay from audit log" in _client(people["operator"]).get(message_page).content.decode()
    assert "Replay from audit log" not in _client(people["viewer"]).get(message_page).content.decode()

    url = reverse("dashboard:replay-start")
    post = {"topic": feed.change.name, "scope": "messages", "uuids": str(message.uuid), "way": "kafka", "reason": "x"}
    anonymous = _client().post(url, post)
    assert anonymous.status_code == 302 and reverse("login") in anonymous["Location"]
    assert _client(people["outsider"]).post(url, post).status_code == 404
    assert _client(people["viewer"]).post(url, post).status_code == 403
    assert _client(people["viewer"]).post(url, {**post, "way": ""}).status_code == 403  # malformed: still 403
    answer = _client(people["operator"]).post(url, post)
    replay = Replay.objects.get()
    assert answer.status_code == 302 and answer["Location"] == reverse("dashboard:replay", args=[replay.pk])
    assert (replay.way, replay.target, replay.requested_by) == (
        "kafka",
        {"uuids": [str(message.uuid)]},
        people["operator"],
    )

    # CSRF is enforced on the buttons' posts.
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(people["operator"])
    assert strict.post(url, {**post, "reason": "y"}).status_code == 403
    assert Replay.objects.count() == 1


def test_replays_pages_list_and_show_only_visible_topics(feed, people, message):
    replay = Replay.objects.create(
        topic=feed.change,
        way="kafka",
        scope="messages",
        target={"uuids": [str(message.uuid)]},
        fingerprint=uuid.uuid4().hex,
        reason="card 4111 1111 1111 1111 was pasted here",
        requested_by=people["operator"],
        status="done",
        total=1,
        processed=1,
        outcome={"stored": 1},
    )
    replay.items.create(
        original_uuid=message.uuid, uuid=message.uuid, key=message.key, partition=0, offset=0, outcome="stored"
    )
    listing = _client(people["viewer"]).get(reverse("dashboard:replays")).content.decode()
    assert f'data-replay="{replay.pk}"' in listing and "New replay" not in listing
    assert "4111 1111 1111 1111" not in listing  # the viewer sees no card number, even in free text
    assert "New replay" in _client(people["operator"]).get(reverse("dashboard:replays")).content.decode()
    assert (
        f'data-replay="{replay.pk}"'
        not in _client(people["outsider"]).get(reverse("dashboard:replays")).content.decode()
    )
    detail = reverse("dashboard:replay", args=[replay.pk])
    page = _client(people["operator"]).get(detail).content.decode()
    assert "stored" in page and message.key in page and "4111 1111 1111 1111" in page
    assert _client(people["outsider"]).get(detail).status_code == 404
    assert _client().get(detail).status_code == 302


def test_the_replays_page_form_turns_each_scope_into_its_target(feed, people, message):
    client = _client(people["operator"])
    url = reverse("dashboard:replay-start")
    base = {"topic": feed.change.name, "reason": "ops ticket 7"}
    client.post(
        url, {**base, "way": "kafka", "scope": "offsets", "partition": "0", "start_offset": "3", "end_offset": "9"}
    )
    client.post(
        url, {**base, "way": "dead-letter", "scope": "range", "start": "2026-11-25T10:00", "end": "2026-11-25T11:00"}
    )
    client.post(url, {**base, "way": "source", "scope": "clients", "keys": "client:7, 8", "source": "ods"})
    bad = client.post(
        url, {**base, "way": "kafka", "scope": "offsets", "partition": "0", "start_offset": "9", "end_offset": "3"}
    )
    assert bad.status_code == 302
    targets = {r.way: r.target for r in Replay.objects.all()}
    assert targets == {
        "kafka": {"partition": 0, "start_offset": 3, "end_offset": 9},
        "dead-letter": {"start": "2026-11-25T10:00:00+00:00", "end": "2026-11-25T11:00:00+00:00"},
        "source": {"keys": ["client:7", "client:8"], "source": "ods"},
    }
