"""What Kafka acknowledged of a load part that its dead worker never ledgered, read back.

A part ledgers a batch once Kafka has acknowledged all of it, a few batches behind
what it hands to Kafka (kafkacache.services.loads). A worker killed in between leaves
messages on the topic that the publish ledger lacks: they were acknowledged (they
are there, below the high watermark), so the ledger must hold them, once. The part
records per partition where such messages can start (LoadPart.offsets: past its last
ledgered batch; the high watermark at its first claim); the worker that resumes it
reads each partition from there to the high watermark and keeps the messages of
this load (the `load` header) and of this part's key range whose content hash and
seal verify: the seal (kafkacache.seal) says this project's producer built them, so
a message someone else wrote with the load's key is never ledgered as ours and stays
an orphan for reconciliation to find. A part whose producer holds no signing key
recovers nothing this way (its unledgered messages are orphans too).
"""

import logging
import os
import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from core.clients import make_consumer
from core.hashing import content_hash
from core.records import client_id_of
from kafkacache.messages import OutMessage, headers_dict, message_size
from kafkacache.producer import Delivery
from kafkacache.seal import seal_value_hash, seal_verifier
from recon.models import LoadPart, PublishedMessage, Topic

logger = logging.getLogger(__name__)

READ_SECONDS = 300  # reading a partition's tail back gives up after this (the part fails, and says so)
WATERMARK_SECONDS = 15


class RecoveryError(RuntimeError):
    """The topic could not be read back to its high watermark."""


_looker: tuple[int, Consumer] | None = None


def topic_ends(topic: str) -> dict[str, int]:
    """Each partition's high watermark now, by partition number (as LoadPart.offsets keeps them).
    One metadata client per process, made on first use (each part asks once, at its start)."""
    global _looker
    if _looker is None or _looker[0] != os.getpid():
        _looker = (
            os.getpid(),
            make_consumer(f"kafkacache-ends-{uuid.uuid4().hex[:8]}", **{"enable.auto.commit": False}),
        )
    return {str(p): high for p, (_low, high) in _watermarks(_looker[1], topic).items()}


# What a broker answers about a topic made a moment ago, while its partitions get leaders.
_SETTLING = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.NOT_LEADER_FOR_PARTITION}


def _watermarks(consumer, topic: str) -> dict[int, tuple[int, int]]:
    """(low, high) of each partition; retried for WATERMARK_SECONDS while the broker says the
    topic is settling (made a moment ago) or is otherwise briefly unable to answer."""
    deadline = time.monotonic() + WATERMARK_SECONDS
    while True:
        try:
            metadata = consumer.list_topics(topic, timeout=10).topics[topic]
            if metadata.error is not None:
                raise KafkaException(metadata.error)
            partitions = sorted(metadata.partitions)
            return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            settling = isinstance(error, KafkaError) and (error.retriable() or error.code() in _SETTLING)
            if not settling or time.monotonic() > deadline:
                raise RecoveryError(f"{topic}: the partitions' offsets could not be read: {exc}") from exc
            time.sleep(0.5)


def part_unledgered(*, part: LoadPart, topic: Topic, retrieval_key: str) -> tuple[list[Delivery], dict[str, int]]:
    """The part's acknowledged, verified messages the ledger lacks (as deliveries, in
    partition and offset order), and the offsets read up to (each partition's high watermark)."""
    consumer = make_consumer(
        f"kafkacache-recover-{part.id}", **{"enable.auto.commit": False, "enable.auto.offset.store": False}
    )
    try:
        start: list[TopicPartition] = []
        ends: dict[int, int] = {}
        for p, (low, high) in _watermarks(consumer, topic.name).items():
            ends[p] = high
            begin = max(int(part.offsets.get(str(p), low)), low)
            if begin < high:
                start.append(TopicPartition(topic.name, p, begin))
        found = _read(consumer, start, ends, _belongs(part, topic, retrieval_key)) if start else []
    finally:
        consumer.close()
    if found:
        ledgered = set(
            PublishedMessage.objects.filter(uuid__in=[d.message.uuid for d in found]).values_list("uuid", flat=True)
        )
        found = [d for d in found if d.message.uuid not in ledgered]
    return found, {str(p): high for p, high in ends.items()}


def _read(consumer, start: list[TopicPartition], ends: dict[int, int], belongs: Callable) -> list[Delivery]:
    consumer.assign(start)
    todo = {tp.partition for tp in start}
    found: list[Delivery] = []
    deadline = time.monotonic() + READ_SECONDS
    while todo:
        if time.monotonic() > deadline:
            raise RecoveryError(f"could not read partitions {sorted(todo)} back to their high watermark")
        for message in consumer.consume(num_messages=1000, timeout=1.0):
            if message.error() is None and message.offset() < ends[message.partition()]:
                delivery = belongs(message)
                if delivery is not None:
                    found.append(delivery)
        for tp in consumer.position([TopicPartition(tp.topic, tp.partition) for tp in start]):
            if tp.offset >= ends[tp.partition]:
                todo.discard(tp.partition)
    found.sort(key=lambda d: (d.partition, d.offset))
    return found


def _belongs(part: LoadPart, topic: Topic, retrieval_key: str) -> Callable[[Message], Delivery | None]:
    wanted = retrieval_key.encode()
    verifier = seal_verifier()

    def belongs(message: Message) -> Delivery | None:
        raw_key = message.key() or b""
        client_id = client_id_of(raw_key.decode(errors="replace"))
        if client_id is None:
            return None
        if (part.key_after is not None and client_id <= part.key_after) or (
            part.key_last is not None and client_id > part.key_last
        ):
            return None
        headers = headers_dict(message.headers())
        if headers.get("load") != wanted:
            return None
        value = message.value() or b""
        digest = content_hash(value, topic.hash_algorithm)
        if headers.get("hash") != digest.hex().encode() or headers.get("hash-alg") != topic.hash_algorithm.encode():
            logger.warning(
                "load part %s: %s@%s has the load's key but not its hash",
                part.id,
                message.partition(),
                message.offset(),
            )
            return None
        value_hash = seal_value_hash(value, content_hash_=digest, algorithm=topic.hash_algorithm)
        if not verifier.verified(topic=topic.name, headers=headers, key=raw_key, value_hash=value_hash):
            logger.warning(
                "load part %s: %s@%s has the load's key but no seal that verifies: left to reconciliation",
                part.id,
                message.partition(),
                message.offset(),
            )
            return None
        try:
            version = int(headers["version"]) if "version" in headers else None
            out = OutMessage(
                uuid=uuid.UUID(headers["uuid"].decode()),
                key=raw_key.decode(),
                value=message.value(),
                headers=_listed(message.headers()),
                event=headers["event"].decode(),
                created_ms=int(headers["created"]),
                content_hash=digest,
                size=message_size(raw_key, message.value(), message.headers()),
                schema_version=int(headers["schema"]),
                load_id=part.load_id,
                version=version,
                sealable=True,
            )
        except (KeyError, ValueError):
            return None  # sealed by us, so never the case: a header the seal does not cover is off
        return Delivery(out, message.partition() or 0, message.offset() or 0, "", message.timestamp())

    return belongs


def _listed(headers) -> list:
    """confluent-kafka's headers of a consumed message (a list of pairs, or None) as OutMessage keeps them."""
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers or [])
