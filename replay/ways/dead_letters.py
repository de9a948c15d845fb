"""The dead-letter way: dead-lettered messages read back from the dead-letter topic (found
by the origin the feed put in their dlq-* headers), given back their original
topic, partition and offset, and run through FeedConsumer.process_batch.

Only exactly the message this product published is reprocessed: its uuid, key and
content hash must be the finding's and the consume ledger's, and its seal leaf (over
the topic, every header the consumer acts on, the key and the value's hash) the one
the publish ledger kept when it was published. A letter with other headers (another
event, a made-up version), or one the publish ledger does not hold, is refused.
"""

import datetime as dt
import logging
import time
import uuid as uuidlib
from collections import defaultdict
from collections.abc import Sequence

from confluent_kafka import TIMESTAMP_CREATE_TIME, Message, TopicPartition
from django.conf import settings

from config.errors import AppError
from core.hashing import content_hash
from kafkacache.messages import headers_dict
from kafkacache.seal import seal_leaf, seal_value_hash
from recon.models import ConsumedMessage, Finding, PublishedMessage, Replay, ReplayItem, Topic
from replay.services.progress import Progress
from replay.ways.common import Outcome, Scope, batched, created_ms
from replay.ways.reading import (
    dead_letters_resolve,
    feed_consumer,
    messages_guarded,
    messages_process,
    messages_read,
    reader_open,
)

logger = logging.getLogger(__name__)


_DLQ_SLACK = dt.timedelta(minutes=5)  # the dead letter was produced a moment before its finding was written


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
    reader = reader_open(replay)
    deadline = time.monotonic() + settings.REPLAY_READ_SECONDS
    try:
        metadata = reader.list_topics(dlq_topic, timeout=10).topics.get(dlq_topic)
        if metadata is None or metadata.error is not None:
            raise AppError(f"dead-letter topic {dlq_topic} cannot be read: {getattr(metadata, 'error', 'absent')}")
        ms = created_ms(since)
        starts = reader.offsets_for_times(
            [TopicPartition(dlq_topic, p, ms) for p in sorted(metadata.partitions)], timeout=10
        )
        for tp in starts:
            low, high = reader.get_watermark_offsets(TopicPartition(dlq_topic, tp.partition), timeout=10)
            start = tp.offset if tp.offset >= 0 else high  # -1: nothing written since
            if start >= high:
                continue
            for msg in messages_read(reader, dlq_topic, tp.partition, max(start, low), high - 1, deadline=deadline):
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
    return _headers_mismatch(topic, letter, h, raw_key, digest)


def _headers_mismatch(topic: Topic, letter: Message, h: dict[str, bytes], raw_key: bytes, digest: bytes) -> str:
    """Why the letter is not the message as the publish ledger recorded it, headers included."""
    try:
        message_uuid = uuidlib.UUID(h.get("uuid", b"").decode(errors="replace"))
    except ValueError:
        return "no valid uuid header: not a message this product published"
    kept = list(PublishedMessage.objects.filter(topic=topic, uuid=message_uuid).values_list("seal_leaf", flat=True)[:1])
    if not kept:
        return "not in the publish ledger: only a message this product published is reprocessed"
    if kept[0] is None:
        return "published before the ledger kept its headers: replay it from the source or the audit log"
    original = {k: v for k, v in h.items() if not k.startswith("dlq-")}
    value_hash = seal_value_hash(letter.value() or b"", content_hash_=digest, algorithm=topic.hash_algorithm)
    if seal_leaf(topic=topic.name, headers=original, key=raw_key, value_hash=value_hash) != bytes(kept[0]):
        return "headers differ from those the publish ledger recorded"
    return ""


def replay_dead_letters(replay: Replay, progress: Progress) -> None:
    """Reprocess the request's dead-lettered findings: each one's letter found in the
    dead-letter topic by its origin, checked to be exactly the message published there,
    and run through the feed's process_batch; the rest recorded as skipped or refused."""
    topic = replay.topic
    findings = _dead_lettered(replay)
    by_origin, unplaced = _by_origin(findings)
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
    progress.record(_letters_refused(topic, by_origin, letters))
    consumer = feed_consumer(topic)
    for chunk in batched(sorted(letters), settings.REPLAY_BATCH_SIZE):
        batch = messages_guarded([_as_original(topic, origin, letters[origin]) for origin in chunk], progress)
        if not batch:
            continue
        items = messages_process(consumer, batch)
        progress.record(items)
        dead_letters_resolve(replay, items)


def _by_origin(findings: Sequence[Finding]) -> tuple[dict[tuple[int, int], list[Finding]], list[Finding]]:
    """The findings by the (partition, offset) their message had on the topic; and those naming none."""
    by_origin: dict[tuple[int, int], list[Finding]] = defaultdict(list)
    unplaced = []
    for f in findings:
        try:
            by_origin[(int(f.detail["partition"]), int(f.detail["offset"]))].append(f)
        except (KeyError, TypeError, ValueError):
            unplaced.append(f)
    return by_origin, unplaced


def _letters_refused(
    topic: Topic, by_origin: dict[tuple[int, int], list[Finding]], letters: dict[tuple[int, int], Message]
) -> list[ReplayItem]:
    """The letters that are not exactly their finding's message, taken out of `letters`, as failed items."""
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
    return refused
