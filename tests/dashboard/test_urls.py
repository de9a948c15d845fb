"""Every URL of the site and the API refuses anonymous requests.

The URL list comes from the urlconf itself, so a page added tomorrow is walked too.
Documented exceptions: /healthz and its per-role probes (load balancers probe
them; no details without login), the login pages and logout (they are how one gets a session).
"""

import pytest

from tests.url_walk import OPEN_BY_DESIGN, SAMPLE_UUID, all_paths

pytestmark = pytest.mark.django_db


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
    assert (response.status_code, response.json()) == (200, {"status": "up"})  # liveness only (config.health)
