#!/usr/bin/env python
"""Screenshots of every dashboard page into docs/screenshots/ (shown in the README),
each at desktop width (1280 px) and phone width (390 px), in light and dark mode:
`<page>.png` (desktop, light: the README's), `<page>-dark.png`, `<page>-390.png`,
`<page>-390-dark.png`.

    .venv/bin/python scripts/screenshots.py

Builds its own database (kafkacache_screenshots, dropped and made anew) with the
demo users and a few hours of demo traffic written by the real ledger writers and
reconciled by the real engine, serves the app on 127.0.0.1 in-process, and drives
Debian's Chromium with Playwright (logged in through the login form). It uses
Redis database 10 for the one cache entry the message page shows. Never
`playwright install`: the browser is /usr/bin/chromium.
"""

import datetime as dt
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A laptop run with DEBUG off and the development keys (config.secrets): never in production.
os.environ.setdefault("KAFKACACHE_ALLOW_DEV_SECRETS", "1")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("DATABASE_URL", "postgres://kafkacache:kafkacache@127.0.0.1:5432/kafkacache_screenshots")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/10")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
# Playwright's event loop shares the main thread with the ORM calls made here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

OUT = ROOT / "docs" / "screenshots"
FULL_PAGE = {"finding", "message", "loads", "rebalances", "run", "replay", "alert-rule"}
# (suffix, viewport, colour scheme)
VARIANTS = [
    ("", {"width": 1280, "height": 860}, "light"),
    ("-dark", {"width": 1280, "height": 860}, "dark"),
    ("-390", {"width": 390, "height": 844}, "light"),
    ("-390-dark", {"width": 390, "height": 844}, "dark"),
]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def database_recreate(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    database_recreate(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.test.testcases import LiveServerThread
    from django.urls import reverse
    from playwright.sync_api import sync_playwright

    from core.clients import redis_client
    from dashboard.demo import demo_seed
    from kafkacache.cache import CacheOp, cache_apply
    from kafkacache.services.topics import topics_ensure
    from monitoring.models import AlertRule, Silence
    from recon.models import Finding, ReconRun, Replay, ReplayItem, Topic, Window

    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)
    topics = list(Topic.objects.filter(kind__in=[Topic.Kind.BULK, Topic.Kind.CHANGE]).order_by("name"))
    topics_ensure([t.name for t in topics])  # so the consumer lag reads from Kafka
    now = dt.datetime.now(dt.UTC)
    written = demo_seed(topics=topics, operator=User.objects.get(username="operator"), now=now)

    # One message the cache holds, for the drill-down page.
    duplicate = Finding.objects.filter(category="duplicate", topic__kind=Topic.Kind.BULK).order_by("pk").first()
    assert duplicate is not None and duplicate.uuid is not None, "demo traffic made no duplicate"
    bulk_rows = written[duplicate.topic.name]["rows"]
    row = next(r for r in bulk_rows if r.uuid == duplicate.uuid)
    value = written[duplicate.topic.name]["values"][row.uuid]
    # Unordered (version 0): the delete at the end removes it without leaving a tombstone.
    created = int(row.published_at.timestamp() * 1000)
    cached = CacheOp("bulk", row.key, 0, value, str(row.uuid), 1, created_ms=created, topic=duplicate.topic.name)
    cache_apply(redis_client(), [cached])
    discrepant = Window.objects.filter(status="discrepant").order_by("-start").first()
    # A finding the operator may act on, so the page shows the acknowledge form.
    missing = (
        Finding.objects.filter(category="missing", topic__kind=Topic.Kind.BULK, status="open").order_by("-pk").first()
    )

    # A finished replay and its verification runs, an alert rule and a silence, for their pages.
    operator = User.objects.get(username="operator")
    replay = Replay.objects.create(
        topic=duplicate.topic,
        way="kafka",
        scope="messages",
        target={"uuids": [str(duplicate.uuid)]},
        fingerprint="screenshots",
        reason="consumer skipped it",
        requested_by=operator,
        status="done",
        total=1,
        processed=1,
        outcome={"stored": 1},
        started_at=now,
        finished_at=now,
    )
    ReplayItem.objects.create(
        replay=replay,
        original_uuid=duplicate.uuid,
        uuid=duplicate.uuid,
        key=row.key,
        partition=row.partition,
        offset=row.offset,
        outcome="stored",
    )
    verify = None
    if discrepant is not None:
        from recon.services.runs import run_execute, run_queue

        verify = run_queue(
            kind="transport", topic=discrepant.topic, window_ids=[discrepant.pk], trigger="replay", replay=replay
        )
        run_execute(run_id=verify.pk)
    rule = AlertRule.objects.filter(name="Standing exceptions").first()
    if rule is not None:
        from monitoring import services as alerting

        alerting.alerts_evaluate(now=now + dt.timedelta(minutes=30))
        Silence.objects.create(
            rule=rule,
            starts_at=now,
            ends_at=now + dt.timedelta(hours=2),
            reason="broker upgrade CHG-1042",
            created_by=operator,
        )
    last_run = verify or ReconRun.objects.order_by("-started_at").first()

    server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    base = f"http://127.0.0.1:{server.port}"
    pages = [
        ("operator", "overview", reverse("dashboard:overview") + "?range=6h"),
        ("operator", "discrepancies", reverse("dashboard:findings")),
        ("viewer", "discrepancies-viewer", reverse("dashboard:findings") + "?status=open"),
        ("operator", "finding", reverse("dashboard:finding", args=[missing.pk]) if missing else None),
        ("operator", "message", reverse("dashboard:message", args=[duplicate.uuid])),
        ("operator", "windows", reverse("dashboard:windows")),
        ("operator", "window", reverse("dashboard:window", args=[discrepant.pk]) if discrepant else None),
        ("operator", "loads", reverse("dashboard:loads")),
        ("operator", "rebalances", reverse("dashboard:rebalances")),
        ("operator", "message-search", reverse("dashboard:message-search") + f"?q={row.key}"),
        ("operator", "replays", reverse("dashboard:replays")),
        ("operator", "replay", reverse("dashboard:replay", args=[replay.pk])),
        ("operator", "runs", reverse("dashboard:runs")),
        ("operator", "run", reverse("dashboard:run", args=[last_run.pk]) if last_run else None),
        ("operator", "alerts", reverse("dashboard:alerts")),
        ("admin", "alert-rules", reverse("dashboard:alert-rules")),
        ("admin", "alert-rule", reverse("dashboard:alert-rule", args=[rule.pk]) if rule else None),
        ("operator", "silences", reverse("dashboard:silences")),
        ("admin", "audit-trail", reverse("dashboard:actions")),
        ("admin", "api-docs", reverse("api-docs")),
        ("admin", "admin-topic", reverse("admin:recon_topic_changelist")),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            for suffix, viewport, scheme in VARIANTS:
                sessions = {}
                for username, name, path in pages:
                    if path is None:
                        print(f"  skipped {name}: no such object in the demo data")
                        continue
                    if username not in sessions:
                        context = browser.new_context(viewport=viewport, color_scheme=scheme)
                        page = context.new_page()
                        page.goto(base + reverse("login"))
                        page.fill("input[name=username]", username)
                        page.fill("input[name=password]", os.environ.get("DEMO_PASSWORD", "kafkacache-demo"))
                        page.click("button[type=submit]")
                        page.wait_for_url(base + "/")
                        sessions[username] = page
                    page = sessions[username]
                    page.goto(base + path)
                    page.wait_for_load_state("networkidle")
                    if name == "overview":
                        page.wait_for_selector(".js-plotly-plot .main-svg")
                    target = OUT / f"{name}{suffix}.png"
                    # Detail pages whole; long lists and the overview as a first screenful (small PNGs).
                    page.screenshot(path=str(target), full_page=name in FULL_PAGE)
                    print(f"  {target.relative_to(ROOT)} ({target.stat().st_size // 1024} KB)")
                for page in sessions.values():
                    page.context.close()
            browser.close()
    finally:
        cache_apply(redis_client(), [CacheOp("delete", row.key, 0)])
        server.terminate()


if __name__ == "__main__":
    main()
