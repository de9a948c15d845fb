"""The Redis key layout of the cache (the shared-record contract; see the README).

kc:rec:{<record key>}    HASH  p = published Kafka value bytes (Avro, numbers still
                               encrypted), u = message uuid, v = schema version,
                               t = created (publish time, epoch ms; shown, orders
                               nothing), sv = source version, tp = the topic that
                               wrote it
kc:load:<retrieval key>  SET   record keys a bulk load delivered
kc:dv:{<record key>}     STRING source version of the last delete (a tombstone), kept
                               CACHE_TOMBSTONE_SECONDS so an older write, arriving
                               late, cannot bring the record back

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
