"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, and a page logged in through the form.

Fixtures for the browser tests (tests/dashboard/test_browser.py, tests/replay/test_browser.py),
imported by their directories' conftest.py. Never `playwright install`: the browser is the
system's. The playwright event loop shares the thread with the ORM calls a test makes, hence
DJANGO_ALLOW_ASYNC_UNSAFE while the browser is up.
"""

import base64
import hashlib
import io
import os
import tarfile
import urllib.request
from pathlib import Path

import pytest
from django.urls import reverse

from tests.factories import PASSWORD

REPO = Path(__file__).resolve().parent.parent
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


# axe-core, pinned: this version's npm tarball, checked against the integrity the npm registry
# publishes for it (`npm view axe-core@4.14.1 dist.integrity`), kept under VAR_DIR once fetched.
AXE_VERSION = "4.14.1"
AXE_INTEGRITY = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
AXE_TARBALL = f"https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz"
# Every impact axe reports fails the suite: critical, serious, moderate (best practice:
# landmarks, one h1) and minor.
AXE_FAIL_IMPACTS = ("critical", "serious", "moderate", "minor")
# The rules whose outcome depends on colours: all a change of theme can change.
AXE_COLOUR_RULES = ("color-contrast", "link-in-text-block")


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def axe_source() -> str:
    """axe.min.js of AXE_VERSION: from VAR_DIR if fetched before, else from the npm registry, the
    tarball refused unless its sha512 is AXE_INTEGRITY. Nothing else is ever fetched."""
    cached = Path(os.environ.get("VAR_DIR", REPO / "var")) / f"axe-core-{AXE_VERSION}" / "axe.min.js"
    if not cached.exists():
        try:
            with urllib.request.urlopen(AXE_TARBALL, timeout=60) as response:
                tarball = response.read()
        except OSError as exc:
            pytest.fail(f"axe-core {AXE_VERSION} is not in {cached.parent} and {AXE_TARBALL} failed: {exc}")
        if _sri(tarball) != AXE_INTEGRITY:
            pytest.fail(f"{AXE_TARBALL} does not match its pinned integrity {AXE_INTEGRITY}: refused")
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            member = archive.extractfile("package/axe.min.js")
            assert member is not None
            source = member.read()
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(source)
        partial.replace(cached)  # atomic: a concurrent run never reads half a file
    return cached.read_text()


def axe_violations(page, source: str, rules: tuple[str, ...] = ()) -> list[str]:
    """The AXE_FAIL_IMPACTS violations axe-core finds in the page as shown now (all its rules, or
    only `rules`), one line each (rule, impact, where). Injected through the DevTools protocol: the
    page's own CSP, which forbids inline script, stays as it is."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(source + "\n;undefined")
    options: dict = {"resultTypes": ["violations"]}
    if rules:
        options["runOnly"] = {"type": "rule", "values": list(rules)}
    results = page.evaluate(
        "async (options) => (await axe.run(document, options)).violations.map("
        "(v) => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' '))}))",
        options,
    )
    return [f"{v['id']} ({v['impact']}): {', '.join(v['nodes'])}" for v in results if v["impact"] in AXE_FAIL_IMPACTS]
