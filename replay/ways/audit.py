"""The audit way: the published payload kept in the audit log, republished through the
feed's producer and publish ledger as a NEW message (new UUID, `replay-of` header
and PublishedMessage.replay_of = the original), carrying the original's source
version. The feed's consumer takes it from there; the reconcile links it back.
A replay never goes back in time: a message older than what the cache holds for
its key (a newer version, or a newer delete's tombstone) is skipped here and
says so, and were it published anyway the cache's version check would refuse
it. Restoring a deleted record takes the source way (the source must hold it).
"""

import uuid
from collections.abc import Sequence

import redis
from django.conf import settings

from core.cache_records import cache_read
from core.clients import redis_client
from core.record_checks import record_problems
from core.records import record_decode, record_key_ids
from kafkacache.cache import OLDER, UNORDERED, put_verdict
from kafkacache.messages import OutMessage, message_build
from kafkacache.services.publishing import messages_publish
from recon import audit
from recon.models import AuditPayload, Load, Replay, ReplayItem, Topic
from recon.selectors.audit import payloads_of
from replay.services.progress import Progress
from replay.ways.common import Original, Outcome, batched, item_with, originals_of


def _cache_newer(client: redis.Redis, originals: Sequence[Original]) -> dict[uuid.UUID, str]:
    """Originals the cache would refuse (a newer version, a newer delete, or a versioned record
    an unversioned original may not replace), with why: the cache script's own rule
    (kafkacache.cache.put_verdict). An equal version is replayed: idempotent, it repairs a
    damaged or missing copy."""
    newer = {}
    for o, cached in zip(originals, cache_read(client, [o.key for o in originals]), strict=True):
        held = cached.version if cached.value is not None else None
        tomb = cached.tombstone
        version = o.version or 0
        letter = put_verdict(version, held=held, tombstone=tomb)
        if letter == OLDER and tomb and (held is None or tomb >= held):
            newer[o.uuid] = f"superseded: the key was deleted at version {tomb}; replay from the source to restore it"
        elif letter in (OLDER, UNORDERED):
            newer[o.uuid] = (
                f"superseded: the cache holds version {held} ({cached.uuid}),"
                f" newer than this message's {version or 'unversioned'}"
            )
    return newer


def _payload_vouched(value: bytes, schema_version: int, key: str) -> tuple[str, list[str]]:
    """The key-id header of a payload, and the problems to seal it with.

    Every republished payload is sealed (the consumer takes no unsealed message unless its
    topic accepts unsealed producers): the payload stands for what this project's producer
    built and checked, since it hashes to the published hash (checked before it is sent)."""
    record = record_decode(value, schema_version=schema_version, decrypt=False)
    key_ids = record_key_ids(record)
    return next(iter(key_ids), ""), record_problems(record, key=key)


def _published_items(topic: Topic, messages: Sequence[tuple[Original, OutMessage]]) -> list[ReplayItem]:
    if not messages:
        return []
    deliveries = messages_publish(topic=topic, messages=[m for _, m in messages])
    items = []
    for (o, message), delivery in zip(messages, deliveries, strict=True):
        item = ReplayItem(original_uuid=o.uuid, key=o.key, partition=o.partition, offset=o.offset)
        if delivery.error:
            items.append(item_with(item, Outcome.FAILED, f"Kafka did not acknowledge: {delivery.error}"))
        else:
            detail = f"published as {topic.name}/{delivery.partition}@{delivery.offset}"
            items.append(item_with(item, Outcome.PUBLISHED, detail, message.uuid))
    return items


def replay_audit(replay: Replay, progress: Progress) -> None:
    topic = replay.topic
    originals, unknown = originals_of(replay)
    progress.total(len(originals) + len(unknown))
    progress.record(unknown)
    client = redis_client()
    for chunk in batched(originals, settings.REPLAY_BATCH_SIZE):
        payloads = payloads_of(topic=topic, uuids=[o.uuid for o in chunk])
        newer = _cache_newer(client, chunk)
        loads = dict(
            Load.objects.filter(pk__in={o.load_id for o in chunk if o.load_id}).values_list("pk", "retrieval_key")
        )
        skipped: list[ReplayItem] = []
        messages: list[tuple[Original, OutMessage]] = []
        for o in chunk:
            item = ReplayItem(original_uuid=o.uuid, key=o.key, partition=o.partition, offset=o.offset)
            published = [p for p in payloads.get(o.uuid, []) if p.side == AuditPayload.Side.PUBLISHED]
            if not published:
                skipped.append(item_with(item, Outcome.SKIPPED, "no audit payload kept (audit off then, or purged)"))
                continue
            if o.uuid in newer:
                skipped.append(item_with(item, Outcome.SKIPPED, newer[o.uuid]))
                continue
            row = published[0]
            try:
                value = audit.unseal(row)
                schema_version = row.schema_version or 1
                key_id, problems = _payload_vouched(value, schema_version, o.key) if value else ("", [])
            except Exception as exc:  # a payload that cannot be read back is this message's outcome, not the run's
                skipped.append(
                    item_with(item, Outcome.FAILED, f"audit payload unreadable: {type(exc).__name__}: {exc}")
                )
                continue
            message = message_build(
                key=o.key,
                event=o.event_type,
                value=value or None,
                source="replay:audit",
                schema_version=schema_version,
                hash_algorithm=topic.hash_algorithm,
                key_id=key_id,
                load=loads.get(o.load_id, "") if o.event_type == "bulk" else "",
                load_id=o.load_id,
                replay_of=o.uuid,
                version=o.version,
                problems=problems,
            )
            # A re-encrypted payload (kafkacache.services.reencrypt) stands for the published bytes by the hash it kept.
            if audit.payload_hash(row, value, topic.hash_algorithm) != bytes(o.content_hash):
                skipped.append(item_with(item, Outcome.FAILED, "audit payload does not hash to the published hash"))
                continue
            messages.append((o, message))
        progress.record(skipped)
        progress.record(_published_items(topic, messages))
