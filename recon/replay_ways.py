"""The four ways a replay gets messages where they belong (called by recon.replay.replay_run).

- audit: the published payload kept in the audit log, republished through the
  feed's producer and publish ledger as a NEW message (new UUID, `replay-of` header
  and PublishedMessage.replay_of = the original), carrying the original's source
  version. The feed's consumer takes it from there; the reconcile links it back.
  A replay never goes back in time: a message older than what the cache holds for
  its key (a newer version, or a newer delete's tombstone) is skipped here and
  says so, and were it published anyway the cache's version check would refuse
  it. Restoring a deleted record takes the source way (the source must hold it).
- kafka: the original messages re-read by offset with a private consumer
  (assign + seek, its own group id, never subscribes or commits, so the feed's
  group sees nothing) and run through FeedConsumer.process_batch: Redis, consume
  ledger, dead letters, findings, exactly as the feed does. The deliveries are
  ledgered under the topic's consumer group, as the redeliveries they are: a
  message consumed before shows as a duplicate in the reconcile, never as a loss.
- source: the clients rebuilt from the system of record (kafkacache.sources) and
  published through the feed's load path (kafkacache.services.items_publish): new
  UUIDs, `replay-of` the message they stand in for when one is known.
- dead-letter: dead-lettered messages read back from the dead-letter topic (found
  by the origin the feed put in their dlq-* headers), given back their original
  topic, partition and offset, and run through FeedConsumer.process_batch.
"""

import datetime as dt
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import NamedTuple

import redis
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, KafkaError, Message, TopicPartition
from django.conf import settings
from django.db.models import Q

from config.errors import AppError
from kafkacache import avro, crypto
from kafkacache import services as feed_services
from kafkacache.cache import OLDER, UNORDERED, put_verdict
from kafkacache.clients import make_consumer, redis_client
from kafkacache.consumer import FeedConsumer
from kafkacache.messages import OutMessage, headers_dict, message_build
from kafkacache.models import Load
from kafkacache.records import SENSITIVE, client_id_of, record_decode
from kafkacache.redis_keys import rec_key, tombstone_key
from kafkacache.sources import SourceError, source_get
from recon import audit
from recon.hashing import content_hash
from recon.models import AuditPayload, ConsumedMessage, Finding, PublishedMessage, Replay, ReplayItem, Topic, Window
from recon.replay import Progress, dead_letter_findings_resolve
from recon.replay_approval import replays_per_message

logger = logging.getLogger(__name__)

Outcome = ReplayItem.Outcome
Scope = Replay.Scope
_DLQ_SLACK = dt.timedelta(minutes=5)  # the dead letter was produced a moment before its finding was written


class Original(NamedTuple):
    uuid: uuid.UUID
    key: str
    partition: int
    offset: int
    event_type: str
    published_at: dt.datetime
    load_id: uuid.UUID | None
    content_hash: bytes
    version: int | None = None  # source version; None: unordered, or published before versions


def _batched(items: Sequence, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _created_ms(at: dt.datetime) -> int:
    return round(at.timestamp() * 1000)


# --- what a scope names -----------------------------------------------------------------------


def originals_of(replay: Replay, *, guard: bool = True) -> tuple[list[Original], list[ReplayItem]]:
    """The published messages a replay's scope names (oldest first), and items for UUIDs not found
    (and, with `guard`, for messages replayed REPLAY_MAX_PER_MESSAGE times already: the replay guard)."""
    topic, target = replay.topic, replay.target
    rows = PublishedMessage.objects.filter(topic=topic)
    if replay.scope == Scope.MESSAGES:
        rows = rows.filter(uuid__in=target["uuids"])
    elif replay.scope == Scope.WINDOW:
        window = Window.objects.get(pk=target["window"], topic=topic)
        rows = rows.filter(published_at__gte=window.start, published_at__lt=window.end)
    elif replay.scope == Scope.RANGE:
        rows = rows.filter(published_at__gte=target["start"], published_at__lt=target["end"])
    elif replay.scope == Scope.LOAD:
        rows = rows.filter(load_id=target["load"])
    else:
        raise AppError(f"scope {replay.scope} names no published messages", code="bad_scope")
    limit = settings.REPLAY_MAX_MESSAGES
    found = [
        Original(u, k, p, o, e, at, load_id, bytes(h), v)
        for u, k, p, o, e, at, load_id, h, v in rows.order_by("published_at", "id").values_list(
            *("uuid", "key", "partition", "offset", "event_type", "published_at", "load_id", "content_hash"),
            "source_version",
        )[: limit + 1]
    ]
    if len(found) > limit:
        raise AppError(f"the scope holds more than {limit} messages (REPLAY_MAX_MESSAGES): narrow it")
    missing: list[ReplayItem] = []
    if replay.scope == Scope.MESSAGES:
        known = {o.uuid for o in found}
        missing = [
            ReplayItem(original_uuid=u, outcome=Outcome.SKIPPED, detail=f"not in the publish ledger of {topic.name}")
            for u in map(uuid.UUID, target["uuids"])
            if u not in known
        ]
    if guard:
        limit = settings.REPLAY_MAX_PER_MESSAGE
        times = replays_per_message(o.uuid for o in found)
        over = {u for u, n in times.items() if n >= limit}
        missing += [
            ReplayItem(
                original_uuid=o.uuid,
                key=o.key,
                partition=o.partition,
                offset=o.offset,
                outcome=Outcome.SKIPPED,
                detail=f"replay guard: replayed {times[o.uuid]} times already (REPLAY_MAX_PER_MESSAGE={limit})",
            )
            for o in found
            if o.uuid in over
        ]
        found = [o for o in found if o.uuid not in over]
    return found, missing


# --- audit log ------------------------------------------------------------------------------


def _cache_newer(client: redis.Redis, originals: Sequence[Original]) -> dict[uuid.UUID, str]:
    """Originals the cache would refuse (a newer version, a newer delete, or a versioned record
    an unversioned original may not replace), with why: the cache script's own rule
    (kafkacache.cache.put_verdict). An equal version is replayed: idempotent, it repairs a
    damaged or missing copy."""
    pipe = client.pipeline(transaction=False)
    for o in originals:
        pipe.hmget(rec_key(o.key), ["sv", "u"])
        pipe.get(tombstone_key(o.key))
    answers = pipe.execute()
    newer = {}
    for n, o in enumerate(originals):
        (cached_v, cached_u), deleted = answers[2 * n], answers[2 * n + 1]
        held = int(cached_v or 0) if cached_u is not None else None
        tomb = int(deleted or 0)
        version = o.version or 0
        letter = put_verdict(version, held=held, tombstone=tomb)
        if letter == OLDER and tomb and (held is None or tomb >= held):
            newer[o.uuid] = f"superseded: the key was deleted at version {tomb}; replay from the source to restore it"
        elif letter in (OLDER, UNORDERED):
            newer[o.uuid] = (
                f"superseded: the cache holds version {held} ({(cached_u or b'').decode()}),"
                f" newer than this message's {version or 'unversioned'}"
            )
    return newer


def _field_key_id(value: bytes, schema_version: int) -> str:
    """The field-encryption key id the payload's encrypted fields name (the key-id header)."""
    record = record_decode(value, schema_version=schema_version, decrypt=False)
    for list_name, field, _ in SENSITIVE:
        for item in record[list_name]:
            return crypto.key_id_of(item[field])
    return ""


def replay_audit(replay: Replay, progress: Progress) -> None:
    topic = replay.topic
    originals, unknown = originals_of(replay)
    progress.total(len(originals) + len(unknown))
    progress.record(unknown)
    client = redis_client()
    for chunk in _batched(originals, settings.REPLAY_BATCH_SIZE):
        payloads = audit.payloads_of(topic=topic, uuids=[o.uuid for o in chunk])
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
                skipped.append(_with(item, Outcome.SKIPPED, "no audit payload kept (audit off then, or purged)"))
                continue
            if o.uuid in newer:
                skipped.append(_with(item, Outcome.SKIPPED, newer[o.uuid]))
                continue
            row = published[0]
            try:
                value = audit.unseal(row)
                schema_version = row.schema_version or 1
                key_id = _field_key_id(value, schema_version) if value else ""
            except Exception as exc:  # a payload that cannot be read back is this message's outcome, not the run's
                skipped.append(_with(item, Outcome.FAILED, f"audit payload unreadable: {type(exc).__name__}: {exc}"))
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
            )
            if message.content_hash != o.content_hash:
                skipped.append(_with(item, Outcome.FAILED, "audit payload does not hash to the published hash"))
                continue
            messages.append((o, message))
        progress.record(skipped)
        progress.record(_published_items(topic, messages))


def _with(item: ReplayItem, outcome: str, detail: str = "", new_uuid: uuid.UUID | None = None) -> ReplayItem:
    item.outcome, item.detail, item.uuid = outcome, detail, new_uuid
    return item


def _published_items(topic: Topic, messages: Sequence[tuple[Original, OutMessage]]) -> list[ReplayItem]:
    if not messages:
        return []
    deliveries = feed_services.messages_publish(topic=topic, messages=[m for _, m in messages])
    items = []
    for (o, message), delivery in zip(messages, deliveries, strict=True):
        item = ReplayItem(original_uuid=o.uuid, key=o.key, partition=o.partition, offset=o.offset)
        if delivery.error:
            items.append(_with(item, Outcome.FAILED, f"Kafka did not acknowledge: {delivery.error}"))
        else:
            detail = f"published as {topic.name}/{delivery.partition}@{delivery.offset}"
            items.append(_with(item, Outcome.PUBLISHED, detail, message.uuid))
    return items


# --- Kafka --------------------------------------------------------------------------------------


def _feed_consumer(topic: Topic) -> FeedConsumer:
    """The feed's consumer logic, not connected to any group: process_batch only."""
    consumer = FeedConsumer(group=topic.consumer_group, batch_size=settings.REPLAY_BATCH_SIZE)
    consumer.topics[topic.name] = topic  # also a topic the process's settings do not name
    return consumer


def _reader(replay: Replay) -> Consumer:
    # Its own group id, only ever assign(): it never joins, rebalances or commits for the feed's group.
    return make_consumer(
        f"kafkacache-replay-{replay.pk}", **{"enable.auto.commit": False, "enable.partition.eof": True}
    )


def _read(reader: Consumer, topic: str, partition: int, start: int, end: int, *, deadline: float) -> Iterator[Message]:
    """Messages of one partition from `start` to `end` (inclusive), read until there or out of time."""
    reader.assign([TopicPartition(topic, partition, start)])
    try:
        while time.monotonic() < deadline:
            msg = reader.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return
                raise RuntimeError(f"reading {topic}/{partition}: {error}")
            if (msg.offset() or 0) > end:
                return
            yield msg
            if (msg.offset() or 0) >= end:
                return
        raise TimeoutError(f"reading {topic}/{partition} {start}..{end} took too long")
    finally:
        reader.unassign()


def _process(consumer: FeedConsumer, messages: list[Message]) -> list[ReplayItem]:
    consumer.process_batch(messages)
    consumer.latencies.flush()  # no run loop here to flush them
    items = []
    for msg, outcome, reason in consumer.last_results:
        headers = headers_dict(msg.headers())
        try:
            message_uuid: uuid.UUID | None = uuid.UUID(headers.get("uuid", b"").decode())
        except (ValueError, UnicodeDecodeError):
            message_uuid = None
        key = (msg.key() or b"").decode(errors="replace")
        items.append(
            ReplayItem(
                original_uuid=message_uuid,
                uuid=message_uuid,
                key=key,
                partition=msg.partition(),
                offset=msg.offset(),
                outcome=outcome,
                detail=reason,
            )
        )
    return items


def _resolve_dead_letters(replay: Replay, items: Sequence[ReplayItem]) -> None:
    """Every dead-lettered finding of a message the replay has now stored (also those of earlier
    failed attempts), found by UUID or by the message's place in its topic."""
    for item in items:
        if item.outcome not in ReplayItem.DELIVERED:
            continue
        place = Q(detail__partition=item.partition, detail__offset=item.offset)
        ids = Finding.objects.filter(
            Q(uuid=item.uuid) | place if item.uuid else place,
            topic=replay.topic,
            category=Finding.Category.DEAD_LETTERED,
        ).values_list("pk", flat=True)
        dead_letter_findings_resolve(replay=replay, finding_ids=ids, delivered_uuid=item.uuid)


def replay_kafka(replay: Replay, progress: Progress) -> None:
    topic = replay.topic
    wanted: dict[int, set[int] | None] = {}  # partition -> offsets (None: the whole range)
    bounds: dict[int, tuple[int, int]] = {}
    if replay.scope == Scope.OFFSETS:
        p = replay.target["partition"]
        wanted[p], bounds[p] = None, (replay.target["start_offset"], replay.target["end_offset"])
        progress.total(bounds[p][1] - bounds[p][0] + 1)
    else:
        originals, unknown = originals_of(replay)
        progress.total(len(originals) + len(unknown))
        progress.record(unknown)
        for o in originals:
            wanted.setdefault(o.partition, set()).add(o.offset)  # type: ignore[union-attr]
        for p, offsets in wanted.items():
            assert offsets is not None
            bounds[p] = (min(offsets), max(offsets))
    consumer = _feed_consumer(topic)
    reader = _reader(replay)
    deadline = time.monotonic() + settings.REPLAY_READ_SECONDS
    try:
        for partition in sorted(wanted):
            start, end = bounds[partition]
            low, high = reader.get_watermark_offsets(TopicPartition(topic.name, partition), timeout=10)
            seen: set[int] = set()
            batch: list[Message] = []
            if start < high and end >= low:
                for msg in _read(reader, topic.name, partition, max(start, low), end, deadline=deadline):
                    offsets = wanted[partition]
                    if offsets is not None and msg.offset() not in offsets:
                        continue
                    seen.add(msg.offset() or 0)
                    batch.append(msg)
                    if len(batch) >= settings.REPLAY_BATCH_SIZE:
                        _kafka_batch(replay, consumer, batch, progress)
                        batch = []
                _kafka_batch(replay, consumer, batch, progress)
            expected = wanted[partition] or set(range(start, end + 1))
            progress.record(
                [
                    ReplayItem(
                        partition=partition,
                        offset=offset,
                        outcome=Outcome.SKIPPED,
                        detail=_absent(offset, low, high),
                    )
                    for offset in sorted(expected - seen)
                ]
            )
    finally:
        reader.close()


def _message_uuid(msg: Message) -> uuid.UUID | None:
    try:
        return uuid.UUID(headers_dict(msg.headers()).get("uuid", b"").decode())
    except (ValueError, UnicodeDecodeError):
        return None


def _guarded(batch: list[Message], progress: Progress) -> list[Message]:
    """The replay guard for messages known only once read (offset ranges, dead letters): those replayed
    REPLAY_MAX_PER_MESSAGE times already are skipped with the reason, the rest go on."""
    limit = settings.REPLAY_MAX_PER_MESSAGE
    uuids = [_message_uuid(m) for m in batch]
    times = replays_per_message(uuids)
    kept, skipped = [], []
    for msg, message_uuid in zip(batch, uuids, strict=True):
        n = times.get(message_uuid, 0) if message_uuid else 0
        if n < limit:
            kept.append(msg)
            continue
        skipped.append(
            ReplayItem(
                original_uuid=message_uuid,
                key=(msg.key() or b"").decode(errors="replace"),
                partition=msg.partition(),
                offset=msg.offset(),
                outcome=Outcome.SKIPPED,
                detail=f"replay guard: replayed {n} times already (REPLAY_MAX_PER_MESSAGE={limit})",
            )
        )
    progress.record(skipped)
    return kept


def _kafka_batch(replay: Replay, consumer: FeedConsumer, batch: list[Message], progress: Progress) -> None:
    batch = _guarded(batch, progress) if batch else batch
    if not batch:
        return
    items = _process(consumer, batch)
    progress.record(items)
    _resolve_dead_letters(replay, items)


def _absent(offset: int, low: int, high: int) -> str:
    if offset < low:
        return f"no longer in Kafka (the partition now starts at offset {low})"
    if offset >= high:
        return f"not written yet (the partition ends before offset {high})"
    return "no message at this offset (compacted or a control record)"


# --- source ------------------------------------------------------------------------------------


def _stand_ins(replay: Replay) -> tuple[dict[str, uuid.UUID | None], list[ReplayItem]]:
    """Record keys to rebuild, each with the message its rebuild stands in for (if known)."""
    if replay.scope == Scope.CLIENTS:
        keys = replay.target["keys"]
        # The message a rebuild of this key stands in for: the key's latest open missing/altered finding.
        latest: dict[str, uuid.UUID | None] = dict.fromkeys(keys)
        for key, message_uuid in (
            Finding.objects.filter(
                topic=replay.topic,
                key__in=keys,
                category__in=(Finding.Category.MISSING, Finding.Category.ALTERED),
                uuid__isnull=False,
            )
            .exclude(status=Finding.Status.RESOLVED)
            .order_by("created_at")
            .values_list("key", "uuid")
        ):
            latest[key] = message_uuid
        # The replay guard, for the messages the rebuilds stand in for.
        limit = settings.REPLAY_MAX_PER_MESSAGE
        times = replays_per_message(latest.values())
        guarded = [
            ReplayItem(
                original_uuid=u,
                key=k,
                outcome=Outcome.SKIPPED,
                detail=f"replay guard: replayed {times[u]} times already (REPLAY_MAX_PER_MESSAGE={limit})",
            )
            for k, u in latest.items()
            if u is not None and times.get(u, 0) >= limit
        ]
        return {k: u for k, u in latest.items() if not (u is not None and times.get(u, 0) >= limit)}, guarded
    originals, unknown = originals_of(replay)
    by_key: dict[str, uuid.UUID | None] = {}
    for o in originals:  # oldest first: the latest message of a key wins
        by_key[o.key] = o.uuid
    return by_key, unknown


def replay_source(replay: Replay, progress: Progress) -> None:
    topic = replay.topic
    by_key, unknown = _stand_ins(replay)
    progress.total(len(by_key) + len(unknown))
    progress.record(unknown)
    load = Load.objects.get(pk=replay.target["load"]) if replay.scope == Scope.LOAD else None
    name = load.source if load else replay.target.get("source", "ods")
    try:
        source = source_get(name)
    except SourceError as exc:
        raise AppError(str(exc), code="bad_source") from None
    event = "bulk" if topic.kind == Topic.Kind.BULK else "add"
    not_clients = [k for k in by_key if client_id_of(k) is None]
    progress.record(
        [
            ReplayItem(original_uuid=by_key[k], key=k, outcome=Outcome.SKIPPED, detail="not a client key")
            for k in not_clients
        ]
    )
    keys = [k for k in by_key if k not in not_clients]
    for chunk in _batched(keys, settings.REPLAY_BATCH_SIZE):
        ids = [i for i in (client_id_of(k) for k in chunk) if i is not None]
        found = [item for batch in source.batches(client_ids=ids, batch_size=len(ids)) for item in batch]
        deliveries, refused = feed_services.items_publish(
            topic=topic,
            items=found,
            event=event,
            source=source.name,
            load=load if event == "bulk" else None,
            replay_of={k: u for k, u in by_key.items() if u is not None},
        )
        published = {d.message.key: d for d in deliveries}
        gone = [k for k in chunk if k not in published and k not in refused]
        for delivery in _deletes_publish(topic, source, gone, by_key):
            published[delivery.message.key] = delivery
        items = []
        for key in chunk:
            item = ReplayItem(original_uuid=by_key[key], key=key)
            delivery = published.get(key)
            if delivery is not None and delivery.error:
                items.append(_with(item, Outcome.FAILED, f"Kafka did not acknowledge: {delivery.error}"))
            elif delivery is not None and delivery.message.event == "delete":
                detail = (
                    f"not in {source.name} any more: a delete at version {delivery.message.version} published as"
                    f" {topic.name}/{delivery.partition}@{delivery.offset}"
                )
                items.append(_with(item, Outcome.PUBLISHED, detail, delivery.message.uuid))
            elif delivery is not None:
                detail = f"rebuilt from {source.name}, published as {topic.name}/{delivery.partition}@{delivery.offset}"
                items.append(_with(item, Outcome.PUBLISHED, detail, delivery.message.uuid))
            elif key in refused:
                items.append(_with(item, Outcome.SKIPPED, f"not publishable: {refused[key]}"))
            else:
                items.append(_with(item, Outcome.SKIPPED, f"not in the source {source.name}"))
        progress.record(items)


def _deletes_publish(topic: Topic, source, keys: Sequence[str], by_key: dict[str, uuid.UUID | None]) -> list:
    """Keys a versioned source no longer holds: a delete each, at a version the source
    draws now (newer than any it gave the key), so the cache drops what it still serves."""
    draw = getattr(source, "version_draw", None)
    if not keys or draw is None:
        return []  # a file source cannot say when a record went: nothing to order a delete by
    version = draw()
    messages = [
        message_build(
            key=key,
            event="delete",
            value=None,
            source=f"replay:{source.name}",
            schema_version=avro.current_version(),
            hash_algorithm=topic.hash_algorithm,
            replay_of=by_key.get(key),
            version=version,
        )
        for key in keys
    ]
    return feed_services.messages_publish(topic=topic, messages=messages)


# --- dead letters -------------------------------------------------------------------------------


def _dead_lettered(replay: Replay) -> list[Finding]:
    findings = Finding.objects.filter(topic=replay.topic, category=Finding.Category.DEAD_LETTERED)
    if replay.scope == Scope.FINDINGS:
        findings = findings.filter(pk__in=replay.target["findings"])
    else:
        findings = findings.filter(created_at__gte=replay.target["start"], created_at__lt=replay.target["end"]).exclude(
            status=Finding.Status.RESOLVED
        )
    limit = settings.REPLAY_MAX_MESSAGES
    found = list(findings.order_by("created_at", "pk")[: limit + 1])
    if len(found) > limit:
        raise AppError(f"more than {limit} dead-lettered findings in the range: narrow it")
    return found


def _dead_letter_scan(
    replay: Replay, origins: set[tuple[int, int]], dlq_topic: str, since: dt.datetime
) -> dict[tuple[int, int], Message]:
    """The latest dead letter of each origin (partition, offset of the replay's topic), from `since` on."""
    found: dict[tuple[int, int], Message] = {}
    reader = _reader(replay)
    deadline = time.monotonic() + settings.REPLAY_READ_SECONDS
    try:
        metadata = reader.list_topics(dlq_topic, timeout=10).topics.get(dlq_topic)
        if metadata is None or metadata.error is not None:
            raise AppError(f"dead-letter topic {dlq_topic} cannot be read: {getattr(metadata, 'error', 'absent')}")
        ms = _created_ms(since)
        starts = reader.offsets_for_times(
            [TopicPartition(dlq_topic, p, ms) for p in sorted(metadata.partitions)], timeout=10
        )
        for tp in starts:
            low, high = reader.get_watermark_offsets(TopicPartition(dlq_topic, tp.partition), timeout=10)
            start = tp.offset if tp.offset >= 0 else high  # -1: nothing written since
            if start >= high:
                continue
            for msg in _read(reader, dlq_topic, tp.partition, max(start, low), high - 1, deadline=deadline):
                h = headers_dict(msg.headers())
                if h.get("dlq-topic", b"").decode(errors="replace") != replay.topic.name:
                    continue
                try:
                    origin = (int(h.get("dlq-partition", b"")), int(h.get("dlq-offset", b"")))
                except ValueError:
                    continue
                if origin in origins:
                    found[origin] = msg
    finally:
        reader.close()
    return found


def _as_original(topic: Topic, origin: tuple[int, int], letter: Message) -> Message:
    """The dead letter as the message it was: its topic, partition, offset and headers, no dlq-* ones."""
    raw = letter.headers() or []
    items = raw.items() if isinstance(raw, dict) else raw
    headers = [(k, v) for k, v in items if not k.startswith("dlq-")]
    kind, ms = letter.timestamp()
    return Message(
        topic=topic.name,
        partition=origin[0],
        offset=origin[1],
        key=letter.key(),
        value=letter.value(),
        headers=headers,
        timestamp=(kind or TIMESTAMP_CREATE_TIME, ms),
    )


def _letter_mismatch(topic: Topic, origin: tuple[int, int], findings: Sequence[Finding], letter: Message) -> str:
    """Why the dead letter found at a finding's coordinates is not the message the finding is
    about ("" when it is): its uuid, key and content hash must be the finding's and the
    consume ledger's (a dead letter topic anyone can write to is not trusted by position)."""
    h = headers_dict(letter.headers())
    raw_key = letter.key() or b""
    key = raw_key.decode(errors="replace").replace("\x00", "\N{REPLACEMENT CHARACTER}")[:512]
    letter_uuid = h.get("uuid", b"").decode(errors="replace")
    for finding in findings:
        if (str(finding.uuid) if finding.uuid else "") != (letter_uuid if finding.uuid else ""):
            return "uuid differs from the finding's"
        if finding.key != key:
            return "key differs from the finding's"
    digest = content_hash(letter.value() or b"", topic.hash_algorithm)
    ledger = ConsumedMessage.objects.filter(
        topic=topic, key=key, partition=origin[0], offset=origin[1], outcome=ConsumedMessage.Outcome.DEAD_LETTERED
    ).values_list("content_hash", flat=True)
    if not any(bytes(h) == digest for h in ledger):
        return "content hash differs from the consume ledger's"
    return ""


def replay_dead_letters(replay: Replay, progress: Progress) -> None:
    topic = replay.topic
    findings = _dead_lettered(replay)
    by_origin: dict[tuple[int, int], list[Finding]] = defaultdict(list)
    unplaced = []
    for f in findings:
        try:
            by_origin[(int(f.detail["partition"]), int(f.detail["offset"]))].append(f)
        except (KeyError, TypeError, ValueError):
            unplaced.append(f)
    progress.total(len(by_origin) + len(unplaced))
    progress.record(
        [
            ReplayItem(original_uuid=f.uuid, key=f.key, outcome=Outcome.SKIPPED, detail="finding names no offset")
            for f in unplaced
        ]
    )
    if not by_origin:
        return
    dlq_topics = {f.detail.get("dead_letter_topic") or settings.KAFKA_TOPIC_DEAD_LETTER for f in findings}
    since = min(f.created_at for f in findings) - _DLQ_SLACK
    letters: dict[tuple[int, int], Message] = {}
    for dlq_topic in sorted(dlq_topics):
        letters.update(_dead_letter_scan(replay, set(by_origin), dlq_topic, since))
    absent = [
        ReplayItem(
            original_uuid=fs[0].uuid,
            key=fs[0].key,
            partition=origin[0],
            offset=origin[1],
            outcome=Outcome.SKIPPED,
            detail=f"not found in the dead-letter topic ({', '.join(sorted(dlq_topics))}): past its retention?",
        )
        for origin, fs in sorted(by_origin.items())
        if origin not in letters
    ]
    progress.record(absent)
    refused = []
    for origin in sorted(letters):
        why = _letter_mismatch(topic, origin, by_origin[origin], letters[origin])
        if why:
            logger.warning("reprocess refused %s@%s of %s: %s", origin[0], origin[1], topic.name, why)
            refused.append(
                ReplayItem(
                    original_uuid=by_origin[origin][0].uuid,
                    key=by_origin[origin][0].key,
                    partition=origin[0],
                    offset=origin[1],
                    outcome=Outcome.FAILED,
                    detail=f"dead letter at these coordinates is not the finding's message: {why}",
                )
            )
            del letters[origin]
    progress.record(refused)
    consumer = _feed_consumer(topic)
    for chunk in _batched(sorted(letters), settings.REPLAY_BATCH_SIZE):
        batch = _guarded([_as_original(topic, origin, letters[origin]) for origin in chunk], progress)
        if not batch:
            continue
        items = _process(consumer, batch)
        progress.record(items)
        _resolve_dead_letters(replay, items)


WAYS: dict[str, Callable[[Replay, Progress], None]] = {
    Replay.Way.AUDIT: replay_audit,
    Replay.Way.KAFKA: replay_kafka,
    Replay.Way.SOURCE: replay_source,
    Replay.Way.DEAD_LETTER: replay_dead_letters,
}
