"""The issue's scenario on the real Kafka: known faults in, exactly those UUIDs out.

A minimal publisher and subscriber stand in for the feed here (the feed's own
end-to-end tests drive kafkacache.consumer); both write the recon ledgers the way
the feed does, one call per batch. Faults are made with Kafka itself:
- k messages never delivered: deleted from the partition (admin delete_records) before consumption;
- j altered: the bytes on the wire differ from what the publisher hashed;
- d redelivered (the consumer seeks back and processes them again): counted per window, not
  findings (a second copy at another offset is a duplicate: tests/recon/test_duplicates.py);
- l delayed: consumed after the topic's latency limit;
- o orphans: produced straight to the topic, never through the publisher's ledger.
"""

import datetime as dt
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from django.utils import timezone

from core.clients import make_admin, make_consumer, make_producer
from core.hashing import content_hash
from kafkacache.services.topics import topics_ensure
from recon.models import Window
from recon.services.ledger import ConsumedRow, PublishedRow, consumed_record, published_record
from recon.services.windows import range_reconcile
from tests.recon.helpers import topic_make

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

LATENCY_LIMIT = 3  # seconds; the late messages wait past it, the others are consumed at once


class Harness:
    def __init__(self, name: str):
        topics_ensure([name], partitions=1)
        self.name = name
        self.topic = topic_make(name, window_seconds=3600, grace_seconds=0, latency_limit_seconds=LATENCY_LIMIT)
        self.producer = make_producer()
        self.position = OFFSET_BEGINNING
        self.first_created: dt.datetime | None = None

    def publish(self, count: int, *, tamper: bool = False, ledger: bool = True) -> list[uuid.UUID]:
        """Produce `count` messages; answers their UUIDs in offset order."""
        sent: list[tuple[uuid.UUID, bytes, int]] = []
        delivered: dict[uuid.UUID, tuple[int, int]] = {}

        errors: list[str] = []

        def on_delivery(message_uuid: uuid.UUID):
            def report(err, msg):
                if err is not None:
                    errors.append(str(err))
                else:
                    delivered[message_uuid] = (msg.partition(), msg.offset())

            return report

        for _ in range(count):
            message_uuid = uuid.uuid4()
            value = b"record " + message_uuid.bytes
            created_ms = time.time_ns() // 1_000_000
            wire = value + b" (corrupted in transit)" if tamper else value
            headers = {"uuid": str(message_uuid).encode(), "created": str(created_ms).encode(), "event": b"add"}
            self.producer.produce(
                self.name,
                key=f"client:{message_uuid.hex[:8]}",
                value=wire,
                headers=headers,
                on_delivery=on_delivery(message_uuid),
            )
            self.producer.poll(0)
            sent.append((message_uuid, value, created_ms))
        assert self.producer.flush(10) == 0 and not errors  # every delivery callback has run
        if ledger:
            rows = []
            for message_uuid, value, created_ms in sent:
                partition, offset = delivered[message_uuid]
                at = dt.datetime.fromtimestamp(created_ms / 1000, tz=dt.UTC)
                self.first_created = min(self.first_created or at, at)
                rows.append(
                    PublishedRow(
                        message_uuid,
                        partition,
                        offset,
                        f"client:{message_uuid.hex[:8]}",
                        "add",
                        content_hash(value),
                        len(value),
                        at,
                    )
                )
            published_record(topic=self.topic, rows=rows)
        return [u for u, _, _ in sent]

    def consume(self, *, from_offset: int | None = None, limit: int | None = None) -> list[uuid.UUID]:
        """Read what is there (or `limit` messages from `from_offset`) and write the consume ledger."""
        consumer = make_consumer(f"{self.name}-reader", **{"enable.auto.commit": False})
        start = self.position if from_offset is None else from_offset
        consumer.assign([TopicPartition(self.name, 0, start)])
        rows, seen = [], []
        try:
            deadline = time.monotonic() + 15
            idle_until = None
            while time.monotonic() < deadline and (limit is None or len(rows) < limit):
                msg = consumer.poll(0.2)
                if msg is None:
                    if rows and idle_until is None:
                        idle_until = time.monotonic() + 0.5
                    if idle_until and time.monotonic() > idle_until:
                        break
                    continue
                if msg.error():
                    continue
                idle_until = None
                headers = {k: v.decode() for k, v in msg.headers()}
                message_uuid = uuid.UUID(headers["uuid"])
                published_at = dt.datetime.fromtimestamp(int(headers["created"]) / 1000, tz=dt.UTC)
                rows.append(
                    ConsumedRow(
                        message_uuid,
                        "feeder",
                        msg.partition(),
                        msg.offset(),
                        msg.key().decode(),
                        content_hash(msg.value()),
                        published_at,
                        timezone.now(),
                        "stored",
                    )
                )
                seen.append(message_uuid)
                if from_offset is None:
                    self.position = msg.offset() + 1
        finally:
            consumer.close()
        consumed_record(topic=self.topic, rows=rows)
        return seen

    def delete_before(self, offset: int) -> None:
        admin = make_admin()  # keep the client alive until its futures resolve
        futures = admin.delete_records([TopicPartition(self.name, 0, offset)], operation_timeout=10)
        for future in futures.values():
            assert future.result(timeout=15).low_watermark == offset

    def report(self) -> dict:
        assert self.first_created is not None
        start = self.first_created - dt.timedelta(minutes=1)
        end = timezone.now() + dt.timedelta(minutes=1)
        later = timezone.now() + dt.timedelta(hours=2)  # as the scheduler sees it once the window has closed
        return range_reconcile(topic=self.topic, start=start, end=end, trigger="test", now=later).report


def _named(report: dict) -> dict[str, set[str]]:
    return {category: set(entry["uuids"]) for category, entry in report["findings"].items()}


def _strs(uuids) -> set[str]:
    return {str(u) for u in uuids}


def test_known_faults_are_named_exactly(unique_name):
    kafka = Harness(unique_name("recon-scenario"))
    lost = kafka.publish(3)  # offsets 0..2, deleted before anyone reads them
    kafka.delete_before(3)
    clean = kafka.publish(10)
    altered = kafka.publish(2, tamper=True)
    duplicated = kafka.publish(2)
    orphans = kafka.publish(2, ledger=False)
    first_pass = kafka.consume()
    assert set(first_pass) == set(clean + altered + duplicated + orphans)  # the lost ones are gone from Kafka

    redelivered = kafka.consume(from_offset=3 + 10 + 2, limit=2)  # the duplicated pair, again
    assert redelivered == duplicated

    late = kafka.publish(2)
    time.sleep(LATENCY_LIMIT + 0.5)
    assert kafka.consume() == late

    report = kafka.report()
    assert _named(report) == {
        "missing": _strs(lost),
        "altered": _strs(altered),
        "delayed": _strs(late),
        "orphan": _strs(orphans),
    }
    assert sum(Window.objects.filter(topic=kafka.topic).values_list("redelivered", flat=True)) == 2
    assert report["published"] == 3 + 10 + 2 + 2 + 2
    assert report["windows"]["discrepant"] >= 1 and report["all_matched"] is False


def test_a_clean_run_is_all_matched(unique_name):
    kafka = Harness(unique_name("recon-clean"))
    sent = kafka.publish(20)
    assert sorted(kafka.consume()) == sorted(sent)
    report = kafka.report()
    assert report["all_matched"] is True and report["findings"] == {}
    assert report["published"] == report["consumed"] == 20
