"""Reading messages back from Kafka with a private consumer, and running them through the feed's
consumer (the kafka and dead-letter ways).
"""

import time
import uuid
from collections.abc import Iterator, Sequence

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from django.conf import settings
from django.db.models import Q

from core.clients import make_consumer
from kafkacache.consumer import FeedConsumer
from kafkacache.messages import headers_dict
from recon.models import Finding, Replay, ReplayItem, Topic
from replay.guard import replays_per_message
from replay.services.findings import dead_letter_findings_resolve
from replay.services.progress import Progress
from replay.ways.common import Outcome


def feed_consumer(topic: Topic) -> FeedConsumer:
    """The feed's consumer logic, not connected to any group: process_batch only."""
    consumer = FeedConsumer(group=topic.consumer_group, batch_size=settings.REPLAY_BATCH_SIZE)
    consumer.topics[topic.name] = topic  # also a topic the process's settings do not name
    return consumer


def reader_open(replay: Replay) -> Consumer:
    # Its own group id, only ever assign(): it never joins, rebalances or commits for the feed's group.
    return make_consumer(
        f"kafkacache-replay-{replay.pk}", **{"enable.auto.commit": False, "enable.partition.eof": True}
    )


def messages_read(
    reader: Consumer, topic: str, partition: int, start: int, end: int, *, deadline: float
) -> Iterator[Message]:
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


def messages_process(consumer: FeedConsumer, messages: list[Message]) -> list[ReplayItem]:
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


def dead_letters_resolve(replay: Replay, items: Sequence[ReplayItem]) -> None:
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


def uuid_of(msg: Message) -> uuid.UUID | None:
    try:
        return uuid.UUID(headers_dict(msg.headers()).get("uuid", b"").decode())
    except (ValueError, UnicodeDecodeError):
        return None


def messages_guarded(batch: list[Message], progress: Progress) -> list[Message]:
    """The replay guard for messages known only once read (offset ranges, dead letters): those replayed
    REPLAY_MAX_PER_MESSAGE times already are skipped with the reason, the rest go on."""
    limit = settings.REPLAY_MAX_PER_MESSAGE
    uuids = [uuid_of(m) for m in batch]
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
