"""Every URL of the site and the API refuses anonymous requests.

The URL list comes from the urlconf itself, so a page added tomorrow is walked too.
Documented exceptions: /healthz and its per-role probes (load balancers probe
them; no details without login), the login pages and logout (they are how one gets a session).
"""

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

pytestmark = pytest.mark.django_db

OPEN_BY_DESIGN = {"healthz", "healthz/queue/x", "healthz/x"}
OPEN_BY_DESIGN |= {"accounts/login/", "accounts/logout/", "admin/login/", "admin/logout/"}
SAMPLE_UUID = str(uuid.uuid4())


def _fill_route(route: str) -> str:
    def sample(match: re.Match) -> str:
        converter, name = match.group(1) or "str", match.group(2)
        return {"int": "1", "uuid": SAMPLE_UUID}.get(converter, "x" if "uuid" not in name else SAMPLE_UUID)

    return re.sub(r"<(?:(\w+):)?(\w+)>", sample, route)


def _fill_regex(regex: str) -> str:
    """'^findings/(?P<pk>[^/.]+)/$' -> 'findings/1/' (groups filled, anchors and escapes dropped)."""
    out, i = [], 0
    text = regex.lstrip("^").rstrip("$")
    while i < len(text):
        if text.startswith("(?P<", i):
            name = text[i + 4 : text.index(">", i)]
            depth, j = 0, i
            while True:
                depth += {"(": 1, ")": -1}.get(text[j], 0) if text[j - 1 : j] != "\\" else 0
                j += 1
                if depth == 0:
                    break
            out.append(SAMPLE_UUID if "uuid" in name else ("json" if name == "format" else "1"))
            i = j
        elif text[i] == "\\":
            out.append(text[i + 1])
            i += 2
        elif text[i] in "?*+":
            i += 1  # an optional trailing slash and the like: keep the character before, drop the quantifier
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _walk(patterns, prefix: str = ""):
    for p in patterns:
        pattern = p.pattern
        if isinstance(pattern, RoutePattern):
            part = _fill_route(str(pattern))
        elif isinstance(pattern, RegexPattern):
            part = _fill_regex(pattern.regex.pattern)
        else:  # pragma: no cover - Django has only these two
            raise AssertionError(f"unknown pattern {pattern!r}")
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + part)
        elif isinstance(p, URLPattern):
            yield prefix + part


def all_paths() -> list[str]:
    return sorted(set(_walk(get_resolver().url_patterns)))


def _refused(response) -> bool:
    if response.status_code in (401, 403):
        return True
    if response.status_code == 302:
        location = response["Location"]
        return location.startswith("/accounts/login/") or location.startswith("/admin/login/")
    return False


def test_the_walk_covers_the_dashboard_and_api():
    paths = all_paths()
    # A sanity check of the walker itself: it must see the pages and API endpoints it guards.
    for expected in ("", "findings/", f"messages/{SAMPLE_UUID}/", "api/findings/", "api/findings/1/acknowledge/"):
        assert expected in paths, expected
    assert any(p.startswith("admin/recon/publishedmessage/") for p in paths)
    assert "api/schema/" in paths and "api/docs/" in paths


@pytest.mark.parametrize("path", [p for p in all_paths() if p not in OPEN_BY_DESIGN])
def test_anonymous_is_refused(client, path):
    for method in ("get", "post"):
        response = getattr(client, method)("/" + path)
        assert _refused(response), f"{method.upper()} /{path} answered {response.status_code} to an anonymous request"


def test_healthz_is_open_but_says_no_details(client):
    response = client.get("/healthz")
    assert response.status_code in (200, 503)
    assert all("detail" not in check for check in response.json()["checks"].values())
