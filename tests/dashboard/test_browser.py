"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against a live server.

Logged in through the real login form. Never `playwright install`: the browser
is the system's. The playwright event loop shares this thread with the ORM
calls the test makes, hence DJANGO_ALLOW_ASYNC_UNSAFE for these tests only.
"""

import os
from pathlib import Path

import pytest
from django.urls import reverse
from plotly import offline as plotly_offline

from recon.models import Finding, OperatorAction
from tests.dashboard.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (the browser tests need Debian's Chromium)")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def login(browser, live_server):
    pages = []

    def as_user(username: str):
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        pages.append(page)
        page.goto(live_server.url + reverse("login"))
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + "/")
        return page

    yield as_user
    for page in pages:
        page.close()


def test_viewer_sees_no_action_buttons_and_a_forged_post_gets_403(transactional_db, live_server, login, data):
    page = login("viewer1")
    page.goto(live_server.url + reverse("dashboard:findings"))
    assert page.locator(f"tr[data-finding='{data['missing'].pk}']").count() == 1
    assert page.locator("form.ack button").count() == 0
    page.goto(live_server.url + reverse("dashboard:loads"))
    assert page.locator("#start-load").count() == 0
    # The viewer forges the operator's form post from inside their own session, CSRF token and all.
    status = page.evaluate(
        """async (url) => {
            const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1];
            const body = new URLSearchParams({comment: 'forged', csrfmiddlewaretoken: token});
            const r = await fetch(url, {method: 'POST', body, credentials: 'same-origin'});
            return r.status;
        }""",
        reverse("dashboard:finding-acknowledge", args=[data["missing"].pk]),
    )
    assert status == 403
    assert Finding.objects.get(pk=data["missing"].pk).status == Finding.Status.OPEN


def test_operator_acknowledges_a_finding_in_the_ui(transactional_db, live_server, login, data):
    missing = data["missing"]
    page = login("operator1")
    page.goto(live_server.url + reverse("dashboard:findings"))
    row = page.locator(f"tr[data-finding='{missing.pk}']")
    row.locator("summary", has_text="Actions").click()  # one actions menu per row
    row.locator("input[name=comment]").fill("checked with the ODS team")
    row.locator("button", has_text="Acknowledge").click()
    page.wait_for_selector(".msg")
    assert f"Finding {missing.pk} acknowledged." in page.inner_text(".msg")
    assert page.locator(f"tr[data-finding='{missing.pk}'] .badge.st-acknowledged").count() == 1
    missing.refresh_from_db()
    assert (missing.status, missing.comment) == (Finding.Status.ACKNOWLEDGED, "checked with the ODS team")
    assert OperatorAction.objects.filter(
        action="acknowledge", target=f"finding:{missing.pk}", outcome="accepted"
    ).exists()


def test_overview_chart_renders_with_data(transactional_db, live_server, login, data, topic_a):
    page = login("viewer1")
    page.goto(live_server.url + reverse("dashboard:overview") + "?range=6h")
    page.wait_for_selector("#flow-0.js-plotly-plot .main-svg", timeout=15000)
    section = page.locator(f"section[data-topic='{topic_a.name}']")
    # Bars were drawn: plotly renders one path per bar point.
    assert section.locator(".js-plotly-plot .barlayer .point").count() >= 2
    assert section.locator(".js-plotly-plot").count() == 2  # flow chart and categories chart
    # The plotly.js in the page is the copy inside the plotly package, served by us.
    assert page.evaluate("() => window.Plotly && Plotly.version") == plotly_offline.get_plotlyjs_version()
