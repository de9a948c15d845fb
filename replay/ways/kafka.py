"""The kafka way: the original messages re-read by offset with a private consumer
(assign + seek, its own group id, never subscribes or commits, so the feed's
group sees nothing) and run through FeedConsumer.process_batch: Redis, consume
ledger, dead letters, findings, exactly as the feed does. The deliveries are
ledgered under the topic's consumer group, as the redeliveries they are: a
message consumed before shows as a duplicate in the reconcile, never as a loss.
"""

import time

from confluent_kafka import Message, TopicPartition
from django.conf import settings

from kafkacache.consumer import FeedConsumer
from recon.models import Replay, ReplayItem
from replay.services.progress import Progress
from replay.ways.common import Outcome, Scope, originals_of
from replay.ways.reading import (
    dead_letters_resolve,
    feed_consumer,
    messages_guarded,
    messages_process,
    messages_read,
    reader_open,
)


def _kafka_batch(replay: Replay, consumer: FeedConsumer, batch: list[Message], progress: Progress) -> None:
    batch = messages_guarded(batch, progress) if batch else batch
    if not batch:
        return
    items = messages_process(consumer, batch)
    progress.record(items)
    dead_letters_resolve(replay, items)


def _absent(offset: int, low: int, high: int) -> str:
    if offset < low:
        return f"no longer in Kafka (the partition now starts at offset {low})"
    if offset >= high:
        return f"not written yet (the partition ends before offset {high})"
    return "no message at this offset (compacted or a control record)"


def replay_kafka(replay: Replay, progress: Progress) -> None:
    topic = replay.topic
    wanted: dict[int, set[int] | None] = {}  # partition -> offsets (None: the whole range)
    named: dict[tuple[int, int], tuple] = {}  # (partition, offset) -> (uuid, key): a skip names its message
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
            named[(o.partition, o.offset)] = (o.uuid, o.key)
        for p, offsets in wanted.items():
            assert offsets is not None
            bounds[p] = (min(offsets), max(offsets))
    consumer = feed_consumer(topic)
    reader = reader_open(replay)
    deadline = time.monotonic() + settings.REPLAY_READ_SECONDS
    try:
        for partition in sorted(wanted):
            start, end = bounds[partition]
            low, high = reader.get_watermark_offsets(TopicPartition(topic.name, partition), timeout=10)
            seen: set[int] = set()
            batch: list[Message] = []
            if start < high and end >= low:
                for msg in messages_read(reader, topic.name, partition, max(start, low), end, deadline=deadline):
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
                        original_uuid=named.get((partition, offset), (None, ""))[0],
                        key=named.get((partition, offset), (None, ""))[1],
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
