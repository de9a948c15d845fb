"""The consume loop: bulk and change topics -> Redis, with the consume-side ledger.

Per batch (consume(num_messages=CONSUMER_BATCH_SIZE)):
1. classify every message from its headers and bytes (no database, no network):
   a cache op, or a dead letter with its reason;
2. one Redis round trip for the batch (kafkacache.cache.cache_apply: one script call);
3. dead letters to the dead-letter topic, flushed;
4. one database transaction: consume ledger (one COPY per topic), findings of
   dead letters and invalid records, audit payloads;
5. store the offsets; librdkafka commits stored offsets in the background.

Offsets are stored only after 2-4 succeeded (at-least-once). A Redis, Kafka or
PostgreSQL failure in 2-4 retries the same stage with backoff, never skips the
batch; a stop request during the retries abandons the batch uncommitted, so it
is consumed again. Every write is idempotent (cache writes are guarded by
publish time), so a redelivered batch leaves the same cache.

Decoding: every value is decoded once (fastavro, parsed schema reused) because a
value that does not decode must not reach the cache; hashing and the Redis write
work on the raw bytes. Nothing here touches the ORM per message.
"""

import logging
import time
import uuid as uuidlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection, transaction
from django.utils import timezone
from redis.exceptions import LockError, RedisError

from kafkacache import avro
from kafkacache.cache import CacheOp, cache_apply
from kafkacache.clients import make_consumer, redis_client
from kafkacache.crypto import CryptoError, key_id_of, keyring
from kafkacache.messages import EVENTS, Header, headers_dict, message_size, ms_to_datetime
from kafkacache.producer import producer
from kafkacache.records import SENSITIVE
from kafkacache.services import topic_rows_ensure
from kafkacache.validation import record_problems
from monitoring.metrics import latency_observe
from recon.hashing import content_hash
from recon.ledger import ConsumedRow, consumed_record
from recon.models import ConsumedMessage, Finding, Topic
from recon.services import finding_record, rebalance_record

logger = logging.getLogger(__name__)

Outcome = ConsumedMessage.Outcome
_OUTCOME_TEXT = {outcome: str(outcome) for outcome in Outcome}
# Errors of the stores a batch writes to: retried, never skipped.
RETRYABLE = (RedisError, DatabaseError, InterfaceError, KafkaException, OSError)
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


class BatchAbandoned(Exception):
    """A stop was requested while a stage kept failing: the batch stays uncommitted."""


@dataclass
class _Plan:
    ops: list[CacheOp] = field(default_factory=list)
    rows: dict[str, list[ConsumedRow]] = field(default_factory=lambda: defaultdict(list))
    dead: list[tuple[Message, str, uuidlib.UUID | None, str]] = field(default_factory=list)  # msg, reason, uuid, key
    invalid: list[tuple[str, uuidlib.UUID, str, list[str]]] = field(default_factory=list)  # topic, uuid, key, problems
    audit: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter = field(default_factory=Counter)
    results: list[tuple[Message, str, str]] = field(default_factory=list)  # per message: outcome, reason


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
        rows = topic_rows_ensure()
        self.topics: dict[str, Topic] = {t.name: t for t in rows.values()}
        self.dead_letter_topic = settings.KAFKA_TOPIC_DEAD_LETTER
        self.stop_requested = False
        self.client_failed = False  # librdkafka reported a fatal error: this client is done
        self.totals: Counter = Counter()
        self.consumer: Any = None
        self.redis = redis_client()
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
        self.open()
        try:
            while not self.stop_requested:
                now = time.monotonic()
                if max_seconds is not None and now - started >= max_seconds:
                    break
                idle_since = max(last_work, self.assigned_at)
                if idle_seconds is not None and self.assigned and now - idle_since >= idle_seconds:
                    break
                messages = self.consumer.consume(num_messages=self.batch_size, timeout=self.poll_timeout)
                if keep_alive:
                    keep_alive()
                good = [m for m in messages if not self._is_error(m)]
                if self.client_failed:
                    self._reopen()  # `good` is not processed: uncommitted, it comes again
                    continue
                if not good:
                    if drain and self.assigned and self._drained():
                        break
                    continue
                last_work = time.monotonic()
                try:
                    result = self.process_batch(good)
                except BatchAbandoned:
                    break
                if on_batch:
                    on_batch(result)
        finally:
            self.close()
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
        """Cache, dead letters, ledger, then offsets: see the module docstring."""
        began = time.monotonic()
        plan = self._plan(messages)
        redis_began = time.monotonic()
        self._until_done("redis", lambda: cache_apply(self.redis, plan.ops))
        redis_seconds = time.monotonic() - redis_began
        if plan.dead:
            self._until_done("dead-letter", lambda: self._dead_letter(plan))
        self._until_done("ledger", lambda: self._record(plan))
        self._offsets_store(messages)
        latency_observe(group=self.group, batch_seconds=time.monotonic() - began, redis_seconds=redis_seconds)
        self.last_results = plan.results
        self.totals.update(plan.outcomes)
        self.totals["batches"] += 1
        logger.info(
            "batch of %d in %.1f ms: %s",
            len(messages),
            (time.monotonic() - began) * 1000,
            dict(plan.outcomes),
        )
        return plan.outcomes

    def _plan(self, messages: Sequence[Message]) -> _Plan:
        plan = _Plan()
        consumed_at = timezone.now()
        max_bytes = settings.MESSAGE_MAX_BYTES
        current = avro.current_version()
        versions = avro.schema_versions()
        group = self.group
        for msg in messages:
            topic = self.topics[msg.topic() or ""]
            raw_key, value, raw_headers = msg.key(), msg.value(), msg.headers()
            headers = headers_dict(raw_headers)
            digest = content_hash(value or b"", topic.hash_algorithm)
            key = _text(raw_key)
            message_uuid = _uuid(headers.get("uuid"))
            event = _text(headers.get("event"))
            created_ms = _epoch_ms(headers.get("created"))
            schema = _int(headers.get("schema"))
            reason = ""
            record = None
            if not key:
                reason = "key is not valid UTF-8" if raw_key else "missing key"
            elif "\x00" in key:
                reason = "key contains a NUL byte"
                key = key.replace("\x00", "\N{REPLACEMENT CHARACTER}")  # PostgreSQL text cannot hold NUL
            elif message_uuid is None:
                reason = "missing or invalid uuid header"
            elif event not in EVENTS:
                reason = f"unknown event type {event!r}"
            elif created_ms is None:
                reason = "missing or invalid created header"
            elif message_size(raw_key, value, raw_headers) > max_bytes:
                reason = f"oversize: {message_size(raw_key, value, raw_headers)} bytes, limit {max_bytes}"
            elif schema is None or schema not in versions:
                reason = f"unknown schema version {headers.get('schema', b'').decode(errors='replace')!r}"
            elif event != "delete":
                if not value:
                    reason = f"{event} without a value"
                else:
                    try:
                        record = avro.decode(value, version=schema)
                    except avro.AvroError as exc:
                        reason = f"malformed Avro: {exc}"
                    else:
                        reason = _sealing_problem(record)
            published_at = ms_to_datetime(created_ms) if created_ms is not None else _timestamp(msg, consumed_at)
            if reason:
                plan.dead.append((msg, reason, message_uuid, key))
                outcome = Outcome.DEAD_LETTERED
            elif event == "delete":
                plan.ops.append(CacheOp("delete", key, created_ms or 0))
                outcome = Outcome.DELETED
            else:
                plan.ops.append(
                    CacheOp(
                        event,
                        key,
                        created_ms or 0,
                        value or b"",
                        str(message_uuid),
                        schema or current,
                        _text(headers.get("old-key")) if event == "update" else "",  # old_key
                        _text(headers.get("load")) if event == "bulk" else "",  # load
                    )
                )
                outcome = Outcome.STORED
                if topic.validate_payloads and record is not None:
                    problems = record_problems(record, key=key)
                    if problems:
                        outcome = Outcome.INVALID
                        plan.invalid.append((topic.name, message_uuid, key, problems))  # type: ignore[arg-type]
                if topic.method_audit:
                    plan.audit[topic.name].append((message_uuid, value or b"", consumed_at, schema))
            outcome_text = _OUTCOME_TEXT[outcome]
            plan.outcomes[outcome_text] += 1
            plan.results.append((msg, outcome_text, reason))
            # Positional (uuid, group, partition, offset, key, content_hash,
            # published_at, consumed_at, outcome): keywords cost a microsecond a row.
            plan.rows[topic.name].append(
                ConsumedRow(
                    message_uuid,
                    group,
                    msg.partition() or 0,
                    msg.offset() or 0,
                    key[:512],
                    digest,
                    published_at,
                    consumed_at,
                    outcome,
                )
            )
        return plan

    def _dead_letter(self, plan: _Plan) -> None:
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

    def _record(self, plan: _Plan) -> None:
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
                from recon.audit import payloads_record

                for name, items in plan.audit.items():
                    payloads_record(topic=self.topics[name], side="consumed", items=items)

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


def _text(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return ""


def _uuid(raw: bytes | None) -> uuidlib.UUID | None:
    try:
        return uuidlib.UUID(_text(raw))
    except ValueError:
        return None


def _int(raw: bytes | None) -> int | None:
    text = _text(raw)
    return int(text) if text.isdigit() else None


def _sealing_problem(record: dict) -> str:
    """Why the record's card or account numbers are not ciphertexts under a configured key ("" if they are).

    Such a value must not reach the cache: its readers could not decrypt it, or it
    holds the numbers in clear. Only the key id each field names is read.
    """
    known = keyring().keys
    for list_name, field_name, _ in SENSITIVE:
        for i, item in enumerate(record[list_name]):
            try:
                key_id = key_id_of(item[field_name])
            except CryptoError:
                return f"{list_name}[{i}].{field_name} is not encrypted"
            if key_id not in known:
                return f"{list_name}[{i}].{field_name} is encrypted with key {key_id!r}, which is not configured"
    return ""


# 9999-12-31T23:59:59.999Z, the last instant a datetime holds: a larger "created" is
# no time at all, and must make a dead letter rather than crash the batch.
_MAX_EPOCH_MS = 253_402_300_799_999


def _epoch_ms(raw: bytes | None) -> int | None:
    ms = _int(raw)
    return ms if ms is not None and ms <= _MAX_EPOCH_MS else None


def _timestamp(msg: Message, fallback):
    kind, ms = msg.timestamp()
    return ms_to_datetime(ms) if kind and ms and ms > 0 else fallback


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
