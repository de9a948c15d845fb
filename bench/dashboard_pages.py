#!/usr/bin/env python
"""Page latency of the dashboard over a ledger of a million messages (or ten).

    .venv/bin/python bench/dashboard_pages.py [--messages 1000000] [--requests 40] [--reuse]

Builds its own database (kafkacache_dashbench, dropped and made anew): two topics,
seven days of traffic generated inside PostgreSQL into the partitioned ledgers (every
message published once and consumed once or twice, ~0.3% lost, some delayed or
altered; the ledgers' indexes built after the rows),
the windows the ledger writers would have kept (their per-second counts and busiest
second included), and findings at the rate the engine would raise for that traffic.
Then times pages through Django's test client, logged in as a viewer of both topics,
and prints p50/p95 per page beside the target. --reuse times the pages of the
database an earlier run built (no drop, no build): runs of two checkouts alternated
over the same data.
"""

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from importlib import import_module
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A laptop run with DEBUG off and the development keys (config.secrets): never in production.
os.environ.setdefault("KAFKACACHE_ALLOW_DEV_SECRETS", "1")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("DATABASE_URL", "postgres://kafkacache:kafkacache@127.0.0.1:5432/kafkacache_dashbench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/11")
os.environ.setdefault("LOG_LEVEL", "WARNING")

DAYS = 7
WINDOW_S = 300
TARGET_P95_MS = 300  # every page, whatever the ledger's size (issue 22)


def database_recreate(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


# One topic's traffic, made in PostgreSQL: row i published at start + span * i / n, consumed
# 0.3 s later, unless its roll (random, seeded) makes it lost, duplicated, delayed or altered.
_GENERATE = """
CREATE TEMP TABLE gen AS
SELECT gen_random_uuid() AS u, i %% 2 AS part, i / 2 AS off,
       'client:' || (1 + floor(random() * 200000))::int AS key,
       decode(md5(%(t)s || ':' || i), 'hex') AS digest,
       %(start)s::timestamptz + make_interval(secs => %(span)s::float8 * i / %(n)s) AS at,
       random() AS roll
FROM generate_series(0, %(n)s - 1) AS i
"""
_PUBLISHED = """
INSERT INTO recon_publishedmessage (uuid, topic_id, partition, "offset", key, event_type, content_hash, size,
                                    published_at)
SELECT u, %(t)s, part, off, key, 'bulk', digest, 560, at FROM gen
"""
_CONSUMED = """
INSERT INTO recon_consumedmessage (uuid, topic_id, "group", partition, "offset", key, content_hash, published_at,
                                   consumed_at, outcome)
SELECT u, %(t)s, %(group)s, part, off, key,
       CASE WHEN roll > 0.5 AND roll < 0.5005 THEN decode(md5('altered' || encode(digest, 'hex')), 'hex')
            ELSE digest END,
       at, at + make_interval(secs => CASE WHEN roll > 0.9995 THEN 400.0 ELSE 0.3 END + d), 'stored'
FROM gen CROSS JOIN LATERAL generate_series(0, CASE WHEN roll > 0.2 AND roll < 0.201 THEN 1 ELSE 0 END) AS d
WHERE roll >= 0.003
"""
_ANOMALIES = """
SELECT CASE WHEN roll < 0.003 THEN 'missing' WHEN roll > 0.9995 THEN 'delayed'
            WHEN roll > 0.5 AND roll < 0.5005 THEN 'altered' ELSE 'duplicate' END, u, key, at
FROM gen
WHERE roll < 0.003 OR roll > 0.9995 OR (roll > 0.5 AND roll < 0.5005) OR (roll > 0.2 AND roll < 0.201)
"""
LEDGERS = ("recon_publishedmessage", "recon_consumedmessage")


def ledger_generate(topics, messages: int, now: dt.datetime) -> dict:
    """`messages` published rows and their deliveries; answers the anomalies made.

    The ledgers' secondary indexes are dropped first and built again after the rows
    (a sort each, not ten million random inserts), as they were defined."""
    # Django is set up by main() before this runs: project modules need the app registry.
    from django.db import connection

    span = DAYS * 86400
    start = now - dt.timedelta(seconds=span)
    anomalies: dict[str, list] = {"missing": [], "duplicate": [], "delayed": [], "altered": []}
    by_id = {t.pk: t for t in topics}
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute(
            """SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
               WHERE indrelid = ANY(%s::regclass[]) AND NOT indisprimary""",
            [list(LEDGERS)],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SELECT setseed(0.11)")
        for topic in topics:
            n = messages // len(topics)
            params = {"t": topic.pk, "start": start, "span": span, "n": n, "group": topic.consumer_group}
            cursor.execute(_GENERATE, params)
            cursor.execute(_PUBLISHED, params)
            cursor.execute(_CONSUMED, params)
            cursor.execute(_ANOMALIES)
            for category, u, key, at in cursor.fetchall():
                anomalies[category].append((by_id[topic.pk], u, key, at))
            cursor.execute("DROP TABLE gen")
            print(f"  {topic.name}: {n:,} published", flush=True)
        for _, definition in indexes:  # "ON ONLY" would make the parent's index alone, invalid
            cursor.execute(definition.replace(" ON ONLY ", " ON "))
    return anomalies


def windows_and_findings(topics, anomalies: dict, now: dt.datetime) -> tuple[int, int]:
    """Windows as the ledger writers keep them (one SQL pass), findings as the engine raises them."""
    # Django is set up by main() before this runs: project modules need the app registry.
    from django.db import connection

    from recon.models import Finding, Window

    # Each window's per-second counts and busiest second, as the publish writer keeps them:
    # the same statement that fills the windows of a ledger written before them.
    backfill = import_module("recon.migrations.0022_window_published_peak_ledger_place").BACKFILL
    with connection.cursor() as cursor:
        for topic in topics:
            cursor.execute(
                """
                INSERT INTO recon_window (topic_id, start, "end", published_count, consumed_count,
                    published_digest, consumed_digest, consumed_max_latency_ms, status, summary)
                SELECT %(t)s, b, b + interval '5 minutes',
                       coalesce(p.n, 0), coalesce(c.n, 0), coalesce(p.n, 0), coalesce(c.n, 0), 300, 'matched', '{}'
                FROM (SELECT date_bin('5 minutes', published_at, '2000-01-01') AS b, count(*) AS n
                      FROM recon_publishedmessage WHERE topic_id = %(t)s GROUP BY 1) p
                FULL JOIN (SELECT date_bin('5 minutes', published_at, '2000-01-01') AS b, count(*) AS n
                           FROM recon_consumedmessage WHERE topic_id = %(t)s GROUP BY 1) c USING (b)
                """,
                {"t": topic.pk},
            )
        cursor.execute(backfill)
    windows = {(w.topic_id, w.start): w for w in Window.objects.all()}
    severity = {"missing": "critical", "altered": "critical", "duplicate": "info", "delayed": "info"}
    classification = {"missing": "exception", "altered": "exception", "duplicate": "mismatch", "delayed": "mismatch"}
    findings = []
    for category, items in anomalies.items():
        for topic, u, key, at in items:
            bucket = dt.datetime.fromtimestamp(int(at.timestamp()) // WINDOW_S * WINDOW_S, tz=dt.UTC)
            window = windows[(topic.pk, bucket)]
            findings.append(
                Finding(
                    topic=topic,
                    window=window,
                    uuid=u,
                    key=key,
                    category=category,
                    classification=classification[category],
                    severity=severity[category],
                    detail={"published_at": at.isoformat()},
                )
            )
    Finding.objects.bulk_create(findings, batch_size=5000)
    with connection.cursor() as cursor:
        # Found when their window was reconciled (end + grace), as the engine would date them.
        cursor.execute(
            """UPDATE recon_finding f SET created_at = w."end" + interval '2 minutes'
               FROM recon_window w WHERE f.window_id = w.id"""
        )
        cursor.execute(
            """UPDATE recon_window w SET status = 'discrepant'
               WHERE EXISTS (SELECT 1 FROM recon_finding f WHERE f.window_id = w.id)"""
        )
        cursor.execute("ANALYZE")
    return len(windows), len(findings)


def timed(client, url: str, n: int) -> tuple[list[float], float]:
    """n requests' wall times (ms), and their mean CPU (ms): this process's and its PostgreSQL
    backend's, which is what the page costs however busy the machine's other cores are."""
    for _ in range(3):  # warm-up: connections, template cache, the lag cache
        assert client.get(url).status_code == 200, url
    samples = []
    cpu_before = _cpu_s()
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, url
    return samples, (_cpu_s() - cpu_before) * 1000 / n


def _cpu_s() -> float:
    """CPU seconds so far of this process and of its database connection's backend (same host)."""
    # Django is set up by main() before this runs.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    backend = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return time.process_time() + backend


def main() -> None:
    """Build the data, then time each page and print p50/p95 (and write them with --json)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--json", help="also write the figures to this file (bench/run.py reads it)")
    parser.add_argument("--reuse", action="store_true", help="time the database an earlier run built, as it is")
    args = parser.parse_args()

    if not args.reuse:
        database_recreate(os.environ["DATABASE_URL"])
    # Django is set up only once the bench database exists (database_recreate, above).
    import django

    django.setup()
    # After django.setup(): models and project modules need the app registry.
    from django.core.management import call_command
    from django.urls import reverse

    from recon.models import Finding, PublishedMessage, Topic, Window

    if args.reuse:
        topics = list(Topic.objects.filter(name__startswith="bench.cache.").order_by("name"))
        n_windows, n_findings = Window.objects.count(), Finding.objects.count()
        args.messages = PublishedMessage.objects.count()
        print(f"data: an earlier run's {args.messages:,} published ledger rows, {n_windows:,} windows")
    else:
        call_command("migrate", verbosity=0)
        topics, n_windows, n_findings = data_build(args.messages)
    client, pages = pages_to_time(topics)
    print("CPU ms: the mean per request of this process and its PostgreSQL backend (the page's own cost)")
    print(
        f"\n{'page':<26}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'target':>9}{'CPU ms':>9}"
        f"   ({args.requests} requests each, {args.messages:,} published ledger rows)"
    )
    figures: dict = {
        "messages": args.messages,
        "windows": n_windows,
        "findings": n_findings,
        "target_p95_ms": TARGET_P95_MS,
    }
    figures["pages"] = pages_time(client, pages, args.requests)
    csv_ms, _ = timed(client, reverse("dashboard:findings-csv"), 3)
    print(f"{'CSV export (all findings)':<26}{statistics.median(csv_ms):>9.1f}   ({n_findings:,} rows; no target)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures))


def pages_time(client, pages: dict, requests: int) -> dict:
    """Each page's p50/p95/max wall ms and CPU ms, printed beside the target as they come."""
    out = {}
    for name, url in pages.items():
        wall, cpu_ms = timed(client, url, requests)
        samples = sorted(wall)
        p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
        verdict = "ok" if p95 < TARGET_P95_MS else "OVER"
        print(
            f"{name:<26}{statistics.median(samples):>9.1f}{p95:>9.1f}{samples[-1]:>9.1f}"
            f"{'< ' + str(TARGET_P95_MS):>9}{cpu_ms:>9.1f}  {verdict}"
        )
        out[name] = {
            "p50_ms": round(statistics.median(samples), 1),
            "p95_ms": round(p95, 1),
            "max_ms": round(samples[-1], 1),
            "cpu_ms": round(cpu_ms, 1),
        }
    return out


def data_build(messages: int) -> tuple[list, int, int]:
    """Two topics, seven days of ledger, their windows and findings; answers (topics, windows, findings)."""
    # Django is set up by main() before this runs: project modules need the app registry.
    from kafkacache.services.topics import topics_ensure
    from recon.models import Topic

    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    topics = [
        Topic.objects.create(name="bench.cache.bulk", kind="bulk", consumer_group="bench-feeder"),
        Topic.objects.create(name="bench.cache.change", kind="change", consumer_group="bench-feeder"),
    ]
    topics_ensure([t.name for t in topics])  # the overview asks Kafka for the consumer lag
    started = time.perf_counter()
    anomalies = ledger_generate(topics, messages, now)
    n_windows, n_findings = windows_and_findings(topics, anomalies, now)
    print(
        f"data: {messages:,} published + {messages:,}-ish consumed ledger rows, "
        f"{n_windows:,} windows, {n_findings:,} findings; built in {time.perf_counter() - started:.0f} s"
    )
    return topics, n_windows, n_findings


def pages_to_time(topics) -> tuple:
    """A client logged in as a viewer of both topics, and the pages it times by name."""
    # Django is set up by main() before this runs: project modules need the app registry.
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    from dashboard.paging import keyset_page
    from dashboard.views.common import PAGE_SIZE
    from recon import access
    from recon.models import Finding, Window
    from recon.selectors.findings import findings_filtered

    viewer, made = User.objects.get_or_create(username="bench-viewer")
    if made:
        for topic in topics:
            access.topic_grant(viewer, topic, "viewer")
    client = Client()
    client.force_login(viewer)
    sample = Finding.objects.filter(category="missing").order_by("-created_at").first()
    assert sample is not None
    busiest = Window.objects.order_by("-published_count", "pk").first()
    assert busiest is not None
    findings = reverse("dashboard:findings")
    first = keyset_page(findings_filtered(user=viewer), time_field="created_at", size=PAGE_SIZE)
    page2 = first.next_cursor
    pages = {
        "overview 24h": reverse("dashboard:overview") + "?range=24h",
        "overview 7d": reverse("dashboard:overview") + "?range=7d",
        "discrepancies": findings,
        "discrepancies page 2": f"{findings}?cursor={page2}",
        "discrepancies filtered": f"{findings}?topic=bench.cache.bulk&category=missing&status=open",
        "message drill-down": reverse("dashboard:message", args=[sample.uuid]),
        "message search (key)": reverse("dashboard:message-search") + f"?q={sample.key}",
        "message search (place)": reverse("dashboard:message-search") + "?q=1/1200&topic=bench.cache.bulk",
        "windows": reverse("dashboard:windows"),
        "window": reverse("dashboard:window", args=[busiest.pk]),
        "topics": reverse("dashboard:topics"),
        "api findings": reverse("api-finding-list"),
    }
    return client, pages


if __name__ == "__main__":
    main()
