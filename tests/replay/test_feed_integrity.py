"""Feed integrity against the real Kafka, Redis and PostgreSQL (docs/security.md, Feed integrity).

A producer without the seal key (anyone who may write to the feed topics), a forged dead
letter, the change API's versions, what the consume ledger says the cache did, and a record
written before records kept their topic.
"""

import uuid

import pytest
from rest_framework.test import APIClient

from core import avro
from core.cache_records import tombstones_get
from core.clients import make_producer
from core.records import MAX_VERSION, record_encode, record_from_document
from kafkacache.consumer import FeedConsumer
from kafkacache.messages import OutMessage, headers_dict, message_build
from kafkacache.selectors import load_records
from kafkacache.services.change_feed import change_publish
from kafkacache.services.publishing import messages_publish
from kafkacache.services.relayout import cache_topics_set
from kafkacache.versions import change_version
from recon.models import ConsumedMessage, Finding, Load, PublishedMessage, ReconRun
from recon.services.runs import run_execute
from replay.services.requests import replay_request
from replay.services.runs import replay_run
from tests.cache_state import cached, record_forge, record_topic_drop
from tests.documents import client_doc
from tests.source_state import versions_given

from .conftest import fetch, finding_of

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _forged(key: str, *, event: str, version: int, name: str = "Mallory", seal: bytes | None = None) -> OutMessage:
    """A message as a producer without the seal key makes it: any event, any version; a
    value with a made-up name (and a card number encrypted under the field key, which the
    web tier holds too); `seal` copies another message's seal header onto it."""
    value, key_id, schema = None, "", avro.current_version()
    if event != "delete":
        client_id = int(key.split(":")[1])
        encoded = record_encode(record_from_document(client_doc(client_id, name=name)))
        value, key_id, schema = encoded.value, encoded.key_id, encoded.schema_version
    out = message_build(
        key=key,
        event=event,
        value=value,
        source="intruder",
        schema_version=schema,
        hash_algorithm="blake2b",
        key_id=key_id,
        version=version,
    )
    if seal is not None:
        out = out._replace(headers=[*out.headers, ("seal", seal)])
    return out


def _produce(topic: str, messages: list[OutMessage]) -> None:
    """Straight to the topic, as another producer does: no seal, no publish ledger."""
    producer = make_producer()
    for m in messages:
        producer.produce(topic, key=m.key.encode(), value=m.value, headers=m.headers)
    assert producer.flush(10) == 0


def _consumed(topic, published) -> None:
    [msg] = fetch(topic.name, published.offset, 1, published.partition)
    FeedConsumer().process_batch([msg])


def _consume_from(topic, offset: int, count: int):
    messages = fetch(topic.name, offset, count)
    consumer = FeedConsumer()
    consumer.process_batch(messages)
    return messages


def test_a_producer_without_the_seal_key_can_neither_delete_nor_pin_a_record(feed, client_ids, cache):
    topic = feed.change
    victim = change_publish(topic=topic, event="add", record=client_doc(next(client_ids)))
    [original] = fetch(topic.name, victim.offset, 1)
    FeedConsumer().process_batch([original])
    before = cached(cache, victim.key)
    assert before is not None and before.version == victim.version

    stolen_seal = headers_dict(original.headers())["seal"]  # a real seal, over other headers
    forged = [
        _forged(victim.key, event="delete", version=MAX_VERSION),
        _forged(victim.key, event="update", version=MAX_VERSION),
        _forged(victim.key, event="update", version=MAX_VERSION, seal=stolen_seal),
        _forged(victim.key, event="delete", version=MAX_VERSION, seal=stolen_seal),
        _forged(victim.key, event="restore", version=1),
    ]
    _produce(topic.name, forged)
    _consume_from(topic, victim.offset + 1, len(forged))

    # Nothing of them reached Redis: the record, its version and its writer are the victim's; no tombstone.
    after = cached(cache, victim.key)
    assert (after.value, after.version, after.uuid) == (before.value, before.version, before.uuid)
    assert tombstones_get(cache, [victim.key]) == {}
    # Each is a dead letter with its reason and a finding.
    reasons = [finding_of(topic, "dead-lettered", m.uuid).detail["reason"] for m in forged]
    assert reasons[:2] == ["unsealed", "unsealed"] and reasons[4] == "unsealed"
    assert all(r.startswith("seal does not verify: the signature does not match") for r in reasons[2:4])
    outcomes = set(ConsumedMessage.objects.filter(uuid__in=[m.uuid for m in forged]).values_list("outcome", flat=True))
    assert outcomes == {"dead"}

    # The product's own repair is not refused as older: a change without a version gets a newer one.
    repair = change_publish(topic=topic, event="update", record=client_doc(int(victim.key[7:]), name="Repaired"))
    _consumed(topic, repair)
    assert cached(cache, victim.key).version == repair.version > victim.version


def test_a_topic_open_to_unsealed_producers_holds_their_versions_to_the_source_bound(feed, client_ids, cache):
    topic = feed.change
    topic.accepts_unsealed = True
    topic.save()
    producer_offset = change_publish(topic=topic, event="add", record=client_doc(next(client_ids)))
    bound = versions_given(5000)  # the source's sequence stands here while the batch is consumed
    pinned, taken = f"client:{next(client_ids)}", f"client:{next(client_ids)}"
    forged = [
        _forged(pinned, event="update", version=MAX_VERSION),
        _forged(pinned, event="update", version=bound + 1),
        _forged(taken, event="add", version=bound),
    ]
    _produce(topic.name, forged)
    _consume_from(topic, producer_offset.offset + 1, len(forged))

    assert cached(cache, pinned) is None  # beyond the bound: held
    for message in forged[:2]:
        assert (
            finding_of(topic, "dead-lettered", message.uuid)
            .detail["reason"]
            .startswith("version beyond the source's bound: ")
        )
    # Within it: taken, recorded as unsealed, and its key queued for the cache leg against the source.
    assert cached(cache, taken).version == bound
    assert ConsumedMessage.objects.get(uuid=forged[2].uuid).outcome == "unsealed"
    run = ReconRun.objects.get(topic=topic, trigger="unsealed")
    assert (run.kind, run.status, run.params) == ("cache", "queued", {"keys": [taken], "keys_source": "ods"})
    run = run_execute(run_id=run.pk)
    assert run.report["all_matched"] is False  # the source holds no such client: the leg says so
    assert Finding.objects.filter(topic=topic, category="cache", key=taken).exists()


def test_reprocess_refuses_a_dead_letter_whose_headers_are_not_the_published_ones(
    feed, client_ids, cache, people, settings
):
    """Same uuid, key and content hash as the finding's message, and the same seal; but
    event=delete and a huge version. Reprocess refuses it; the key is left alone."""
    topic, operator = feed.change, people["operator"]
    other = change_publish(topic=topic, event="add", record=client_doc(next(client_ids)))
    _consumed(topic, other)
    victim = change_publish(topic=topic, event="add", record=client_doc(next(client_ids)))
    (message,) = fetch(topic.name, victim.offset, 1)
    settings.MESSAGE_MAX_BYTES = 256  # dead-lettered for its size
    FeedConsumer().process_batch([message])
    dead = finding_of(topic, "dead-lettered", victim.uuid)
    settings.MESSAGE_MAX_BYTES = 10240

    headers = dict(message.headers())
    headers.update(
        {
            "event": b"delete",
            "version": str(MAX_VERSION).encode(),
            "dlq-topic": topic.name.encode(),
            "dlq-partition": b"%d" % message.partition(),
            "dlq-offset": b"%d" % message.offset(),
        }
    )
    producer = make_producer()
    producer.produce(feed.dead_letter, key=message.key(), value=message.value(), headers=list(headers.items()))
    producer.flush(10)

    replay, _ = replay_request(
        topic=topic,
        way="dead-letter",
        scope="findings",
        target={"findings": [dead.pk]},
        reason="limit raised",
        requested_by=operator,
        queue=False,
    )
    replay = replay_run(replay_id=replay.pk)
    item = replay.items.get()
    assert item.outcome == "failed"
    assert "headers differ from those the publish ledger recorded" in item.detail
    assert cached(cache, victim.key) is None and tombstones_get(cache, [victim.key]) == {}
    assert cached(cache, other.key) is not None
    dead.refresh_from_db()
    assert dead.status == Finding.Status.OPEN


def test_the_change_api_refuses_versions_beyond_the_bound_and_orders_unversioned_changes(
    feed, client_ids, cache, people
):
    topic, operator = feed.change, people["operator"]
    client = APIClient()
    client.force_authenticate(operator)
    bound = change_version(None)  # the sequence's next value: the bound from now on
    published_before = PublishedMessage.objects.count()
    doc = client_doc(next(client_ids))
    refused = client.post("/api/changes", {"event": "add", "record": doc, "version": MAX_VERSION}, format="json")
    assert refused.status_code == 400, refused.json()
    error = refused.json()["error"]
    assert error["code"] == "version_beyond_bound" and error["details"]["bound"] >= bound
    assert PublishedMessage.objects.count() == published_before  # nothing published

    key = f"client:{doc['client_id']}"
    added = client.post("/api/changes", {"event": "add", "record": doc}, format="json")
    assert added.status_code == 202, added.json()
    added = added.json()
    assert added["version"] > bound and added["status"] == "published"
    _consumed(topic, PublishedMessage.objects.get(uuid=added["uuid"]))
    assert client.get(added["status_url"]).json()["status"] == "stored"

    # A newer change still in the consumer's lag, then an audit-way replay of the older add:
    # the replay is refused as older, whatever the arrival order; the ledger and the API say so.
    newer = client.post("/api/changes", {"event": "update", "record": {**doc, "name": "Newer"}}, format="json").json()
    assert newer["version"] > added["version"]
    replay, _ = replay_request(
        topic=topic,
        way="audit",
        scope="messages",
        target={"uuids": [added["uuid"]]},
        reason="test",
        requested_by=operator,
        queue=False,
    )
    replay = replay_run(replay_id=replay.pk)
    again = replay.items.get().uuid
    newer_row = PublishedMessage.objects.get(uuid=newer["uuid"])
    topic.method_audit = False  # no audit payloads to keep: the batch goes the pipelined way
    topic.save()
    consumer = FeedConsumer()
    consumer.run(drain=True, max_seconds=60)  # pipelined: the refused row is set after Redis answered
    assert cached(cache, key).version == newer["version"]
    assert ConsumedMessage.objects.get(uuid=again).outcome == "refused-older"
    assert ConsumedMessage.objects.get(uuid=newer_row.uuid).outcome == "stored"
    older = client.post(
        "/api/changes",
        {"event": "update", "record": {**doc, "name": "Late"}, "version": added["version"]},
        format="json",
    ).json()
    _consumed(topic, PublishedMessage.objects.get(uuid=older["uuid"]))  # the plain way: waits for the verdict
    status = client.get(older["status_url"]).json()
    assert status["status"] == "refused-older" and status["deliveries"][0]["outcome"] == "refused-older"
    assert cached(cache, key).version == newer["version"]

    # An unversioned delete leaves a tombstone now: an older replay cannot bring the record back.
    deleted = client.post("/api/changes", {"event": "delete", "key": key}, format="json").json()
    _consumed(topic, PublishedMessage.objects.get(uuid=deleted["uuid"]))
    assert cached(cache, key) is None and tombstones_get(cache, [key]) == {key: deleted["version"]}
    assert client.get(deleted["status_url"]).json()["status"] == "deleted"

    # An unversioned rename: its old key's delete carries the change's version, so a tombstone.
    first = client_doc(next(client_ids))
    renamed = {**first, "client_id": next(client_ids)}
    made = client.post("/api/changes", {"event": "add", "record": first}, format="json").json()
    _consumed(topic, PublishedMessage.objects.get(uuid=made["uuid"]))
    moved = client.post(
        "/api/changes", {"event": "update", "record": renamed, "old_key": made["key"]}, format="json"
    ).json()
    _consumed(topic, PublishedMessage.objects.get(uuid=moved["uuid"]))
    assert cached(cache, made["key"]) is None
    assert tombstones_get(cache, [made["key"]]) == {made["key"]: moved["version"]}
    assert cached(cache, moved["key"]).version == moved["version"]


def test_the_ledger_records_a_refused_unordered_message(feed, client_ids, cache):
    """A message without a version (a file load's line without one) over a versioned record:
    refused-unordered in the consume ledger, never stored."""
    topic = feed.change
    versioned = change_publish(topic=topic, event="add", record=client_doc(next(client_ids)))
    _consumed(topic, versioned)
    plain = record_from_document(client_doc(int(versioned.key[7:]), name="Unordered"))
    encoded = record_encode(plain)
    message = message_build(
        key=versioned.key,
        event="add",
        value=encoded.value,
        source="file:old.csv",
        schema_version=encoded.schema_version,
        hash_algorithm=topic.hash_algorithm,
        key_id=encoded.key_id,
        problems=[],
    )
    [delivery] = messages_publish(topic=topic, messages=[message])
    _consumed(topic, delivery)
    assert ConsumedMessage.objects.get(uuid=message.uuid).outcome == "refused-unordered"
    assert cached(cache, versioned.key).uuid == str(versioned.uuid)


def test_a_record_without_its_topic_decrypts_for_nobody_until_its_topic_is_set(feed, client_ids, cache):
    topic = feed.bulk
    load = Load.objects.create(topic=topic, source="ods")
    plain = record_from_document(client_doc(next(client_ids)))
    encoded = record_encode(plain)
    key = f"client:{plain['client_id']}"
    message = message_build(
        key=key,
        event="bulk",
        value=encoded.value,
        source="ods",
        schema_version=encoded.schema_version,
        hash_algorithm=topic.hash_algorithm,
        key_id=encoded.key_id,
        load=load.retrieval_key,
        load_id=load.id,
        version=7,
        problems=[],
    )
    [delivery] = messages_publish(topic=topic, messages=[message])
    _consumed(topic, delivery)
    readers = {topic.name}
    _, [item] = load_records(load=load, payload_topics=readers)
    assert item["decrypted"] is True and item["topic"] == topic.name

    record_topic_drop(cache, key)  # as written before records kept their topic
    _, [item] = load_records(load=load, payload_topics=readers)
    assert (item["decrypted"], item["topic"]) == (False, None)  # not credited to the load's topic
    assert item["record"]["cards"][0]["card_number"] != plain["cards"][0]["card_number"]  # masked

    counts = cache_topics_set(batch=100)
    assert counts.set >= 1
    assert cached(cache, key).topic == topic.name
    _, [item] = load_records(load=load, payload_topics=readers)
    assert item["decrypted"] is True and item["record"]["cards"][0]["card_number"] == plain["cards"][0]["card_number"]
    # a record whose message the publish ledger does not hold stays topic-less
    stranger = f"client:{next(client_ids)}"
    forged = record_encode(record_from_document(client_doc(int(stranger[7:]))))
    record_forge(cache, stranger, value=forged.value, uuid=str(uuid.uuid4()), version=1, schema_version=1)
    assert cache_topics_set(batch=100).unknown >= 1
    assert cached(cache, stranger).topic == ""
