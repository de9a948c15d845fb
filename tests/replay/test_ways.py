"""Each replay way restores a message the subscriber never got, and the next reconcile
resolves the "missing" finding naming the replay (real Kafka, Redis, PostgreSQL)."""

import pytest

from core.cache_records import cache_records_get, load_keys
from core.ods import ods_seed
from core.records import record_decode
from core.sources import SqlSource
from kafkacache.consumer import FeedConsumer
from kafkacache.messages import headers_dict
from kafkacache.services.loads import load_run, load_start
from recon.models import ConsumedMessage, Finding, Load, OperatorAction, PublishedMessage, Replay, ReplayItem, Window
from replay.services.requests import replay_request
from replay.services.runs import replay_run
from tests.cache_state import cached, records_drop

from .conftest import fetch, fetch_uuid, finding_of, lose_one, reconcile

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _resolved_by(replay: Replay, topic, lost_uuid) -> Finding:
    run = reconcile(topic)
    finding = finding_of(topic, "missing", lost_uuid)
    assert finding.status == Finding.Status.RESOLVED
    assert (finding.detail["resolved_by"], finding.detail["replay"]) == ("replay", str(replay.pk))
    assert run.report["findings"] == {}  # nothing else stands: the replay is itself reconciled clean
    assert run.report["windows"]["discrepant"] == 0
    return finding


def test_audit_replay_republishes_the_stored_payload_as_a_linked_message(feed, client_ids, cache, people):
    topic = feed.change
    _, lost, messages = lose_one(topic, client_ids, cache)
    original_value = messages[1].value()

    replay, created = replay_request(
        topic=topic,
        way="audit",
        scope="messages",
        target={"uuids": [str(lost.uuid)]},
        reason="lost between broker and consumer",
        requested_by=people["operator"],
        queue=False,
    )
    assert created
    replay = replay_run(replay_id=replay.pk)
    assert (replay.status, replay.total, replay.processed, replay.outcome) == ("done", 1, 1, {"published": 1})
    item = replay.items.get()
    assert item.original_uuid == lost.uuid and item.uuid not in (None, lost.uuid)

    # A new message, marked as a replay of the original, through the feed's producer and publish ledger.
    new = PublishedMessage.objects.get(uuid=item.uuid)
    original = PublishedMessage.objects.get(uuid=lost.uuid)
    assert new.replay_of == lost.uuid
    assert bytes(new.content_hash) == bytes(original.content_hash)
    message = fetch_uuid(topic, item.uuid)
    headers = headers_dict(message.headers())
    assert headers["replay-of"] == str(lost.uuid).encode() and headers["uuid"] == str(item.uuid).encode()
    assert message.value() == original_value  # the exact published bytes, numbers still encrypted

    FeedConsumer().process_batch([message])  # the feed's consumer takes it from there
    assert cached(cache, lost.key).value == original_value
    _resolved_by(replay, topic, lost.uuid)
    actions = OperatorAction.objects.filter(target=f"replay:{replay.pk}").order_by("at")
    assert [(a.action, a.user, a.outcome) for a in actions] == [
        ("replay", people["operator"], "queued"),
        ("replay.finish", None, "done: 1 published"),
    ]


def test_kafka_replay_reprocesses_the_original_offsets_into_redis(feed, client_ids, cache, people):
    topic = feed.change
    _, lost, messages = lose_one(topic, client_ids, cache)

    replay, _ = replay_request(
        topic=topic,
        way="kafka",
        scope="messages",
        target={"uuids": [str(lost.uuid)]},
        reason="consumer skipped it",
        requested_by=people["operator"],
        queue=False,
    )
    replay = replay_run(replay_id=replay.pk)
    assert (replay.status, replay.outcome) == ("done", {"stored": 1})
    item = replay.items.get()
    assert (item.original_uuid, item.uuid, item.partition, item.offset) == (lost.uuid, lost.uuid, 0, lost.offset)

    assert cached(cache, lost.key).value == messages[1].value()
    # Ledgered under the feed's group like any delivery; the feed's own group committed nothing for it.
    delivery = ConsumedMessage.objects.get(uuid=lost.uuid)
    assert (delivery.group, delivery.outcome) == (topic.consumer_group, "stored")
    _resolved_by(replay, topic, lost.uuid)


def test_kafka_replay_of_an_offset_range_reports_each_offset(feed, client_ids, cache, people):
    topic = feed.change
    published, lost, _ = lose_one(topic, client_ids, cache)
    replay, _ = replay_request(
        topic=topic,
        way="kafka",
        scope="offsets",
        target={"partition": 0, "start_offset": lost.offset, "end_offset": lost.offset + 5},
        reason="re-read the gap",
        requested_by=people["operator"],
        queue=False,
    )
    replay = replay_run(replay_id=replay.pk)
    outcomes = {item.offset: (item.outcome, item.detail) for item in replay.items.all()}
    assert outcomes[lost.offset] == ("stored", "")
    assert outcomes[published[2].offset] == ("stored", "")  # re-read too: a redelivery, ledgered as such
    for offset in range(published[2].offset + 1, lost.offset + 6):
        assert outcomes[offset][0] == "skipped" and "not written yet" in outcomes[offset][1]
    assert replay.total == replay.processed == 6
    run = reconcile(topic)
    assert finding_of(topic, "missing", lost.uuid).detail["replay"] == str(replay.pk)
    # The re-read delivered published[2] a second time on the operator's request: a repair,
    # not the subscriber receiving it twice, so no duplicate finding (one problem, one finding);
    # a re-read offset is counted as a redelivery on its window (issue 12).
    assert ConsumedMessage.objects.filter(uuid=published[2].uuid).count() == 2
    assert run.report["findings"] == {}
    assert not Finding.objects.filter(topic=topic, category__in=("duplicate", "delayed")).exists()
    assert sum(Window.objects.filter(topic=topic).values_list("redelivered", flat=True)) == 1


def test_source_replay_rebuilds_a_loads_clients_from_the_system_of_record(feed, cache, people):
    topic = feed.bulk
    ods_seed(clients=5, using="default")
    records_drop(cache, [f"client:{i}" for i in range(1, 6)])
    load = load_start(topic=topic, source="ods", client_ids=[1, 2, 3], requested_by=None, queue=False)
    load = load_run(load_id=load.id)
    assert load.status == Load.Status.DONE
    rows = {r.key: r for r in PublishedMessage.objects.filter(load_id=load.id)}
    lost = rows["client:2"]
    messages = fetch(topic.name, 0, 3)
    FeedConsumer().process_batch([m for m in messages if m.offset() != lost.offset])
    assert cached(cache, "client:2") is None
    reconcile(topic)
    assert finding_of(topic, "missing", lost.uuid).status == Finding.Status.OPEN

    replay, _ = replay_request(
        topic=topic,
        way="source",
        scope="load",
        target={"load": str(load.id)},
        reason="reload the load's clients from the ODS",
        requested_by=people["operator"],
        queue=False,
    )
    replay = replay_run(replay_id=replay.pk)
    assert (replay.status, replay.outcome) == ("done", {"published": 3})
    items = {i.key: i for i in replay.items.all()}
    assert {k: i.original_uuid for k, i in items.items()} == {k: r.uuid for k, r in rows.items()}
    new = PublishedMessage.objects.filter(uuid__in=[i.uuid for i in items.values()])
    assert {m.replay_of for m in new} == {r.uuid for r in rows.values()}
    assert {m.load_id for m in new} == {load.id}

    FeedConsumer().process_batch(fetch(topic.name, 3, 3))
    expected = {
        item.key: item.record for batch in SqlSource().batches(client_ids=[1, 2, 3], batch_size=10) for item in batch
    }
    held = cache_records_get(cache, expected)
    for key, record in expected.items():
        assert record_decode(held[key].value, schema_version=held[key].schema_version, decrypt=True) == record
    assert load_keys(cache, load.retrieval_key) == ["client:1", "client:2", "client:3"]
    finding = finding_of(topic, "missing", lost.uuid)
    run = reconcile(topic)
    finding.refresh_from_db()
    assert (finding.status, finding.detail["replay"], finding.detail["replay_uuid"]) == (
        "resolved",
        str(replay.pk),
        str(items["client:2"].uuid),
    )
    # the two delivered originals were replayed too: new messages, delivered once each; nothing stands
    assert run.report["findings"] == {}


def test_a_replay_of_an_unknown_message_reports_it_skipped(feed, people):
    import uuid

    stranger = uuid.uuid4()
    replay, _ = replay_request(
        topic=feed.change,
        way="kafka",
        scope="messages",
        target={"uuids": [str(stranger)]},
        reason="typo",
        requested_by=people["operator"],
        queue=False,
    )
    replay = replay_run(replay_id=replay.pk)
    item = replay.items.get()
    # Skipped something: done with problems, never plain done, with the reason on the item.
    assert (replay.status, item.original_uuid, item.outcome) == ("problems", stranger, ReplayItem.Outcome.SKIPPED)
    assert "not in the publish ledger" in item.detail
