#!/usr/bin/env python
"""Page latency of the dashboard over a ledger of a million messages.

    .venv/bin/python bench/dashboard_pages.py [--messages 1000000] [--requests 40]

Builds its own database (kafkacache_dashbench, dropped and made anew): two topics,
seven days of traffic COPY-generated into the partitioned ledgers (every message
published once and consumed once or twice, ~0.3% lost, some delayed or altered),
the windows the ledger writers would have kept, and findings at the rate the
engine would raise for that traffic. Then times pages through Django's test
client, logged in as a viewer of both topics, and prints p50/p95 per page.
"""

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
import uuid
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


def database_recreate(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def ledger_generate(topics, messages: int, now: dt.datetime, rnd: random.Random) -> dict:
    """COPY `messages` published rows and their deliveries; answers the anomalies made."""
    # Django is set up by main() before this runs: project modules need the app registry.
    from django.db import connection

    from core.hashing import content_hash

    span = DAYS * 86400
    start = now - dt.timedelta(seconds=span)
    anomalies: dict[str, list] = {"missing": [], "duplicate": [], "delayed": [], "altered": []}
    pub_cols = 'uuid, topic_id, partition, "offset", key, event_type, content_hash, size, published_at'
    con_cols = 'uuid, topic_id, "group", partition, "offset", key, content_hash, published_at, consumed_at, outcome'
    with connection.cursor() as cursor:
        for topic_index, topic in enumerate(topics):
            n = messages // len(topics)
            rows = []
            for i in range(n):
                at = start + dt.timedelta(seconds=span * i / n)
                digest = content_hash(f"{topic_index}:{i}".encode())
                rows.append((uuid.uuid4(), i % 2, i // 2, f"client:{rnd.randint(1, 200_000)}", digest, at))
            with cursor.copy(f"COPY recon_publishedmessage ({pub_cols}) FROM STDIN") as copy:
                for u, part, off, key, digest, at in rows:
                    copy.write_row((u, topic.pk, part, off, key, "bulk", digest, 560, at))
            with cursor.copy(f"COPY recon_consumedmessage ({con_cols}) FROM STDIN") as copy:
                for u, part, off, key, digest, at in rows:
                    roll = rnd.random()
                    if roll < 0.003:
                        anomalies["missing"].append((topic, u, key, at))
                        continue
                    delay = 0.3
                    if roll > 0.9995:
                        delay = 400.0
                        anomalies["delayed"].append((topic, u, key, at))
                    if 0.5 < roll < 0.5005:
                        digest = content_hash(b"altered" + digest)
                        anomalies["altered"].append((topic, u, key, at))
                    deliveries = 2 if 0.2 < roll < 0.201 else 1
                    if deliveries == 2:
                        anomalies["duplicate"].append((topic, u, key, at))
                    for d in range(deliveries):
                        consumed_at = at + dt.timedelta(seconds=delay + d)
                        copy.write_row(
                            (u, topic.pk, topic.consumer_group, part, off, key, digest, at, consumed_at, "stored")
                        )
            print(f"  {topic.name}: {n:,} published", flush=True)
    return anomalies


def windows_and_findings(topics, anomalies: dict, now: dt.datetime) -> tuple[int, int]:
    """Windows as the ledger writers keep them (one SQL pass), findings as the engine raises them."""
    # Django is set up by main() before this runs: project modules need the app registry.
    from django.db import connection

    from recon.models import Finding, Window

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


def timed(client, url: str, n: int) -> list[float]:
    for _ in range(3):  # warm-up: connections, template cache, the lag cache
        assert client.get(url).status_code == 200, url
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, url
    return samples


def main() -> None:
    """Build the data, then time each page and print p50/p95 (and write them with --json)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--json", help="also write the figures to this file (bench/run.py reads it)")
    args = parser.parse_args()

    database_recreate(os.environ["DATABASE_URL"])
    # Django is set up only once the bench database exists (database_recreate, above).
    import django

    django.setup()
    # After django.setup(): models and project modules need the app registry.
    from django.core.management import call_command
    from django.urls import reverse

    call_command("migrate", verbosity=0)
    topics, n_windows, n_findings = data_build(args.messages)
    client, pages = pages_to_time(topics)
    print(f"\n{'page':<26}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}   ({args.requests} requests each)")
    figures: dict = {"messages": args.messages, "windows": n_windows, "findings": n_findings, "pages": {}}
    for name, url in pages.items():
        samples = sorted(timed(client, url, args.requests))
        p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
        print(f"{name:<26}{statistics.median(samples):>9.1f}{p95:>9.1f}{samples[-1]:>9.1f}")
        figures["pages"][name] = {
            "p50_ms": round(statistics.median(samples), 1),
            "p95_ms": round(p95, 1),
            "max_ms": round(samples[-1], 1),
        }
    csv_ms = timed(client, reverse("dashboard:findings-csv"), 3)
    print(f"{'CSV export (all findings)':<26}{statistics.median(csv_ms):>9.1f}   ({n_findings:,} rows)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures))


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
    anomalies = ledger_generate(topics, messages, now, random.Random(11))
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
    from recon.models import Finding
    from recon.selectors.findings import findings_filtered

    viewer = User.objects.create_user("bench-viewer")
    for topic in topics:
        access.topic_grant(viewer, topic, "viewer")
    client = Client()
    client.force_login(viewer)
    sample = Finding.objects.filter(category="missing").order_by("-created_at").first()
    assert sample is not None
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
        "windows": reverse("dashboard:windows"),
        "api findings": reverse("api-finding-list"),
    }
    return client, pages


if __name__ == "__main__":
    main()
