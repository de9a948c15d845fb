"""Writes of the feed: loads, change events, the change feed, topic rows.

Network (Kafka, Redis) happens outside transaction.atomic; the database work of
a batch (ledger rows, counters, findings, audit payloads) is one transaction
after Kafka has acknowledged the batch.
"""

import datetime as dt
import logging
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from redis.exceptions import LockError

from config.errors import AppError
from kafkacache import avro
from kafkacache.clients import redis_client
from kafkacache.clock import publish_time, skew_detail
from kafkacache.messages import OutMessage, message_build, ms_to_datetime
from kafkacache.models import FeedCursor, Load
from kafkacache.producer import Delivery, Publishing, publish
from kafkacache.records import RecordError, record_encode, record_from_document, record_key
from kafkacache.sources import Change, SourceError, SourceItem, SqlSource, source_get
from kafkacache.validation import record_problems
from recon.ledger import PublishedRow, published_record
from recon.models import Finding, Topic
from recon.services import finding_record, operator_action_record

logger = logging.getLogger(__name__)

CHANGE_EVENTS = ("add", "update", "delete")


# --- topics -----------------------------------------------------------------------


def topic_rows_ensure() -> dict[str, Topic]:
    """The recon.Topic rows of the bulk and change topics (created when missing)."""
    out = {}
    for kind, name in ((Topic.Kind.BULK, settings.KAFKA_TOPIC_BULK), (Topic.Kind.CHANGE, settings.KAFKA_TOPIC_CHANGE)):
        topic, created = Topic.objects.get_or_create(
            name=name, defaults={"kind": kind, "consumer_group": settings.KAFKA_CONSUMER_GROUP}
        )
        if created:
            logger.info("topic row %s created (%s, group %s)", name, kind, settings.KAFKA_CONSUMER_GROUP)
        out[str(kind)] = topic
    return out


# --- publishing a batch -------------------------------------------------------------


@dataclass
class _Pending:
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
        )
        for d in deliveries
        if not d.error
    ]


def _clock_skew(deliveries: Sequence[Delivery], pending: "_Pending") -> None:
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


def _batch_record(*, topic: Topic, deliveries: Sequence[Delivery], pending: _Pending) -> None:
    """One transaction: publish ledger, audit payloads, the batch's findings."""
    delivered = [d for d in deliveries if not d.error]
    _clock_skew(delivered, pending)
    with transaction.atomic():
        published_record(topic=topic, rows=_published_rows(delivered))
        if topic.method_audit and delivered:
            from recon.audit import payloads_record

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


def _oversize(message: OutMessage) -> dict:
    limit = settings.MESSAGE_MAX_BYTES
    return {
        "size": message.size,
        "limit": limit,
        "reason": f"message is {message.size} bytes, over the {limit}-byte limit; not published",
    }


def _record_message(
    *,
    topic: Topic,
    item: SourceItem,
    event: str,
    source: str,
    pending: _Pending,
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
    encoded = record_encode(item.record)
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
            detail={**_oversize(message), "where": item.where, "source": source},
            load_id=load_id,
        )
        return None
    return message


# --- replays (recon.replay publishes through these) -------------------------------------


def messages_publish(*, topic: Topic, messages: Sequence[OutMessage]) -> list[Delivery]:
    """Publish built messages like any of the feed's: wait for the delivery reports, then
    write the publish ledger (and audit payloads) in one transaction."""
    deliveries = publish(messages, topic=topic.name)
    _batch_record(topic=topic, deliveries=deliveries, pending=_Pending())
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
    pending = _Pending()
    messages: list[OutMessage] = []
    refused: dict[str, str] = {}
    for item in items:
        before = len(pending.findings)
        message = _record_message(
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
    _batch_record(topic=topic, deliveries=deliveries, pending=pending)
    return deliveries, refused


# --- bulk loads ----------------------------------------------------------------------


def load_start(
    *, topic: Topic, source: str, client_ids: Sequence[int] | None, requested_by, queue: bool = True
) -> Load:
    """Create a load and queue it (queue=False: the caller runs load_run itself).

    The caller gets the load, with its retrieval key, at once.
    """
    try:
        source_get(source)
    except SourceError as exc:
        raise AppError(str(exc), code="bad_source") from None
    from kafkacache.tasks import load_run_task

    with transaction.atomic():
        load = Load.objects.create(
            topic=topic,
            source=source,
            client_ids=sorted(set(client_ids or [])),
            requested_by=requested_by if requested_by is not None and requested_by.is_authenticated else None,
        )
        operator_action_record(
            user=requested_by,
            action="load.start",
            topic=topic,
            target=f"load:{load.id}",
            detail={"source": source, "clients": len(load.client_ids) or "all", "queued": queue},
        )
        if queue:
            transaction.on_commit(lambda: load_run_task.delay(str(load.id)))
    return load


@dataclass
class BatchCounts:
    built: int = 0
    published: int = 0
    failed: int = 0
    exceptions: int = 0
    unordered: int = 0  # published without a source version


def load_run(*, load_id: uuid.UUID | str, progress: Callable[[Load, BatchCounts], None] | None = None) -> Load:
    """Run a queued (or stalled) load: build, publish, ledger, progress per batch; then done or failed."""
    now = timezone.now()
    stalled = now - dt.timedelta(seconds=settings.LOAD_STALE_SECONDS)
    claimed = Load.objects.filter(
        Q(status=Load.Status.QUEUED) | Q(status=Load.Status.RUNNING, heartbeat_at__lt=stalled), id=load_id
    ).update(
        status=Load.Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
        built=0,
        published=0,
        failed=0,
        exceptions=0,
        unordered=0,
        error="",
    )
    load = Load.objects.select_related("topic").get(id=load_id)
    if not claimed:
        logger.info("load %s is %s and not stalled: left alone", load_id, load.status)
        return load
    try:
        source = source_get(load.source)
        client_ids = load.client_ids or None
        load.total = source.count(client_ids=client_ids)
        Load.objects.filter(id=load.id).update(total=load.total)
        # Kafka acknowledges a batch while the next ones are read and built; a batch is
        # ledgered and counted once all its reports are in, oldest first, with at most
        # LOAD_BATCHES_IN_FLIGHT batches handed to Kafka and not yet ledgered.
        in_flight: deque[_InFlight] = deque()
        try:
            for items in source.batches(client_ids=client_ids, batch_size=settings.LOAD_BATCH_SIZE):
                in_flight.append(_load_batch(load, items))
                while in_flight and (in_flight[0].publishing.done or len(in_flight) > settings.LOAD_BATCHES_IN_FLIGHT):
                    _load_batch_done(load, in_flight.popleft(), progress)
        finally:
            # Also when a later batch failed: what Kafka acknowledged goes into the ledger.
            while in_flight:
                _load_batch_done(load, in_flight.popleft(), progress)
    except Exception as exc:
        logger.exception("load %s failed", load.id)
        return _load_finish(load, Load.Status.FAILED, f"{type(exc).__name__}: {exc}")
    load.refresh_from_db()
    if load.failed:
        return _load_finish(load, Load.Status.FAILED, f"{load.failed} messages were not acknowledged by Kafka")
    return _load_finish(load, Load.Status.DONE, "")


@dataclass
class _InFlight:
    """A load batch handed to Kafka, not yet ledgered."""

    counts: BatchCounts
    pending: _Pending
    publishing: Publishing


def _load_batch(load: Load, items: Sequence[SourceItem]) -> _InFlight:
    pending = _Pending()
    messages = []
    for item in items:
        message = _record_message(
            topic=load.topic, item=item, event="bulk", source=load.source, pending=pending, load=load
        )
        if message is not None:
            messages.append(message)
    counts = BatchCounts(built=sum(1 for i in items if i.record is not None), exceptions=len(pending.findings))
    return _InFlight(counts, pending, Publishing(messages, topic=load.topic.name))


def _load_batch_done(load: Load, batch: _InFlight, progress: Callable[[Load, BatchCounts], None] | None) -> BatchCounts:
    """Wait for the batch's delivery reports, then ledger it, count it, beat the heartbeat."""
    deliveries = batch.publishing.wait()
    counts = batch.counts
    counts.published = sum(1 for d in deliveries if not d.error)
    counts.failed = len(deliveries) - counts.published
    counts.unordered = sum(1 for d in deliveries if not d.error and d.message.version is None)
    _batch_record(topic=load.topic, deliveries=deliveries, pending=batch.pending)
    Load.objects.filter(id=load.id).update(
        heartbeat_at=timezone.now(),
        built=F("built") + counts.built,
        published=F("published") + counts.published,
        failed=F("failed") + counts.failed,
        exceptions=F("exceptions") + counts.exceptions,
        unordered=F("unordered") + counts.unordered,
    )
    if progress:
        load.refresh_from_db()
        progress(load, counts)
    return counts


def _load_finish(load: Load, status: str, error: str) -> Load:
    Load.objects.filter(id=load.id, status=Load.Status.RUNNING).update(
        status=status, error=error, finished_at=timezone.now()
    )
    load.refresh_from_db()
    logger.info(
        "load %s %s: total=%s built=%s published=%s failed=%s exceptions=%s %s",
        load.id,
        load.status,
        load.total,
        load.built,
        load.published,
        load.failed,
        load.exceptions,
        error,
    )
    return load


# --- change events ------------------------------------------------------------------


@dataclass
class Published:
    uuid: uuid.UUID
    key: str
    event: str
    partition: int
    offset: int


def change_publish(
    *,
    topic: Topic,
    event: str,
    key: str = "",
    record: dict | None = None,
    old_key: str = "",
    version: int | None = None,
    source: str = "api",
    requested_by=None,
) -> Published:
    """Publish one change event (add, update with an optional key change, delete).

    `record` is a record document (the file sources' shape) for add/update.
    `version` is the record's source version (the key's delete too); without one
    the event is unordered: it may fill a key, never replace a versioned record.
    Oversize: a finding, and an AppError for the caller; nothing is published.
    """
    if event not in CHANGE_EVENTS:
        raise AppError(f"event must be one of {', '.join(CHANGE_EVENTS)}", code="bad_event")
    pending = _Pending()
    if event == "delete":
        if not key:
            raise AppError("a delete needs the key of the record", code="bad_key")
        message: OutMessage | None = message_build(
            key=key,
            event="delete",
            value=None,
            source=source,
            schema_version=avro.current_version(),
            hash_algorithm=topic.hash_algorithm,
            version=version,
        )
    else:
        try:
            plain = record_from_document(record)
        except RecordError as exc:
            raise AppError(f"record: {exc}", code="bad_record") from None
        derived = record_key(plain["client_id"])
        if key and key != derived:
            raise AppError(f"key {key!r} does not match the record's key {derived!r}", code="bad_key")
        if old_key and event != "update":
            raise AppError("old_key is only for update", code="bad_key")
        item = SourceItem(derived, plain, "", "request", version)
        message = _record_message(
            topic=topic,
            item=item,
            event=event,
            source=source,
            pending=pending,
            old_key=old_key if old_key != derived else "",
        )
    if message is None:  # oversize: record the finding, refuse the request
        with transaction.atomic():
            for spec in pending.findings:
                finding_record(topic=topic, **spec)
        raise AppError(pending.findings[0]["detail"]["reason"], code="oversize", details=pending.findings[0]["detail"])
    if message.size > settings.MESSAGE_MAX_BYTES:  # a delete with an absurd key
        raise AppError(_oversize(message)["reason"], code="oversize")
    [delivery] = publish([message], topic=topic.name)
    if delivery.error:
        raise AppError(
            f"Kafka did not acknowledge the message: {delivery.error}", code="publish_failed", status_code=503
        )
    _batch_record(topic=topic, deliveries=[delivery], pending=pending)
    if requested_by is not None:
        operator_action_record(
            user=requested_by,
            action="change.publish",
            topic=topic,
            target=f"message:{message.uuid}",
            detail={"event": event, "key": message.key, "old_key": old_key, "version": version},
        )
    return Published(message.uuid, message.key, event, delivery.partition, delivery.offset)


# --- the change feed ----------------------------------------------------------------


class ChangePlan(NamedTuple):
    """What one client's changes in a feed batch publish."""

    client_id: int
    op: str  # add | update | delete (the last change was a delete)
    version: int  # the newest version among its changes (a delete's own version)
    renames: list[tuple[int, int]]  # (old client id, the rename's version), oldest first


def changes_coalesce(changes: Sequence[Change]) -> list[ChangePlan]:
    """Changes of one batch, one entry per client id, in the order of its last change.

    Several changes of a client (a client and its cards inserted in one
    transaction) become one message, built from the client's current rows, at
    the current version. Nothing is carried across identities: a renumbering
    stays with the client it renumbered, with its own version, so its old key's
    delete can never remove a record inserted later under that key (id reuse),
    nor a delete of the new key swallow the renumbering.
    """
    plans: dict[int, ChangePlan] = {}
    for change in changes:
        before = plans.pop(change.client_id, None)
        renames = list(before.renames) if before else []
        if change.old_client_id and change.old_client_id != change.client_id:
            renames.append((change.old_client_id, change.version))
        if change.op == "delete" or (
            before is not None and before.op == "delete" and change.op == "update" and not change.old_client_id
        ):
            # an update after a delete of the same id is a cascade from its rows; only an add
            # (or a renumbering onto this id) brings it back
            op = "delete"
        elif change.op == "add" or (before is not None and before.op == "add"):
            op = "add"
        else:
            op = "update"
        version = max(change.version, before.version if before else 0)
        plans[change.client_id] = ChangePlan(change.client_id, op, version, renames)  # re-inserted: last-change order
    return list(plans.values())


def change_feed_run(*, source: SqlSource | None = None, max_batches: int | None = None) -> dict[str, int]:
    """Publish the source's pending changes to the change topic, batch by batch.

    Only one run per source at a time (a Redis lock). A batch's changes are
    removed from the source's change table only after Kafka acknowledged the
    messages and their ledger rows are written, so a crash publishes that batch
    again (at-least-once; the cache writes are idempotent).
    """
    source = source or SqlSource()
    lock = redis_client().lock(f"kc:lock:change-feed:{source.name}", timeout=300)
    if not lock.acquire(blocking=False):
        logger.info("change feed of %s already runs elsewhere", source.name)
        return {"skipped": 1}
    stats = {"changes": 0, "published": 0, "exceptions": 0, "batches": 0}
    try:
        topic = topic_rows_ensure()[Topic.Kind.CHANGE]
        cursor, _ = FeedCursor.objects.get_or_create(source=source.name)
        while max_batches is None or stats["batches"] < max_batches:
            changes = source.changes_read(limit=settings.CHANGE_FEED_BATCH_SIZE)
            if not changes:
                break
            published, exceptions = _change_batch(topic, source, changes)
            source.changes_done([c.change_id for c in changes])
            FeedCursor.objects.filter(pk=cursor.pk).update(
                change_id=changes[-1].change_id, published=F("published") + published
            )
            stats["changes"] += len(changes)
            stats["published"] += published
            stats["exceptions"] += exceptions
            stats["batches"] += 1
            lock.extend(300, replace_ttl=True)
    finally:
        try:
            lock.release()
        except LockError:
            logger.warning("change feed lock of %s expired before release", source.name)
    if stats["changes"]:
        logger.info("change feed %s: %s", source.name, stats)
    return stats


def _change_batch(topic: Topic, source: SqlSource, changes: Sequence[Change]) -> tuple[int, int]:
    plans = changes_coalesce(changes)
    current = source.fetch([plan.client_id for plan in plans])
    pending = _Pending()
    messages: list[OutMessage] = []

    def delete(key: str, version: int) -> None:
        messages.append(
            message_build(
                key=key,
                event="delete",
                value=None,
                source=source.name,
                schema_version=avro.current_version(),
                hash_algorithm=topic.hash_algorithm,
                version=version,
            )
        )

    for plan in plans:
        item = current.get(plan.client_id)
        renames = [(record_key(old), version) for old, version in plan.renames]
        if item is None:
            # Gone by now. Its old keys go either way; its own delete is published
            # with the delete's version, or, deleted after this batch was read, by
            # the next batch, which holds that delete's change row.
            for key, version in renames:
                delete(key, version)
            if plan.op == "delete":
                delete(record_key(plan.client_id), plan.version)
            continue
        for key, version in renames[:-1]:  # several renumberings in one batch: all but the last
            delete(key, version)
        old_key, old_version = renames[-1] if renames else ("", None)
        message = _record_message(
            topic=topic,
            item=item,
            event="add" if plan.op == "add" else "update",
            source=source.name,
            pending=pending,
            old_key=old_key,
            old_version=old_version,
        )
        if message is not None:
            messages.append(message)
    deliveries = publish(messages, topic=topic.name)
    failed = [d for d in deliveries if d.error]
    if failed:
        # Record what did get through, then stop: the changes stay in the
        # source's table, and the next run publishes the batch again.
        _batch_record(topic=topic, deliveries=deliveries, pending=_Pending())
        raise RuntimeError(f"{len(failed)} change messages not acknowledged: {failed[0].error}")
    _batch_record(topic=topic, deliveries=deliveries, pending=pending)
    return len(deliveries), len(pending.findings)
