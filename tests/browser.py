"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, and a page logged in through the form.

Fixtures for the browser tests (tests/dashboard/test_browser.py, tests/replay/test_browser.py),
imported by their directories' conftest.py. Never `playwright install`: the browser is the
system's. The playwright event loop shares the thread with the ORM calls a test makes, hence
DJANGO_ALLOW_ASYNC_UNSAFE while the browser is up.
"""

import os
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import PASSWORD

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


# Roles of form controls: each needs an accessible name (axe-core's "label" rule asks the same).
CONTROL_ROLES = {"textbox", "searchbox", "combobox", "listbox", "checkbox", "radio", "spinbutton", "slider", "switch"}


def unlabelled_controls(page) -> list[str]:
    """The form controls shown on the page whose accessible name Chromium computes as empty,
    read from the browser's own accessibility tree (hidden inputs and folded-away content are
    not in it: open what the check should see first)."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    out = []
    for node in nodes:
        role = (node.get("role") or {}).get("value")
        if node.get("ignored") or role not in CONTROL_ROLES:
            continue
        if not str((node.get("name") or {}).get("value", "")).strip():
            out.append(f"{role} (DOM node {node.get('backendDOMNodeId')})")
    return out
