"""Kafka messages of the feed: headers as the shared-record contract defines them.

Headers (utf-8 bytes): uuid, event (bulk|add|update|delete|restore), source, schema,
created (publish time, epoch ms), hash (hex content hash of the exact value
bytes), hash-alg, key-id (field-encryption key; only when a value is present),
load (retrieval key; bulk), old-key (update whose key changed), replay-of,
problems (validation problems the producer found), seal (kafkacache.seal, added
by kafkacache.producer.publish to each batch's sealable messages), version (the
record's source version, core.sources; absent: unordered) and old-version
(the version the old key's delete carries; default: version).

A delete carries no value (a Kafka tombstone); its hash is of the empty bytes. A
restore (replay.ways.restore) writes the system of record's current state over whatever
the cache holds, version or tombstone: the consumer takes it only under a verified seal.
"""

import datetime as dt
import time
import uuid as uuidlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple, cast

from core.hashing import content_hash
from kafkacache.seal import PROBLEMS_HEADER, problems_encode, seal_reserve

EVENTS = ("bulk", "add", "update", "delete", "restore")
HEADER_OVERHEAD = 8  # per header: varint lengths and framing, an upper estimate

Header = tuple[str, str | bytes | None]
# What confluent-kafka hands out and accepts as headers.
RawHeaders = dict[str, str | bytes | None] | list[Header] | None


class OutMessage(NamedTuple):
    uuid: uuidlib.UUID
    key: str
    value: bytes | None
    headers: list[Header]
    event: str
    created_ms: int
    content_hash: bytes
    size: int
    schema_version: int
    load_id: uuidlib.UUID | None = None
    replay_of: uuidlib.UUID | None = None
    version: int | None = None  # source version; None: unordered
    sealable: bool = False  # built here from a checked record: kafkacache.producer seals it per batch
    leaf: bytes = b""  # its seal leaf, set when published (kafkacache.producer): the publish ledger keeps it


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ms_to_datetime(ms: int) -> dt.datetime:
    """Publish time as both ledgers store it (the same function on both sides)."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def _items(headers: RawHeaders) -> Iterable[Header]:
    return headers.items() if isinstance(headers, dict) else (headers or ())


def _bytes(value: str | bytes | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""


def message_size(key: str | bytes | None, value: str | bytes | None, headers: RawHeaders) -> int:
    """What a message weighs against MESSAGE_MAX_BYTES: key, value and headers."""
    return len(_bytes(key)) + len(_bytes(value)) + headers_read(headers)[1]


def message_build(
    *,
    key: str,
    event: str,
    value: bytes | None,
    source: str,
    schema_version: int,
    hash_algorithm: str,
    key_id: str = "",
    load: str = "",
    load_id: uuidlib.UUID | None = None,
    old_key: str = "",
    replay_of: uuidlib.UUID | None = None,
    message_uuid: uuidlib.UUID | None = None,
    created_ms: int | None = None,
    problems: Sequence[str] | None = None,
    version: int | None = None,
    old_version: int | None = None,
) -> OutMessage:
    """A message ready to publish. `problems` (the record's validation problems, [] for
    none) says the value was encoded here from a record this producer built and checked:
    the message is then sealed (kafkacache.seal). None: the value came from elsewhere
    (an audit payload), and the consumer checks it in full. A message without a value (a
    delete) built here passes `problems=[]` to be sealed: the consumer takes no unsealed one
    unless its topic accepts unsealed producers.

    Long because it is one step per message on the load's produce path: the keywords are its
    header list, and moving their checks into a helper would add a call per message."""
    if event not in EVENTS:
        raise ValueError(f"unknown event type {event!r}")
    message_uuid = message_uuid or uuidlib.uuid4()
    created_ms = created_ms or now_ms()
    digest = content_hash(value or b"", hash_algorithm)
    headers: list[Header] = [
        ("uuid", str(message_uuid).encode()),
        ("event", event.encode()),
        ("source", source.encode()),
        ("schema", str(schema_version).encode()),
        ("created", str(created_ms).encode()),
        ("hash", digest.hex().encode()),
        ("hash-alg", hash_algorithm.encode()),
    ]
    if value and key_id:
        headers.append(("key-id", key_id.encode()))
    if load:
        headers.append(("load", load.encode()))
    if old_key:
        headers.append(("old-key", old_key.encode()))
    if replay_of:
        headers.append(("replay-of", str(replay_of).encode()))
    if version is not None:
        headers.append(("version", str(version).encode()))
    if old_key and old_version is not None and old_version != version:
        headers.append(("old-version", str(old_version).encode()))
    sealable = problems is not None and (bool(value and key_id) or not value)
    if sealable and problems:
        headers.append((PROBLEMS_HEADER, problems_encode(problems)))
    size = len(key.encode()) + len(value or b"") + headers_weight(headers)
    return OutMessage(
        uuid=message_uuid,
        key=key,
        value=value,
        headers=headers,
        event=event,
        created_ms=created_ms,
        content_hash=digest,
        size=size + (seal_reserve() if sealable else 0),
        schema_version=schema_version,
        load_id=load_id,
        replay_of=replay_of,
        version=version,
        sealable=sealable,
    )


def headers_weight(headers: list[Header]) -> int:
    """What headers weigh against MESSAGE_MAX_BYTES (headers_read's sum), without building the
    dict where every value is bytes, as message_build makes them (names are ASCII constants)."""
    total = 0
    for name, item in headers:
        if type(item) is not bytes:
            return headers_read(headers)[1]
        total += len(name) + len(item) + HEADER_OVERHEAD
    return total


def headers_read(headers: RawHeaders) -> tuple[dict[str, bytes], int]:
    """Headers as a dict (a repeated header: the last one wins), and what they all weigh
    against MESSAGE_MAX_BYTES. The consumer reads every message's: confluent-kafka's list of
    (name, bytes) pairs is read in C calls (dict, join), at a third of a loop's cost; with no
    name repeated, the dict holds every value, so its joins weigh them all."""
    if headers.__class__ is list and headers:
        read = cast("dict[str, bytes]", dict(headers))  # every value is bytes once the join takes them
        if len(read) == len(headers):
            try:
                weight = len(b"".join(read.values()))  # a None or str value: TypeError, read one by one
            except TypeError:
                pass
            else:
                text = "".join(read)
                weight += len(text) if text.isascii() else len(text.encode())
                return read, weight + HEADER_OVERHEAD * len(headers)
    out: dict[str, bytes] = {}
    weight = 0
    for name, item in _items(headers):
        value = item.encode() if isinstance(item, str) else item or b""
        out[name] = value
        weight += len(name.encode()) + len(value) + HEADER_OVERHEAD
    return out, weight


def headers_dict(headers: RawHeaders) -> dict[str, bytes]:
    """Message headers as a dict (a repeated header: the last one wins)."""
    return headers_read(headers)[0]
