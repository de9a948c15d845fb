#!/usr/bin/env python
"""Screenshots of every dashboard page into docs/screenshots/ (shown in the README).

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
FULL_PAGE = {"finding", "message", "loads", "rebalances"}
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

    from dashboard.demo import demo_seed
    from kafkacache.clients import redis_client
    from kafkacache.redis_keys import rec_key
    from kafkacache.topics import topics_ensure
    from recon.models import Finding, Topic, Window

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
    created = str(int(row.published_at.timestamp() * 1000))
    redis_client().hset(rec_key(row.key), mapping={"u": str(row.uuid), "v": "1", "t": created, "p": value})
    discrepant = Window.objects.filter(status="discrepant").order_by("-start").first()
    # A finding the operator may act on, so the page shows the acknowledge form.
    missing = (
        Finding.objects.filter(category="missing", topic__kind=Topic.Kind.BULK, status="open").order_by("-pk").first()
    )

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
        ("admin", "audit-trail", reverse("dashboard:actions")),
        ("admin", "api-docs", reverse("api-docs")),
        ("admin", "admin-topic", reverse("admin:recon_topic_changelist")),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            sessions = {}
            for username, name, path in pages:
                if path is None:
                    print(f"  skipped {name}: no such object in the demo data")
                    continue
                if username not in sessions:
                    page = browser.new_page(viewport={"width": 1280, "height": 860})
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
                target = OUT / f"{name}.png"
                # Detail pages whole; long lists and the overview as a first screenful (small PNGs).
                page.screenshot(path=str(target), full_page=name in FULL_PAGE)
                print(f"  {target.relative_to(ROOT)} ({target.stat().st_size // 1024} KB)")
            browser.close()
    finally:
        redis_client().delete(rec_key(row.key))
        server.terminate()


if __name__ == "__main__":
    main()
