"""The Redis layout of the cache (the shared-record contract): every key and field.

kc:rec:{<record key>}    HASH   a cached record:
                                p  = the published Kafka value bytes (Avro, numbers still encrypted)
                                u  = the message uuid
                                v  = the Avro schema version of p
                                t  = created (publish time, epoch ms; shown, finds the ledger
                                     partition, orders nothing)
                                sv = the source version (orders every write; 0: unordered)
                                tp = the topic that wrote it (whose payload permission reads it)
                                rx = only after a re-encryption (kafkacache.services.reencrypt): the replaced
                                     bytes' hashes, "alg:hex,..." (core.hashing.content_hashes)
                                rn = with rx: the BLAKE2b hex of the bytes it wrote
                                A record is held when p is. A later write sets the first six and
                                leaves rx and rn, inert: rn no longer names p's hash.
kc:load:<retrieval key>  SET    the record keys a bulk load delivered
kc:dv:{<record key>}     STRING the source version of the key's last delete (a tombstone), kept
                                CACHE_TOMBSTONE_SECONDS so an older write, arriving late,
                                cannot bring the record back. A key never holds both: a put
                                drops the tombstone, a delete the record.

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

REC_PREFIX = "kc:rec:"
LOAD_PREFIX = "kc:load:"
TOMBSTONE_PREFIX = "kc:dv:"
# SCAN patterns of the tagged layout (Redis globs treat braces as plain characters).
REC_MATCH = REC_PREFIX + "{*"
TOMBSTONE_MATCH = TOMBSTONE_PREFIX + "{*"

# The record hash's fields (the writer's scripts name the same ones: tests/architecture/test_stores.py).
VALUE = "p"
UUID = "u"
SCHEMA_VERSION = "v"
CREATED = "t"
SOURCE_VERSION = "sv"
TOPIC = "tp"
REPLACED_HASHES = "rx"
REWRITTEN_HASH = "rn"
RECORD_FIELDS = (VALUE, UUID, SCHEMA_VERSION, CREATED, SOURCE_VERSION, TOPIC, REPLACED_HASHES, REWRITTEN_HASH)


def rec_key(record_key: str) -> str:
    return f"{REC_PREFIX}{{{record_key}}}"


def load_key(retrieval_key: str) -> str:
    return f"{LOAD_PREFIX}{retrieval_key}"


def tombstone_key(record_key: str) -> str:
    return f"{TOMBSTONE_PREFIX}{{{record_key}}}"


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
