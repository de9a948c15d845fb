"""The cache leg against the whole SQL source: 1,000,000 keys, with injected divergences.

    .venv/bin/python bench/cache_leg.py [--keys 1000000] [--inject 300]

Seeds --keys clients into schema `ods` of the source database (COPY, core.ods;
the schema is recreated: use a bench database), writes the matching Redis records
through the cache's writer (kafkacache.cache, batches of BATCH, with their source
version and topic) and their publish-ledger rows (COPY, in a partition of 2099, dropped
at the end), injects --inject divergences of each kind (tests.cache_state: behind the
writer's back), runs the leg (recon.services.cache_check, the whole source: keyset stream +
pipelined Redis + SCAN) key by key, then by bucket digests before and after one whole pass of
the rolling scrub (kafkacache.services.cache_scrub), and prints each one's time, keys per
second and findings per kind. It asserts that the key-by-key leg, and the digest leg with the
scrub, find every injected divergence and nothing else. The Redis database of REDIS_URL has its
kc:* keys removed before and after.

The suite runs a small version (tests/bench/test_cache_leg.py).
"""

import argparse
import datetime as dt
import os
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

DAY = dt.date(2099, 1, 1)
T0 = dt.datetime(2099, 1, 1, 10, 0, tzinfo=dt.UTC)
BATCH = 10_000
PAD = b"x" * 360  # a cached value about the size of a real record's Avro bytes


def _value(client_id: int, version: int) -> bytes:
    return b"%d:%d:" % (client_id, version) + PAD


def _redis_write(client, rows: list[tuple[str, bytes, str, int, int]], topic_name: str) -> None:
    """Records as the feed writes them: bulk puts through the cache's one writer, BATCH per script
    call, sent the consume loop's way (packed by hiredis)."""
    # Django is set up by main() (or the suite) before this runs: project modules need the app registry.
    from kafkacache.cache import CacheOp, cache_apply_send, cache_apply_wait

    for i in range(0, len(rows), BATCH):
        ops = [
            CacheOp("bulk", key, sv, value, u, 1, created_ms=t, topic=topic_name)
            for key, value, u, sv, t in rows[i : i + BATCH]
        ]
        cache_apply_wait(client, cache_apply_send(client, ops))


def bench_run(*, keys: int, inject: int, seed: int = 12, runs: int = 1) -> dict:
    """Seed, inject, run the leg; answers the figures and what was injected and found."""
    # Django is set up by main() (or the suite) before this runs: project modules need the app registry.
    from django.db import connection

    from core.clients import redis_client
    from recon.models import Topic
    from recon.services.partitions import LEDGERS, partition_name
    from tests.cache_state import cache_clear

    rng = random.Random(seed)
    redis = redis_client()
    cache_clear(redis)
    figures: dict = {"keys": keys, "inject_per_kind": inject}

    began = time.perf_counter()
    versions = _ods_seed(keys)
    figures["seed_ods_seconds"] = round(time.perf_counter() - began, 1)
    topic = Topic.objects.create(
        name=f"bench.cache-leg-{uuid.uuid4().hex[:8]}", kind=Topic.Kind.BULK, consumer_group="bench"
    )
    _ledger_partitions_ensure()
    began = time.perf_counter()
    _cache_and_ledger_seed(redis, topic, versions)
    figures["seed_cache_and_ledger_seconds"] = round(time.perf_counter() - began, 1)
    injected = _divergences_inject(redis, rng, keys=keys, inject=inject)
    try:
        figures.update(_leg_runs(topic, runs=runs, injected=injected))
        figures.update(_digest_runs(topic, injected=injected))
    finally:
        cache_clear(redis)
        with connection.cursor() as cursor:
            for table in LEDGERS:
                cursor.execute(f"DROP TABLE IF EXISTS {partition_name(table, DAY)}")
        topic.delete()
    return figures


def _ods_seed(keys: int) -> list[tuple[int, int]]:
    """`keys` clients in schema `ods` of the source; answers their (client id, row version)."""
    # Django is set up by main() (or the suite) before this runs: project modules need the app registry.
    from django.db import connections

    from core.ods import ods_write
    from core.sources import source_alias

    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ods_write(
        [(i, f"Client {i}", None, "retail", "active", "DE", at) for i in range(1, keys + 1)],
        [],
        [],
        using=source_alias(),
    )
    with connections[source_alias()].cursor() as cursor:
        cursor.execute("SELECT client_id, row_version FROM ods.clients ORDER BY client_id")
        return cursor.fetchall()


def _ledger_partitions_ensure() -> None:
    """The ledgers' partitions of DAY (dropped at the end of the run)."""
    # Django is set up by main() (or the suite) before this runs: project modules need the app registry.
    from django.db import connection, transaction

    from recon.services.partitions import LEDGERS, _partition_create, partition_name

    with transaction.atomic(), connection.cursor() as cursor:
        for table in LEDGERS:
            cursor.execute("SELECT to_regclass(%s)", [partition_name(table, DAY)])
            if cursor.fetchone()[0] is None:
                _partition_create(cursor, table, DAY)


def _cache_and_ledger_seed(redis, topic, versions: list[tuple[int, int]]) -> None:
    """The matching cached records (through the cache's writer) and publish-ledger rows,
    50,000 at a time: a million values do not sit in memory."""
    # Django is set up by main() (or the suite) before this runs: project modules need the app registry.
    from core.hashing import content_hash
    from recon.services.ledger import PublishedRow, published_record

    for start in range(0, len(versions), 50_000):
        cache_rows, ledger_rows = [], []
        for n, (cid, version) in enumerate(versions[start : start + 50_000], start=start):
            key, message, value = f"client:{cid}", uuid.uuid4(), _value(cid, version)
            at = T0 + dt.timedelta(microseconds=n)
            cache_rows.append((key, value, str(message), version, int(at.timestamp() * 1000)))
            ledger_rows.append(
                PublishedRow(
                    message,
                    cid % 6,
                    n,
                    key,
                    "bulk",
                    content_hash(value, topic.hash_algorithm),
                    len(value),
                    at,
                    source_version=version,
                )
            )
        published_record(topic=topic, rows=ledger_rows)
        _redis_write(redis, cache_rows, topic.name)
    from kafkacache.cache import digests_mark_complete  # the app registry is set up by now, as above

    digests_mark_complete(redis)  # every record came through the writer, into an empty cache


def _divergences_inject(redis, rng: random.Random, *, keys: int, inject: int) -> dict[str, list[str]]:
    """`inject` divergences of each kind, each kind on its own clients; answers their keys by kind."""
    # Django is set up by main() (or the suite) before this runs: project modules need the app registry.
    from django.db import connections

    from core.sources import source_alias
    from tests.cache_state import record_forge, records_drop

    chosen = rng.sample(range(1, keys + 1), 4 * inject)
    stale, absent, unexpected, differs = (sorted(chosen[k * inject : (k + 1) * inject]) for k in range(4))
    with connections[source_alias()].cursor() as cursor:
        cursor.execute("UPDATE ods.clients SET name = name || ' (moved)' WHERE client_id = ANY(%s)", [stale])
        cursor.execute("DELETE FROM ods.clients WHERE client_id = ANY(%s)", [unexpected])
    records_drop(redis, [f"client:{i}" for i in absent])
    record_forge(redis, [f"client:{i}" for i in differs], value=b"tampered:" + PAD)
    return {
        "stale": [f"client:{i}" for i in stale],
        "absent": [f"client:{i}" for i in absent],
        "unexpected": [f"client:{i}" for i in unexpected],
        "differs": [f"client:{i}" for i in differs],
    }


def _leg_runs(topic, *, runs: int, injected: dict[str, list[str]]) -> dict:
    """The leg `runs` times on the same data (the findings are kept, not added again); the
    fastest run's figures. Asserts every injected divergence is found, and nothing else."""
    # Django is set up by main() (or the suite) before this runs: project modules need the app registry.
    from recon.services.cache_check import cache_check

    each = []
    for _ in range(runs):
        began, cpu = time.perf_counter(), time.process_time()
        run = cache_check(topic=topic, now=T0 + dt.timedelta(days=1), trigger="bench", method="keys")
        each.append((time.perf_counter() - began, time.process_time() - cpu, run.report, os.getloadavg()[0]))
    seconds, cpu, report, load = min(each, key=lambda e: e[0])
    found = {kind: sorted(entry["keys"]) for kind, entry in report["problems"].items()}
    counts = {kind: entry["count"] for kind, entry in report["problems"].items()}
    assert counts == {kind: len(v) for kind, v in injected.items()}, counts
    if max(counts.values()) <= 1000:  # the report lists up to 1000 keys per kind
        assert found == {kind: sorted(v) for kind, v in injected.items()}
    return {
        "runs_seconds": [round(e[0], 1) for e in each],
        "timings": report["timings"],
        "leg_seconds": round(seconds, 2),
        "leg_cpu_seconds": round(cpu, 2),  # this process only (PostgreSQL and Redis work apart)
        "load_average": load,
        "keys_per_second": round(report["checked"] / seconds),
        "checked": report["checked"],
        "findings": counts,
        "findings_stored": each[0][2]["findings"],
    }


def _digest_runs(topic, *, injected: dict[str, list[str]]) -> dict:
    """The digest leg, then one whole scrub pass, then the digest leg again; asserts that each
    finds exactly what was injected."""
    # Django is set up by main() (or the suite) before this runs: project modules need the app registry.
    from django.conf import settings

    from core.cache_records import SLOTS
    from kafkacache.services.cache_scrub import cache_scrub_slice
    from recon.services.cache_check import cache_check

    later = T0 + dt.timedelta(days=1)
    out: dict = {}
    saved, settings.CACHE_DIGEST_RECHECK_MS = settings.CACHE_DIGEST_RECHECK_MS, 0  # nothing is in flight here
    try:
        for name, before_scrub in (("digest_before_scrub", True), ("digest_after_scrub", False)):
            if not before_scrub:
                began, cpu = time.perf_counter(), time.process_time()
                scrub = cache_scrub_slice(slots=SLOTS)
                seconds = time.perf_counter() - began
                out["scrub"] = {
                    "seconds": round(seconds, 2),
                    "cpu_seconds": round(time.process_time() - cpu, 2),
                    "keys_read": scrub.keys_read,
                    "keys_per_second": round(scrub.keys_read / seconds),
                    "buckets_repaired": scrub.buckets_repaired,
                    "values_differ": scrub.values_differ,
                }
            began, cpu = time.perf_counter(), time.process_time()
            report = cache_check(topic=topic, now=later, trigger="bench", method="digest").report
            seconds = time.perf_counter() - began
            assert report["method"] == "digest", report.get("method")
            out[name] = {
                "seconds": round(seconds, 2),
                "cpu_seconds": round(time.process_time() - cpu, 2),
                "keys_per_second": round(report["checked"] / seconds),
                "digests": report["digests"],
                "timings": report["timings"],
                "findings": {kind: entry["count"] for kind, entry in report["problems"].items()},
            }
    finally:
        settings.CACHE_DIGEST_RECHECK_MS = saved
    # The key-by-key run before them left a standing finding on every injected key, and a digest
    # leg reads the key of every standing finding: both find all of them, the second with the
    # scrub's rebuilt digests (and the differing values the scrub raised itself).
    for name in ("digest_before_scrub", "digest_after_scrub"):
        found = out[name]["findings"]
        assert found == {kind: len(v) for kind, v in injected.items()}, (name, found)
    assert out["scrub"]["values_differ"] == len(injected["differs"]), out["scrub"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--inject", type=int, default=300, help="divergences of each kind")
    parser.add_argument("--runs", type=int, default=1, help="leg runs on the same data (the fastest is shown)")
    args = parser.parse_args()
    # Django is set up only here, once DJANGO_SETTINGS_MODULE is in place (above).
    import django

    django.setup()
    # After django.setup(): management commands need the app registry.
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    figures = bench_run(keys=args.keys, inject=args.inject, runs=args.runs)
    print(
        f"cache leg, whole SQL source: {figures['checked']:,} keys in {figures['leg_seconds']} s"
        f" ({figures['keys_per_second']:,} keys/s; {figures['leg_cpu_seconds']} s CPU in this process, machine"
        f" load average {figures['load_average']:.1f}); findings {figures['findings']}"
        f" (every injected one found, nothing else); seeding: ods {figures['seed_ods_seconds']} s,"
        f" cache + ledger {figures['seed_cache_and_ledger_seconds']} s"
    )
    print(f"runs: {figures['runs_seconds']} s; fastest by phase (s): {figures['timings']}")
    for name in ("digest_before_scrub", "digest_after_scrub"):
        leg = figures[name]
        print(
            f"{name.replace('_', ' ')}: {leg['seconds']} s ({leg['keys_per_second']:,} keys/s,"
            f" {leg['cpu_seconds']} s CPU in this process); buckets {leg['digests']}; findings {leg['findings']};"
            f" by phase (s): {leg['timings']}"
        )
    scrub = figures["scrub"]
    print(
        f"scrub, one whole pass: {scrub['keys_read']:,} records in {scrub['seconds']} s ({scrub['keys_per_second']:,}"
        f" keys/s, {scrub['cpu_seconds']} s CPU in this process); buckets repaired {scrub['buckets_repaired']},"
        f" values that differ {scrub['values_differ']}"
    )


if __name__ == "__main__":
    main()
