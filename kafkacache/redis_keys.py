"""The Redis key layout of the cache (the shared-record contract; see the README).

kc:rec:{record key}      HASH  p = published Kafka value bytes (Avro, numbers still
                               encrypted), u = message uuid, v = schema version,
                               t = created (publish time, epoch ms)
kc:load:{retrieval key}  SET   record keys a bulk load delivered
kc:del:{record key}      STRING publish time (epoch ms) of the last delete, kept
                               CACHE_TOMBSTONE_SECONDS so a late, older write from
                               another partition cannot bring the record back
"""

REC_PREFIX = "kc:rec:"
LOAD_PREFIX = "kc:load:"
TOMBSTONE_PREFIX = "kc:del:"


def rec_key(record_key: str) -> str:
    return f"{REC_PREFIX}{record_key}"


def load_key(retrieval_key: str) -> str:
    return f"{LOAD_PREFIX}{retrieval_key}"


def tombstone_key(record_key: str) -> str:
    return f"{TOMBSTONE_PREFIX}{record_key}"
