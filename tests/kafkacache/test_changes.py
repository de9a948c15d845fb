"""Change events: add, update with a key change, delete (also of a key never cached)."""

import pytest
from django.db import connection

from config.errors import AppError
from core.cache_records import cache_records_get, tombstones_get
from core.ods import ods_seed
from core.records import record_decode
from core.sources import Change, document_of
from kafkacache.models import FeedCursor
from kafkacache.services.change_feed import change_feed_run, change_publish, changes_coalesce
from kafkacache.services.loads import load_run, load_start
from recon.models import ConsumedMessage, Finding, OperatorAction, PublishedMessage
from recon.services.feed import feed_topics_ensure
from tests.documents import DOC

from .conftest import cached_keys, consume_all, source_records

pytestmark = pytest.mark.integration


def _cached(cache, key):
    hit = cache_records_get(cache, [key]).get(key)
    return record_decode(hit.value, schema_version=hit.schema_version, decrypt=True) if hit else None


@pytest.mark.django_db
def test_api_style_change_events_give_the_expected_cache(feed, cache):
    change = feed_topics_ensure()["change"]
    change_publish(topic=change, event="add", record=DOC, version=1)
    change_publish(topic=change, event="add", record={**DOC, "client_id": 900003}, version=2)
    consume_all()
    assert cached_keys(cache) == {"client:900001", "client:900003"}

    moved = {**DOC, "client_id": 900002, "name": "Grace B. Hopper"}
    change_publish(topic=change, event="update", record=moved, old_key="client:900001", version=3)
    change_publish(topic=change, event="delete", key="client:900003", version=4)
    change_publish(topic=change, event="delete", key="client:424242", version=5)  # never cached
    consume_all()

    assert cached_keys(cache) == {"client:900002"}
    assert _cached(cache, "client:900002")["name"] == "Grace B. Hopper"
    assert cache_records_get(cache, ["client:900002"])["client:900002"].version == 3
    tombstones = tombstones_get(cache, ["client:900001", "client:424242"])
    assert tombstones["client:900001"] == 3  # the renumbering's delete of the old key, at its version
    assert tombstones["client:424242"] == 5  # the tombstone of a delete of nothing
    outcomes = sorted(ConsumedMessage.objects.filter(topic=change).values_list("outcome", flat=True))
    assert outcomes == ["deleted", "deleted", "stored", "stored", "stored"]
    assert PublishedMessage.objects.filter(topic=change).count() == 5


@pytest.mark.django_db
def test_a_redelivered_or_late_older_message_does_not_undo_a_newer_one(feed, cache):
    change = feed_topics_ensure()["change"]
    change_publish(topic=change, event="add", record=DOC)
    change_publish(topic=change, event="update", record={**DOC, "client_id": 900002}, old_key="client:900001")
    consume_all()
    # the same messages again (a consumer group starting from the beginning)
    feed.KAFKA_CONSUMER_GROUP = feed.KAFKA_CONSUMER_GROUP + "-again"
    consume_all()
    assert cached_keys(cache) == {"client:900002"}


@pytest.mark.django_db
def test_bad_change_requests_are_refused_and_oversize_is_recorded(feed, cache, settings):
    change = feed_topics_ensure()["change"]
    with pytest.raises(AppError, match="event must be"):
        change_publish(topic=change, event="upsert", record=DOC)
    with pytest.raises(AppError, match="needs the key"):
        change_publish(topic=change, event="delete")
    with pytest.raises(AppError, match="does not match"):
        change_publish(topic=change, event="add", key="client:1", record=DOC)
    with pytest.raises(AppError, match="card_number"):
        change_publish(topic=change, event="add", record={**DOC, "cards": [{**DOC["cards"][0], "card_number": "x"}]})
    settings.MESSAGE_MAX_BYTES = 300
    with pytest.raises(AppError, match="over the 300-byte limit") as refused:
        change_publish(topic=change, event="add", record=DOC, requested_by=None)
    assert refused.value.code == "oversize"
    finding = Finding.objects.get(topic=change, category="oversize")
    assert finding.key == "client:900001" and finding.detail["limit"] == 300
    assert not PublishedMessage.objects.filter(topic=change).exists()
    assert not OperatorAction.objects.filter(action="change.publish").exists()


def test_changes_coalesce_one_message_per_client_and_keep_old_keys():
    plan = changes_coalesce(
        [
            Change(1, 5, None, "add", 101),
            Change(2, 5, None, "update", 102),  # a card of the new client
            Change(3, 6, None, "update", 103),
            Change(4, 60, 6, "update", 104),  # client 6 renumbered to 60
            Change(5, 7, None, "update", 105),
            Change(6, 7, None, "delete", 106),
            Change(7, 7, None, "update", 107),  # its cards, deleted by the cascade (older triggers wrote these)
            Change(8, 8, None, "delete", 108),
            Change(9, 8, None, "add", 109),  # deleted and added again
        ]
    )
    assert plan == [
        (5, "add", 102, []),
        (6, "update", 103, []),  # its own change stays its own: nothing carried to 60
        (60, "update", 104, [(6, 104)]),  # the renumbering, with its version for the old key's delete
        (7, "delete", 107, []),
        (8, "add", 109, []),
    ]


def test_changes_coalesce_never_crosses_identities():
    # client 5 renumbered to 9, a new client 5 inserted, then a change of 9: the old
    # key's delete keeps the renumbering's version, older than the new client 5
    assert changes_coalesce(
        [Change(1, 9, 5, "update", 10), Change(2, 5, None, "add", 11), Change(3, 9, None, "update", 12)]
    ) == [(5, "add", 11, []), (9, "update", 12, [(5, 10)])]
    # delete 41, then renumber 40 to 41: 41 lives on (the renumbered record), 40 goes
    assert changes_coalesce([Change(1, 41, None, "delete", 20), Change(2, 41, 40, "update", 21)]) == [
        (41, "update", 21, [(40, 21)])
    ]


@pytest.mark.django_db(transaction=True)
def test_the_change_feed_publishes_source_changes(feed, cache):
    ods_seed(clients=30, using="default")
    bulk = feed_topics_ensure()["bulk"]
    load = load_start(topic=bulk, source="ods", client_ids=None, requested_by=None, queue=False)
    assert load_run(load_id=load.id).published == 30
    change_feed_run()  # nothing yet: the seed is not a change
    assert FeedCursor.objects.get(source="ods").published == 0
    consume_all()
    assert len(cached_keys(cache)) == 30

    new = document_of(source_records([1])["client:1"])
    with connection.cursor() as cursor:
        # add: a new client with an account and a card, in one transaction
        cursor.execute(
            "INSERT INTO ods.clients (client_id, name, email, segment, status, country, updated_at)"
            " VALUES (100, 'New Client', NULL, 'retail', 'active', 'NL', now())"
        )
        cursor.execute(
            "INSERT INTO ods.cards (card_id, client_id, card_number, brand, expiry, status)"
            " VALUES (1000, 100, '4000000000000002', 'visa', '02/31', 'active')"
        )
        # update with a key change: client 5 becomes client 500 (its cards follow)
        cursor.execute("UPDATE ods.clients SET client_id = 500, name = 'Renumbered' WHERE client_id = 5")
        # update of a card only
        cursor.execute("UPDATE ods.cards SET status = 'blocked' WHERE client_id = 6")
        # delete
        cursor.execute("DELETE FROM ods.clients WHERE client_id = 7")
        # delete of a key never cached: added and removed before the feed ran
        cursor.execute(
            "INSERT INTO ods.clients (client_id, name, segment, status, country) VALUES (8888, 'Brief', 'x', 'y', 'US')"
        )
        cursor.execute("DELETE FROM ods.clients WHERE client_id = 8888")

    stats = change_feed_run()
    assert stats["published"] == 5  # add 100, update 500 (old key 5), update 6, delete 7, delete 8888
    assert change_feed_run()["changes"] == 0  # published changes are gone from the change table
    assert FeedCursor.objects.get(source="ods").published == 5
    consume_all()

    expected = source_records()
    assert cached_keys(cache) == set(expected)
    assert "client:5" not in expected and "client:7" not in expected and "client:500" in expected
    for key in ("client:100", "client:500", "client:6"):
        assert _cached(cache, key) == expected[key]
    assert _cached(cache, "client:6")["cards"][0]["status"] == "blocked"
    assert new["client_id"] == 1  # untouched clients stay as loaded
    assert _cached(cache, "client:1") == expected["client:1"]
    published = dict(PublishedMessage.objects.filter(topic__kind="change").values_list("key", "event_type"))
    assert published == {
        "client:100": "add",
        "client:500": "update",
        "client:6": "update",
        "client:7": "delete",
        "client:8888": "delete",
    }
