"""Reconcile a window of 1,000,000 messages: clean, and with ~1% discrepancies.

    DATABASE_URL=postgres://.../kafkacache_bench .venv/bin/python bench/recon_window.py [--messages N]

Writes both ledgers through recon.services.ledger (COPY, the feed's own path) into a
dated partition far in the future (2099), measures, then drops those partitions.
Baseline, measured in the same run: a plain COUNT(*) of each ledger over the
window, i.e. the cheapest thing that reads the window at all.

Figures printed:
- clean window, scheduler path: counts + digests equal -> MATCHED, no per-UUID work;
- clean window, full set-based compare forced (what a digest mismatch costs);
- 1% discrepancies: compare + findings for each discrepant UUID;
- the same window re-reconciled (idempotent: findings updated, not duplicated).
"""

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A laptop run with DEBUG off and the development keys (config.secrets): never in production.
os.environ.setdefault("KAFKACACHE_ALLOW_DEV_SECRETS", "1")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from bench.cpu import process_seconds  # noqa: E402
from core.hashing import content_hash  # noqa: E402
from recon.engine import window_compare  # noqa: E402
from recon.models import ConsumedMessage, Finding, Topic, Window  # noqa: E402
from recon.services.ledger import ConsumedRow, PublishedRow, consumed_record, published_record  # noqa: E402
from recon.services.partitions import LEDGERS, _partition_create, partition_name  # noqa: E402
from recon.services.windows import window_reconcile  # noqa: E402

DAY = dt.date(2099, 1, 1)
T0 = dt.datetime(2099, 1, 1, 10, 0, tzinfo=dt.UTC)
CHUNK = 50_000


def _timed(label: str, fn):
    began = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - began
    print(f"  {label:<58} {seconds:8.3f} s", flush=True)
    return result, seconds


def _generate(topic: Topic, n: int, *, faulty: bool) -> dict[str, int]:
    """n messages over the window; with faulty, 1 in 100 gets one of four faults, plus some orphans."""
    span_ms = 3_600_000 - 1
    faults = {"missing": 0, "altered": 0, "duplicate": 0, "delayed": 0, "orphan": 0}
    kinds = ("missing", "altered", "duplicate", "delayed")
    for base in range(0, n, CHUNK):
        published, consumed = [], []
        for i in range(base, min(n, base + CHUNK)):
            message_uuid = uuid.uuid4()
            at = T0 + dt.timedelta(milliseconds=i * span_ms // n)
            digest = content_hash(message_uuid.bytes + b"value", topic.hash_algorithm)
            published.append(PublishedRow(message_uuid, i % 6, i, f"client:{i}", "bulk", digest, 600, at))
            fault = kinds[(i // 100) % 4] if faulty and i % 100 == 7 else None
            if fault == "missing":
                faults["missing"] += 1
                continue
            consumed_hash = content_hash(b"tampered" + message_uuid.bytes) if fault == "altered" else digest
            delay = dt.timedelta(seconds=120 if fault == "delayed" else 0.05)
            row = ConsumedRow(message_uuid, "g", i % 6, i, f"client:{i}", consumed_hash, at, at + delay, "stored")
            consumed.append(row)
            if fault == "duplicate":
                # a real second copy: another offset (the same offset again is a redelivery)
                consumed.append(
                    row._replace(offset=row.offset + 10**8, consumed_at=row.consumed_at + dt.timedelta(seconds=1))
                )
            if fault:
                faults[fault] += 1
        if faulty and base == 0:
            for j in range(100):
                orphan = uuid.uuid4()
                consumed.append(ConsumedRow(orphan, "g", 0, 10**9 + j, f"stray:{j}", b"\x01" * 16, T0, T0, "stored"))
                faults["orphan"] += 1
        published_record(topic=topic, rows=published)
        consumed_record(topic=topic, rows=consumed)
    return faults


def _insert_cost(topic: Topic, n: int, batch: int = 100) -> tuple[float, float]:
    """The consume ledger's insert as the consumer makes it (consumed_record, 100 rows a
    statement): wall and PostgreSQL backend CPU, microseconds a row."""
    rows = [
        ConsumedRow(uuid.uuid4(), "g", i % 6, i, f"ins:{i}", b"\x02" * 16, at, at, "stored")
        for i, at in ((i, T0 + dt.timedelta(milliseconds=i)) for i in range(n))
    ]
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    cpu, started = process_seconds(backend), time.perf_counter()
    for i in range(0, n, batch):
        consumed_record(topic=topic, rows=rows[i : i + batch])
    wall = time.perf_counter() - started
    return wall * 1e6 / n, (process_seconds(backend) - cpu) * 1e6 / n


def _lookups(topic: Topic, n: int) -> tuple[float, float]:
    """The reads the consume ledger's indexes serve: the latest delivery of 10,000 keys (the
    key index; seconds), and the per-message drill-down by UUID (ms a lookup, 200 of them)."""
    keys = [f"client:{i}" for i in range(0, n, max(1, n // 10_000))][:10_000]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (key) key, uuid FROM recon_consumedmessage WHERE key = ANY(%s)"
            " ORDER BY key, published_at DESC, id DESC",
            [keys],
        )
        latest = cursor.fetchall()
    leg = time.perf_counter() - started
    assert len(latest) == len(keys), (len(latest), len(keys))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT uuid FROM recon_consumedmessage WHERE topic_id = %s ORDER BY published_at LIMIT 200", [topic.pk]
        )
        uuids = [row[0] for row in cursor.fetchall()]
    started = time.perf_counter()
    for message_uuid in uuids:
        assert list(ConsumedMessage.objects.filter(uuid=message_uuid).order_by("consumed_at", "id"))
    return leg, (time.perf_counter() - started) * 1000 / len(uuids)


def _in_transaction(fn):
    with transaction.atomic():  # as window_reconcile runs it (its work_mem is transaction-local)
        return fn()


def _baseline(window: Window) -> None:
    with connection.cursor() as cursor:
        for table in LEDGERS:
            cursor.execute(
                f"SELECT count(*) FROM {table} WHERE topic_id = %s AND published_at >= %s AND published_at < %s",
                [window.topic_id, window.start, window.end],
            )
            cursor.fetchone()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="leave the bench data in place (to EXPLAIN it)")
    parser.add_argument("--json", help="also write the figures to this file (bench/run.py reads it)")
    args = parser.parse_args()
    n = args.messages
    call_command("migrate", verbosity=0)
    name = f"bench-{uuid.uuid4().hex[:6]}"
    print(f"recon window bench: {n:,} messages per window, database {connection.settings_dict['NAME']}")
    with transaction.atomic(), connection.cursor() as cursor:
        for table in LEDGERS:
            cursor.execute("SELECT to_regclass(%s)", [partition_name(table, DAY)])
            if cursor.fetchone()[0] is None:
                _partition_create(cursor, table, DAY)
    clean_topic = Topic.objects.create(name=f"{name}-clean", consumer_group="g", window_seconds=3600)
    faulty_topic = Topic.objects.create(name=f"{name}-faulty", consumer_group="g", window_seconds=3600)
    topics = [clean_topic, faulty_topic]
    try:
        print("generate (both ledgers via recon.services.ledger COPY, windows kept by UPSERT):")
        _, gen_clean = _timed(
            f"clean window, {n:,} published + consumed", lambda: _generate(clean_topic, n, faulty=False)
        )
        faults, gen_faulty = _timed(
            f"faulty window, {n:,} published + consumed", lambda: _generate(faulty_topic, n, faulty=True)
        )
        print(f"  injected: {faults} ({sum(faults.values()):,} discrepant UUIDs)")
        _timed(
            "ANALYZE both ledgers",
            lambda: connection.cursor().execute("ANALYZE recon_publishedmessage; ANALYZE recon_consumedmessage"),
        )
        insert_topic = Topic.objects.create(name=f"{name}-insert", consumer_group="g", window_seconds=3600)
        topics.append(insert_topic)
        t = _measure(clean_topic, faulty_topic, insert_topic, n)
        t["ledger_rows_per_s"] = 4 * n / (gen_clean + gen_faulty)
        _results(clean_topic, faulty_topic, faults, t)
        if args.json:
            Path(args.json).write_text(json.dumps(_figures(n, faults, t)))
    finally:
        if args.keep:
            print(f"kept: topics {clean_topic.pk} (clean) and {faulty_topic.pk} (faulty), partitions of {DAY}")
        else:
            _cleanup(*topics)


def _measure(clean_topic: Topic, faulty_topic: Topic, insert_topic: Topic, n: int) -> dict:
    """Each reconcile timed against the baseline count, then the cache leg, drill-down and
    consume-ledger insert; answers the seconds (and the forced compare) by name."""
    later = T0 + dt.timedelta(days=1)
    clean = Window.objects.get(topic=clean_topic)
    faulty = Window.objects.get(topic=faulty_topic)
    print("measure:")
    _baseline(clean)  # warm the cache like the runs below will be
    t: dict = {}
    _, t["base"] = _timed("baseline: COUNT(*) of both ledgers over the window", lambda: _baseline(clean))
    _, t["fast"] = _timed(
        "clean window reconcile (counts + digests -> MATCHED)",
        lambda: window_reconcile(window_id=clean.pk, now=later),
    )
    t["comparison"], t["full"] = _timed(
        "clean window, full set-based compare forced",
        lambda: _in_transaction(lambda: window_compare(window=clean, topic=clean_topic, now=later, cap=200_000)),
    )
    _, t["slow"] = _timed(
        "1% window reconcile (compare + findings)", lambda: window_reconcile(window_id=faulty.pk, now=later)
    )
    _, t["again"] = _timed(
        "1% window re-reconciled (findings updated in place)",
        lambda: window_reconcile(window_id=faulty.pk, now=later),
    )
    (t["leg"], t["by_uuid"]), _ = _timed(
        "cache leg (10,000 keys) and drill-down (200 UUIDs)", lambda: _lookups(clean_topic, n)
    )
    (t["insert_wall"], t["insert_server"]), _ = _timed(
        "consume ledger insert, 100 rows a statement", lambda: _insert_cost(insert_topic, min(n, 50_000))
    )
    print(f"  cache leg {t['leg']:.3f} s for 10,000 keys; drill-down {t['by_uuid']:.2f} ms a UUID")
    print(f"  consume ledger insert: {t['insert_wall']:.1f} us a row, of it {t['insert_server']:.1f} us PostgreSQL CPU")
    return t


def _results(clean_topic: Topic, faulty_topic: Topic, faults: dict, t: dict) -> None:
    """The verdicts checked (the clean window matched, the faulty one found exactly what was
    injected) and printed with the ratios to the baseline."""
    clean = Window.objects.get(topic=clean_topic)
    faulty = Window.objects.get(topic=faulty_topic)
    found = dict(faulty.summary["findings"])
    assert clean.status == "matched" and not t["comparison"].drafts, "clean window not clean"
    assert faulty.status == "discrepant"
    assert found == {k: v for k, v in faults.items() if v}, (found, faults)
    assert Finding.objects.filter(window=faulty).count() == sum(faults.values())
    base, fast, full, slow, again = t["base"], t["fast"], t["full"], t["slow"], t["again"]
    print("results:")
    print(f"  clean window:  {clean.status}, summary {clean.summary['findings'] or 'no findings'}")
    print(f"  faulty window: {faulty.status}, findings {found}")
    print(f"  ledger write throughput: {t['ledger_rows_per_s']:,.0f} rows/s (both sides, both windows)")
    print(
        f"  ratio to baseline: fast path {fast / base:.2f}x, full compare {full / base:.1f}x, "
        f"1% discrepancies {slow / base:.1f}x, re-run {again / base:.1f}x"
    )
    print(
        f"  target < 20 s for 1,000,000: {'met' if max(fast, slow, full) < 20 else 'MISSED'} "
        f"(worst {max(fast, slow, full):.2f} s)"
    )


def _figures(n: int, faults: dict, t: dict) -> dict:
    """The figures bench/run.py reads (--json)."""
    return {
        "messages": n,
        "baseline_count_s": round(t["base"], 4),
        "clean_fast_path_s": round(t["fast"], 4),
        "clean_full_compare_s": round(t["full"], 4),
        "discrepant_1pct_s": round(t["slow"], 4),
        "rerun_s": round(t["again"], 4),
        "findings": sum(faults.values()),
        "ledger_rows_per_s": round(t["ledger_rows_per_s"]),
        "cache_leg_10k_keys_s": round(t["leg"], 4),
        "drill_down_uuid_ms": round(t["by_uuid"], 3),
        "consumed_insert_us_per_row": round(t["insert_wall"], 2),
        "consumed_insert_server_us_per_row": round(t["insert_server"], 2),
    }


def _cleanup(*topics: Topic) -> None:
    Finding.objects.filter(topic__in=topics).delete()
    with connection.cursor() as cursor:
        for table in LEDGERS:
            cursor.execute(f"DROP TABLE IF EXISTS {partition_name(table, DAY)}")
    Window.objects.filter(topic__in=topics).delete()
    for topic in topics:
        topic.runs.all().delete()
        topic.delete()


if __name__ == "__main__":
    main()
