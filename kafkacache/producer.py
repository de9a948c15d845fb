"""Publishing with delivery reports: nothing counts as published until Kafka acks it.

One idempotent producer per process (made on first use in that process, never
at import time: a librdkafka client does not survive a fork). `publish` hands a
batch to librdkafka, serving delivery callbacks as it goes, then waits for its
reports; every message comes back with its partition and offset, or the error
that stopped it. `Publishing` is the same without the wait, for callers that
keep a few batches in flight.
"""

import functools
import logging
import os
from collections.abc import Sequence
from typing import NamedTuple

from confluent_kafka import KafkaError, Message, Producer

from core.clients import make_producer
from kafkacache.messages import Header, OutMessage, headers_dict, headers_weight
from kafkacache.seal import HEADER as SEAL_HEADER
from kafkacache.seal import seal_leaf, seal_signer, seal_value_hash

logger = logging.getLogger(__name__)

_producer: tuple[int, Producer] | None = None


def producer() -> Producer:
    """This process's producer."""
    global _producer
    if _producer is None or _producer[0] != os.getpid():
        _producer = (os.getpid(), make_producer())
    return _producer[1]


class Delivery(NamedTuple):
    message: OutMessage
    partition: int
    offset: int
    error: str  # empty when Kafka acknowledged the message
    timestamp: tuple[int, int] | None = None  # (type, ms) as the broker stamped it (kafkacache.clock)


class Publishing:
    """A batch handed to librdkafka whose delivery reports may still be coming in.

    Made by producing every message (serving delivery callbacks as it goes, retrying
    when the local queue is full); `done` once every report is in; `wait` serves
    callbacks until then and answers the deliveries in message order. Several can be
    in flight on one producer: a load reads and builds its next batch while Kafka
    acknowledges this one, and ledgers a batch only once all of it is acknowledged.
    """

    def __init__(self, messages: Sequence[OutMessage], *, topic: str, client: Producer | None = None):
        self.client = client or producer()
        self.topic = topic
        self.messages = messages = messages_seal(messages, topic=topic)  # one signature per batch
        self.reports: list[Delivery | None] = [None] * len(messages)
        self.remaining = len(messages)
        for index, message in enumerate(messages):
            while True:
                try:
                    self.client.produce(
                        topic,
                        key=message.key.encode(),
                        value=message.value,
                        headers=message.headers,
                        on_delivery=functools.partial(self._report, index),
                    )
                    break
                except BufferError:
                    self.client.poll(0.1)  # local queue full: serve delivery reports, then retry
            self.client.poll(0)

    def _report(self, index: int, err: KafkaError | None, msg: Message) -> None:
        if self.reports[index] is None:
            self.remaining -= 1
        if err is not None:
            self.reports[index] = Delivery(self.messages[index], -1, -1, str(err))
        else:
            self.reports[index] = Delivery(
                self.messages[index], msg.partition() or 0, msg.offset() or 0, "", msg.timestamp()
            )

    @property
    def done(self) -> bool:
        if self.remaining:
            self.client.poll(0)
        return not self.remaining

    def wait(self) -> list[Delivery]:
        """Every delivery report (bounded by delivery.timeout.ms), in message order."""
        while self.remaining:
            self.client.poll(0.05)
        out = []
        for index, report in enumerate(self.reports):
            if report is None:  # only a safety net: remaining counts every report
                report = Delivery(self.messages[index], -1, -1, "no delivery report")
            if report.error:
                logger.error("not published: %r %s: %r", message_label(report.message), self.topic, report.error)
            out.append(report)
        return out


def publish(messages: Sequence[OutMessage], *, topic: str, client: Producer | None = None) -> list[Delivery]:
    """Publish and wait for every delivery report (bounded by delivery.timeout.ms).

    The sealable messages are sealed first, as one batch (kafkacache.seal), when this
    process holds a signing key; the deliveries carry the messages as sent."""
    return Publishing(messages, topic=topic, client=client).wait()


def messages_seal(messages: Sequence[OutMessage], *, topic: str) -> list[OutMessage]:
    """The messages with their seal leaf (the publish ledger keeps it, sealed or not) and a
    seal header on each sealable one when this process holds a signing key: one signature
    per batch. A leaf is one BLAKE2b of the headers, key and value hash per message."""
    signer = seal_signer()
    out = list(messages)
    leaves = []
    for i, message in enumerate(messages):
        known = headers_dict(message.headers)
        algorithm = (known.get("hash-alg") or b"").decode()
        value_hash = seal_value_hash(message.value or b"", content_hash_=message.content_hash, algorithm=algorithm)
        leaf = seal_leaf(topic=topic, headers=known, key=message.key.encode(), value_hash=value_hash)
        out[i] = message._replace(leaf=leaf)
        if message.sealable:
            leaves.append((i, leaf))
    if signer is None or not leaves:
        return out
    for (i, _), seal in zip(leaves, signer.seal([leaf for _, leaf in leaves]), strict=True):
        headers: list[Header] = [*out[i].headers, (SEAL_HEADER, seal)]
        size = len(out[i].key.encode()) + len(out[i].value or b"") + headers_weight(headers)
        out[i] = out[i]._replace(headers=headers, size=size)
    return out


def message_label(message: OutMessage) -> str:
    return f"{message.event} {message.key} {message.uuid}"
