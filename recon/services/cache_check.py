"""The cache leg, the third leg: what Redis serves is what the system of record holds.

The window reconcile proves published = consumed; this leg proves the cache
itself. It runs per topic on a schedule (recon.tasks.cache_legs_due), after
every replay on the replay's keys (replay.services.runs queues recon.services.runs.replay_verify,
which queues this run) and on demand (POST /api/recon/runs kind "cache"). Which reference it compares with:

- the SQL source, in full (a run without range, load or keys, on a topic fed
  by the SQL source): every client, streamed in keyset batches of versions,
  against Redis read in pipelined batches; then a SCAN of every kc:rec:* key
  for records the source does not hold. Keys whose cached record another topic
  wrote are that topic's leg's (each key reported once); a key the cache does not
  hold belongs to the topic that last published it (a key nobody published: to
  the bulk topics' legs, whose loads fill the cache).
- the SQL source for a set of keys: a load from the SQL source, a replay's keys.
- the publish ledger: a file load (its latest message per key: file sources are
  compared by their last load), a publish-time range, or the keys of a replay
  that did not come from the SQL source. Every key published, delivered or not;
  a newer cached version or a newer delete is a later change and fine.

Deletes and renames are versions like any other: a key the source no longer
holds (a deleted client, the old key of a renumbering) should be absent or a
tombstone, and is a finding only when the cache still holds it.

Findings are `cache`, one standing finding per key (recon.services.findings.key_findings_sync):
found again, kept; no longer found, resolved, naming the replay (or message)
that fixed it. A key whose fix is already published and within the topic's
latency limit is `pending`: judged by the next run, neither found nor resolved.
"""

import datetime as dt
import logging
import time
import uuid
from array import array
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.cache_records import (
    DIGEST_MOD,
    Cached,
    SentRead,
    bucket_digests,
    bucket_of,
    cache_read,
    cache_read_discard,
    cache_read_send,
    cache_read_wait,
    digest_share,
    digests_complete,
    record_keys_scan,
)
from core.clients import redis_client
from core.hashing import content_hash
from core.records import client_id_of, record_key
from core.sources import SqlSource
from recon import cache_compare as cc
from recon.cache_compare import Expected, Problem
from recon.models import Finding, Load, ReconRun, Replay, ReplayItem, Topic
from recon.services.findings import key_findings_sync
from recon.services.run_lifecycle import run_finish, run_for_check

logger = logging.getLogger(__name__)

SOURCE = "cache-check"  # the findings' detail.source: this leg's standing findings
DIGEST, KEYS = "digest", "keys"  # a whole-source run's methods (cache_check's `method`)
METHODS = (DIGEST, KEYS)
REPORT_KEYS = 1000  # keys listed per problem in a run's report (the counts stay exact)
READS_IN_FLIGHT = 3  # Redis batch reads sent ahead of the one being compared

_FIX = {
    cc.STALE: "replay from source ({how}): republishes version {version}, which replaces the older cached one",
    cc.ABSENT: "replay from source ({how}): publishes the record at version {version}",
    cc.UNEXPECTED: (
        "replay from source ({how}): the source does not hold the key, so a delete at a new version is published"
    ),
    cc.DIFFERS: "replay from source ({how}): republishes version {version}; an equal version is written again",
    cc.AHEAD: (
        "the cache holds a newer version than the source (a source restored to an older state?): a replay cannot"
        " go back in time; check the source, then delete the key from the cache and replay from source ({how})"
    ),
}


def cache_check(
    *,
    topic: Topic,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    load: Load | None = None,
    keys: Sequence[str] | None = None,
    keys_source: str | None = None,
    trigger: str = "schedule",
    requested_by=None,
    now: dt.datetime | None = None,
    run: ReconRun | None = None,
    method: str | None = None,
) -> ReconRun:
    """Run the cache leg of a topic and store it as a run of kind "cache".

    Without start/end, load or keys: the whole topic against its system of
    record. `keys` with `keys_source` "ods": those keys against the SQL source;
    `keys` alone: against the publish ledger. `now` moves the latency limit's
    clock (a test judging "later"). `run`: the queued run a worker claimed
    (recon.services.runs.run_execute), filled instead of a new one (trigger and
    requested_by are then its own). `method` of a whole-topic run against the SQL source:
    "digest" (compare bucket digests, read only the keys of buckets that differ) or "keys"
    (read every key); None: CACHE_LEG_METHOD."""
    now = now or timezone.now()
    full = load is None and keys is None and (start is None or end is None)
    if full or keys is not None:
        start = start or min(topic.created_at, now - dt.timedelta(seconds=1))
        end = end or now
    run = run_for_check(
        run,
        kind=ReconRun.Kind.CACHE,
        topic=topic,
        start=start,
        end=end,
        load=load,
        trigger=trigger,
        requested_by=requested_by,
    )
    with run_finish(run) as report:
        started = time.monotonic()
        leg = _Leg(topic=topic, now=now, method=method or settings.CACHE_LEG_METHOD)
        _compare(leg, full=full, keys=keys, keys_source=keys_source, load=load, start=start, end=end)
        with leg._timed("settle"):
            problems = leg.settle()
        outcome = _findings_sync(leg, problems, run=run, load=load)
        by_kind: dict[str, list[str]] = {}
        for p in sorted(problems, key=lambda p: (p.kind, p.key)):
            by_kind.setdefault(p.kind, []).append(p.key)
        seconds = time.monotonic() - started
        report.update(_report(leg, by_kind=by_kind, findings=outcome, seconds=seconds, now=now, whole_topic=full))
    log = logger.warning if problems else logger.info
    log(
        "cache leg of %s against %s: %s keys, %s",
        topic.name,
        leg.reference,
        leg.checked,
        {k: len(v) for k, v in by_kind.items()} if by_kind else "all matched",
    )
    return run


def _compare(
    leg: "_Leg",
    *,
    full: bool,
    keys: Sequence[str] | None,
    keys_source: str | None,
    load: Load | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> None:
    """Compare the cache with the run's reference: the topic's last load when it came from
    another source, else the SQL source (whole, or the run's keys), else the publish ledger."""
    if full:
        last = _last_load(leg.topic)
        if last is not None and last.source != SqlSource.name:
            leg.ledger(scope="load", params=[last.pk], reference=f"load {last.pk} of {last.source}")
        elif SqlSource().readable():
            if not (leg.method == DIGEST and leg.sql_digest()):
                leg.sql_full()
        else:
            leg.ledger(scope="topic", params=[], reference="publish ledger")
    elif keys is not None:
        if keys_source == SqlSource.name:
            leg.sql_keys(list(keys))
        else:
            leg.ledger(scope="keys", params=[list(keys)], reference="publish ledger")
    elif load is not None:
        if load.source == SqlSource.name:
            leg.sql_keys(_load_keys(load))
        else:
            leg.ledger(scope="load", params=[load.pk], reference=f"load {load.pk} of {load.source}")
    else:
        leg.ledger(scope="range", params=[start, end], reference="publish ledger")


def _findings_sync(leg: "_Leg", problems: list, *, run: ReconRun, load: Load | None) -> dict:
    """The leg's findings made equal to its problems: new ones raised, changed ones updated, and
    the standing ones of keys now matching resolved (naming the replay that fixed them)."""
    topic = leg.topic
    drafts = {p.key: (_uuid(p.cached.uuid), _detail(p, topic, leg)) for p in problems}
    checked = None if leg.whole else sorted(leg.keys_checked)
    resolutions = _fixed_by(topic, _standing_keys(topic) - set(drafts) - leg.pending)
    began = time.monotonic()
    outcome = key_findings_sync(
        topic=topic,
        category=Finding.Category.CACHE,
        source=SOURCE,
        checked=checked,
        problems=drafts,
        run=run,
        load_id=load.pk if load else None,
        keep=leg.pending,
        resolutions=resolutions,
    )
    leg.timings["findings"] = time.monotonic() - began
    return outcome


def _report(
    leg: "_Leg", *, by_kind: dict[str, list[str]], findings: dict, seconds: float, now: dt.datetime, whole_topic: bool
) -> dict:
    """The run's report: what was compared with what, the problems by kind (REPORT_KEYS keys
    each, exact counts), the findings synced and the time by phase. `whole_topic`: every key
    of the topic was compared (no range, load or keys asked for): recon.selectors.runs.keys_reproved."""
    return {
        "whole_topic": whole_topic,
        "reference": leg.reference,
        "checked": leg.checked,
        "deleted_checked": leg.deleted_checked,
        "other_topic": leg.other_topic,
        "pending": len(leg.pending),
        "problems": {kind: {"count": len(k), "keys": k[:REPORT_KEYS]} for kind, k in by_kind.items()},
        "all_matched": not by_kind,
        "findings": findings,
        "seconds": round(seconds, 3),
        "keys_per_second": round(leg.checked / seconds) if seconds > 0 else None,
        "timings": {phase: round(t, 2) for phase, t in leg.timings.items()},
        "as_of": now.isoformat(),
        **({"method": leg.used, "digests": leg.digests} if leg.used else {}),
    }


class _Leg:
    """One run's compare: problems found so far, keys judged, keys pending."""

    def __init__(self, *, topic: Topic, now: dt.datetime, method: str = KEYS):
        self.topic = topic
        self.now = now
        self.method = method
        self.used = ""  # the method a whole-source run used ("": not one)
        self.digests: dict[str, Any] = {}  # a digest run's buckets: compared, differing, keys read
        self.redis = redis_client()
        self.batch = settings.CACHE_LEG_BATCH_SIZE
        self.reference = ""
        self.keys_how = ""  # how to name these keys in a fix: "way source, scope clients, source ods"
        self.newer_is_fine = False
        self.problems: list[Problem] = []
        self.checked = 0
        self.deleted_checked = 0
        self.other_topic = 0
        self.whole = False  # every key was judged (the whole source or ledger): resolve any other
        self.keys_checked: set[str] = set()  # otherwise the keys judged
        self.pending: set[str] = set()
        self.timings: dict[str, float] = {}  # seconds per phase (the report's `timings`)

    @contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.timings[phase] = self.timings.get(phase, 0.0) + time.monotonic() - began

    def _compare(self, expected: list[Expected], cached: list[Cached], *, remember: bool, deferred=None) -> None:
        self.checked += len(expected)
        self.deleted_checked += sum(1 for e in expected if not e.present)
        if remember:
            self.keys_checked.update(e.key for e in expected)
        self.problems += cc.batch_compare(
            expected,
            cached,
            algorithm=self.topic.hash_algorithm,
            newer_is_fine=self.newer_is_fine,
            deferred=deferred,
        )

    def sql_full(self) -> None:
        """The whole SQL source, then every record Redis holds that the source does not."""
        self.reference, self.keys_how = SqlSource.name, "way source, scope clients, source ods"
        self.whole, self.used = True, KEYS
        source = SqlSource()
        name = self.topic.name
        held: set[str] = set()  # every key the source holds (the SCAN looks for the others)
        versions: dict[str, int] = {}  # equal-version keys, for the differs check at the end
        deferred = cc.DeferredHashes(algorithm=self.topic.hash_algorithm)
        try:
            for expected, cached in self._source_batches(source, held):
                if any(c.topic and c.topic != name for c in cached):
                    mine = [(e, c) for e, c in zip(expected, cached, strict=True) if not c.topic or c.topic == name]
                    self.other_topic += len(expected) - len(mine)
                    expected, cached = [e for e, _ in mine], [c for _, c in mine]
                with self._timed("compare"):
                    self._compare(expected, cached, remember=False, deferred=deferred)
            with self._timed("hash_join"):
                candidates = deferred.mismatched()
        finally:
            deferred.close()
        # Read again and judged one by one (a topic's earlier hash algorithm still matches;
        # a key that changed since its batch was read is the next run's).
        source_now = source.versions_of([cid for cid in map(client_id_of, candidates) if cid is not None])
        for i in range(0, len(candidates), self.batch):
            chunk = candidates[i : i + self.batch]
            now = cache_read(self.redis, chunk)
            for key, have in zip(chunk, now, strict=True):
                version = source_now.get(client_id_of(key) or 0)
                if version is None or have.value is None or have.version != version:
                    self._pend({key})
                    continue
                versions[key] = version
            expected = [Expected(key, versions[key]) for key in chunk if key in versions]
            again = [have for key, have in zip(chunk, now, strict=True) if key in versions]
            self.problems += cc.batch_compare(expected, again, algorithm=self.topic.hash_algorithm)
        for found in self._scan():
            extra = [k for k in found if k not in held]
            if not extra:
                continue
            cached = cache_read(self.redis, extra)
            kept = [(k, c) for k, c in zip(extra, cached, strict=True) if not c.topic or c.topic == name]
            self._compare([Expected(k, 0, present=False) for k, _ in kept], [c for _, c in kept], remember=False)
        # Added to the source after the stream passed its id: judged by the next run.
        late = [p for p in self.problems if p.kind == cc.UNEXPECTED and (client_id_of(p.key) or 0) > 0]
        if late:
            now_held = source.versions_of([client_id_of(p.key) or 0 for p in late])
            self._pend({p.key for p in late if client_id_of(p.key) in now_held})
        self._unpublished_absent()

    def sql_digest(self) -> bool:
        """The whole SQL source by bucket digests (core.redis_keys): the source's (key,
        version) summed per bucket in one pass, against the digests the cache's writer keeps
        in the same script call as each write; only the keys of buckets that differ are
        read and judged as sql_full judges them (values against the published hashes
        included). A bucket whose Redis keys the source does not explain is looked up by
        one SCAN of record names (the keys the source no longer holds). Problems are read
        again after CACHE_DIGEST_RECHECK_MS: a key that moved meanwhile is in flight.
        False, nothing done, when the digests do not cover every record yet."""
        if not digests_complete(self.redis):
            return False
        self.reference, self.keys_how = SqlSource.name, "way source, scope clients, source ods"
        self.whole, self.used = True, DIGEST
        source = SqlSource()
        ids, versions, buckets, expected_sums = self._source_digests(source)
        with self._timed("digests"):
            held = bucket_digests(self.redis)
        differing = {
            b for b in expected_sums.keys() | held.keys() if expected_sums.get(b, 0) % DIGEST_MOD != held.get(b, 0)
        }
        self.digests = {"buckets": len(expected_sums.keys() | held.keys()), "differing": len(differing)}
        self.checked = len(ids)  # every key of the source was compared, by its bucket
        drilled = [Expected(record_key(ids[i]), versions[i]) for i in range(len(ids)) if buckets[i] in differing]
        known: dict[int, int] = {}  # per differing bucket: the digest of the Redis records read
        name = self.topic.name
        for i in range(0, len(drilled), self.batch):
            expected = drilled[i : i + self.batch]
            with self._timed("redis"):
                cached = cache_read(self.redis, [e.key for e in expected])
            self._drill(expected, cached, known, name)
        drilled_keys = {e.key for e in drilled}
        # A standing finding is judged by reading its key, whatever its bucket says: a change
        # behind the writer's back (found by the scrub or a key-by-key run) leaves the digests
        # equal, so an equal bucket does not prove such a key fixed.
        standing = sorted(_standing_keys(self.topic) - drilled_keys)
        self._standing_read(source, standing, known, name)
        drilled_keys.update(standing)
        unexplained = {b for b in differing if known.get(b, 0) % DIGEST_MOD != held.get(b, 0)}
        extra_keys = self._extras(unexplained, drilled_keys, known, name) if unexplained else 0
        # Late additions, as sql_full: a key added after the pass read its id is the next run's.
        late = [p for p in self.problems if p.kind == cc.UNEXPECTED and (client_id_of(p.key) or 0) > 0]
        if late:
            now_held = source.versions_of([client_id_of(p.key) or 0 for p in late])
            self._pend({p.key for p in late if client_id_of(p.key) in now_held})
        self._recheck(source)
        self._unpublished_absent()
        self.digests.update(
            keys_read=len(drilled) + len(standing) + extra_keys,
            # Buckets whose digest is not the sum of the records Redis holds: changed behind the
            # writer's back (the scrub, kafkacache.services.cache_scrub, rebuilds them).
            stale=sum(1 for b in differing if known.get(b, 0) % DIGEST_MOD != held.get(b, 0)),
        )
        return True

    def _source_digests(self, source: SqlSource) -> tuple[array, array, array, dict[int, int]]:
        """The source's client ids, versions and buckets (compact arrays: ten million keys in a
        few hundred MB), and its digest per bucket, in one streamed pass of one snapshot."""
        ids, versions, buckets = array("q"), array("q"), array("q")
        sums: dict[int, int] = {}
        batches = source.versions_all(batch=self.batch)
        while True:
            with self._timed("source"):
                rows = next(batches, None)
            if rows is None:
                return ids, versions, buckets, sums
            with self._timed("source_digests"):
                for cid, version in rows:
                    key = record_key(cid)
                    bucket = bucket_of(key)
                    sums[bucket] = sums.get(bucket, 0) + digest_share(key, version)
                    ids.append(cid)
                    versions.append(version)
                    buckets.append(bucket)

    def _standing_read(self, source: SqlSource, keys: list[str], known: dict[int, int], name: str) -> None:
        """These keys (of standing findings) read and judged against the source, one batch at a time."""
        for i in range(0, len(keys), self.batch):
            chunk = keys[i : i + self.batch]
            expected = _source_expected(source, chunk)
            with self._timed("redis"):
                cached = cache_read(self.redis, chunk)
            self._drill(expected, cached, known, name)

    def _extras(self, unexplained: set[int], drilled: set[str], known: dict[int, int], name: str) -> int:
        """The records of these buckets the source does not hold (one SCAN of record names),
        judged as unexpected; answers how many were read."""
        read = 0
        for found in self._scan():
            extra = [k for k in found if k not in drilled and bucket_of(k) in unexplained]
            if extra:
                read += len(extra)
                self._drill([Expected(k, 0, present=False) for k in extra], cache_read(self.redis, extra), known, name)
        return read

    def _drill(self, expected: list[Expected], cached: list[Cached], known: dict[int, int], name: str) -> None:
        """Judge keys of differing buckets, and sum the records read into `known` (every
        topic's: a bucket's digest covers them all)."""
        for e, c in zip(expected, cached, strict=True):
            if c.value is not None:
                bucket = bucket_of(e.key)
                known[bucket] = known.get(bucket, 0) + digest_share(e.key, c.version)
        mine = [(e, c) for e, c in zip(expected, cached, strict=True) if not c.topic or c.topic == name]
        self.other_topic += len(expected) - len(mine)
        checked = self.checked
        with self._timed("compare"):
            self._compare([e for e, _ in mine], [c for _, c in mine], remember=False)
        self.checked = checked  # already counted by the pass

    def _recheck(self, source: SqlSource) -> None:
        """Read the problems' keys again after a pause: one whose source version or cached
        record moved meanwhile is in flight (a change on its way through the feed, or a write
        between the source's snapshot and the read of the digests), judged by the next run;
        the others stand."""
        if not self.problems:
            return
        if settings.CACHE_DIGEST_RECHECK_MS > 0:
            _pause(settings.CACHE_DIGEST_RECHECK_MS / 1000)
        first = {p.key: p for p in self.problems}
        keys = list(first)
        moved: set[str] = set()
        for i in range(0, len(keys), self.batch):
            chunk = keys[i : i + self.batch]
            held = source.versions_of([cid for cid in map(client_id_of, chunk) if cid is not None])
            for key, now in zip(chunk, cache_read(self.redis, chunk), strict=True):
                p = first[key]
                version = held.get(client_id_of(key) or 0)
                was = p.expected.version if p.expected.present else None
                if (
                    (version != was and not (was is None and version is None))
                    or (now.value is None) != (p.cached.value is None)
                    or now.version != p.cached.version
                ):
                    moved.add(key)
        self._pend(moved)

    def _source_batches(self, source: SqlSource, held: set[str]) -> Iterator[tuple[list[Expected], list[Cached]]]:
        """The source's versions in keyset batches, each with what Redis holds. Reads of the
        next batches are sent before this one is yielded (READS_IN_FLIGHT, each on its own
        connection): Redis works on them while the caller compares this one, and a Redis
        busy with other clients serves one command per connection per turn."""
        sent: deque[tuple[list[Expected], SentRead]] = deque()
        after, more = 0, True
        try:
            while more or sent:
                while more and len(sent) < READS_IN_FLIGHT:
                    with self._timed("source"):
                        rows = source.versions(after=after, limit=self.batch)
                    if not rows:
                        more = False
                        break
                    after = rows[-1][0]
                    upcoming = [Expected(record_key(cid), version) for cid, version in rows]
                    held.update(e.key for e in upcoming)
                    sent.append((upcoming, cache_read_send(self.redis, [e.key for e in upcoming])))
                if sent:
                    expected, read = sent.popleft()
                    with self._timed("redis"):
                        cached = cache_read_wait(self.redis, read)
                    yield expected, cached
        finally:
            for _, read in sent:  # a run that failed midway: replies never read, connections dropped
                cache_read_discard(self.redis, read)

    def _scan(self) -> Iterator[list[str]]:
        scan = record_keys_scan(self.redis, count=self.batch)
        while True:
            with self._timed("scan"):
                page = next(scan, None)
            if page is None:
                return
            if page[1]:
                yield page[1]

    def _unpublished_absent(self) -> None:
        """An absent key belongs to the topic that last published it; one nobody published, to
        the bulk topics (a bulk load is what fills the cache from the source)."""
        absent = [p.key for p in self.problems if p.kind == cc.ABSENT]
        owner: dict[str, int] = {}
        topics = list(Topic.objects.values_list("pk", flat=True))
        for i in range(0, len(absent), self.batch):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT DISTINCT ON (key) key, topic_id FROM recon_publishedmessage"
                    " WHERE topic_id = ANY(%s) AND key = ANY(%s) ORDER BY key, published_at DESC",
                    [topics, absent[i : i + self.batch]],
                )
                owner.update(cursor.fetchall())
        theirs = {
            key
            for key in absent
            if (owner[key] != self.topic.pk if key in owner else self.topic.kind == Topic.Kind.CHANGE)
        }
        if theirs:
            self.other_topic += len(theirs)
            self.checked -= len(theirs)
            self.problems = [p for p in self.problems if not (p.kind == cc.ABSENT and p.key in theirs)]

    def sql_keys(self, keys: list[str]) -> None:
        """These keys against the SQL source (a key the source does not hold should be absent)."""
        self.reference, self.keys_how = SqlSource.name, "way source, scope clients, source ods"
        source = SqlSource()
        for i in range(0, len(keys), self.batch):
            chunk = keys[i : i + self.batch]
            self._compare(_source_expected(source, chunk), cache_read(self.redis, chunk), remember=True)

    def ledger(self, *, scope: str, params: list[Any], reference: str) -> None:
        """The publish ledger's latest message per key of the scope (delivered or not)."""
        self.reference, self.newer_is_fine, self.whole = reference, True, scope == "topic"
        if scope == "load":
            self.keys_how = f"way source, scope load {params[0]}"
        else:
            self.keys_how = "way source, scope clients, with the source the key came from"
        for expected in cc.ledger_expected(topic_id=self.topic.pk, scope=scope, params=params, batch=self.batch):
            self._compare(expected, cache_read(self.redis, [e.key for e in expected]), remember=not self.whole)

    def _pend(self, keys: set[str]) -> None:
        self.pending |= keys
        self.problems = [p for p in self.problems if p.key not in keys]

    def settle(self) -> list[Problem]:
        """The problems, less those whose fix is published and still within the latency limit."""
        waiting = {cc.STALE, cc.ABSENT, cc.UNEXPECTED}
        candidates = [p for p in self.problems if p.kind in waiting]
        since = self.now - dt.timedelta(seconds=self.topic.latency_limit_seconds)
        coming: dict[str, int] = {}
        topic_ids = list(Topic.objects.values_list("pk", flat=True)) if candidates else []
        for i in range(0, len(candidates), self.batch):
            keys = [p.key for p in candidates[i : i + self.batch]]
            coming.update(cc.in_flight(keys, since=since, topic_ids=topic_ids))
        self._pend(
            {
                p.key
                for p in candidates
                if p.key in coming
                and coming[p.key] >= (p.cached.version + 1 if p.kind == cc.UNEXPECTED else p.expected.version)
            }
        )
        self.keys_checked -= self.pending
        return self.problems


def _source_expected(source: SqlSource, keys: Sequence[str]) -> list[Expected]:
    """What the SQL source says each of these keys should hold: its record at its version, or
    nothing (a key the source does not hold)."""
    held = source.versions_of([cid for cid in map(client_id_of, keys) if cid is not None])
    return [Expected(k, held[cid]) if (cid := client_id_of(k)) in held else Expected(k, 0, present=False) for k in keys]


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _last_load(topic: Topic) -> Load | None:
    if topic.kind == Topic.Kind.CHANGE:
        return None  # the change feed reads the SQL source
    return Load.objects.filter(topic=topic).exclude(status=Load.Status.QUEUED).order_by("-created_at").first()


def _load_keys(load: Load) -> list[str]:
    """Every key a load published (delivered or not)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT key FROM recon_publishedmessage WHERE load_id = %s ORDER BY 1", [load.pk])
        return [row[0] for row in cursor.fetchall()]


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


def _detail(p: Problem, topic: Topic, leg: _Leg) -> dict:
    cached, want = p.cached, p.expected
    detail: dict[str, Any] = {
        "problem": p.kind,
        "key": p.key,
        "reference": leg.reference,
        "source_version": want.version if want.present else None,
        "cached_version": cached.version if cached.value is not None else None,
    }
    if not want.present and want.version:
        detail["deleted_version"] = want.version
    if cached.uuid:
        detail["cached_uuid"] = cached.uuid
    if cached.topic:
        detail["cached_topic"] = cached.topic
    if cached.tombstone:
        detail["tombstone_version"] = cached.tombstone
    if p.kind == cc.DIFFERS and cached.value is not None:
        detail["cached_hash"] = content_hash(cached.value, topic.hash_algorithm).hex()
        detail["published_hash"] = p.published_hash.hex() if p.published_hash else None
    if p.kind == cc.ABSENT and cached.tombstone > want.version:
        detail["note"] = "deleted in the cache at a newer version than the source holds: a replay is refused as older"
    detail["fix"] = _FIX[p.kind].format(how=f"{leg.keys_how}, key {p.key}", version=want.version)
    return detail


def _standing_keys(topic: Topic) -> set[str]:
    return set(
        Finding.objects.filter(
            topic=topic,
            category=Finding.Category.CACHE,
            status__in=(Finding.Status.OPEN, Finding.Status.ACKNOWLEDGED),
            detail__source=SOURCE,
        ).values_list("key", flat=True)
    )


def _fixed_by(topic: Topic, keys: set[str]) -> dict[str, dict]:
    """What fixed each of these keys: the topic's latest message of it, and the replay that published it."""
    if not keys:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (key) key, uuid FROM recon_publishedmessage WHERE topic_id = %s AND key = ANY(%s)"
            " ORDER BY key, source_version DESC NULLS LAST, published_at DESC",
            [topic.pk, list(keys)],
        )
        latest = dict(cursor.fetchall())
    replays = dict(ReplayItem.objects.filter(uuid__in=list(latest.values())).values_list("uuid", "replay_id"))
    out = {}
    for key in keys:
        message = latest.get(key)
        if message is not None and message in replays:
            out[key] = {"resolved_by": "replay", "replay": str(replays[message]), "replay_uuid": str(message)}
        else:
            out[key] = {"resolved_by": SOURCE, **({"fixed_by_uuid": str(message)} if message else {})}
    return out


def replay_keys(replay_id: str | uuid.UUID) -> Iterator[str]:
    """The record keys a replay touched (the cache leg after a replay checks these)."""
    yield from ReplayItem.objects.filter(replay_id=replay_id).exclude(key="").values_list("key", flat=True).distinct()


def replay_cache_check(
    *, replay: Replay, trigger: str = "replay", requested_by=None, run: ReconRun | None = None
) -> ReconRun:
    """The cache leg of the keys a replay touched: against the SQL source when the replay
    re-read it (way SOURCE from ods), else against the publish ledger (`run`: as for cache_check)."""
    keys = sorted(replay_keys(replay.pk))
    from_sql = replay.way == Replay.Way.RESTORE or (
        replay.way == Replay.Way.SOURCE and replay.target.get("source", "ods") == "ods"
    )
    load = Load.objects.filter(pk=replay.target.get("load")).first() if replay.scope == Replay.Scope.LOAD else None
    if load is not None:
        from_sql = replay.way == Replay.Way.SOURCE and load.source == "ods"
    return cache_check(
        topic=replay.topic,
        keys=keys,
        keys_source="ods" if from_sql else None,
        trigger=trigger,
        requested_by=requested_by,
        run=run,
    )
