"""The Redis key layout of the cache (the shared-record contract; see the README).

kc:rec:{record key}      HASH  p = published Kafka value bytes (Avro, numbers still
                               encrypted), u = message uuid, v = schema version,
                               t = created (publish time, epoch ms; shown, orders
                               nothing), sv = source version, tp = the topic that
                               wrote it
kc:load:{retrieval key}  SET   record keys a bulk load delivered
kc:dv:{record key}       STRING source version of the last delete (a tombstone), kept
                               CACHE_TOMBSTONE_SECONDS so an older write, arriving
                               late, cannot bring the record back

The tombstone prefix changed with versioned writes (it was kc:del: holding a
publish time): an old tombstone is never read as a version, it just expires.
"""

REC_PREFIX = "kc:rec:"
LOAD_PREFIX = "kc:load:"
TOMBSTONE_PREFIX = "kc:dv:"


def rec_key(record_key: str) -> str:
    return f"{REC_PREFIX}{record_key}"


def load_key(retrieval_key: str) -> str:
    return f"{LOAD_PREFIX}{retrieval_key}"


def tombstone_key(record_key: str) -> str:
    return f"{TOMBSTONE_PREFIX}{record_key}"
