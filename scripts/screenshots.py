#!/usr/bin/env python
"""Screenshots of every dashboard page into docs/screenshots/, and the gallery docs/screenshots.md.

    make screenshots        # bin/services up, then .venv/bin/python scripts/screenshots.py
    .venv/bin/python scripts/screenshots.py --only finding,replay   # a few pages again

Each page (SHOTS below: a screenshot name, the page's URL name, who looks, which demo
object) at desktop width (1280 px) and phone width (390 px), light and dark:
`<name>.png`, `<name>-dark.png`, `<name>-390.png`, `<name>-390-dark.png`.

The data: a database of its own (the DATABASE_URL's server, the database name with
`_screenshots` added, dropped and made anew), the demo users, six hours of demo
traffic written by the real ledger writers and judged by the real engine, with
problems in it (dashboard.demo: messages missing, altered, delayed, duplicated and
dead-lettered, a cache divergence, findings owned, investigated and accepted, a replay
fixed and verified, one awaiting a second operator, alerts). Redis database 10 of
the REDIS_URL's server holds the cache entries and Celery's broker for the run
(flushed before and after). The topics are always the defaults' names, so the pictures
do not depend on the caller's environment. The app is served in-process and shot with
Debian's Chromium through Playwright (never `playwright install`).

docs/screenshots/manifest.json records, per screenshot, what rendered the page: the
digest of each template it rendered, of the view's source (its function, or its class
for a class-based view and the ModelAdmin for an admin page) and of each of our static
files it loaded. tests/docs/test_screenshots.py recomputes them without a browser: a
page whose template, view or stylesheet changed since its screenshots is named there,
with `make screenshots` as the cure. Data, selectors and template tags are not part
of it (they change what a page says, not how it looks).
"""

import datetime as dt
import hashlib
import inspect
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
GALLERY = ROOT / "docs" / "screenshots.md"
MANIFEST = OUT / "manifest.json"
# (file suffix, viewport, colour scheme, the gallery's column)
VARIANTS = [
    ("", {"width": 1280, "height": 860}, "light", "desktop, light"),
    ("-dark", {"width": 1280, "height": 860}, "dark", "desktop, dark"),
    ("-390", {"width": 390, "height": 844}, "light", "390 px, light"),
    ("-390-dark", {"width": 390, "height": 844}, "dark", "390 px, dark"),
]
# A whole page is cut at this height (CSS px): the PNGs are in git, and past two screenfuls
# a long page repeats its rows.
FULL_PAGE_MAX_HEIGHT = 2000
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@dataclass(frozen=True)
class Shot:
    """One page as the gallery shows it."""

    name: str  # docs/screenshots/<name>*.png
    url: str  # the page's URL name
    title: str
    user: str | None = "operator"  # the demo user looking (None: logged out)
    args: Callable[[Any], list] = field(default=lambda scene: [])  # the demo object it shows (dashboard.demo.DemoScene)
    query: Callable[[Any], str] = field(default=lambda scene: "")
    via: str = ""  # a page (URL name, with `args`) whose button `press` answers this one (a form's POST)
    press: str = ""
    full: bool = False  # the whole page (details), not the first screenful (long lists)


def _day(scene) -> str:
    now = dt.datetime.now(dt.UTC)
    return f"&start={(now - dt.timedelta(hours=7)):%Y-%m-%dT%H:%M}&end={now:%Y-%m-%dT%H:%M}"


SHOTS = [
    Shot("overview", "dashboard:overview", "Overview", query=lambda s: "?range=6h"),
    Shot("findings", "dashboard:findings", "Findings"),
    Shot(
        "findings-viewer",
        "dashboard:findings",
        "Findings, as a viewer",
        "viewer",
        query=lambda s: "?status=open",
    ),
    Shot("finding", "dashboard:finding", "An open finding: owner, age, thread", args=lambda s: [s.owned.pk], full=True),
    Shot(
        "finding-accepted",
        "dashboard:finding",
        "A finding accepted with a reason code",
        args=lambda s: [s.accepted.pk],
        full=True,
    ),
    Shot(
        "replay-dry-run",
        "dashboard:replay-dry-run",
        "A replay's dry run",
        args=lambda s: [s.owned.pk],
        via="dashboard:finding",
        press="form.replay button[formaction$='dry-run']",
        full=True,
    ),
    Shot("my-findings", "dashboard:my-breaks", "My findings"),
    Shot("message", "dashboard:message", "Message drill-down", args=lambda s: [s.message.uuid], full=True),
    Shot("message-search", "dashboard:message-search", "Message search", query=lambda s: f"?q={quote(s.message.key)}"),
    Shot("windows", "dashboard:windows", "Windows"),
    Shot("window", "dashboard:window", "A discrepant window", args=lambda s: [s.window.pk]),
    Shot("loads", "dashboard:loads", "Loads", full=True),
    Shot("load", "dashboard:load", "A running load", args=lambda s: [s.load.pk], full=True),
    Shot("rebalances", "dashboard:rebalances", "Rebalances", full=True),
    Shot("replays", "dashboard:replays", "Replays"),
    Shot("replay", "dashboard:replay", "A replay, fixed and verified", args=lambda s: [s.replay.pk], full=True),
    Shot(
        "replay-pending",
        "dashboard:replay",
        "A replay awaiting a second operator",
        "admin",
        args=lambda s: [s.pending.pk],
        full=True,
    ),
    Shot("approvals", "dashboard:approvals", "Approvals waiting for you", "admin"),
    Shot("runs", "dashboard:runs", "Runs"),
    Shot("run", "dashboard:run", "A run verifying a replay", args=lambda s: [s.verify_run.pk], full=True),
    Shot(
        "cache-run", "dashboard:run", "The cache leg finding a divergence", args=lambda s: [s.divergence.pk], full=True
    ),
    Shot("evidence", "dashboard:evidence", "Evidence pack", "admin"),
    Shot(
        "evidence-pack",
        "dashboard:evidence-download",
        "An evidence pack (printable)",
        "admin",
        query=lambda s: f"?topic={quote(s.bulk.name)}{_day(s)}&format=html",
        full=True,
    ),
    Shot("alerts", "dashboard:alerts", "Alerts"),
    Shot("alert-rules", "dashboard:alert-rules", "Alert rules", "admin"),
    Shot("alert-rule", "dashboard:alert-rule", "An alert rule", "admin", args=lambda s: [s.rule.pk], full=True),
    Shot("silences", "dashboard:silences", "Silences"),
    Shot("audit-trail", "dashboard:actions", "Audit trail", "admin"),
    Shot("api-tokens", "dashboard:api-tokens", "Your API tokens"),
    Shot("topics", "dashboard:topics", "Topics and your role on each"),
    Shot(
        "topic", "dashboard:topic", "A topic's people and their roles", "admin", args=lambda s: [s.bulk.pk], full=True
    ),
    Shot("login", "login", "Log in", None),
    Shot("api-docs", "api-docs", "API docs", "admin"),
    Shot("admin-topic", "admin:recon_topic_changelist", "Admin: topics", "admin"),
]

# Named URLs that are no page of their own, and why. Two kinds are left out by rule
# (url_exclusion): the admin site's (one admin page stands for them) and the JSON API's.
NOT_PAGES = {
    "dashboard:findings-csv": "a CSV download",
    "dashboard:findings-bulk": "a form's POST; it answers with the findings list",
    "dashboard:topic-member-set": "a form's POST; it answers with the topic's page",
    "dashboard:topic-member-remove": "a form's POST; it answers with the topic's page",
    "dashboard:finding-acknowledge": "a form's POST; it answers with the finding page",
    "dashboard:finding-assign": "a form's POST; it answers with the finding page",
    "dashboard:finding-investigate": "a form's POST; it answers with the finding page",
    "dashboard:finding-fix": "a form's POST; it answers with the finding page",
    "dashboard:finding-accept": "a form's POST; it answers with the finding page",
    "dashboard:finding-reopen": "a form's POST; it answers with the finding page",
    "dashboard:finding-comment": "a form's POST; it answers with the finding page",
    "dashboard:load-start": "a form's POST; it answers with the load's page",
    "dashboard:replay-start": "a form's POST; it answers with the replay's page",
    "dashboard:reprocess": "a form's POST; it answers with the replay's page",
    "dashboard:replay-approve": "a form's POST; it answers with the replay's page",
    "dashboard:replay-reject": "a form's POST; it answers with the replay's page",
    "dashboard:run-request": "a form's POST; it answers with the run's page",
    "dashboard:plotly-js": "an asset the overview loads",
    "dashboard:plotly-css": "an asset the overview loads",
    "dashboard:alert-acknowledge": "a form's POST; it answers with the alerts page",
    "dashboard:alert-rule-create": "a form's POST; it answers with the rule's page",
    "dashboard:alert-rule-test": "a form's POST; it answers with the rule's page",
    "dashboard:alert-rule-delete": "a form's POST; it answers with the rules page",
    "dashboard:silence-end": "a form's POST; it answers with the silences page",
    "dashboard:api-token-revoke": "a form's POST; it answers with the API tokens page",
    "healthz": "JSON for the probes",
    "healthz-role": "JSON for the probes",
    "healthz-queue": "JSON for the probes",
    "metrics": "Prometheus text",
    "logout": "a POST that ends the session and answers with the login page",
}


# --- what a page is made of (also read by tests/docs/test_screenshots.py) ----------------


def url_patterns() -> Iterator[tuple[str | None, Any]]:
    """(URL name with its namespaces, or None when unnamed; pattern) for every route of the urlconf."""
    # Django is set up by main() after _environment() (or by the suite, which reads these).
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns, prefix: str) -> Iterator[tuple[str | None, Any]]:
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, f"{prefix}{p.namespace}:" if p.namespace else prefix)
            elif isinstance(p, URLPattern):
                # an unnamed route keeps its namespace ("admin:"), so a rule on the namespace still holds
                yield (f"{prefix}{p.name}" if p.name else prefix or None), p

    yield from walk(get_resolver().url_patterns, "")


def url_exclusion(name: str | None, pattern) -> str | None:
    """Why a route is left out by rule (the admin's, the JSON API's), else None."""
    # Django is set up by main() after _environment() (or by the suite, which reads these).
    from rest_framework.views import APIView

    if name is not None and name.startswith("admin:"):
        return "the admin site: Django's own pages, shown by admin-topic"
    view_class = getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)
    if isinstance(view_class, type) and issubclass(view_class, APIView) and name not in {s.url for s in SHOTS}:
        return "the JSON API, shown by its docs page (api-docs)"
    return None


def view_source(url_name: str) -> str | None:
    """The source that makes the page: the view function, or a class-based view's class,
    or an admin page's ModelAdmin and method. None when no route has that name."""
    callback = next((p.callback for name, p in url_patterns() if name == url_name), None)
    if callback is None:
        return None
    if hasattr(callback, "view_class"):
        return inspect.getsource(callback.view_class)
    function = inspect.unwrap(callback)
    owner = getattr(function, "__self__", None)
    own = inspect.getsource(type(owner)) if owner is not None else ""
    return own + inspect.getsource(function)


def digest(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:16]


def template_is_ours(path: str) -> bool:
    """A template file of this repository (not Django's, DRF's or another library's: those
    change with the lock, and a page's look is ours to keep current)."""
    resolved = Path(path).resolve()
    return resolved.is_relative_to(ROOT.resolve()) and "site-packages" not in resolved.parts


def template_digest(name: str) -> str | None:
    # Django is set up by main() after _environment() (or by the suite, which reads these).
    from django.template import TemplateDoesNotExist
    from django.template.loader import get_template

    try:
        origin = get_template(name).origin.name
    except TemplateDoesNotExist:
        return None
    return digest(Path(origin).read_bytes())


def static_digest(path: str) -> str | None:
    # Django is set up by main() after _environment() (or by the suite, which reads these).
    from django.contrib.staticfiles import finders

    found = finders.find(path)
    return digest(Path(found).read_bytes()) if found else None


def png_digests(shot: Shot) -> dict[str, str | None]:
    """{file name: digest} of the shot's screenshots as they are in docs/screenshots/ (None: absent)."""
    return {n: digest((OUT / n).read_bytes()) if (OUT / n).is_file() else None for n in png_names(shot)}


def shot_record(shot: Shot, templates: list[str], static: list[str]) -> dict:
    source = view_source(shot.url)
    assert source is not None, shot.url
    return {
        "url": shot.url,
        "view": digest(source),
        "templates": {name: template_digest(name) for name in sorted(set(templates))},
        "static": {path: static_digest(path) for path in sorted(set(static))},
    }


def shots_stale(manifest: dict) -> dict[str, list[str]]:
    """{shot: what changed since its screenshots} for every shot of SHOTS (no browser needed)."""
    stale: dict[str, list[str]] = {}
    for shot in SHOTS:
        entry = manifest.get("shots", {}).get(shot.name)
        if entry is None:
            stale[shot.name] = ["never shot"]
            continue
        changes = []
        source = view_source(shot.url)
        if source is None:
            changes.append(f"no route is named {shot.url} (renamed? SHOTS in scripts/screenshots.py names it)")
        elif entry["url"] != shot.url:
            changes.append(f"now {shot.url}, shot as {entry['url']}")
        elif entry["view"] != digest(source):
            changes.append(f"the view of {shot.url}")
        changes += [f"template {n}" for n, d in entry["templates"].items() if template_digest(n) != d]
        changes += [f"static {p}" for p, d in entry["static"].items() if static_digest(p) != d]
        shot_pngs = entry.get("png", {})
        changes += [f"{n} is not the one shot" for n, d in png_digests(shot).items() if shot_pngs.get(n) != d]
        if changes:
            stale[shot.name] = changes
    return stale


def png_names(shot: Shot) -> list[str]:
    return [f"{shot.name}{suffix}.png" for suffix, _, _, _ in VARIANTS]


def gallery_render() -> str:
    lines = [
        "# Screenshots",
        "",
        "Every page at desktop width (1280 px) and phone width (390 px), in light and dark",
        "mode (the pages follow the system setting). `make screenshots` makes them anew",
        "(`scripts/screenshots.py`, which also writes this page): demo traffic written by the",
        "real ledger writers and judged by the real engine, with the problems operators meet",
        "(lost, altered, late, duplicated and dead-lettered messages, a cache divergence,",
        "findings owned and accepted, replays verified or awaiting a second operator, alerts).",
        "`docs/screenshots/manifest.json` records what rendered each page; `tests/docs` fails",
        "when a page's templates, view or stylesheets changed since its screenshots.",
    ]
    header = "| " + " | ".join(label for *_, label in VARIANTS) + " |"
    for shot in SHOTS:
        images = " | ".join(f"![{Path(n).stem}](screenshots/{n})" for n in png_names(shot))
        lines += ["", f"## {shot.title}", "", header, "| --- | --- | --- | --- |", f"| {images} |"]
    return "\n".join(lines) + "\n"


# --- the run ----------------------------------------------------------------------------------


def _environment() -> None:
    """Its own database and Redis database, the default topic names, the development keys."""
    base_db = os.environ.get("DATABASE_URL", "postgres://kafkacache:kafkacache@127.0.0.1:5432/kafkacache")
    parts = urlsplit(base_db)
    db_name = parts.path.strip("/").removesuffix("_screenshots") + "_screenshots"
    redis = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))._replace(path="/10").geturl()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        KAFKACACHE_ALLOW_DEV_SECRETS="1",  # a laptop run with DEBUG off and the dev keys: never production
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=parts._replace(path=f"/{db_name}").geturl(),
        REDIS_URL=redis,
        CELERY_BROKER_URL=redis,
        KAFKA_TOPIC_BULK="cache.bulk",
        KAFKA_TOPIC_CHANGE="cache.change",
        KAFKA_TOPIC_DEAD_LETTER="cache.dead-letter",
        KAFKA_CONSUMER_GROUP="cache-feeder",
        LOG_LEVEL="ERROR",
        DJANGO_ALLOW_ASYNC_UNSAFE="true",  # Playwright's event loop shares the main thread with the ORM calls
    )
    sys.path.insert(0, str(ROOT))


def _database_recreate(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    assert name.endswith("_screenshots"), name  # never anyone's own database
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _scene():
    """The demo data every page shows (dashboard.demo), through the real writers and services."""
    # After main()'s django.setup(): models and project modules need the app registry.
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from core.clients import redis_client
    from dashboard.demo import demo_scene_seed, demo_seed
    from kafkacache.services.topics import topics_ensure
    from recon.models import Topic

    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)
    topics = list(Topic.objects.filter(kind__in=[Topic.Kind.BULK, Topic.Kind.CHANGE]).order_by("name"))
    topics_ensure([t.name for t in topics])  # the consumer lag is read from Kafka
    operator = User.objects.get(username="operator")
    written = demo_seed(topics=topics, operator=operator, now=dt.datetime.now(dt.UTC))
    bulk = next(t for t in topics if t.kind == Topic.Kind.BULK)
    return demo_scene_seed(written=written, bulk=bulk, operator=operator, client=redis_client())


class _Rendered:
    """The templates the server renders (Django's test instrumentation, which sends template_rendered)."""

    def __init__(self) -> None:
        # After main()'s django.setup(): the test instrumentation needs the settings.
        from django.template import Template
        from django.test import signals
        from django.test.utils import instrumented_test_render

        Template._render = instrumented_test_render  # type: ignore[method-assign]
        self.names: list[str] = []
        signals.template_rendered.connect(self._seen, weak=False)

    def _seen(self, sender, template, **kwargs) -> None:
        origin = template.origin
        if origin is not None and origin.template_name and template_is_ours(origin.name):
            self.names.append(str(origin.template_name))


def _shoot(browser, base: str, scene, rendered: _Rendered, shots: list[Shot]) -> dict:
    """Every shot in every variant; answers the manifest's entries (from the first variant)."""
    # After main()'s django.setup(); Playwright only when shooting (the suite reads this file without it).
    from django.conf import settings
    from django.urls import resolve, reverse
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    records: dict[str, dict] = {}
    password = settings.DEMO_PASSWORD
    for suffix, viewport, scheme, _ in VARIANTS:
        pages: dict[str | None, Any] = {}
        for shot in shots:
            if shot.user not in pages:
                pages[shot.user] = _page_open(browser, base, viewport, scheme, user=shot.user, password=password)
            page = pages[shot.user]
            began = time.monotonic()
            static: list[str] = []
            on_request = lambda request, seen=static: seen.append(urlsplit(request.url).path)  # noqa: E731
            page.on("request", on_request)
            if shot.via:
                page.goto(base + reverse(shot.via, args=shot.args(scene)))
                page.wait_for_load_state("networkidle")
                static.clear()
                rendered.names.clear()
                with page.expect_navigation() as navigation:
                    page.click(shot.press)
                response = navigation.value
            else:
                rendered.names.clear()
                response = page.goto(base + reverse(shot.url, args=shot.args(scene)) + shot.query(scene))
            assert response is not None and response.ok, f"{shot.name}: {response and response.status} at {page.url}"
            loaded = time.monotonic()
            try:
                page.wait_for_load_state("networkidle", timeout=10_000)
            except PlaywrightTimeout:
                print(f"  {shot.name}{suffix}: still loading after 10 s; shot as it stands")
            idle = time.monotonic()
            if shot.name == "overview":
                page.wait_for_selector(".js-plotly-plot .main-svg")
            if shot.name == "api-docs":
                page.wait_for_selector(".swagger-ui .opblock")
            page.remove_listener("request", on_request)
            shown = resolve(urlsplit(page.url).path).view_name
            assert shown == shot.url, f"{shot.name}: the browser shows {shown} ({page.url}), not {shot.url}"
            target = OUT / f"{shot.name}{suffix}.png"
            _screenshot(page, target, full=shot.full)
            done = time.monotonic()
            print(
                f"  {target.relative_to(ROOT)} ({target.stat().st_size // 1024} KB; "
                f"{loaded - began:.1f} + {idle - loaded:.1f} + {done - idle:.1f} s)"
            )
            if suffix == "":
                prefix = settings.STATIC_URL if settings.STATIC_URL.startswith("/") else "/" + settings.STATIC_URL
                files = [p.removeprefix(prefix) for p in static if p.startswith(prefix)]
                records[shot.name] = shot_record(shot, rendered.names, files)
        for page in pages.values():
            page.context.close()
    return records


def _page_open(browser, base: str, viewport, scheme: str, *, user: str | None, password: str):
    """A page of its own browser context, logged in as `user` (None: nobody)."""
    # After main()'s django.setup(): URL names need the urlconf.
    from django.urls import reverse

    page = browser.new_context(viewport=viewport, color_scheme=scheme).new_page()
    if user is not None:
        page.goto(base + reverse("login"))
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
    return page


def _screenshot(page, target: Path, *, full: bool) -> None:
    """The page as shown, or in full up to FULL_PAGE_MAX_HEIGHT pixels high."""
    clip = None
    if full:
        width, height = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        if height > FULL_PAGE_MAX_HEIGHT:
            clip = {"x": 0, "y": 0, "width": width, "height": FULL_PAGE_MAX_HEIGHT}
    page.screenshot(path=str(target), full_page=full, clip=clip)


def main(argv: list[str]) -> None:
    only = set(argv[argv.index("--only") + 1].split(",")) if "--only" in argv else None
    shots = [s for s in SHOTS if only is None or s.name in only]
    if only is not None and len(shots) != len(only):
        raise SystemExit(f"no such shot: {', '.join(sorted(only - {s.name for s in shots}))}")
    _environment()
    _database_recreate(os.environ["DATABASE_URL"])
    # Django is set up only now, after _environment() chose this run's database and Redis.
    import django

    django.setup()
    # After django.setup(): Django's server and project modules need the app registry; Playwright only here.
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.test.testcases import LiveServerThread
    from playwright.sync_api import sync_playwright

    from core.clients import redis_client

    redis_client().flushdb()  # database 10: this run's own
    rendered = _Rendered()
    scene = _scene()
    server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            records = _shoot(browser, f"http://127.0.0.1:{server.port}", scene, rendered, shots)
            browser.close()
        for shot in shots:  # every variant written: what the manifest vouches for
            records[shot.name]["png"] = png_digests(shot)
    finally:
        server.terminate()
        redis_client().flushdb()
    wanted = {n for shot in SHOTS for n in png_names(shot)}
    for old in OUT.glob("*.png"):
        if old.name not in wanted:
            old.unlink()
            print(f"  removed {old.relative_to(ROOT)} (no shot of that name)")
    kept = json.loads(MANIFEST.read_text())["shots"] if only is not None and MANIFEST.exists() else {}
    names = {s.name for s in SHOTS}
    merged = {name: entry for name, entry in {**kept, **records}.items() if name in names}
    MANIFEST.write_text(json.dumps({"shots": merged}, indent=1, sort_keys=True) + "\n")
    GALLERY.write_text(gallery_render())
    print(f"wrote {MANIFEST.relative_to(ROOT)} and {GALLERY.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
