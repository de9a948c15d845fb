"""Every page has current screenshots (docs/screenshots/, the gallery docs/screenshots.md).

No browser here: docs/screenshots/manifest.json, written by `make screenshots`, records per
page its URL name, the digest of its view's source, of each of our templates it rendered
and of each of our static files it loaded, and of its four PNGs. These tests hash the same
files again (scripts/screenshots.py's helpers, one place for the rule) and name the page
and the command when something changed since its screenshots were taken."""

import json
import re

import pytest

from scripts import screenshots as s

CURE = "make screenshots (or: .venv/bin/python scripts/screenshots.py --only {names})"
# The PNGs are in git: a ceiling that a long page shot whole, or a new page shot badly,
# runs into (the set is about 12.3 MB today; one page's four screenshots rarely pass 1.2 MB).
TOTAL_BYTES_MAX = 14 * 1024 * 1024
FILE_BYTES_MAX = 600 * 1024


@pytest.fixture(scope="module")
def manifest() -> dict:
    assert s.MANIFEST.is_file(), f"no {s.MANIFEST.relative_to(s.ROOT)}: run make screenshots"
    return json.loads(s.MANIFEST.read_text())


def _cure(names) -> str:
    return CURE.format(names=",".join(sorted(names)))


def test_every_page_has_a_shot():
    """Every named route is shot, or is said to be no page (NOT_PAGES) or left out by rule."""
    shot_urls = {shot.url for shot in s.SHOTS}
    unshot = sorted(
        f"{name or pattern.pattern}"
        for name, pattern in s.url_patterns()
        if name not in shot_urls and name not in s.NOT_PAGES and s.url_exclusion(name, pattern) is None
    )
    assert unshot == [], (
        "pages with no screenshot (add a Shot to SHOTS in scripts/screenshots.py, or say in NOT_PAGES "
        f"why it is no page, then run make screenshots): {', '.join(unshot)}"
    )


def test_what_the_shot_list_names_exists():
    routes = {name for name, _ in s.url_patterns()}
    names = [shot.name for shot in s.SHOTS]
    assert len(names) == len(set(names)), "two shots of one name"
    assert all(re.fullmatch(r"[a-z0-9-]+", n) for n in names), names
    stale = sorted({shot.url for shot in s.SHOTS} - routes) + sorted(set(s.NOT_PAGES) - routes)
    assert stale == [], f"scripts/screenshots.py names routes that do not exist: {', '.join(stale)}"


def test_every_page_screenshot_is_current(manifest):
    stale = s.shots_stale(manifest)
    report = "\n".join(f"  {name}: {'; '.join(changes)}" for name, changes in sorted(stale.items()))
    assert stale == {}, (
        f"{len(stale)} page(s) have no current screenshot:\n{report}\nrun {_cure(stale)}" if stale else ""
    )


def test_the_manifest_vouches_for_what_rendered_each_page(manifest):
    """Each entry names the view's digest and at least the page's own template and stylesheet
    (an entry with nothing in it would make the check above vacuous)."""
    empty = []
    for shot in s.SHOTS:
        entry = manifest["shots"].get(shot.name)
        if entry is None:
            continue  # named by the test above
        ours = shot.url.startswith(("dashboard:", "monitoring:")) or shot.url == "login"
        # A page on base.html loads our stylesheet; one that is not (the evidence summary) need not.
        styled = entry["static"] or "base.html" not in entry["templates"]
        if not entry.get("png") or not entry["view"] or (ours and not (entry["templates"] and styled)):
            empty.append(shot.name)
    assert empty == [], f"manifest entries that record nothing to check: {', '.join(empty)}; run {_cure(empty)}"
    extra = sorted(set(manifest["shots"]) - {shot.name for shot in s.SHOTS})
    assert extra == [], f"the manifest names shots that SHOTS does not: {', '.join(extra)}; run make screenshots"


def test_no_screenshot_is_left_over():
    wanted = {n for shot in s.SHOTS for n in s.png_names(shot)}
    extra = sorted(p.name for p in s.OUT.glob("*.png") if p.name not in wanted)
    assert extra == [], f"screenshots of no page (make screenshots removes them): {', '.join(extra)}"


def test_the_gallery_is_current():
    stale = f"{s.GALLERY.relative_to(s.ROOT)} is stale: run make screenshots"
    assert s.GALLERY.read_text() == s.gallery_render(), stale


def test_the_screenshots_stay_small():
    sizes = {p.name: p.stat().st_size for p in s.OUT.glob("*.png")}
    big = sorted(f"{n} ({b // 1024} KB)" for n, b in sizes.items() if b > FILE_BYTES_MAX)
    assert big == [], f"screenshots over {FILE_BYTES_MAX // 1024} KB: {', '.join(big)}"
    total = sum(sizes.values())
    assert total <= TOTAL_BYTES_MAX, f"docs/screenshots/*.png total {total // 1024} KB, over {TOTAL_BYTES_MAX // 1024}"


def test_a_change_to_what_rendered_a_page_is_caught(manifest):
    """Negative control: a template, static file, view, PNG or URL name that differs from
    the manifest's makes that page stale, and a page missing from it is 'never shot'."""
    shot = next(x for x in s.SHOTS if x.name == "finding")
    entry = manifest["shots"][shot.name]
    template, static, png = next(iter(entry["templates"])), next(iter(entry["static"])), next(iter(entry["png"]))
    changed = {
        "template": {**entry, "templates": {**entry["templates"], template: "0"}},
        "static": {**entry, "static": {**entry["static"], static: "0"}},
        "view": {**entry, "view": "0"},
        "png": {**entry, "png": {**entry["png"], png: "0"}},
        "url": {**entry, "url": "dashboard:elsewhere"},
    }
    for what, altered in changed.items():
        stale = s.shots_stale({"shots": {**manifest["shots"], shot.name: altered}})
        assert list(stale) == [shot.name], what
    without = {name: e for name, e in manifest["shots"].items() if name != shot.name}
    assert s.shots_stale({"shots": without}) == {shot.name: ["never shot"]}
