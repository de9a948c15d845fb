"""The Redis layout of the cache (the shared-record contract): every key and how a record is packed.

kc:rec:{<record key>}    STRING a cached record, one value (record_pack / record_unpack):
                                b"K1" + the source version as 16 decimal digits (orders every
                                write; 0: unordered), then "|"-ended fields:
                                uuid    the message that wrote it
                                schema  the Avro schema version of the value
                                created publish time, epoch ms (shown, finds the ledger
                                        partition, orders nothing)
                                topic   the topic that wrote it (whose payload permission reads it)
                                rx      only after a re-encryption (kafkacache.services.reencrypt): the
                                        replaced bytes' hashes, "alg:hex,..." (core.hashing.content_hashes)
                                rn      with rx: the BLAKE2b hex of the bytes it wrote
                                then the published Kafka value bytes (Avro, numbers still encrypted).
                                The write script reads only the first HEAD_BYTES (the version).
                                A value without the K1 head (a hand-written one) is a record of
                                version 0 whose value is those bytes.
                                One value, not a hash: a ~1 KB field made every record a
                                hashtable of six entries, and its HSET cost the consumer's
                                Redis more than the rest of the script.
                                A record of the layout before (a HASH of fields p, u, v, t, sv, tp,
                                rx, rn: LEGACY_FIELDS) is still read, and becomes a string when
                                it is next written or when `manage.py cache_relayout` runs.
kc:load:<retrieval key>  SET    the record keys a bulk load delivered
kc:dv:{<record key>}     STRING the source version of the key's last delete (a tombstone), kept
                                CACHE_TOMBSTONE_SECONDS so an older write, arriving late,
                                cannot bring the record back. A key never holds both: a put
                                drops the tombstone, a delete the record.
kc:dg:{<slot tag>}       HASH   the bucket digests of one Redis Cluster hash slot (digest_key):
                                field <sub> (0..BUCKETS_PER_SLOT-1) holds the sum of
                                digest_share(key, version) over every record key of bucket
                                slot * BUCKETS_PER_SLOT + sub (bucket_of), read modulo
                                DIGEST_MOD. The tag hashes to the slot itself, so on a cluster
                                the script that writes a record updates its bucket on the same
                                node, in the same call. A sum, not a XOR: a write subtracts the
                                old share and adds the new one, in any order.
kc:dg:complete           STRING present once the digests cover every record (written on an
                                empty cache, or by a rebuild that ended): until then the digest
                                leg compares key by key.

One reader, one writer:
- `core.cache_records` is the one reader: records, tombstones, a load's keys, the cache
  leg's packed batch read, the SCAN of every record. Every app reads the cache through it.
- `kafkacache.cache` is the one writer: the consumer's versioned batch script (every
  load, change and replay reaches Redis through it), the re-encryption's compare-and-set
  of a value (kafkacache.services.reencrypt calls it) and the move of keys from the layout before
  hash tags (kafkacache.services.relayout calls it). It lives in the feed because every write is
  the feed's: it is ordered by the source version and owned by the consume loop.
No other module names a field or builds one of these names
(tests/architecture/test_stores.py; tests/cache_state.py damages the cache behind their
back for the tests): a change of the layout is a change of this module, the reader and
the writer.

The braces are a hash tag: on Redis Cluster a record and its tombstone hash to the
same slot, so the one script that checks and writes both runs on one node. The same
names serve a standalone Redis (one layout, one code path). Keys of the layout before
the tags (kc:rec:<key>, kc:dv:<key>) are moved by `manage.py cache_relayout`.

The tombstone prefix changed with versioned writes (it was kc:del: holding a
publish time): an old tombstone is never read as a version, it just expires.
"""

import functools
import hashlib
import zlib
from binascii import crc_hqx
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from redis.crc import key_slot

REC_PREFIX = "kc:rec:"
LOAD_PREFIX = "kc:load:"
TOMBSTONE_PREFIX = "kc:dv:"
DIGEST_PREFIX = "kc:dg:"
DIGESTS_COMPLETE = DIGEST_PREFIX + "complete"
# SCAN patterns of the tagged layout (Redis globs treat braces as plain characters).
REC_MATCH = REC_PREFIX + "{*"
TOMBSTONE_MATCH = TOMBSTONE_PREFIX + "{*"

# The digests' buckets: a Redis Cluster hash slot (16,384 of them, as on a cluster, also on a
# standalone Redis: one layout) split by another hash of the key into BUCKETS_PER_SLOT, so
# ~1M buckets: at 10M keys ~10 keys a bucket, and a drill-down reads only the few keys of
# the buckets that differ.
SLOTS = 16384
BUCKETS_PER_SLOT = 64
DIGEST_HEX = 10  # a share is the first 40 bits of SHA-1: the one hash Redis scripts have
DIGEST_MOD = 1 << (4 * DIGEST_HEX)

# The packed record (see above). The write scripts (kafkacache.cache) read the head and
# split the fields with the same constants.
RECORD_MAGIC = b"K1"
VERSION_DIGITS = 16  # MAX_VERSION (2**53 - 1) has 16 digits: a Lua number holds it exactly
HEAD_BYTES = len(RECORD_MAGIC) + VERSION_DIGITS
FIELD_END = b"|"  # no field holds one: a uuid, digits, a Kafka topic name, hashes "alg:hex,..."
PACKED_FIELDS = 6  # uuid, schema, created, topic, rx, rn; then the value

# The fields of the layout before (a HASH per record), read until it is rewritten.
VALUE = "p"
UUID = "u"
SCHEMA_VERSION = "v"
CREATED = "t"
SOURCE_VERSION = "sv"
TOPIC = "tp"
REPLACED_HASHES = "rx"
REWRITTEN_HASH = "rn"
LEGACY_FIELDS = (VALUE, UUID, SCHEMA_VERSION, CREATED, SOURCE_VERSION, TOPIC, REPLACED_HASHES, REWRITTEN_HASH)


class Packed(NamedTuple):
    """A record as the cache packs it."""

    value: bytes
    uuid: str
    schema_version: int
    created_ms: int
    version: int
    topic: str
    replaced_hashes: str = ""
    rewritten_hash: str = ""


def record_pack(
    value: bytes,
    uuid: str,
    schema_version: int,
    created_ms: int,
    version: int,
    topic: str,
    replaced_hashes: str = "",
    rewritten_hash: str = "",
) -> bytes:
    """One record as the one value the cache stores (positional: the consumer packs a batch)."""
    return b"K1%016d%b|%d|%d|%b|%b|%b|%b" % (
        version,
        uuid.encode(),
        schema_version,
        created_ms,
        topic.encode(),
        replaced_hashes.encode(),
        rewritten_hash.encode(),
        value,
    )


def record_unpack(raw: bytes) -> Packed:
    """A stored value as its record; one without the head (written by hand) is version 0, all value."""
    if raw[:2] == RECORD_MAGIC:
        parts = raw[HEAD_BYTES:].split(FIELD_END, PACKED_FIELDS)
        if len(parts) == PACKED_FIELDS + 1 and raw[2:HEAD_BYTES].isdigit():
            message_uuid, schema, created, topic, replaced, rewritten, value = parts
            return Packed(
                value,
                message_uuid.decode(errors="replace"),
                int(schema) if schema.isdigit() else 0,
                int(created) if created.isdigit() else 0,
                int(raw[2:HEAD_BYTES]),
                topic.decode(errors="replace"),
                replaced.decode(errors="replace"),
                rewritten.decode(errors="replace"),
            )
    return Packed(raw, "", 0, 0, 0, "")


def rec_key(record_key: str) -> str:
    return f"{REC_PREFIX}{{{record_key}}}"


def load_key(retrieval_key: str) -> str:
    return f"{LOAD_PREFIX}{retrieval_key}"


def tombstone_key(record_key: str) -> str:
    return f"{TOMBSTONE_PREFIX}{{{record_key}}}"


def slot_of(record_key: str) -> int:
    """The Redis Cluster hash slot of the key's record (and of its tombstone and digest)."""
    if not record_key or "}" in record_key:
        return key_slot(rec_key(record_key).encode())
    return crc_hqx(record_key.encode(), 0) % SLOTS  # the hash tag is the whole key


def bucket_of(record_key: str) -> int:
    """The key's digest bucket: slot * BUCKETS_PER_SLOT + sub."""
    return slot_of(record_key) * BUCKETS_PER_SLOT + (zlib.crc32(record_key.encode()) & (BUCKETS_PER_SLOT - 1))


def digest_share(record_key: str, version: int) -> int:
    """A record's share of its bucket's digest; the write script computes the same
    (kafkacache.cache: SHA-1 of the record's Redis name, "|" and the version in decimal; its
    first DIGEST_HEX hex digits)."""
    text = f"{REC_PREFIX}{{{record_key}}}|{version}".encode()
    return int.from_bytes(hashlib.sha1(text, usedforsecurity=False).digest()[: DIGEST_HEX // 2], "big")


def digests_of(records: Iterable[tuple[str, int]]) -> dict[int, int]:
    """The bucket digests of these (record key, version) pairs, zeros left out: what the cache
    should keep for exactly these records (the digest leg sums the source with it)."""
    sums: dict[int, int] = {}
    for key, version in records:
        bucket = bucket_of(key)
        sums[bucket] = (sums.get(bucket, 0) + digest_share(key, version)) % DIGEST_MOD
    return {bucket: value for bucket, value in sums.items() if value}


SLOT_TAGS_FILE = Path(__file__).with_name("redis_slot_tags.txt")  # written by slot_tags_search


def slot_tags_search() -> list[str]:
    """The first decimal string that hashes to each slot, in slot order (~170,000 tries: a third
    of a second, so the result ships as SLOT_TAGS_FILE; tests/kafkacache/test_cache.py checks it)."""
    tags: list[str | None] = [None] * SLOTS
    missing, n = SLOTS, 0
    while missing:
        slot = crc_hqx(str(n).encode(), 0) % SLOTS
        if tags[slot] is None:
            tags[slot] = str(n)
            missing -= 1
        n += 1
    return [t for t in tags if t is not None]


@functools.cache
def _digest_keys() -> tuple[str, ...]:
    return tuple(f"{DIGEST_PREFIX}{{{tag}}}" for tag in SLOT_TAGS_FILE.read_text().split())


_FIELDS = tuple(str(sub) for sub in range(BUCKETS_PER_SLOT))


def digest_key(slot: int) -> str:
    """The HASH of one slot's bucket digests: its tag hashes to that slot."""
    return _digest_keys()[slot]


def digest_place(record_key: str) -> tuple[str, str]:
    """(digest key, field) of a record key: where its share is summed."""
    slot, sub = divmod(bucket_of(record_key), BUCKETS_PER_SLOT)
    return _digest_keys()[slot], _FIELDS[sub]


def record_key_of(redis_key: str | bytes) -> str:
    """The record key inside a kc:rec:{...} or kc:dv:{...} name (the one inverse every reader uses)."""
    name = redis_key.decode(errors="replace") if isinstance(redis_key, bytes) else redis_key
    for prefix in (REC_PREFIX, TOMBSTONE_PREFIX):
        if name.startswith(prefix + "{") and name.endswith("}"):
            return name[len(prefix) + 1 : -1]
    raise ValueError(f"not a record or tombstone key of the tagged layout: {name!r}")


def untagged_record_key(redis_key: str | bytes, prefix: str) -> str | None:
    """The record key of a name of the layout before hash tags (`prefix` + key), else None."""
    name = redis_key.decode(errors="replace") if isinstance(redis_key, bytes) else redis_key
    if not name.startswith(prefix) or name.startswith(prefix + "{"):
        return None
    return name[len(prefix) :]
