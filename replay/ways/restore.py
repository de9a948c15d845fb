"""The restore way: the way back from any bad version.

A key the cache holds at a version the source never gave (a forged or faulty producer,
a source set back) refuses every ordinary repair as older: the source way's rebuild
and the change feed both lose to it. A restore writes the system of record's current
state over whatever the key holds, a higher version or a tombstone: the client's
current record at its current version, or, where the source no longer holds it, a
tombstone at a version drawn now.

It is its own operation, held tighter than the other ways: the SQL source only (its
versions come from one sequence), client keys only, and always four-eyes
(replay.services.requests). Its messages carry the event `restore`, sealed by this product's
producer; the consumer takes a restore under a verified seal only (kafkacache.batch_plan)
and the cache's one writer applies it with its own op (kafkacache.cache 'r' / 'x').
Each item's detail keeps the before (what the cache held: version, tombstone, uuid,
content hash) and the after (what the restore wrote), for the evidence pack. Nothing
is resolved here: the cache leg of the touched keys, against the source, verifies it
when the replay is done (recon.services.runs.replay_verify) and closes the findings it clears.
"""

import json
from collections.abc import Sequence

from django.conf import settings

from config.errors import AppError
from core import avro
from core.cache_records import cache_records_get, tombstones_get
from core.clients import redis_client
from core.hashing import content_hash
from core.records import client_id_of
from core.sources import SqlSource
from kafkacache.messages import OutMessage, message_build
from kafkacache.services.publishing import Pending, message_record, messages_publish
from recon.models import Replay, ReplayItem, Topic
from recon.services.findings import finding_record
from replay.services.progress import Progress
from replay.ways.common import Outcome, batched, item_with

EVENT = "restore"


def _before(client, keys: Sequence[str], algorithm: str) -> dict[str, dict]:
    """What the cache holds for each key now (one round trip each for records and tombstones)."""
    records, tombstones = cache_records_get(client, keys), tombstones_get(client, keys)
    out = {}
    for key in keys:
        held = records.get(key)
        out[key] = {
            "present": held is not None,
            "version": held.version if held else None,
            "uuid": held.uuid if held else None,
            "hash": content_hash(held.value, algorithm).hex() if held else None,
            "topic": held.topic if held else None,
            "tombstone": tombstones.get(key),
        }
    return out


def _messages(topic: Topic, source: SqlSource, keys: Sequence[str], pending: Pending) -> list[OutMessage]:
    """A restore per key: the source's current record at its version, or (gone) a tombstone
    at a version drawn now, newer than any the source gave."""
    ids = {client_id_of(k): k for k in keys}
    found = source.fetch([i for i in ids if i is not None])
    messages: list[OutMessage] = []
    gone = [k for i, k in ids.items() if i not in found]
    for item in found.values():
        message = message_record(topic=topic, item=item, event=EVENT, source=f"restore:{source.name}", pending=pending)
        if message is not None:
            messages.append(message)
    if gone:
        version = source.version_draw()
        messages += [
            message_build(
                key=key,
                event=EVENT,
                value=None,
                problems=[],  # built here: sealed, so the consumer takes it
                source=f"restore:{source.name}",
                schema_version=avro.current_version(),
                hash_algorithm=topic.hash_algorithm,
                version=version,
            )
            for key in gone
        ]
    return messages


def replay_restore(replay: Replay, progress: Progress) -> None:
    topic = replay.topic
    keys = list(dict.fromkeys(replay.target["keys"]))
    progress.total(len(keys))
    if replay.target.get("source", SqlSource.name) != SqlSource.name:
        raise AppError("a restore reads the SQL source only: its versions come from one sequence", code="bad_source")
    source = SqlSource()
    if not source.readable():
        raise AppError("the SQL source cannot be read here: nothing to restore from", code="bad_source")
    not_clients = [k for k in keys if client_id_of(k) is None]
    progress.record([ReplayItem(key=k, outcome=Outcome.SKIPPED, detail="not a client key") for k in not_clients])
    client = redis_client()
    for chunk in batched([k for k in keys if k not in not_clients], settings.REPLAY_BATCH_SIZE):
        before = _before(client, chunk, topic.hash_algorithm)
        pending = Pending()
        messages = _messages(topic, source, chunk, pending)
        deliveries = {d.message.key: d for d in messages_publish(topic=topic, messages=messages)}
        for spec in pending.findings:  # a record the source holds but cannot be published (invalid, oversize)
            finding_record(topic=topic, **spec)
        items = []
        for key in chunk:
            item = ReplayItem(key=key)
            delivery = deliveries.get(key)
            if delivery is None:
                reason = next((f["detail"].get("reason") for f in pending.findings if f.get("key") == key), "")
                items.append(item_with(item, Outcome.SKIPPED, f"not restorable: {reason or 'not published'}"))
                continue
            if delivery.error:
                items.append(item_with(item, Outcome.FAILED, f"Kafka did not acknowledge: {delivery.error}"))
                continue
            message = delivery.message
            after = {
                "present": message.value is not None,
                "version": message.version,
                "uuid": str(message.uuid),
                "hash": content_hash(message.value, topic.hash_algorithm).hex() if message.value else None,
                "published": f"{topic.name}/{delivery.partition}@{delivery.offset}",
            }
            detail = json.dumps({"before": before[key], "after": after}, sort_keys=True)
            items.append(item_with(item, Outcome.PUBLISHED, detail, message.uuid))
        progress.record(items)
