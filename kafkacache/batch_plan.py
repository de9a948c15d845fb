"""A batch's plan: what each consumed message does, decided from its headers and bytes alone.

No database, no network: kafkacache.consumer writes the plan (one Redis script
call, one ledger statement) and stores the offsets. A message becomes a cache op
(put or delete) with a consume-ledger row, or a dead letter with its reason
(missing key or header, unknown event or schema, oversize, a value that does not
decode or holds card numbers in clear, or unsealed in format-preserving mode), also with a row.

Only verified messages decide. A message sealed by this project's producer
(kafkacache.seal: a Merkle path of a few BLAKE2b calls and one Ed25519 verify per
producer batch) is taken as its producer checked it. A message whose seal is missing
or does not verify never writes, deletes or sets a version in the cache: it is a dead
letter (reason `unsealed`, or `seal does not verify: <why>`) with a finding, unless its
topic accepts unsealed producers (Topic.accepts_unsealed, off by default). There its
versions must be within the source's bound (kafkacache.versions: the source sequence's
value, read at most once a second and cached, never per message; beyond it: a dead
letter), its value is decoded (fastavro, parsed schema reused) and checked in full,
its ledger outcome says `unsealed`, and the cache leg re-checks its key. A restore
(event `restore`: a write over any version or tombstone) is taken under a verified
seal only, whatever the topic says. Hashing and the Redis write work on the raw bytes.

Ordering: each cache op carries the message's source version (`version`
header; absent: 0, unordered) and the Redis script decides by it
(kafkacache.cache). A message counts in the window of its publish time as
kafkacache.clock bounds it by the broker's time, the same rule the publish
ledger applies. A load's retrieval set only takes the keys of messages this
project's producer sealed with that load's `load` header: an unsealed message
(a replay, another producer) never adds a key to a load.
"""

import datetime as dt
import functools
import re
import uuid as uuidlib
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from confluent_kafka import Message
from django.conf import settings
from django.utils import timezone

from core import avro
from core.crypto import CryptoError, keyring
from core.hashing import content_hasher
from core.record_checks import record_problems
from core.records import MAX_VERSION, SENSITIVE, field_key_id, fpe_tag
from kafkacache.cache import CacheOp, WaitShort
from kafkacache.clock import publish_time
from kafkacache.messages import EVENTS, headers_read, ms_to_datetime
from kafkacache.seal import PROBLEMS_HEADER, problems_decode, seal_value_hash, seal_verifier
from recon.models import ConsumedMessage, Topic
from recon.services.ledger import ConsumedRow

Outcome = ConsumedMessage.Outcome
_OUTCOME_TEXT = {outcome: str(outcome) for outcome in Outcome}


@dataclass
class BatchPlan:
    ops: list[CacheOp] = field(default_factory=list)
    rows: dict[str, list[ConsumedRow]] = field(default_factory=lambda: defaultdict(list))  # per topic
    dead: list[tuple[Message, str, uuidlib.UUID | None, str]] = field(default_factory=list)  # msg, reason, uuid, key
    invalid: list[tuple[str, uuidlib.UUID, str, list[str]]] = field(default_factory=list)  # topic, uuid, key, problems
    audit: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter = field(default_factory=Counter)
    results: list[tuple[Message, str, str]] = field(default_factory=list)  # per message: outcome, reason
    checked_in_full: int = 0  # values decoded and checked here (no seal, or a seal that did not verify)
    op_results: list[int] = field(default_factory=list)  # per op: its message's index in `results`
    op_rows: list[tuple[str, int]] = field(default_factory=list)  # per op: its ledger row (topic, index in `rows`)
    verdicts: list[str] = field(default_factory=list)  # per op, once Redis answered (kafkacache.cache VERDICTS)
    wait_short: list[WaitShort] = field(default_factory=list)  # nodes whose WAIT found fewer replicas
    unsealed: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # per topic: keys to re-check

    @property
    def ledger_only(self) -> bool:
        """One topic's rows and nothing else to record: one statement, atomic by itself."""
        return len(self.rows) == 1 and not (self.dead or self.invalid or self.audit or self.unsealed)


# The source's version bound for an unsealed message: called with the version it needs,
# answers the bound (None: the source gives none; kafkacache.versions.SourceBound).
Bound = Callable[[int], int | None]


def batch_plan(
    messages: Sequence[Message], *, topics: Mapping[str, Topic], group: str, bound: Bound | None = None
) -> BatchPlan:
    """What each message of a batch does to the cache and the ledger, or why it is a dead letter.

    `bound` is asked only for an unsealed message of a topic that accepts them (None: no
    source bound, so such a message with a version is a dead letter).

    Long because it is the consume path's per-message loop: each helper call would be
    paid per message (about 0.1 us each, a few percent of the plan), so the checks stay
    inline in the order they decide; the rare paths (the value check, the bound) are helpers."""
    plan = BatchPlan()
    consumed_at = timezone.now()
    max_bytes = settings.MESSAGE_MAX_BYTES
    max_skew = settings.CLOCK_SKEW_MAX_MS
    current = avro.current_version()
    versions = avro.schema_versions()
    verifier = seal_verifier()
    # Per batch rather than per message: the topic and its row list (a batch is mostly one
    # topic), the outcome counts, and one datetime per distinct publish millisecond.
    name: str | None = None
    topic: Topic | None = None
    rows: list[ConsumedRow] = []
    hasher = content_hasher("blake2b")
    published: dict[int, dt.datetime] = {}
    counts: dict[str, int] = defaultdict(int)
    results, ops, op_results, op_rows = plan.results, plan.ops, plan.op_results, plan.op_rows
    for msg in messages:
        if topic is None or msg.topic() != name:
            name = msg.topic()
            topic = topics[name or ""]
            rows = plan.rows[topic.name]
            hasher = content_hasher(topic.hash_algorithm)  # looked up per topic, not per message
        raw_key, value, raw_headers = msg.key(), msg.value(), msg.headers()
        headers, size = headers_read(raw_headers)
        size += len(raw_key or b"") + len(value or b"")
        digest = hasher(value or b"")
        key = _text(raw_key)
        # Header values are bytes (headers_read): compared and parsed as bytes, decoded only
        # where text is needed; integers inline (a call per header is paid per message).
        raw = headers.get("uuid")
        message_uuid = raw.decode() if raw and _UUID_CANONICAL(raw) else _uuid(raw)
        raw = headers.get("event")
        event = _EVENT_TEXT.get(raw) or _text(raw)  # type: ignore[arg-type]
        raw = headers.get("created")
        created_ms = int(raw) if raw and raw.isdigit() and len(raw) <= _INT_DIGITS else None
        if created_ms is not None and created_ms > _MAX_EPOCH_MS:
            created_ms = None
        raw = headers.get("schema")
        schema = int(raw) if raw and raw.isdigit() and len(raw) <= _INT_DIGITS else None
        raw = headers.get("version")
        version = (int(raw) if raw.isdigit() and len(raw) <= _INT_DIGITS else None) if raw is not None else 0
        raw = headers.get("old-version")
        old_version = (int(raw) if raw.isdigit() and len(raw) <= _INT_DIGITS else None) if raw is not None else version
        reason = ""
        problems: list[str] = []
        sealed = False
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
        elif size > max_bytes:
            reason = f"oversize: {size} bytes, limit {max_bytes}"
        elif schema is None or schema not in versions:
            reason = f"unknown schema version {headers.get('schema', b'').decode(errors='replace')!r}"
        elif version is None or old_version is None or max(version, old_version) > MAX_VERSION:
            reason = f"invalid version header: expected an integer from 0 to {MAX_VERSION}"
        elif event not in ("delete", "restore") and not value:
            reason = f"{event} without a value"
        else:
            value_hash = seal_value_hash(value or b"", content_hash_=digest, algorithm=topic.hash_algorithm)
            unsealed = verifier.check(topic=topic.name, headers=headers, key=raw_key or b"", value_hash=value_hash)
            sealed = not unsealed
            if unsealed and (event == "restore" or not topic.accepts_unsealed):
                reason = unsealed  # held: nothing unverified decides (docs/security.md, Feed integrity)
            elif unsealed:
                reason = _beyond_bound(max(version, old_version), bound)
            if not reason and value and not (sealed and PROBLEMS_HEADER not in headers):
                reason, problems, in_full = _value_check(topic, key, value, headers, schema, sealed=sealed)
                plan.checked_in_full += in_full
        if created_ms is not None:
            at = publish_time(created_ms, msg.timestamp(), max_skew_ms=max_skew).ms
            published_at = published.get(at)
            if published_at is None:
                published_at = published[at] = ms_to_datetime(at)
        else:
            published_at = _timestamp(msg, consumed_at)
        if reason:
            plan.dead.append((msg, reason, _uuid_object(message_uuid), key))
            outcome = Outcome.DEAD_LETTERED
        elif event == "delete" or (event == "restore" and not value):
            op_results.append(len(results))
            op_rows.append((topic.name, len(rows)))
            ops.append(_op((event, key, version or 0, b"", "", 0, "", "", created_ms or 0, topic.name, 0)))
            outcome = Outcome.DELETED
        else:
            op_results.append(len(results))
            op_rows.append((topic.name, len(rows)))
            ops.append(
                _op(
                    (
                        event,
                        key,
                        version or 0,
                        value or b"",
                        message_uuid or "",
                        schema or current,
                        _text(headers.get("old-key")) if event == "update" else "",  # old_key
                        _text(headers.get("load")) if event == "bulk" and sealed else "",  # load
                        created_ms or 0,
                        topic.name,
                        old_version or 0,
                    )
                )
            )
            outcome = Outcome.STORED
            if problems:
                outcome = Outcome.INVALID
                plan.invalid.append((topic.name, _uuid_object(message_uuid), key, problems))  # type: ignore[arg-type]
            if topic.method_audit:
                plan.audit[topic.name].append((_uuid_object(message_uuid), value or b"", consumed_at, schema))
        if not reason and not sealed:
            outcome = Outcome.UNSEALED
            plan.unsealed[topic.name].add(key)
            if event == "update" and ops[-1].old_key:
                plan.unsealed[topic.name].add(ops[-1].old_key)
        outcome_text = _OUTCOME_TEXT[outcome]
        counts[outcome_text] += 1
        results.append((msg, outcome_text, reason))
        # Positional (uuid, group, partition, offset, key, content_hash,
        # published_at, consumed_at, outcome): keywords cost a microsecond a row.
        rows.append(
            _row(
                (
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
        )
    plan.outcomes.update(counts)
    return plan


# A NamedTuple's own constructor is a Python frame of its own; these make the same tuples in C
# (the plan makes two per message, in field order: CacheOp's and ConsumedRow's).
_op = functools.partial(tuple.__new__, CacheOp)
_row = functools.partial(tuple.__new__, ConsumedRow)


def _beyond_bound(version: int, bound: Bound | None) -> str:
    """Why an unsealed message's version cannot be taken ("" when it can): beyond what the
    source can have given, it could delete or pin any record."""
    if version == 0:
        return ""  # unordered: it may fill a key holding nothing ordered, never replace one
    limit = bound(version) if bound is not None else None
    if limit is None:
        return "version of an unsealed message, and no source bound to check it against"
    if version > limit:
        return f"version beyond the source's bound: {version} > {limit}"
    return ""


def _value_check(
    topic: Topic, key: str, value: bytes, headers: dict[str, bytes], schema: int, *, sealed: bool
) -> tuple[str, list[str], bool]:
    """(why the value must not reach the cache, or ""; its validation problems; decoded in full?).

    A sealed message (kafkacache.seal) carries what its producer checked; any
    other is decoded and checked here.
    """
    if sealed:
        problems = problems_decode(headers) if topic.validate_payloads else []
        if problems is not None:
            return "", problems, False
    try:
        record = avro.decode(value, version=schema)
    except avro.AvroError as exc:
        return f"malformed Avro: {exc}", [], True
    reason = _sealing_problem(record)
    if reason:
        return reason, [], True
    return "", record_problems(record, key=key) if topic.validate_payloads else [], True


def _text(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return ""


# The uuid header as this project's producer writes it (str(uuid4())): taken as text with
# no UUID object made; any other spelling is parsed, and kept in this canonical form.
_UUID_CANONICAL = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch
_EVENT_TEXT = {event.encode(): event for event in EVENTS}
# Digits an integer header may have: every valid one fits (MAX_VERSION and the epoch bound
# have 16 and 15), and a longer run of digits is invalid rather than a slow or failing int().
_INT_DIGITS = 19


def _uuid(raw: bytes | None) -> str | None:
    """The uuid header in canonical text, or None when it is no UUID."""
    try:
        return str(uuidlib.UUID(_text(raw)))
    except ValueError:
        return None


def _uuid_object(text: str | None) -> uuidlib.UUID | None:
    """For the rare paths (findings, audit payloads), which take UUID objects."""
    return uuidlib.UUID(text) if text else None


def _sealing_problem(record: dict) -> str:
    """Why the record's card or account numbers are not ciphertexts under a configured key ("" if they are).

    Such a value must not reach the cache: its readers could not decrypt it, or it
    holds the numbers in clear. Only the key id each field names is read. A
    format-preserving (FF1) field is digits whatever it holds: nothing but the
    producer's seal can tell it from a number in clear (FF1 has no tag), so in a
    message without a verified seal it is refused, whatever key id it names.
    """
    known = keyring().keys
    for list_name, field_name, _ in SENSITIVE:
        for i, item in enumerate(record[list_name]):
            if isinstance(item[field_name], str) or item.get(fpe_tag(field_name)):
                return (
                    f"{list_name}[{i}].{field_name} is format-preserving (FF1) in a message without a verified"
                    " seal: nothing tells it from a number in clear"
                )
            try:
                key_id = field_key_id(item, field_name)
            except CryptoError:
                return f"{list_name}[{i}].{field_name} is not encrypted"
            if key_id not in known:
                return f"{list_name}[{i}].{field_name} is encrypted with key {key_id!r}, which is not configured"
    return ""


# 9999-12-31T23:59:59.999Z, the last instant a datetime holds: a larger "created" is
# no time at all, and must make a dead letter rather than crash the batch.
_MAX_EPOCH_MS = 253_402_300_799_999


def _timestamp(msg: Message, fallback: dt.datetime) -> dt.datetime:
    kind, ms = msg.timestamp()
    return ms_to_datetime(ms) if kind and ms and ms > 0 else fallback
