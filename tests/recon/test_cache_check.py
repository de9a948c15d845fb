"""The cache leg against the real Redis, and validation of cached data."""

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from core.cache_records import cache_records_get
from core.clients import redis_client
from core.hashing import content_hash
from core.ods import ods_seed
from core.records import record_encode
from core.sources import SqlSource
from kafkacache.consumer import FeedConsumer
from kafkacache.services.change_feed import change_feed_run
from kafkacache.services.loads import load_run, load_start
from recon import access, tasks
from recon.models import Finding, Load, ReconRun
from recon.services.cache_check import cache_check
from recon.services.ledger import ConsumedRow, PublishedRow, consumed_record, published_record
from recon.services.runs import replay_verify
from recon.services.validation import expiry_end, luhn_valid, record_problems, validation_run
from replay.services.requests import replay_request
from replay.services.runs import replay_run
from tests.cache_state import cached, record_forge, records_drop
from tests.factories import UserFactory
from tests.recon.helpers import T0, topic_make
from tests.replay.conftest import feed_topics_make, fetch

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

RANGE = {"start": T0, "end": T0 + dt.timedelta(hours=1)}


def _record(
    client_id: int, *, card: str = "4111111111111111", expiry: str = "12/30", name: str = "Ann", country: str = "DE"
) -> dict:
    return {
        "client_id": client_id,
        "name": name,
        "email": None,
        "segment": "retail",
        "status": "active",
        "country": country,
        "updated_at": T0,
        "accounts": [],
        "cards": [
            {
                "card_id": client_id * 10,
                "card_number": card,
                "card_last4": card[-4:],
                "brand": "visa",
                "expiry": expiry,
                "status": "active",
            }
        ],
    }


def _feed(topic, records: dict[str, dict], *, deleted: tuple[str, ...] = ()) -> dict[str, uuid.UUID]:
    """Publish, consume and cache like the feed does; answers each key's message UUID."""
    redis = redis_client()
    published, consumed, uuids = [], [], {}
    for i, (key, plain) in enumerate(records.items()):
        value = record_encode(plain).value
        message = uuids[key] = uuid.uuid4()
        at = T0 + dt.timedelta(seconds=i)
        event = "delete" if key in deleted else "add"
        value_hash = content_hash(value)
        published.append(PublishedRow(message, 0, i, key, event, value_hash, len(value), at))
        outcome = "deleted" if key in deleted else "stored"
        consumed.append(ConsumedRow(message, "g", 0, i, key, value_hash, at, at, outcome))
        if key in deleted:
            records_drop(redis, [key])
        else:
            record_forge(redis, key, value=value, uuid=str(message), schema_version=1, created_ms=0)
    published_record(topic=topic, rows=published)
    consumed_record(topic=topic, rows=consumed)
    return uuids


def _id(key: str) -> int:
    return int(key.split(":")[1])


@pytest.fixture
def keys():
    base = uuid.uuid4().int % 10**12 * 10  # fresh client ids: the Redis db is shared by this module's tests
    names = [f"client:{base + i}" for i in range(6)]
    yield names
    records_drop(redis_client(), names)


def test_clean_cache_matches(keys):
    topic = topic_make("cache-clean")
    _feed(topic, {k: _record(_id(k)) for k in keys[:4]}, deleted=(keys[3],))
    run = cache_check(topic=topic, **RANGE)
    assert run.kind == ReconRun.Kind.CACHE and run.status == "done"
    assert run.report["checked"] == 4 and run.report["deleted_checked"] == 1
    assert run.report["all_matched"] is True and run.report["problems"] == {}


def test_changes_behind_the_consumers_back_are_found_and_cleared_when_fixed(keys):
    topic = topic_make("cache-tamper")
    changed, removed, resurrected, fine = keys[:4]
    uuids = _feed(topic, {k: _record(_id(k)) for k in keys[:4]}, deleted=(resurrected,))
    redis = redis_client()
    good_value = cached(redis, changed).value
    record_forge(redis, changed, value=record_encode(_record(_id(changed), name="Mallory")).value)
    records_drop(redis, [removed])
    record_forge(redis, resurrected, value=b"stale", uuid="x")

    run = cache_check(topic=topic, **RANGE)
    assert run.report["all_matched"] is False
    assert {p: e["keys"] for p, e in run.report["problems"].items()} == {
        "differs": [changed],
        "absent": [removed],
        "unexpected": [resurrected],  # issue 12: a deleted key the cache still holds
    }
    findings = {f.key: f for f in Finding.objects.filter(topic=topic, category="cache")}
    assert set(findings) == {changed, removed, resurrected}
    assert findings[changed].uuid == uuids[changed] and findings[changed].detail["source"] == "cache-check"
    assert fine not in findings

    # Repaired: a second check resolves what it no longer finds and adds no copies.
    record_forge(redis, changed, value=good_value)
    run = cache_check(topic=topic, **RANGE)
    assert set(run.report["problems"]) == {"absent", "unexpected"}
    standing = Finding.objects.filter(topic=topic, category="cache").exclude(status="resolved")
    assert sorted(standing.values_list("key", flat=True)) == sorted([removed, resurrected])
    assert Finding.objects.get(topic=topic, key=changed).status == "resolved"


def test_the_latest_delivery_of_a_key_is_what_counts(keys):
    topic = topic_make("cache-latest")
    key = keys[0]
    _feed(topic, {key: _record(_id(key), name="v1")})
    # a later update of the same key, consumed and cached
    later = record_encode(_record(_id(key), name="v2")).value
    message = uuid.uuid4()
    at = T0 + dt.timedelta(minutes=10)
    published_record(
        topic=topic, rows=[PublishedRow(message, 0, 9, key, "update", content_hash(later), len(later), at)]
    )
    consumed_record(topic=topic, rows=[ConsumedRow(message, "g", 0, 9, key, content_hash(later), at, at, "stored")])
    record_forge(redis_client(), key, value=later, uuid=str(message))
    assert cache_check(topic=topic, **RANGE).report["all_matched"] is True


def test_luhn_and_expiry_rules():
    assert luhn_valid("4111111111111111") and luhn_valid("5500000000000004")
    assert not luhn_valid("4111111111111112") and not luhn_valid("41111") and not luhn_valid("4111-1111-1111-1111")
    assert expiry_end("02/28") == dt.date(2028, 2, 29) and expiry_end("12/30") == dt.date(2030, 12, 31)
    assert expiry_end("13/30") is None and expiry_end("2030-12") is None
    today = dt.date(2026, 11, 25)
    assert record_problems(_record(1), today=today) == []
    problems = record_problems(_record(1, card="4111111111111112", expiry="10/26", name=" "), today=today)
    assert problems == [
        "name: required",
        "cards[0].card_number: fails the Luhn check (ending 1112)",
        "cards[0].expiry: 10/26 is past",
    ]


def test_validation_reports_invalid_cached_records_apart_from_transport(keys):
    topic = topic_make("validate")
    records = {
        keys[0]: _record(_id(keys[0])),
        keys[1]: _record(_id(keys[1]), card="4111111111111112"),  # fails Luhn (garbage in...)
        keys[2]: _record(_id(keys[2]), expiry="01/25", country="Germany"),  # expired, and not ISO 3166
    }
    _feed(topic, records)
    record_forge(redis_client(), keys[3], value=b"\xff\xfe not avro", uuid=str(uuid.uuid4()), schema_version=1)
    consumed_record(
        topic=topic,
        rows=[ConsumedRow(uuid.uuid4(), "g", 0, 50, keys[3], content_hash(b"x"), T0, T0, "stored")],
    )
    run = validation_run(topic=topic, today=dt.date(2026, 11, 25), **RANGE)
    assert run.kind == ReconRun.Kind.VALIDATION
    assert run.report["checked"] == 4
    assert run.report["invalid"] == {"count": 3, "keys": sorted(keys[1:4])}
    findings = {f.key: f for f in Finding.objects.filter(topic=topic, category="invalid-data")}
    assert set(findings) == set(keys[1:4])
    assert "Luhn" in findings[keys[1]].detail["problems"][0]
    assert "4111111111111112" not in str(findings[keys[1]].detail)  # never the full number
    assert "does not decode" in findings[keys[3]].detail["problems"][0]
    # the feed's clear-field checks run too
    assert any("ISO-3166" in p for p in findings[keys[2]].detail["problems"])
    assert any("is past" in p for p in findings[keys[2]].detail["problems"])
    # ...and transport reconciliation of the same data stays clean of them.
    assert not Finding.objects.filter(topic=topic).exclude(category="invalid-data").exists()


def test_a_failing_check_is_stored_as_failed_with_its_error(keys):
    topic = topic_make("cache-broken")
    _feed(topic, {keys[0]: _record(_id(keys[0]))})
    record_forge(redis_client(), keys[0], value=b"changed")
    topic.hash_algorithm = "md5"  # not an algorithm the product knows: the compare cannot hash
    topic.save(update_fields=["hash_algorithm"])
    with pytest.raises(ValueError, match="unknown hash algorithm"):
        cache_check(topic=topic, **RANGE)
    run = ReconRun.objects.get(topic=topic)
    assert run.status == "failed" and "unknown hash algorithm" in run.report["error"]


# --- the third leg against the SQL source, on the real Kafka, Redis and PostgreSQL ---------------


def _consume_all(topic_name: str, start: int) -> int:
    """Everything on the (one-partition) topic from `start` on, through the feed's consumer; answers the next offset."""
    from confluent_kafka import TopicPartition

    from core.clients import make_consumer

    consumer = make_consumer(f"{topic_name}-probe", **{"enable.auto.commit": False})
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=10)
    finally:
        consumer.close()
    if high > start:
        FeedConsumer().process_batch(fetch(topic_name, start, high - start))
    return high


def _later() -> dt.datetime:
    return timezone.now() + dt.timedelta(hours=2)  # past every latency limit: nothing is in flight


@pytest.fixture
def feed(settings, unique_name):
    return feed_topics_make(settings, unique_name)


def test_each_divergence_from_the_sql_source_is_found_and_a_replay_from_source_closes_it(feed, cache):
    bulk, change = feed.bulk, feed.change
    operator = UserFactory(username="leg-operator")
    access.topic_grant(operator, bulk, "operator")
    ods_seed(clients=8, using="default")
    load = load_run(load_id=load_start(topic=bulk, source="ods", client_ids=[], requested_by=None, queue=False).id)
    assert load.status == Load.Status.DONE
    bulk_next = _consume_all(bulk.name, 0)

    # A renumbering through the change feed: the old key's delete is versioned, so the old
    # key is expected absent (not a finding) and the new one is the change topic's.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ods.clients SET client_id = 100 WHERE client_id = 5")
    change_feed_run(source=SqlSource())
    change_next = _consume_all(change.name, 0)
    assert cached(cache, "client:5") is None and cached(cache, "client:100") is not None
    clean = cache_check(topic=bulk, now=_later()).report
    assert (clean["reference"], clean["all_matched"], clean["checked"], clean["other_topic"]) == ("ods", True, 7, 1)
    assert cache_check(topic=change, now=_later()).report["all_matched"] is True
    # Against the publish ledger too: the load published client:5, the renumbering's versioned
    # delete (its tombstone) is newer, so its absence is the truth, not a finding.
    since = timezone.now() - dt.timedelta(hours=1)
    ledger = cache_check(topic=bulk, start=since, end=timezone.now(), now=_later()).report
    assert (ledger["reference"], ledger["checked"], ledger["all_matched"]) == ("publish ledger", 8, True)

    # Each kind of divergence, made behind the feed's back (the change feed does not run).
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ods.clients SET name = 'Newer Name' WHERE client_id = 1")  # stale
        cursor.execute("DELETE FROM ods.clients WHERE client_id = 3")  # unexpected
        cursor.execute("SELECT row_version FROM ods.clients WHERE client_id = 1")
        source_version = cursor.fetchone()[0]
    cached_1 = cache_records_get(cache, ["client:1"])["client:1"]
    records_drop(cache, ["client:2"])  # absent: lost behind the consumer's back
    record_forge(cache, "client:4", value=record_encode(_record(4, name="Mallory")).value)  # differs
    record_forge(cache, "client:999999", value=b"junk", uuid="x", schema_version=1, created_ms=0)  # unexpected

    run = cache_check(topic=bulk, now=_later(), trigger="test")
    problems = {kind: entry["keys"] for kind, entry in run.report["problems"].items()}
    assert problems == {
        "stale": ["client:1"],
        "absent": ["client:2"],
        "unexpected": ["client:3", "client:999999"],
        "differs": ["client:4"],
    }
    findings = {f.key: f for f in Finding.objects.filter(topic=bulk, category="cache")}
    assert set(findings) == {"client:1", "client:2", "client:3", "client:4", "client:999999"}
    stale = findings["client:1"].detail
    assert (stale["problem"], stale["source_version"], stale["cached_version"]) == (
        "stale",
        source_version,
        cached_1.version,
    )
    assert "replay from source" in stale["fix"] and "client:1" in stale["fix"]
    assert findings["client:1"].uuid == uuid.UUID(cached_1.uuid)
    differs = findings["client:4"].detail
    assert (
        differs["cached_hash"] != differs["published_hash"] and differs["cached_version"] == differs["source_version"]
    )
    assert findings["client:3"].detail["source_version"] is None

    # Found again: kept, never duplicated.
    again = cache_check(topic=bulk, now=_later(), trigger="test").report
    assert again["findings"] == {"new": 0, "updated": 5, "resolved": 0}
    assert Finding.objects.filter(topic=bulk, category="cache").count() == 5

    replay, _ = replay_request(
        topic=bulk,
        way="source",
        scope="clients",
        target={"keys": sorted(findings)},
        reason="cache leg findings",
        requested_by=operator,
        queue=False,
    )
    replay = replay_run(replay_id=replay.pk)
    assert replay.status == "done"
    _consume_all(bulk.name, bulk_next)
    fixed = cache_check(topic=bulk, now=_later(), trigger="test").report
    assert fixed["all_matched"] is True and fixed["findings"] == {"new": 0, "updated": 0, "resolved": 5}
    for finding in Finding.objects.filter(topic=bulk, category="cache"):
        assert finding.status == "resolved"
        assert (finding.detail["resolved_by"], finding.detail["replay"]) == ("replay", str(replay.pk))
    assert cached(cache, "client:3") is None and cached(cache, "client:999999") is None
    # The cache leg after the replay (its verification, recon.services.runs.replay_verify), scoped to its keys.
    cache_run = next(r for r in replay_verify(replay_id=replay.pk) or [] if r.kind == "cache")
    assert tasks.run_execute_task(str(cache_run.pk)) == "done"
    after = ReconRun.objects.get(pk=cache_run.pk).report
    assert (after["reference"], after["checked"], after["all_matched"]) == ("ods", 5, True)
    assert change_next == _consume_all(change.name, change_next)  # nothing went to the change topic


def test_a_key_in_flight_is_pending_not_a_finding(feed, cache):
    """A fix published within the latency limit is on its way: judged by the next run."""
    bulk = feed.bulk
    ods_seed(clients=2, using="default")
    load_run(load_id=load_start(topic=bulk, source="ods", client_ids=[], requested_by=None, queue=False).id)
    # nothing consumed yet: both published moments ago
    report = cache_check(topic=bulk).report
    assert (report["pending"], report["all_matched"], report["findings"]["new"]) == (2, True, 0)
    report = cache_check(topic=bulk, now=_later()).report
    assert report["problems"] == {"absent": {"count": 2, "keys": ["client:1", "client:2"]}}


def test_a_file_source_is_checked_by_its_last_load_and_a_replay_of_the_load_closes_it(feed, cache, tmp_path, settings):
    import json

    from tests.documents import client_doc

    settings.SOURCE_FILE_DIR = str(tmp_path)
    bulk = feed.bulk
    operator = UserFactory(username="leg-file-operator")
    access.topic_grant(operator, bulk, "operator")
    docs = [{**client_doc(i), "version": 10 + i} for i in (1, 2, 3)]
    (tmp_path / "export.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    load = load_run(
        load_id=load_start(topic=bulk, source="file:export.jsonl", client_ids=None, requested_by=None, queue=False).id
    )
    _consume_all(bulk.name, 0)
    clean = cache_check(topic=bulk, now=_later()).report
    assert (clean["reference"], clean["checked"], clean["all_matched"]) == (
        f"load {load.pk} of file:export.jsonl",
        3,
        True,
    )

    records_drop(cache, ["client:1"])
    record_forge(cache, "client:2", version=5)
    record_forge(cache, "client:3", value=b"not what was published")
    report = cache_check(topic=bulk, now=_later()).report
    assert {k: e["keys"] for k, e in report["problems"].items()} == {
        "absent": ["client:1"],
        "stale": ["client:2"],
        "differs": ["client:3"],
    }
    stale = Finding.objects.get(topic=bulk, key="client:2").detail
    assert (stale["source_version"], stale["cached_version"]) == (12, 5) and f"scope load {load.pk}" in stale["fix"]

    replay, _ = replay_request(
        topic=bulk,
        way="source",
        scope="load",
        target={"load": str(load.pk)},
        reason="leg",
        requested_by=operator,
        queue=False,
    )
    assert replay_run(replay_id=replay.pk).status == "done"
    _consume_all(bulk.name, 3)
    fixed = cache_check(topic=bulk, now=_later()).report
    assert fixed["all_matched"] is True and fixed["findings"]["resolved"] == 3


def test_the_schedule_runs_the_leg_of_every_feed_topic_and_a_replay_queues_it(
    feed, cache, django_capture_on_commit_callbacks
):
    ods_seed(clients=2, using="default")
    ids = tasks.cache_legs_due()
    assert set(ids) >= {feed.bulk.pk, feed.change.pk} and topic_make("leg-other").pk not in tasks.cache_legs_due()
    run = ReconRun.objects.get(pk=tasks.cache_leg_task(feed.change.pk))
    assert (run.kind, run.trigger, run.status) == ("cache", "schedule", "done")

    operator = UserFactory(username="leg-queue-operator")
    access.topic_grant(operator, feed.bulk, "operator")
    replay, _ = replay_request(
        topic=feed.bulk,
        way="source",
        scope="clients",
        target={"keys": ["client:424242"]},
        reason="leg",
        requested_by=operator,
        queue=False,
    )
    with django_capture_on_commit_callbacks() as callbacks:
        replay_run(replay_id=replay.pk)
    assert len(callbacks) == 1  # its verification (windows, and the cache leg of its keys), queued on commit


def test_on_demand_cache_run_without_a_range_checks_the_whole_topic(feed, cache, django_capture_on_commit_callbacks):
    from rest_framework.test import APIClient

    # Its source holds nothing: a transactional test run earlier in this process may have left rows in it.
    ods_seed(clients=0, using="default")
    operator = UserFactory(username="leg-api-operator")
    access.topic_grant(operator, feed.bulk, "operator")
    api = APIClient()
    api.force_authenticate(operator)
    with django_capture_on_commit_callbacks(execute=False):
        response = api.post("/api/recon/runs", {"topic": feed.bulk.name, "kind": "cache"}, format="json")
    # Queued (202 + status URL, issue 15), then run by a worker as one run of the whole topic.
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued" and response.json()["trigger"] == "api"
    assert tasks.run_execute_task(response.json()["id"]) == "done"
    response = api.get(response.json()["status_url"])
    report = response.json()["report"]
    assert (report["reference"], report["all_matched"], response.json()["trigger"]) == ("ods", True, "api"), report
