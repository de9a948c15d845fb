"""Publishing a batch: Kafka first, then the batch's database work (ledger rows, counters,
findings, audit payloads) in one transaction after Kafka has acknowledged it. Loads,
change events and replays publish through here.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from core.record_checks import record_problems
from core.records import RecordError, record_encode
from core.sources import SourceItem
from kafkacache.clock import publish_time, skew_detail
from kafkacache.messages import OutMessage, message_build, ms_to_datetime
from kafkacache.producer import Delivery, publish
from recon.models import Finding, Load, Topic
from recon.services.audit import payloads_record
from recon.services.findings import finding_record
from recon.services.ledger import PublishedRow, published_record


@dataclass
class Pending:
    """Findings of a batch, written in the same transaction as its ledger rows."""

    findings: list[dict] = field(default_factory=list)

    def add(self, **kwargs) -> None:
        self.findings.append(kwargs)


def _published_rows(deliveries: Sequence[Delivery]) -> list[PublishedRow]:
    skew = settings.CLOCK_SKEW_MAX_MS
    return [
        PublishedRow(
            uuid=d.message.uuid,
            partition=d.partition,
            offset=d.offset,
            key=d.message.key,
            event_type=d.message.event,
            content_hash=d.message.content_hash,
            size=d.message.size,
            published_at=ms_to_datetime(publish_time(d.message.created_ms, d.timestamp, max_skew_ms=skew).ms),
            load_id=d.message.load_id,
            replay_of=d.message.replay_of,
            source_version=d.message.version,
            seal_leaf=d.message.leaf or None,
        )
        for d in deliveries
        if not d.error
    ]


def _clock_skew(deliveries: Sequence[Delivery], pending: "Pending") -> None:
    """One clock-skew finding per batch whose producer clock strayed past the bound (the
    consumer counts those messages at the same broker time, kafkacache.clock)."""
    limit = settings.CLOCK_SKEW_MAX_MS
    skewed = [
        d
        for d in deliveries
        if not d.error and publish_time(d.message.created_ms, d.timestamp, max_skew_ms=limit).skewed
    ]
    if skewed:
        first = skewed[0]
        assert first.timestamp is not None  # skewed implies a broker time
        pending.add(
            category=Finding.Category.CLOCK_SKEW,
            uuid=first.message.uuid,
            key=first.message.key,
            detail={
                **skew_detail(first.message.created_ms, first.timestamp[1], max_skew_ms=limit),
                "messages": len(skewed),
            },
            load_id=first.message.load_id,
        )


def batch_record(*, topic: Topic, deliveries: Sequence[Delivery], pending: Pending) -> None:
    """One transaction: publish ledger, audit payloads, the batch's findings."""
    delivered = [d for d in deliveries if not d.error]
    _clock_skew(delivered, pending)
    with transaction.atomic():
        published_record(topic=topic, rows=_published_rows(delivered))
        if topic.method_audit and delivered:
            payloads_record(
                topic=topic,
                side="published",
                items=[
                    (
                        d.message.uuid,
                        d.message.value or b"",
                        ms_to_datetime(d.message.created_ms),
                        d.message.schema_version,
                    )
                    for d in delivered
                ],
            )
        for spec in pending.findings:
            finding_record(topic=topic, **spec)


def oversize(message: OutMessage) -> dict:
    limit = settings.MESSAGE_MAX_BYTES
    return {
        "size": message.size,
        "limit": limit,
        "reason": f"message is {message.size} bytes, over the {limit}-byte limit; not published",
    }


def message_record(
    *,
    topic: Topic,
    item: SourceItem,
    event: str,
    source: str,
    pending: Pending,
    load: Load | None = None,
    old_key="",
    old_version: int | None = None,
    replay_of: uuid.UUID | None = None,
) -> OutMessage | None:
    """The message for a source item, or None with a finding when it cannot be published."""
    load_id = load.id if load else None
    if item.record is None:
        pending.add(
            category=Finding.Category.INVALID_DATA,
            key=item.key,
            detail={"reason": item.error, "where": item.where, "source": source},
            load_id=load_id,
        )
        return None
    try:
        encoded = record_encode(item.record)
    except RecordError as exc:  # a number its format-preserving mode cannot take (core.fpe's minimum domain)
        pending.add(
            category=Finding.Category.INVALID_DATA,
            key=item.key,
            detail={"reason": str(exc), "where": item.where, "source": source},
            load_id=load_id,
        )
        return None
    message = message_build(
        key=item.key,
        event=event,
        value=encoded.value,
        source=source,
        schema_version=encoded.schema_version,
        hash_algorithm=topic.hash_algorithm,
        key_id=encoded.key_id,
        load=load.retrieval_key if load else "",
        load_id=load_id,
        old_key=old_key,
        replay_of=replay_of,
        problems=record_problems(item.record, key=item.key),
        version=item.version,
        old_version=old_version,
    )
    if message.size > settings.MESSAGE_MAX_BYTES:
        pending.add(
            category=Finding.Category.OVERSIZE,
            uuid=message.uuid,
            key=message.key,
            detail={**oversize(message), "where": item.where, "source": source},
            load_id=load_id,
        )
        return None
    return message


def messages_publish(*, topic: Topic, messages: Sequence[OutMessage]) -> list[Delivery]:
    """Publish built messages like any of the feed's: wait for the delivery reports, then
    write the publish ledger (and audit payloads) in one transaction."""
    deliveries = publish(messages, topic=topic.name)
    batch_record(topic=topic, deliveries=deliveries, pending=Pending())
    return deliveries


def items_publish(
    *,
    topic: Topic,
    items: Sequence[SourceItem],
    event: str,
    source: str,
    load: Load | None = None,
    replay_of: Mapping[str, uuid.UUID] | None = None,
) -> tuple[list[Delivery], dict[str, str]]:
    """Build, publish and ledger source items, as a load batch does (a rebuild from the source).

    `replay_of` links a record key's message to the message it replays. Answers the
    deliveries and, per item not published, why (invalid data, oversize: each also a finding).
    """
    pending = Pending()
    messages: list[OutMessage] = []
    refused: dict[str, str] = {}
    for item in items:
        before = len(pending.findings)
        message = message_record(
            topic=topic,
            item=item,
            event=event,
            source=source,
            pending=pending,
            load=load,
            replay_of=(replay_of or {}).get(item.key),
        )
        if message is None:
            found = pending.findings[before:] or [{"detail": {}}]
            refused[item.key or item.where] = str(found[0]["detail"].get("reason") or "not published")
        else:
            messages.append(message)
    deliveries = publish(messages, topic=topic.name)
    batch_record(topic=topic, deliveries=deliveries, pending=pending)
    return deliveries, refused
