"""Bulk loads: a request (load_start) and its run (load_run), batches in flight while
Kafka acknowledges the previous ones.

load_start queues LOAD_RUN by name (core.jobs.job_enqueue); kafkacache.tasks registers
the task under that name and calls load_run.
"""

import logging
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F

from config.errors import AppError
from core.jobs import job_beat, job_claim, job_enqueue, job_finish
from core.sources import SourceError, SourceItem, source_get
from kafkacache.producer import Publishing
from kafkacache.services.publishing import Pending, batch_record, message_record
from recon.models import Load, Topic
from recon.services.actions import operator_action_record

logger = logging.getLogger(__name__)

LOAD_RUN = "kafkacache.tasks.load_run_task"  # the task that runs a queued load (load_run)


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
            job_enqueue(LOAD_RUN, str(load.id))
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
    claimed = job_claim(
        Load,
        load_id,
        stale_seconds=settings.LOAD_STALE_SECONDS,
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
    pending: Pending
    publishing: Publishing


def _load_batch(load: Load, items: Sequence[SourceItem]) -> _InFlight:
    pending = Pending()
    messages = []
    for item in items:
        message = message_record(
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
    batch_record(topic=load.topic, deliveries=deliveries, pending=batch.pending)
    job_beat(
        Load,
        load.id,
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
    job_finish(Load, load.id, status=status, error=error)
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
