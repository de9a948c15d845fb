"""The consume loop: bulk and change topics -> Redis, with the consume-side ledger.

Per batch (consume(num_messages=CONSUMER_BATCH_SIZE)):
1. plan it (kafkacache.batch_plan): every message becomes a cache op or a dead
   letter with its reason, from its headers and bytes alone;
2. one Redis script call for the batch (kafkacache.cache: one round trip);
3. dead letters to the dead-letter topic, flushed;
4. the consume ledger: one statement per topic (rows and window counters),
   with findings of dead letters and invalid records and audit payloads in
   one transaction when there are any;
5. store the offsets; librdkafka commits stored offsets in the background.

The consume ledger says what the cache did: a message the cache refused (older than
what it holds, or unversioned over a versioned record) is recorded `refused-older` or
`refused-unordered`, never `stored`. Written the plain way, the rows wait for the
verdicts; pipelined, the rows go out with the Redis call, and the few refused ones are
set by one more statement before the offsets are stored (none in a batch without
refusals). A message of an unsealed producer (a topic that accepts them) is recorded
`unsealed`, and a cache run re-checks its keys against the source (recon.services.runs).

Offsets are stored only after 2-4 succeeded (at-least-once). A Redis, Kafka or
PostgreSQL failure in 2-4 retries the same stage with backoff, never skips the
batch; a stop request during the retries abandons the batch uncommitted, so it
is consumed again. Every write is idempotent (cache writes are guarded by
publish time), so a redelivered batch leaves the same cache.

Pipelined, in one thread: run() sends batch N's Redis call and ledger statement
(psycopg pipeline mode) without waiting, fetches and plans batch N+1 while the
servers work, then reads N's replies and stores N's offsets before sending N+1.
The wait for both servers overlaps the next batch's Python work instead of
adding to it; threads would not (the GIL hands over too slowly; bench/ measured
22k/s with a writer thread against 30k/s+ this way). Batches with dead letters,
findings or audit payloads are written the plain way, waited for.
"""

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection, transaction
from django.utils import timezone
from redis.exceptions import LockError, RedisClusterException, RedisError

from core.clients import make_consumer, redis_client
from kafkacache.batch_plan import BatchPlan, batch_plan
from kafkacache.cache import (
    OLDER,
    UNORDERED,
    SentApply,
    WaitShort,
    cache_apply,
    cache_apply_discard,
    cache_apply_send,
    cache_apply_wait,
    verdicts_per_op,
)
from kafkacache.latencies import BatchLatencies
from kafkacache.messages import Header
from kafkacache.producer import producer
from kafkacache.versions import SourceBound
from recon.models import ConsumedMessage, Finding, ReconRun, Topic
from recon.services.audit import payloads_record
from recon.services.feed import feed_topics_ensure, rebalance_record
from recon.services.findings import finding_record
from recon.services.ledger import ConsumedRow, consumed_outcomes_set, consumed_record
from recon.services.runs import run_queue

logger = logging.getLogger(__name__)

# Errors of the stores a batch writes to: retried, never skipped.
# RedisClusterException is not a RedisError: a slot map being rebuilt mid fail-over raises it.
RETRYABLE = (RedisError, RedisClusterException, DatabaseError, InterfaceError, KafkaException, OSError)
# Group errors worth a rebalance record (the rest are transport noise, logged).
_GROUP_ERRORS = {
    KafkaError._FENCED,
    KafkaError._MAX_POLL_EXCEEDED,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.FENCED_INSTANCE_ID,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.INCONSISTENT_GROUP_PROTOCOL,
}


_REFUSED = {
    OLDER: "older than what the cache holds for this key (a newer version, or its delete)",
    UNORDERED: "it carries no version, and the cache holds a versioned record",
}


_REFUSED_OUTCOME = {OLDER: ConsumedMessage.Outcome.REFUSED_OLDER, UNORDERED: ConsumedMessage.Outcome.REFUSED_UNORDERED}


def _verdicts_apply(plan: BatchPlan) -> dict[str, list[ConsumedRow]]:
    """Each refused op's ledger row and outcome count made what the cache did; answers the
    rows changed, per topic (a pipelined batch's ledger statement went out without them)."""
    changed: dict[str, list[ConsumedRow]] = {}
    for (name, index), verdict in zip(plan.op_rows, plan.verdicts, strict=False):
        outcome = _REFUSED_OUTCOME.get(verdict)
        if outcome is None:
            continue
        row = plan.rows[name][index]
        plan.outcomes[row.outcome] -= 1
        plan.outcomes[str(outcome)] += 1
        row = row._replace(outcome=str(outcome))
        plan.rows[name][index] = row
        changed.setdefault(name, []).append(row)
    return changed


def _with_verdicts(plan: BatchPlan) -> list[tuple[Message, str, str]]:
    """Each message's (outcome, reason), saying which ones the cache refused as older."""
    results = list(plan.results)
    for index, verdict in zip(plan.op_results, plan.verdicts, strict=False):
        if verdict in (OLDER, UNORDERED):
            msg, _outcome, _reason = results[index]
            results[index] = (msg, "skipped", "not applied: " + _REFUSED[verdict])
    return results


class BatchAbandoned(Exception):
    """A stop was requested while a stage kept failing: the batch stays uncommitted."""


@dataclass
class _Sent:
    """A batch whose Redis call and ledger statement are on the wire, replies not yet read."""

    messages: Sequence[Message]
    plan: BatchPlan
    began: float
    sent_at: float
    cache: SentApply | None
    ledger: ExitStack  # holds the connection in pipeline mode; closing it reads the result


class FeedConsumer:
    """Consumes the bulk and change topics in the feed's consumer group.

    `instance_id` turns on static membership (group.instance.id): a member that
    goes away and comes back within the session timeout keeps its partitions
    without a group rebalance, which is what lets a scheduler restart the loop.
    """

    def __init__(
        self,
        *,
        group: str | None = None,
        batch_size: int | None = None,
        instance_id: str | None = None,
        poll_timeout: float = 1.0,
        retry_max_seconds: float = 30.0,
    ):
        self.group = group or settings.KAFKA_CONSUMER_GROUP
        self.batch_size = batch_size or settings.CONSUMER_BATCH_SIZE
        self.instance_id = instance_id
        self.poll_timeout = poll_timeout
        self.retry_max_seconds = retry_max_seconds
        rows = feed_topics_ensure()
        self.topics: dict[str, Topic] = {t.name: t for t in rows.values()}
        self.dead_letter_topic = settings.KAFKA_TOPIC_DEAD_LETTER
        self.stop_requested = False
        self.client_failed = False  # librdkafka reported a fatal error: this client is done
        self.totals: Counter = Counter()
        self.consumer: Any = None
        self.redis = redis_client()
        self.source_bound = SourceBound()  # read only for unsealed messages of topics that accept them
        self.latencies = BatchLatencies(group=self.group)
        self._sent: _Sent | None = None  # run(): the batch on the wire
        self._collect_error: BaseException | None = None  # collecting in a callback failed: the loop raises it
        self._on_batch: Callable[[Counter], None] | None = None
        self.assigned: set[tuple[str, int]] = set()
        self.assigned_at = 0.0  # monotonic time of the last assignment
        # What each message of the last batch became (replays report it per message).
        self.last_results: list[tuple[Message, str, str]] = []

    # --- lifecycle -------------------------------------------------------------------

    def open(self) -> None:
        overrides: dict[str, Any] = {
            "session.timeout.ms": settings.CONSUMER_SESSION_TIMEOUT_MS,
            "error_cb": self._on_error,
        }
        if self.instance_id:
            overrides["group.instance.id"] = self.instance_id
        self.consumer = make_consumer(self.group, **overrides)
        self.consumer.subscribe(
            list(self.topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    def close(self) -> None:
        self._collect_quietly()  # its offsets stored, so the close below commits them
        if self._collect_error is not None and not isinstance(self._collect_error, BatchAbandoned):
            logger.error("a batch was not written: %r", self._collect_error)
        self._collect_error = None
        self.latencies.flush()
        if self.consumer is not None:
            try:
                self.consumer.close()  # commits the stored offsets
            except (KafkaException, RuntimeError):
                logger.exception("consumer close failed")
            self.consumer = None

    def _reopen(self) -> None:
        """A fatal error (e.g. a static member fenced after an outage longer than the session
        timeout) leaves the client consuming nothing, forever: close it and join again."""
        logger.error("kafka consumer failed fatally; joining the group again with a new client")
        self.close()
        self.assigned.clear()
        self.client_failed = False
        self.open()

    def stop(self, *_args) -> None:
        """Signal handler: finish the current batch, then leave the loop."""
        self.stop_requested = True

    def run(
        self,
        *,
        max_seconds: float | None = None,
        idle_seconds: float | None = None,
        drain: bool = False,
        keep_alive: Callable[[], None] | None = None,
        on_batch: Callable[[Counter], None] | None = None,
    ) -> Counter:
        """Consume until stopped or `max_seconds` passed; or, once partitions are assigned,
        until idle for `idle_seconds`, or (drain) until caught up with every partition's end."""
        started = time.monotonic()
        last_work = started
        self._on_batch = on_batch
        self.open()
        try:
            while not self.stop_requested:
                now = time.monotonic()
                if max_seconds is not None and now - started >= max_seconds:
                    break
                idle_since = max(last_work, self.assigned_at)
                if idle_seconds is not None and self.assigned and now - idle_since >= idle_seconds:
                    break
                # With a batch on the wire, only take what is already fetched: if nothing is,
                # that batch is finished now rather than after a whole poll's wait.
                timeout = 0 if self._sent is not None else self.poll_timeout
                messages = self.consumer.consume(num_messages=self.batch_size, timeout=timeout)
                if self._collect_error is not None:  # a callback collected the batch on the wire, and it failed
                    error, self._collect_error = self._collect_error, None
                    raise error
                if keep_alive:
                    keep_alive()
                good = [m for m in messages if not self._is_error(m)]
                if self.client_failed:
                    self._reopen()  # `good` is not processed: uncommitted, it comes again
                    continue
                if not good:
                    if self._sent is not None:
                        self._collect()  # nothing fetched to overlap it with
                    elif drain and self.assigned and self._drained():  # after a whole poll's wait
                        break
                    continue
                last_work = time.monotonic()
                plan = self._plan(good)  # while the servers work on the batch sent before
                self._collect()
                if plan.ledger_only:
                    self._sent = self._send(good, plan, last_work)
                if self._sent is None:
                    self._finish(good, plan, last_work, self._write(plan))
            self._collect()
        except BatchAbandoned:
            pass  # stopped while a store was down: what was not written stays uncommitted
        finally:
            self.close()
            self._on_batch = None
        return self.totals

    def _drained(self) -> bool:
        """Caught up: every assigned partition's next offset is its high watermark."""
        partitions = [TopicPartition(t, p) for t, p in sorted(self.assigned)]
        committed: dict[tuple[str, int], int] | None = None
        for tp in self.consumer.position(partitions):
            # Cached: the high watermark of the last fetch response (no extra request,
            # which would wait behind the fetch long-poll); unknown until one came.
            low, high = self.consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), cached=True)
            if high < 0:
                return False
            position = tp.offset
            if position < 0:  # nothing consumed here in this run: start from the committed offset
                if committed is None:
                    committed = {
                        (c.topic, c.partition): c.offset for c in self.consumer.committed(partitions, timeout=5)
                    }
                position = committed.get((tp.topic, tp.partition), -1)
                position = position if position >= 0 else low
            if position < high:
                return False
        return True

    # --- the batch ----------------------------------------------------------------------

    def process_batch(self, messages: Sequence[Message]) -> Counter:
        """One batch start to end, waited for: plan, write, store the offsets.

        Replays and tests call this; run() does the same steps, pipelined.
        """
        began = time.monotonic()
        plan = self._plan(messages)
        return self._finish(messages, plan, began, self._write(plan))

    def _write(self, plan: BatchPlan) -> float:
        """Redis, dead letters, ledger, each retried until done; answers the Redis seconds."""
        began = time.monotonic()

        def apply() -> None:
            plan.verdicts, plan.wait_short = cache_apply(self.redis, plan.ops)

        self._until_done("redis", apply)
        redis_seconds = time.monotonic() - began
        _verdicts_apply(plan)  # before the ledger: its rows say what the cache did
        if plan.dead:
            self._until_done("dead-letter", lambda: self._dead_letter(plan))
        self._until_done("ledger", lambda: self._record(plan))
        return redis_seconds

    def _send(self, messages: Sequence[Message], plan: BatchPlan, began: float) -> _Sent | None:
        """Put the batch's Redis call and ledger statement on the wire; None if that failed
        (nothing is lost: the caller writes the batch the plain way, with retries)."""
        sent_cache = None
        ledger = ExitStack()
        try:
            sent_at = time.monotonic()
            sent_cache = cache_apply_send(self.redis, plan.ops)
            connection.ensure_connection()
            with connection.wrap_database_errors:
                ledger.enter_context(connection.connection.pipeline())
                ((name, rows),) = plan.rows.items()
                consumed_record(topic=self.topics[name], rows=rows)
        except BaseException as exc:
            self._discard(sent_cache, ledger)  # never leave the connection in pipeline mode
            if not isinstance(exc, RETRYABLE):
                raise
            logger.warning("pipelined send failed (%s: %s); writing the batch plainly", type(exc).__name__, exc)
            return None
        return _Sent(messages, plan, began, sent_at, sent_cache, ledger)

    def _discard(self, sent_cache: SentApply | None, ledger: ExitStack) -> None:
        cache_apply_discard(self.redis, sent_cache)
        try:
            ledger.close()
        except Exception:  # the statement failed or never went: the plain write does it again
            logger.debug("pipeline closed with an error", exc_info=True)

    def _collect(self) -> None:
        """Read the replies of the batch on the wire, then store its offsets. A store that
        failed is written again the plain way (retried until done, or BatchAbandoned)."""
        sent, self._sent = self._sent, None
        if sent is None:
            return
        cache_failed = ledger_failed = False
        try:
            try:
                reply = cache_apply_wait(self.redis, sent.cache)
                sent.plan.verdicts = verdicts_per_op(sent.plan.ops, reply.letters)
                sent.plan.wait_short = reply.wait_short
            except RETRYABLE as exc:
                logger.warning("redis write failed (%s: %s); retrying", type(exc).__name__, exc)
                cache_failed = True
        finally:  # whatever Redis answered, the connection leaves pipeline mode
            redis_seconds = time.monotonic() - sent.sent_at
            try:
                with connection.wrap_database_errors:
                    sent.ledger.close()  # reads the statement's result
            except RETRYABLE as exc:
                logger.warning("ledger write failed (%s: %s); retrying", type(exc).__name__, exc)
                ledger_failed = True
        if cache_failed:

            def apply() -> None:
                sent.plan.verdicts, sent.plan.wait_short = cache_apply(self.redis, sent.plan.ops)

            self._until_done("redis", apply)
        refused = _verdicts_apply(sent.plan)
        if ledger_failed:
            self._until_done("ledger", lambda: self._record(sent.plan))
        elif refused:

            def outcomes_set() -> None:
                for name, rows in refused.items():
                    consumed_outcomes_set(topic=self.topics[name], rows=rows)

            self._until_done("ledger", outcomes_set)
        self._finish(sent.messages, sent.plan, sent.began, redis_seconds)

    def _collect_quietly(self) -> None:
        """_collect for callbacks and close: a failure is kept for the loop to raise."""
        try:
            self._collect()
        except BaseException as exc:  # handed to the loop, not swallowed
            self._collect_error = self._collect_error or exc

    def _finish(self, messages: Sequence[Message], plan: BatchPlan, began: float, redis_seconds: float) -> Counter:
        self._wait_shortfalls_note(plan.wait_short)
        self._offsets_store(messages)
        self.latencies.observe(batch_seconds=time.monotonic() - began, redis_seconds=redis_seconds)
        self.last_results = _with_verdicts(plan)
        refused = Counter(v for v in plan.verdicts if v in (OLDER, UNORDERED))
        if refused:
            # Not a discrepancy: the cache holds something newer (or ordered) for these keys.
            self.totals["cache_refused_older"] += refused[OLDER]
            self.totals["cache_refused_unordered"] += refused[UNORDERED]
        self.totals.update(plan.outcomes)
        self.totals["batches"] += 1
        if plan.checked_in_full:
            self.totals["checked_in_full"] += plan.checked_in_full
        logger.info(
            "batch of %d in %.1f ms: %s",
            len(messages),
            (time.monotonic() - began) * 1000,
            dict(plan.outcomes),
        )
        if self._on_batch:
            self._on_batch(plan.outcomes)
        return plan.outcomes

    def _wait_shortfalls_note(self, short: Sequence[WaitShort]) -> None:
        """On a cluster with REDIS_CLUSTER_WAIT_REPLICAS: the batch is acknowledged even when
        a node's WAIT found fewer replicas (a master whose replica was just promoted away
        has none until it is replaced; holding the feed for it would stop the whole cache).
        Counted and logged: those keys may be lost if that master fails too, and the cache
        leg would find them."""
        if short:
            self.totals["cache_wait_short"] += 1
            logger.warning("redis WAIT fell short (the batch is acknowledged): %s", short)

    def _plan(self, messages: Sequence[Message]) -> BatchPlan:
        return batch_plan(messages, topics=self.topics, group=self.group, bound=self._bound)

    def _bound(self, wanted: int) -> int | None:
        """The source's version bound, for an unsealed message of a topic that accepts them.
        A batch on the wire is finished first: its ledger statement holds the connection."""
        self._collect()
        return self.source_bound(wanted)

    def _dead_letter(self, plan: BatchPlan) -> None:
        client = producer()
        errors: list[str] = []

        def on_delivery(err, _msg) -> None:
            if err is not None:
                errors.append(str(err))

        for msg, reason, _uuid, _key in plan.dead:
            original = msg.headers()
            headers: list[Header] = [
                *(original.items() if isinstance(original, dict) else original or ()),
                ("dlq-reason", reason.encode()[:1000]),
                ("dlq-topic", (msg.topic() or "").encode()),
                ("dlq-partition", str(msg.partition()).encode()),
                ("dlq-offset", str(msg.offset()).encode()),
                ("dlq-group", self.group.encode()),
            ]
            client.produce(
                self.dead_letter_topic, key=msg.key(), value=msg.value(), headers=headers, on_delivery=on_delivery
            )
        client.flush()
        if errors:
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, f"dead-letter publish failed: {errors[0]}"))

    def _record(self, plan: BatchPlan) -> None:
        if plan.ledger_only:
            # The usual batch: one statement, atomic by itself (no BEGIN/COMMIT round trips).
            ((name, rows),) = plan.rows.items()
            consumed_record(topic=self.topics[name], rows=rows)
            return
        with transaction.atomic():
            for name, rows in plan.rows.items():
                consumed_record(topic=self.topics[name], rows=rows)
            for msg, reason, message_uuid, key in plan.dead:
                finding_record(
                    topic=self.topics[msg.topic() or ""],
                    category=Finding.Category.DEAD_LETTERED,
                    uuid=message_uuid,
                    key=key,
                    detail={
                        "reason": reason,
                        "partition": msg.partition(),
                        "offset": msg.offset(),
                        "group": self.group,
                        "dead_letter_topic": self.dead_letter_topic,
                    },
                )
            for name, message_uuid, key, problems in plan.invalid:
                finding_record(
                    topic=self.topics[name],
                    category=Finding.Category.INVALID_DATA,
                    uuid=message_uuid,
                    key=key,
                    detail={"reason": "; ".join(problems), "problems": problems, "side": "consumed"},
                )
            if plan.audit:
                for name, items in plan.audit.items():
                    payloads_record(topic=self.topics[name], side="consumed", items=items)
            for name, keys in plan.unsealed.items():
                self._unsealed_recheck(self.topics[name], keys)

    def _unsealed_recheck(self, topic: Topic, keys: set[str]) -> None:
        """Queue the cache leg of keys an unsealed producer wrote, against the source (or the
        publish ledger where the source is not SQL): what nobody vouched for is checked."""
        now = timezone.now()
        run_queue(
            kind=ReconRun.Kind.CACHE,
            topic=topic,
            start=now - dt.timedelta(seconds=1),
            end=now,
            trigger="unsealed",
            params={"keys": sorted(keys), "keys_source": "ods"},
        )

    def _offsets_store(self, messages: Sequence[Message]) -> None:
        if self.consumer is None:
            return
        highest: dict[tuple[str, int], int] = {}
        for msg in messages:
            tp = (msg.topic() or "", msg.partition() or 0)
            highest[tp] = max(highest.get(tp, -1), msg.offset() or 0)
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in highest.items()]
        try:
            self.consumer.store_offsets(offsets=offsets)
        except KafkaException as exc:
            # A partition revoked meanwhile: its new owner consumes the batch again.
            logger.warning("offsets not stored (%s); the batch will be redelivered", exc)

    def _until_done(self, stage: str, work: Callable[[], None]) -> None:
        delay = 0.5
        while True:
            try:
                work()
                return
            except RETRYABLE as exc:
                logger.warning("%s write failed (%s: %s); retrying in %.1f s", stage, type(exc).__name__, exc, delay)
                if isinstance(exc, DatabaseError | InterfaceError):
                    connection.close()  # reconnect on the next try
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                if self.stop_requested:
                    raise BatchAbandoned(stage)
                time.sleep(min(0.2, delay))
            delay = min(delay * 2, self.retry_max_seconds)

    # --- callbacks ----------------------------------------------------------------------

    def _is_error(self, msg: Message) -> bool:
        err = msg.error()
        if err is None:
            return False
        if err.code() == KafkaError._PARTITION_EOF:
            return True
        logger.error("consume error: %s", err)
        if err.fatal() or err.code() == KafkaError._FATAL:
            self._rebalance("error", [], error=f"fatal: {err}")
            self.client_failed = True
        return True

    def _on_error(self, err: KafkaError) -> None:
        logger.warning("kafka client error: %s", err)
        if err.code() in _GROUP_ERRORS or err.fatal():
            self._rebalance("error", [], error=str(err))
        if err.fatal() or err.code() == KafkaError._FATAL:
            self.client_failed = True

    def _on_assign(self, _consumer, partitions: list[TopicPartition]) -> None:
        self.assigned.update((p.topic, p.partition) for p in partitions)
        self.assigned_at = time.monotonic()
        self._rebalance("assigned", partitions)

    def _on_revoke(self, consumer, partitions: list[TopicPartition]) -> None:
        self._collect_quietly()  # the batch on the wire is this member's to finish and commit
        try:
            # Hand over cleanly: what this member processed is committed before
            # another member starts on these partitions.
            consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                self._rebalance("error", partitions, error=f"commit on revoke failed: {exc}")
        self.assigned.difference_update((p.topic, p.partition) for p in partitions)
        self._rebalance("revoked", partitions)

    def _on_lost(self, _consumer, partitions: list[TopicPartition]) -> None:
        self.assigned.difference_update((p.topic, p.partition) for p in partitions)
        self._rebalance("lost", partitions)

    def _rebalance(self, kind: str, partitions: list[TopicPartition], *, error: str = "") -> None:
        self._collect_quietly()  # the batch on the wire holds the database connection
        member = self.consumer.memberid() if self.consumer is not None else ""
        listed = [{"topic": p.topic, "partition": p.partition, "offset": p.offset} for p in partitions]
        topic = self.topics.get(partitions[0].topic) if partitions else next(iter(self.topics.values()), None)
        logger.info("rebalance %s %s member=%s %s %s", kind, self.group, member, listed, error)
        try:
            rebalance_record(
                group=self.group,
                member=member or self.instance_id or "",
                kind=kind,
                partitions=listed,
                error=error,
                topic=topic,
            )
        except DatabaseError:  # a callback must not break the poll loop
            logger.exception("rebalance %s not recorded", kind)


# --- the scheduled run ----------------------------------------------------------------


def consume_run(
    *,
    instance: int = 0,
    max_seconds: float | None = None,
    idle_seconds: float | None = None,
    drain: bool = False,
    lock_wait: float = 0,
    on_batch: Callable[[Counter], None] | None = None,
    consumer_hook: Callable[[FeedConsumer], None] | None = None,
) -> dict[str, Any]:
    """Run consumer `instance` while holding its lock; answer what it did.

    The lock (one per group and instance) makes a scheduled start a no-op while
    the previous run still consumes; static membership keeps the partitions
    assigned between runs. Together: a schedule never causes a rebalance.
    """
    group = settings.KAFKA_CONSUMER_GROUP
    lock = redis_client().lock(f"kc:lock:consumer:{group}:{instance}", timeout=settings.CONSUMER_LOCK_SECONDS)
    if not lock.acquire(blocking=lock_wait > 0, blocking_timeout=lock_wait or None):
        return {"skipped": True, "reason": "another run holds the lock"}
    consumer = FeedConsumer(instance_id=f"{group}-{instance}")
    if consumer_hook:
        consumer_hook(consumer)

    def keep_alive() -> None:
        try:
            lock.extend(settings.CONSUMER_LOCK_SECONDS, replace_ttl=True)
        except LockError:
            # Someone else may run this instance now; two members with one
            # group.instance.id fence each other, so this one stops.
            logger.error("consumer lock %s lost; stopping", instance)
            consumer.stop_requested = True
        except RedisError as exc:
            logger.warning("consumer lock not extended: %s", exc)

    started = time.monotonic()
    try:
        totals = consumer.run(
            max_seconds=max_seconds, idle_seconds=idle_seconds, drain=drain, keep_alive=keep_alive, on_batch=on_batch
        )
    finally:
        try:
            lock.release()
        except (LockError, RedisError):
            logger.warning("consumer lock %s was gone at release", instance)
    return {
        "skipped": False,
        "seconds": round(time.monotonic() - started, 1),
        "stopped": consumer.stop_requested,
        **dict(totals),
    }
