"""Every page fits a 390 px phone in the real Chromium: the page body never scrolls sideways (a wide
table scrolls inside its own container), and the findings list shows its key columns at once.
On each of those pages axe-core (pinned: tests/browser.py) finds nothing, whatever its impact: all
its rules in the light theme, its colour rules again in the dark one.

The pages are the screenshot set's (scripts/screenshots.py SHOTS: every page with the demo object
it shows), over the demo data of dashboard.demo, plus the error pages."""

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from core.clients import redis_client
from dashboard.demo import demo_scene_seed, demo_seed
from recon.models import Topic
from scripts.screenshots import SHOTS
from tests.browser import AXE_COLOUR_RULES, AXE_FAIL_IMPACTS, AXE_VERSION, axe_source, axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.integration]

WIDTH = 390
NOT_OURS = {"admin-topic"}  # Django's admin is not a page of ours
THEMES = ("light", "dark")  # prefers-color-scheme: dashboard/static/dashboard/ops.css and charts.js
# drf-spectacular's Swagger UI page: its template and swagger-ui's own widget, not markup of ours.
AXE_NOT_OURS = {"api-docs"}


@pytest.fixture
def scene(transactional_db, reason_codes, feed_topics):
    call_command("seed_demo", verbosity=0)
    topics = list(Topic.objects.filter(kind__in=[Topic.Kind.BULK, Topic.Kind.CHANGE]).order_by("name"))
    operator = User.objects.get(username="operator")
    written = demo_seed(topics=topics, operator=operator, now=dt.datetime.now(dt.UTC))
    bulk = next(t for t in topics if t.kind == Topic.Kind.BULK)
    return demo_scene_seed(written=written, bulk=bulk, operator=operator, client=redis_client())


@pytest.fixture
def feed_topics(settings, unique_name):
    """seed_demo makes the feed's topics under the configured names: this test's own."""
    settings.KAFKA_TOPIC_BULK = unique_name("narrow.bulk")
    settings.KAFKA_TOPIC_CHANGE = unique_name("narrow.change")
    settings.KAFKA_TOPIC_DEAD_LETTER = unique_name("narrow.dlq")
    settings.KAFKA_CONSUMER_GROUP = unique_name("narrow.group")


def _phone_page(browser, live_server, username: str | None):
    context = browser.new_context(viewport={"width": WIDTH, "height": 844}, color_scheme=THEMES[0])
    page = context.new_page()
    if username is not None:
        page.goto(live_server.url + reverse("login"))
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", settings.DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + "/")
    return page


def _overflow(page) -> int:
    return page.evaluate("document.scrollingElement.scrollWidth")


# The elements past the viewport that no scroll container within it clips (the failure message:
# what to fix).
_CULPRITS = """(width) => {
  const clipped = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== 'visible') return p.getBoundingClientRect().right <= width + 1;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/ +/).join('.') : '');
  return [...document.body.querySelectorAll('*')]
    .filter((el) => el.getBoundingClientRect().right > width + 1 && !clipped(el))
    .slice(0, 4).map((el) => name(el) + '=' + Math.round(el.getBoundingClientRect().right)).join(', ');
}"""


# Thirty-odd pages walked once, axe-core run on each twice: longer than the suite's 300 s per test
# on a loaded machine (axe is about half of it).
@pytest.mark.timeout(600)
def test_every_page_fits_390_px_and_axe_finds_nothing_in_either_theme(live_server, browser, scene):
    axe = axe_source()
    widths: dict[str, int] = {}
    culprits: dict[str, str] = {}
    violations: dict[str, list[str]] = {}
    pages: dict[str | None, object] = {}
    try:
        for shot in SHOTS:
            if shot.name in NOT_OURS:
                continue
            if shot.user not in pages:
                pages[shot.user] = _phone_page(browser, live_server, shot.user)
            page = pages[shot.user]
            if shot.via:
                page.goto(live_server.url + reverse(shot.via, args=shot.args(scene)))
                with page.expect_navigation() as navigation:
                    page.click(shot.press)
                response = navigation.value
            else:
                response = page.goto(live_server.url + reverse(shot.url, args=shot.args(scene)) + shot.query(scene))
            assert response is not None and response.ok, (shot.name, response and response.status)
            page.wait_for_load_state("networkidle")
            widths[shot.name] = _overflow(page)
            if widths[shot.name] > WIDTH:
                culprits[shot.name] = page.evaluate(_CULPRITS, WIDTH)
            if shot.name not in AXE_NOT_OURS:
                violations.update(_axe_in_both_themes(page, axe, shot.name))
        operator = pages["operator"]
        operator.goto(live_server.url + "/no-such-page/")
        widths["404"] = _overflow(operator)
        violations.update(_axe_in_both_themes(operator, axe, "404"))
        too_wide = {name: width for name, width in widths.items() if width > WIDTH}
        assert not too_wide, " ".join(f"{name}={width}px ({culprits.get(name)})" for name, width in too_wide.items())
        assert len(widths) >= 30  # every page of the set was walked
        assert not violations, f"axe-core {AXE_VERSION}, {'/'.join(AXE_FAIL_IMPACTS)}: " + "; ".join(
            f"{name}: {' | '.join(found)}" for name, found in violations.items()
        )
        _findings_key_columns(live_server, pages["operator"])
    finally:
        for page in pages.values():
            page.context.close()


def _axe_in_both_themes(page, axe: str, name: str) -> dict[str, list[str]]:
    """axe-core's findings on the page in each theme: every rule in the first, the colour rules (all a
    theme changes) in the other. The theme is switched in place (the stylesheets follow
    prefers-color-scheme at once; charts.js recolours its charts and marks each data-theme): one
    page load serves both."""
    found = {}
    for theme in THEMES:
        page.emulate_media(color_scheme=theme)
        page.wait_for_function(
            "(theme) => [...document.querySelectorAll('[data-chart]')].every((el) => el.dataset.theme === theme)",
            arg=theme,
        )
        if problems := axe_violations(page, axe, () if theme == THEMES[0] else AXE_COLOUR_RULES):
            found[f"{name} ({theme})"] = problems
    return found


def _findings_key_columns(live_server, page) -> None:
    """The findings list, by problem (the default) and one row per finding: severity, problem, age and
    state in the first screenful, with no sideways scroll."""
    for query, table in (("", "#problems"), ("?rows=finding", "#finding-rows")):
        page.goto(live_server.url + reverse("dashboard:findings") + query)
        assert _overflow(page) <= WIDTH
        for column in ("severity", "problem", "age", "state"):
            header = page.locator(f"{table} th[data-column={column}]")
            assert header.count() == 1, (table, column)
            box = header.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, (table, column, box)
