"""The cache ends equal to the system of record whatever the arrival order (issue 12's scenarios).

Each scenario once left Redis wrong with every check green when writes were
ordered by the producer's clock. Real Kafka, Redis and PostgreSQL throughout.
"""

import datetime as dt
import json
import subprocess
import sys

import pytest
from django.db import connection

from core.cache_records import cache_records_get
from core.ods import ods_seed
from core.record_checks import record_problems
from core.records import record_decode, record_encode, record_from_document
from core.sources import SqlSource, document_of
from kafkacache.messages import message_build, now_ms
from kafkacache.services.change_feed import change_feed_run, change_publish
from kafkacache.services.loads import load_run, load_start
from kafkacache.services.publishing import items_publish, messages_publish
from recon.models import ConsumedMessage, Finding, PublishedMessage, Replay
from recon.services.feed import feed_topics_ensure
from replay.services.requests import replay_request
from replay.services.runs import replay_run
from tests.documents import DOC

from ..conftest import ROOT
from .conftest import cached_keys, consume_all, source_records

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _cached(cache, key: str) -> dict | None:
    hit = cache_records_get(cache, [key]).get(key)
    return record_decode(hit.value, schema_version=hit.schema_version, decrypt=True) if hit else None


def _sql(*statements: str) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def _assert_cache_is_the_source(cache) -> None:
    expected = source_records()
    assert cached_keys(cache) == set(expected)
    for key, record in expected.items():
        assert _cached(cache, key) == record, key


def test_a_bulk_record_read_before_a_change_and_published_after_it_does_not_win(feed, cache):
    ods_seed(clients=3, using="default")
    topics = feed_topics_ensure()
    stale = list(SqlSource().fetch([1]).values())  # the bulk batch reads its data (and versions) first
    _sql("UPDATE ods.clients SET name = 'Changed meanwhile' WHERE client_id = 1")
    change_feed_run()
    consume_all()
    items_publish(topic=topics["bulk"], items=stale, event="bulk", source="ods")  # stamped and published late
    consume_all()
    assert _cached(cache, "client:1")["name"] == "Changed meanwhile"
    held = cache_records_get(cache, ["client:1"])["client:1"]
    assert held.version == SqlSource().fetch([1])[1].version > stale[0].version
    assert held.topic == topics["change"].name


def test_yesterdays_file_export_does_not_overwrite_todays_change(feed, cache, settings, tmp_path):
    ods_seed(clients=2, using="default")
    yesterday = SqlSource().fetch([1, 2])
    _sql("UPDATE ods.clients SET name = 'Today' WHERE client_id IN (1, 2)")
    change_feed_run()
    consume_all()
    settings.SOURCE_FILE_DIR = str(tmp_path)
    # one export carries the system of record's versions (older ones), one carries none
    (tmp_path / "versioned.jsonl").write_text(
        "".join(json.dumps(document_of(i.record, version=i.version)) + "\n" for i in yesterday.values())
    )
    (tmp_path / "plain.jsonl").write_text("".join(json.dumps(document_of(i.record)) + "\n" for i in yesterday.values()))
    bulk = feed_topics_ensure()["bulk"]
    for name in ("versioned.jsonl", "plain.jsonl"):
        load = load_start(topic=bulk, source=f"file:{name}", client_ids=None, requested_by=None, queue=False)
        load = load_run(load_id=load.id)
        assert (load.status, load.published) == ("done", 2)
        assert load.unordered == (2 if name == "plain.jsonl" else 0)  # said, on the load
    consume_all()
    assert {_cached(cache, k)["name"] for k in ("client:1", "client:2")} == {"Today"}
    _assert_cache_is_the_source(cache)


def test_an_unordered_file_load_fills_keys_the_cache_does_not_hold(feed, cache, settings, tmp_path):
    settings.SOURCE_FILE_DIR = str(tmp_path)
    (tmp_path / "new.jsonl").write_text(json.dumps({**DOC, "client_id": 4242}) + "\n")
    load = load_start(topic=feed_topics_ensure()["bulk"], source="file:new.jsonl", client_ids=None, requested_by=None)
    load_run(load_id=load.id)
    consume_all()
    assert _cached(cache, "client:4242")["name"] == DOC["name"]
    assert cache_records_get(cache, ["client:4242"])["client:4242"].version == 0


def test_an_audit_replay_published_while_a_newer_change_is_in_the_lag_does_not_overwrite_it(feed, cache):
    change = feed_topics_ensure()["change"]
    change.method_audit = True
    change.save()
    first = change_publish(topic=change, event="add", record=DOC, version=1)
    consume_all()
    change_publish(topic=change, event="update", record={**DOC, "name": "Newer"}, version=2)  # not consumed yet
    replay, _ = replay_request(
        topic=change,
        way=Replay.Way.AUDIT,
        scope=Replay.Scope.MESSAGES,
        target={"uuids": [str(first.uuid)]},
        reason="test",
        requested_by=None,
        queue=False,
    )
    replay = replay_run(replay_id=replay.pk)
    assert replay.items.get().outcome == "published"  # the cache still held version 1: the replay went out
    assert PublishedMessage.objects.get(replay_of=first.uuid).source_version == 1
    consume_all()  # the newer change and then the replay of version 1
    assert _cached(cache, "client:900001")["name"] == "Newer"
    assert cache_records_get(cache, ["client:900001"])["client:900001"].version == 2


def test_a_replay_of_a_deleted_record_is_refused_and_says_so(feed, cache):
    change = feed_topics_ensure()["change"]
    change.method_audit = True
    change.save()
    added = change_publish(topic=change, event="add", record=DOC, version=1)
    change_publish(topic=change, event="delete", key="client:900001", version=2)
    consume_all()
    replay, _ = replay_request(
        topic=change,
        way=Replay.Way.AUDIT,
        scope=Replay.Scope.MESSAGES,
        target={"uuids": [str(added.uuid)]},
        reason="test",
        requested_by=None,
        queue=False,
    )
    item = replay_run(replay_id=replay.pk).items.get()
    assert item.outcome == "skipped" and "deleted at version 2" in item.detail and "source" in item.detail
    assert not PublishedMessage.objects.filter(replay_of=added.uuid).exists()
    assert cached_keys(cache) == set()


def test_a_producer_clock_ten_minutes_ahead_neither_pins_a_key_nor_moves_its_window(feed, cache):
    change = feed_topics_ensure()["change"]
    ahead = now_ms() + 600_000
    record = record_from_document(DOC)
    encoded = record_encode(record)
    message = message_build(
        key="client:900001",
        event="add",
        value=encoded.value,
        source="skewed-host",
        schema_version=encoded.schema_version,
        hash_algorithm=change.hash_algorithm,
        key_id=encoded.key_id,
        created_ms=ahead,
        problems=record_problems(record, key="client:900001"),
        version=1,
    )
    messages_publish(topic=change, messages=[message])
    change_publish(topic=change, event="update", record={**DOC, "name": "Later, right clock"}, version=2)
    consume_all()
    assert _cached(cache, "client:900001")["name"] == "Later, right clock"  # the version decided, not the clock
    skew = Finding.objects.get(topic=change, category=Finding.Category.CLOCK_SKEW)
    assert skew.uuid == message.uuid and skew.detail["created_ms"] == ahead
    assert 590_000 < skew.detail["skew_ms"] < 610_000 and "ahead of" in skew.detail["reason"]
    published = PublishedMessage.objects.get(uuid=message.uuid)
    consumed = ConsumedMessage.objects.get(uuid=message.uuid)
    # counted at the broker's time on both sides: the same window, no false "delayed"
    assert published.published_at == consumed.published_at
    assert abs((published.published_at - dt.datetime.now(dt.UTC)).total_seconds()) < 120


def test_a_created_header_in_year_9999_counts_at_the_broker_time(feed, cache):
    change = feed_topics_ensure()["change"]
    message = message_build(
        key="client:1",
        event="delete",
        value=None,
        source="broken-host",
        schema_version=1,
        hash_algorithm=change.hash_algorithm,
        created_ms=253_402_300_799_000,
        version=1,
        problems=[],  # built by this product: sealed
    )
    messages_publish(topic=change, messages=[message])
    consume_all()
    consumed = ConsumedMessage.objects.get(uuid=message.uuid)
    assert consumed.published_at.year == dt.datetime.now(dt.UTC).year
    assert consumed.outcome == "deleted"
    assert Finding.objects.filter(category=Finding.Category.CLOCK_SKEW, uuid=message.uuid).exists()


def test_renumbering_and_id_reuse_in_one_feed_batch_leave_the_cache_equal_to_the_source(feed, cache):
    ods_seed(clients=45, using="default")
    load = load_start(topic=feed_topics_ensure()["bulk"], source="ods", client_ids=None, requested_by=None, queue=False)
    load_run(load_id=load.id)
    consume_all()
    _sql(
        # client 5 renumbered to 500, a new client 5 inserted, then a change to 500
        "UPDATE ods.clients SET client_id = 500 WHERE client_id = 5",
        "INSERT INTO ods.clients (client_id, name, segment, status, country) VALUES (5, 'New five', 'x', 'y', 'US')",
        "UPDATE ods.clients SET name = 'Was five' WHERE client_id = 500",
        # delete 41, then renumber 40 to 41
        "DELETE FROM ods.clients WHERE client_id = 41",
        "UPDATE ods.clients SET client_id = 41 WHERE client_id = 40",
    )
    change_feed_run()
    consume_all()
    _assert_cache_is_the_source(cache)
    assert _cached(cache, "client:5")["name"] == "New five"
    assert _cached(cache, "client:500")["name"] == "Was five"
    assert "client:40" not in cached_keys(cache) and "client:41" in cached_keys(cache)


def test_a_tombstone_shorter_than_the_ledger_retention_is_refused_at_start_up():
    probe = "import django; django.setup()"
    env = {"DJANGO_SETTINGS_MODULE": "config.settings_test", "LEDGER_RETENTION_DAYS": "35"}
    short = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**_environ(), **env, "CACHE_TOMBSTONE_SECONDS": "86400"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert short.returncode != 0 and "CACHE_TOMBSTONE_SECONDS must be >= 3024000" in short.stderr


def _environ() -> dict:
    import os

    return dict(os.environ)
