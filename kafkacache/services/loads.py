"""Bulk loads: a request (load_start), its split into parts (load_split), each part's run
(load_part_run) on any worker, any number at once, and a whole load run in one process
(load_run).

A load is split by client-id range into parts of LOAD_PART_CLIENTS clients (a file is
one part). Every part carries the load's id and retrieval key, so the load stays one
load: one key to read it back, one progress (the sum of its parts', kept on the load
row in each part's batch transaction), done when every part is, failed with each
failed part's reason when one fails.

A part runs its batches with a few in flight: Kafka acknowledges a batch while the
next ones are read and built; a batch is ledgered, counted and checkpointed (the
part's source position and the topic offsets past it) in one transaction once all of
its reports are in, oldest first. A part whose worker died is claimed again on its
own: it first ledgers what Kafka acknowledged that was never ledgered
(kafkacache.load_recovery), then reads on from its checkpoint, skipping the clients
it just ledgered, so the publish ledger holds every acknowledged message once.

load_start queues LOAD_RUN by name (core.jobs.job_enqueue), which splits the load and
queues LOAD_PART_RUN per part; kafkacache.tasks registers both.
"""

import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from config.errors import AppError
from core.jobs import DONE, FAILED, RUNNING, job_beat, job_claim, job_enqueue, job_finish
from core.sources import SourceError, SourceItem, source_get
from kafkacache.load_recovery import part_unledgered, topic_ends
from kafkacache.producer import Delivery, Publishing
from kafkacache.services.publishing import Pending, batch_record, message_record
from recon.models import Load, LoadPart, Topic
from recon.services.actions import operator_action_record

logger = logging.getLogger(__name__)

LOAD_RUN = "kafkacache.tasks.load_run_task"  # splits a queued load and queues its parts (load_split)
LOAD_PART_RUN = "kafkacache.tasks.load_part_run_task"  # runs one part (load_part_run)
# Only a load not yet split beats: a split one is its parts' (each beats, stalls and resumes alone).
UNSPLIT = Q(part_count=0)
_COUNTERS = ("built", "published", "failed", "exceptions", "unordered")


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

    def increments(self) -> dict:
        """The counters as F() increments of a load's or a part's row."""
        return {name: F(name) + getattr(self, name) for name in _COUNTERS}


Progress = Callable[[Load, BatchCounts], None]


def load_split(*, load_id: uuid.UUID | str, queue: bool) -> Load:
    """Claim a queued (or stalled, not yet split) load and split it into its parts, each
    queued for any worker when `queue` (else left for load_parts_run). A load whose source
    cannot be read fails with the reason; one with no clients is done at once."""
    claimed = job_claim(
        Load,
        load_id,
        stale_seconds=settings.LOAD_STALE_SECONDS,
        beating=UNSPLIT,
        **dict.fromkeys(_COUNTERS, 0),
        error="",
    )
    load = Load.objects.select_related("topic").get(id=load_id)
    if not claimed:
        logger.info("load %s is %s and not stalled: left alone", load_id, load.status)
        return load
    try:
        ranges = source_get(load.source).parts(client_ids=load.client_ids or None, size=settings.LOAD_PART_CLIENTS)
    except Exception as exc:
        logger.exception("load %s: its source could not be split", load.id)
        return _load_finish(load, FAILED, f"{type(exc).__name__}: {exc}")
    with transaction.atomic():
        parts = LoadPart.objects.bulk_create(
            LoadPart(load=load, number=number, key_after=r.key_after, key_last=r.key_last, total=r.total)
            for number, r in enumerate(ranges, start=1)
        )
        Load.objects.filter(id=load.id).update(part_count=len(parts), total=sum(r.total for r in ranges))
        if queue:
            for part in parts:
                job_enqueue(LOAD_PART_RUN, str(part.id))
    if not parts:
        return _load_finish(load, DONE, "")
    load.refresh_from_db()
    logger.info("load %s: %s clients in %s parts", load.id, load.total, load.part_count)
    return load


def load_run(*, load_id: uuid.UUID | str, progress: Progress | None = None) -> Load:
    """Split a load and run every part of it in this process, one after another (a command,
    the bench, a test; Celery runs the parts on its workers instead)."""
    load = load_split(load_id=load_id, queue=False)
    if load.status != RUNNING:
        return load
    return load_parts_run(load_id=load.id, progress=progress)


def load_parts_run(*, load_id: uuid.UUID | str, progress: Progress | None = None) -> Load:
    """Run, one after another in this process, each part of the load no other worker holds
    (queued, or stalled: resumed). Several processes may call it on the same load at once."""
    for part_id in LoadPart.objects.filter(load_id=load_id, status__in=(LoadPart.Status.QUEUED, RUNNING)).values_list(
        "id", flat=True
    ):
        load_part_run(part_id=part_id, progress=progress)
    return Load.objects.select_related("topic").get(id=load_id)


def load_part_run(*, part_id: uuid.UUID | str, progress: Progress | None = None) -> tuple[LoadPart, bool]:
    """Claim a queued or stalled part and run it (resuming it when stalled); answers the part
    and whether this run finished its load (the last part to finish does)."""
    claimed = job_claim(
        LoadPart,
        part_id,
        stale_seconds=settings.LOAD_STALE_SECONDS,
        attempts=F("attempts") + 1,
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )
    part = LoadPart.objects.select_related("load__topic").get(id=part_id)
    if not claimed:
        logger.info("load part %s is %s and not stalled: left alone", part_id, part.status)
        return part, False
    run = _PartRun(part, progress)
    try:
        run.go()
    except _ClaimLost:
        logger.warning("load part %s was claimed by another worker meanwhile: this run stops", part.id)
        return part, False
    except Exception as exc:
        logger.exception("load part %s failed", part.id)
        status, error = FAILED, f"{type(exc).__name__}: {exc}"
    else:
        part.refresh_from_db()
        status, error = DONE, ""
        if part.failed:
            status, error = FAILED, f"{part.failed} messages were not acknowledged by Kafka"
    job_finish(LoadPart, part.id, status=status, claimed_at=part.started_at, error=error)
    part.refresh_from_db()
    logger.info(
        "load part %s (%s of load %s) %s: built=%s published=%s failed=%s exceptions=%s %s",
        part.id,
        part.number,
        part.load_id,
        part.status,
        part.built,
        part.published,
        part.failed,
        part.exceptions,
        error,
    )
    return part, _load_settle(part.load_id)


class _ClaimLost(Exception):
    """The part was claimed by another worker (this one stalled past LOAD_STALE_SECONDS)."""


@dataclass
class _InFlight:
    """A part's batch handed to Kafka, not yet ledgered."""

    counts: BatchCounts
    pending: Pending
    publishing: Publishing
    position: int


class _PartRun:
    def __init__(self, part: LoadPart, progress: Progress | None):
        self.part = part
        self.load = part.load
        self.topic = part.load.topic
        self.progress = progress
        self.claimed_at = part.started_at
        self.offsets = dict(part.offsets)

    def go(self) -> None:
        part, load = self.part, self.load
        skip: set[str] = set()
        if part.offsets:
            # Resumed: the last worker kept its offsets before it published anything.
            skip = self._recover()
        else:
            # Where this part's messages can start, kept before it publishes any (load_recovery).
            self.offsets = topic_ends(self.topic.name)
            if not LoadPart.objects.filter(id=part.id, started_at=self.claimed_at).update(offsets=self.offsets):
                raise _ClaimLost
        wanted = None
        if load.client_ids:
            wanted = [
                i
                for i in load.client_ids
                if (part.key_after is None or i > part.key_after) and (part.key_last is None or i <= part.key_last)
            ]
            if not wanted:
                return
        source = source_get(load.source)
        in_flight: deque[_InFlight] = deque()
        batches = source.read(
            batch_size=settings.LOAD_BATCH_SIZE,
            client_ids=wanted,
            key_after=part.key_after,
            key_last=part.key_last,
            after=part.position,
        )
        try:
            for batch in batches:
                items = [i for i in batch.items if i.key not in skip] if skip else batch.items
                in_flight.append(self._batch(items, batch.position))
                while in_flight and (in_flight[0].publishing.done or len(in_flight) > settings.LOAD_BATCHES_IN_FLIGHT):
                    self._batch_done(in_flight.popleft())
        except _ClaimLost:
            in_flight.clear()  # another worker holds the part: it reads these back itself
            raise
        finally:
            # Also when a later batch failed: what Kafka acknowledged goes into the ledger.
            while in_flight:
                self._batch_done(in_flight.popleft())

    def _recover(self) -> set[str]:
        """Ledger what the last worker had Kafka acknowledge and never ledgered; answers those keys."""
        deliveries, read_to = part_unledgered(part=self.part, topic=self.topic, retrieval_key=self.load.retrieval_key)
        counts = BatchCounts(
            built=len(deliveries),
            published=len(deliveries),
            unordered=sum(1 for d in deliveries if d.message.version is None),
        )
        self.offsets = {p: max(int(self.offsets.get(p, 0)), offset) for p, offset in read_to.items()}
        self._ledger(deliveries, Pending(), counts, self.part.position)
        if deliveries:
            logger.warning(
                "load part %s resumed: %s messages Kafka acknowledged were not ledgered, now they are",
                self.part.id,
                len(deliveries),
            )
        return {d.message.key for d in deliveries}

    def _batch(self, items: Sequence[SourceItem], position: int) -> _InFlight:
        pending = Pending()
        messages = []
        for item in items:
            message = message_record(
                topic=self.topic, item=item, event="bulk", source=self.load.source, pending=pending, load=self.load
            )
            if message is not None:
                messages.append(message)
        counts = BatchCounts(built=sum(1 for i in items if i.record is not None), exceptions=len(pending.findings))
        return _InFlight(counts, pending, Publishing(messages, topic=self.topic.name), position)

    def _batch_done(self, batch: _InFlight) -> None:
        """Wait for the batch's delivery reports, then ledger, count and checkpoint it at once."""
        deliveries = batch.publishing.wait()
        counts = batch.counts
        counts.published = sum(1 for d in deliveries if not d.error)
        counts.failed = len(deliveries) - counts.published
        counts.unordered = sum(1 for d in deliveries if not d.error and d.message.version is None)
        for d in deliveries:
            if not d.error and d.offset + 1 > self.offsets.get(str(d.partition), 0):
                self.offsets[str(d.partition)] = d.offset + 1
        self._ledger(deliveries, batch.pending, counts, batch.position)
        if self.progress:
            self.progress(Load.objects.get(id=self.load.id), counts)

    def _ledger(self, deliveries: Sequence[Delivery], pending: Pending, counts: BatchCounts, position) -> None:
        """One transaction: the part's heartbeat, counters and checkpoint (only while this
        worker's claim holds), the ledger rows, audit payloads and findings, the load's counters."""
        with transaction.atomic():
            if not job_beat(
                LoadPart,
                self.part.id,
                claimed_at=self.claimed_at,
                position=position,
                offsets=self.offsets,
                **counts.increments(),
            ):
                raise _ClaimLost
            batch_record(topic=self.topic, deliveries=deliveries, pending=pending)
            Load.objects.filter(id=self.load.id).update(heartbeat_at=timezone.now(), **counts.increments())


def _load_settle(load_id: uuid.UUID) -> bool:
    """Finish the load once every part has finished: done, or failed with each failed part's
    reason. True for the one call that finished it (parts finishing at once settle in turn,
    on the load's row lock, so the last of them sees all the others)."""
    with transaction.atomic():
        load = Load.objects.select_for_update().get(id=load_id)
        if load.status != RUNNING:
            return False
        parts = list(LoadPart.objects.filter(load_id=load_id).order_by("number"))
        if any(p.status not in (DONE, FAILED) for p in parts):
            return False
        failed = [p for p in parts if p.status == FAILED]
        error = "; ".join(f"part {p.number} of {len(parts)} ({_part_range(p)}): {p.error}" for p in failed)
        finished = job_finish(Load, load_id, status=FAILED if failed else DONE, error=error)
    if finished:
        load.refresh_from_db()
        _load_logged(load)
    return finished


def _part_range(part: LoadPart) -> str:
    if part.key_after is None and part.key_last is None:
        return "every client"
    low = "the first client" if part.key_after is None else f"client {part.key_after + 1}"
    high = "the last" if part.key_last is None else f"client {part.key_last}"
    return f"{low} to {high}"


def _load_finish(load: Load, status: str, error: str) -> Load:
    job_finish(Load, load.id, status=status, error=error)
    load.refresh_from_db()
    _load_logged(load)
    return load


def _load_logged(load: Load) -> None:
    logger.info(
        "load %s %s: total=%s built=%s published=%s failed=%s exceptions=%s %s",
        load.id,
        load.status,
        load.total,
        load.built,
        load.published,
        load.failed,
        load.exceptions,
        load.error,
    )
