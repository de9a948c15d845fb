"""The cache leg: what the consumer wrote to Redis is what was published.

For a load or a time range, take each record key the consumer handled and its
latest delivery (by publish time, across topics: the bulk and change topics feed
the same keys). A stored record must be in Redis (kc:rec:{key}, field p) and
hash to the published hash of that latest message; a deleted one must be
absent. Anything else is a "cache" finding: a record changed or removed behind
the consumer's back, or a delete that did not take.
"""

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from typing import NamedTuple

from django.db import connection
from django.utils import timezone

from kafkacache.clients import redis_client
from kafkacache.redis_keys import rec_key
from recon.hashing import content_hash
from recon.models import ConsumedMessage, Finding, ReconRun, Topic

logger = logging.getLogger(__name__)

CHUNK = 1000
_KEPT = (ConsumedMessage.Outcome.STORED, ConsumedMessage.Outcome.INVALID)
_HANDLED = (*_KEPT, ConsumedMessage.Outcome.DELETED)


class Latest(NamedTuple):
    key: str
    uuid: uuid.UUID | None
    outcome: str
    published_hash: bytes
    algorithm: str
    published_at: dt.datetime


def keys_handled(*, topic: Topic, start: dt.datetime | None, end: dt.datetime | None, load_id=None) -> list[str]:
    """Record keys the consumer stored or deleted: of a load, or of the topic's messages in [start, end)."""
    with connection.cursor() as cursor:
        if load_id is not None:
            cursor.execute(
                """SELECT DISTINCT c.key FROM recon_publishedmessage p
                   JOIN recon_consumedmessage c ON c.uuid = p.uuid AND c.published_at = p.published_at
                   WHERE p.load_id = %s AND c.outcome = ANY(%s) ORDER BY 1""",
                [load_id, list(_HANDLED)],
            )
        else:
            cursor.execute(
                """SELECT DISTINCT key FROM recon_consumedmessage
                   WHERE topic_id = %s AND published_at >= %s AND published_at < %s AND outcome = ANY(%s)
                   ORDER BY 1""",
                [topic.pk, start, end, list(_HANDLED)],
            )
        return [row[0] for row in cursor.fetchall()]


def latest_deliveries(keys: list[str]) -> Iterator[Latest]:
    """The latest handled delivery of each key, with its published hash (the consumed one for an orphan)."""
    algorithms = dict(Topic.objects.values_list("pk", "hash_algorithm"))
    for i in range(0, len(keys), CHUNK):
        with connection.cursor() as cursor:
            cursor.execute(
                """
                WITH latest AS (
                    SELECT DISTINCT ON (key) key, uuid, outcome, topic_id, content_hash, published_at
                    FROM recon_consumedmessage
                    WHERE key = ANY(%s) AND outcome = ANY(%s)
                    ORDER BY key, published_at DESC, id DESC
                )
                SELECT l.key, l.uuid, l.outcome, l.topic_id, coalesce(p.content_hash, l.content_hash), l.published_at
                FROM latest l
                LEFT JOIN recon_publishedmessage p ON p.uuid = l.uuid AND p.published_at = l.published_at
                """,
                [keys[i : i + CHUNK], list(_HANDLED)],
            )
            for key, message_uuid, outcome, topic_id, published_hash, at in cursor.fetchall():
                yield Latest(key, message_uuid, outcome, bytes(published_hash), algorithms.get(topic_id, ""), at)


def _hash_matches(value: bytes, expected: bytes, preferred: str) -> bool:
    # The topic's algorithm first; a topic may have switched algorithms since.
    for algorithm in (preferred, "blake2b", "xxh3", "crc32"):
        if (
            algorithm
            and len(content_hash(b"", algorithm)) == len(expected)
            and content_hash(value, algorithm) == expected
        ):
            return True
    return False


def _reencrypted(value: bytes, expected: bytes, replaced: bytes | None, rewritten: bytes | None) -> bool:
    """A value kafkacache.rekey re-encrypted: it replaced bytes that hashed to the published
    hash (rx) and is still the value it wrote (rn). Anything else is drift."""
    if not replaced or not rewritten or content_hash(value, "blake2b").hex().encode() != rewritten:
        return False
    return any(h.partition(b":")[2] == expected.hex().encode() for h in replaced.split(b","))


def cache_problems(latest: list[Latest]) -> dict[str, tuple[uuid.UUID | None, dict]]:
    """Compare Redis with the latest deliveries; answers {key: (uuid, detail)} for each that is off."""
    problems: dict[str, tuple[uuid.UUID | None, dict]] = {}
    client = redis_client()
    for i in range(0, len(latest), CHUNK):
        chunk = latest[i : i + CHUNK]
        pipe = client.pipeline(transaction=False)
        for item in chunk:
            pipe.hmget(rec_key(item.key), "p", "u", "rx", "rn")
        for item, (value, cached_uuid, replaced, rewritten) in zip(chunk, pipe.execute(), strict=True):
            base = {"published_at": item.published_at.isoformat(), "expected_hash": item.published_hash.hex()}
            if cached_uuid is not None:
                base["cached_uuid"] = cached_uuid.decode(errors="replace")
            if item.outcome == ConsumedMessage.Outcome.DELETED:
                if value is not None or cached_uuid is not None:
                    problems[item.key] = (item.uuid, {**base, "problem": "present after delete"})
            elif value is None:
                problems[item.key] = (item.uuid, {**base, "problem": "absent"})
            elif not _hash_matches(value, item.published_hash, item.algorithm) and not _reencrypted(
                value, item.published_hash, replaced, rewritten
            ):
                detail = {
                    **base,
                    "problem": "differs",
                    "cached_hash": content_hash(value, item.algorithm or "blake2b").hex(),
                }
                problems[item.key] = (item.uuid, detail)
    return problems


def cache_check(
    *,
    topic: Topic,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    load=None,
    trigger: str = "schedule",
    requested_by=None,
) -> ReconRun:
    """Run the cache leg for a load or a range and store it as a run of kind "cache"."""
    from recon.services import key_findings_sync, run_finish, run_start

    run = run_start(
        kind=ReconRun.Kind.CACHE,
        topic=topic,
        start=start,
        end=end,
        load=load,
        trigger=trigger,
        requested_by=requested_by,
    )
    with run_finish(run) as report:
        keys = keys_handled(topic=topic, start=start, end=end, load_id=load.pk if load else None)
        latest = list(latest_deliveries(keys))
        problems = cache_problems(latest)
        outcome = key_findings_sync(
            topic=topic,
            category=Finding.Category.CACHE,
            source="cache-check",
            checked=keys,
            problems=problems,
            run=run,
            load_id=load.pk if load else None,
        )
        by_problem: dict[str, list[str]] = {}
        for key, (_, detail) in sorted(problems.items()):
            by_problem.setdefault(detail["problem"], []).append(key)
        report.update(
            checked=len(latest),
            deleted_checked=sum(1 for item in latest if item.outcome == ConsumedMessage.Outcome.DELETED),
            problems={name: {"count": len(keys_), "keys": keys_[:1000]} for name, keys_ in by_problem.items()},
            all_matched=not problems,
            findings=outcome,
            as_of=timezone.now().isoformat(),
        )
    return run
