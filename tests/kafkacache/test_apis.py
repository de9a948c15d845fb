"""The feed's API: who may start loads, publish changes and read the cache, and what they see."""

import pytest
from rest_framework.test import APIClient

from core.records import record_encode, record_from_document
from kafkacache.cache import CacheOp, cache_apply
from recon.access import topic_grant
from recon.models import Load, OperatorAction, PublishedMessage
from recon.services.feed import feed_topics_ensure
from tests.documents import DOC
from tests.factories import UserFactory
from tests.people import people_make

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def topics(feed):
    return feed_topics_ensure()


@pytest.fixture
def people(topics):
    """Viewer and operator of every feed topic, and an outsider (the feed's own usernames)."""
    return people_make(
        viewed=topics.values(),
        operated=topics.values(),
        roles=("viewer", "operator", "outsider"),
        usernames={role: f"{role}-feed" for role in ("viewer", "operator", "outsider")},
        password="pw-feed-123",
        role_groups=False,
    )


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def cached_load(topics, cache):
    """A finished load whose two records are in the cache (written as the consumer would)."""
    load = Load.objects.create(topic=topics["bulk"], source="ods", status=Load.Status.DONE)
    ops = []
    for client_id in (11, 12):
        encoded = record_encode(record_from_document({**DOC, "client_id": client_id}))
        ops.append(
            CacheOp(
                "bulk", f"client:{client_id}", 1, encoded.value, "u", 1, load=load.retrieval_key, topic=load.topic.name
            )
        )
    cache_apply(cache, ops)
    return load


def test_anonymous_callers_are_refused_everywhere(cached_load):
    anonymous = api()
    for response in (
        anonymous.post("/api/loads", {"source": "ods"}, format="json"),
        anonymous.get(f"/api/loads/{cached_load.id}"),
        anonymous.get("/api/loads"),
        anonymous.post("/api/changes", {"event": "delete", "key": "client:1"}, format="json"),
        anonymous.get(f"/api/cache/{cached_load.retrieval_key}"),
    ):
        assert response.status_code == 401
        assert set(response.json()["error"]) == {"code", "message", "details"}


def test_outsiders_get_404_and_learn_nothing(people, cached_load):
    outsider = api(people["outsider"])
    assert outsider.get(f"/api/loads/{cached_load.id}").status_code == 404
    assert outsider.get(f"/api/cache/{cached_load.retrieval_key}").status_code == 404
    assert outsider.post("/api/loads", {"source": "ods"}, format="json").status_code == 404
    assert outsider.post("/api/changes", {"event": "delete", "key": "client:1"}, format="json").status_code == 404
    assert outsider.get("/api/loads").json()["count"] == 0
    assert not Load.objects.exclude(id=cached_load.id).exists()


def test_viewers_read_but_may_not_start_loads_or_publish(people, cached_load):
    viewer = api(people["viewer"])
    state = viewer.get(f"/api/loads/{cached_load.id}")
    assert state.status_code == 200 and state.json()["status"] == "done"
    assert viewer.post("/api/loads", {"source": "ods"}, format="json").status_code == 403
    assert viewer.post("/api/changes", {"event": "delete", "key": "client:1"}, format="json").status_code == 403
    assert not OperatorAction.objects.exclude(action="grant").exists()  # the fixture's grants only


def test_cache_is_masked_for_viewers_and_decrypted_for_payload_permission(people, cached_load):
    masked = api(people["viewer"]).get(f"/api/cache/{cached_load.retrieval_key}").json()
    assert (masked["count"], masked["decrypted"]) == (2, False)
    card = masked["results"][0]["record"]["cards"][0]["card_number"]
    account = masked["results"][0]["record"]["accounts"][0]["account_number"]
    assert (card, account) == ("**** **** **** 1111", "****0001")
    assert "4111111111111111" not in str(masked)

    clear = api(people["operator"]).get(f"/api/cache/{cached_load.retrieval_key}?limit=1&offset=1").json()
    assert (clear["count"], clear["decrypted"], len(clear["results"])) == (2, True, 1)
    assert clear["results"][0]["key"] == "client:12"
    assert clear["results"][0]["record"]["cards"][0]["card_number"] == "4111111111111111"
    assert clear["results"][0]["record"]["accounts"][0]["account_number"] == "3000900001"


def test_a_record_is_decrypted_only_for_payload_permission_on_the_topic_that_wrote_it(topics, cached_load, cache):
    bulk_operator = UserFactory(username="bulk-only", password="pw-feed-123")
    topic_grant(bulk_operator, topics["bulk"], "operator")  # payload permission on the bulk topic only
    changed = record_encode(record_from_document({**DOC, "client_id": 12, "name": "Changed"}))
    cache_apply(cache, [CacheOp("update", "client:12", 2, changed.value, "u2", 1, topic=topics["change"].name)])
    body = api(bulk_operator).get(f"/api/cache/{cached_load.retrieval_key}").json()
    by_key = {item["key"]: item for item in body["results"]}
    assert by_key["client:11"]["decrypted"] and by_key["client:11"]["topic"] == topics["bulk"].name
    assert by_key["client:11"]["record"]["cards"][0]["card_number"] == "4111111111111111"
    # client 12 was written since by the change topic: this caller may not see its numbers
    assert not by_key["client:12"]["decrypted"] and by_key["client:12"]["topic"] == topics["change"].name
    assert by_key["client:12"]["record"]["cards"][0]["card_number"] == "**** **** **** 1111"
    assert by_key["client:12"]["version"] == 2
    assert "4111111111111111" not in str(by_key["client:12"])


def test_a_deleted_record_is_listed_as_deleted(people, cached_load, cache):
    cache_apply(cache, [CacheOp("delete", "client:11", 2)])
    body = api(people["operator"]).get(f"/api/cache/{cached_load.retrieval_key}").json()
    first = body["results"][0]
    assert (first["key"], first["state"], first["record"]) == ("client:11", "deleted", None)


def test_operator_starts_a_load_and_gets_202_with_the_retrieval_key(people, topics, django_capture_on_commit_callbacks):
    operator = api(people["operator"])
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = operator.post("/api/loads", {"source": "ods", "client_ids": [3, 1, 3]}, format="json")
    assert response.status_code == 202
    body = response.json()
    load = Load.objects.get(id=body["id"])
    assert body["retrieval_key"] == load.retrieval_key
    assert body["status_url"] == f"/api/loads/{load.id}"
    assert (load.topic, load.client_ids, load.status, load.requested_by) == (
        topics["bulk"],
        [1, 3],
        "queued",
        people["operator"],
    )
    assert len(queued) == 1  # the Celery task, queued on commit
    assert OperatorAction.objects.filter(user=people["operator"], action="load.start").count() == 1
    progress = operator.get(body["status_url"]).json()
    assert {k: progress[k] for k in ("status", "built", "published", "failed", "exceptions", "parts")} == {
        "status": "queued",
        "built": 0,
        "published": 0,
        "failed": 0,
        "exceptions": 0,
        "parts": 0,  # split once a worker takes it
    }


def test_bad_load_and_change_requests_get_the_error_shape(people):
    operator = api(people["operator"])
    bad_source = operator.post("/api/loads", {"source": "db2"}, format="json")
    assert bad_source.status_code == 400 and bad_source.json()["error"]["code"] == "bad_source"
    bad_ids = operator.post("/api/loads", {"source": "ods", "client_ids": ["x"]}, format="json")
    assert bad_ids.status_code == 400 and "client_ids" in bad_ids.json()["error"]["details"]
    escape = operator.post("/api/loads", {"source": "file:../settings.py"}, format="json")
    assert escape.status_code == 400
    bad_record = operator.post("/api/changes", {"event": "add", "record": {"client_id": 1}}, format="json")
    assert bad_record.status_code == 400 and bad_record.json()["error"]["code"] == "bad_record"
    assert operator.get("/api/loads/00000000-0000-0000-0000-000000000000").status_code == 404


def test_operator_publishes_a_change(people, topics):
    response = api(people["operator"]).post(
        "/api/changes", {"event": "update", "record": DOC, "old_key": "client:7"}, format="json"
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["status"], body["status_url"]) == ("published", f"/api/changes/{body['uuid']}")
    row = PublishedMessage.objects.get(uuid=body["uuid"])
    assert (row.key, row.event_type, row.offset) == ("client:900001", "update", body["offset"])
    assert OperatorAction.objects.get(action="change.publish").target == f"message:{body['uuid']}"
