"""Error pages on the base layout with no internals, the API's one JSON error shape for Django-level
errors under /api/, and bad filter values explained in the page."""

import json

import pytest
from django.test import RequestFactory
from django.urls import reverse

from config import errors
from config.middleware import ErrorPagesInDebug

# Django's own debug pages, which must never answer a 404 or a 400 (DEBUG on or off).
DJANGO_DEBUG_PAGE = ("URLconf", "Traceback", "DEBUG = True", "technical")


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def _shape(response, status: int, code: str) -> None:
    assert response.status_code == status and response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code


def _our_page(response, status: int, heading: str) -> str:
    html = response.content.decode()
    assert response.status_code == status and response["Content-Type"].startswith("text/html")
    assert heading in html and not [marker for marker in DJANGO_DEBUG_PAGE if marker in html]
    return html


def test_404_is_the_page_and_json_under_the_api(client_for, debug):
    client = client_for("viewer")
    html = _our_page(client.get("/no-such-page/"), 404, "404 · Not found")
    assert 'aria-label="Main"' in html  # the base layout, logged in
    _shape(client.get("/api/no-such-endpoint/"), 404, "not_found")
    # Raised by a view (no such finding) rather than by the URL resolver.
    _our_page(client.get(reverse("dashboard:finding", args=[987654321])), 404, "404 · Not found")
    _shape(client.get("/api/findings/987654321/"), 404, "not_found")


def test_a_missing_slash_is_still_redirected(client_for, debug):
    response = client_for("viewer").get(reverse("dashboard:findings").rstrip("/"))
    assert response.status_code == 301 and response["Location"] == reverse("dashboard:findings")


def test_400_is_the_page_and_json_under_the_api(client_for, debug, caplog):
    client = client_for("viewer")
    page = client.get("/", HTTP_HOST="evil.example")  # not in ALLOWED_HOSTS: Django refuses it
    _our_page(page, 400, "400 · Bad request")
    _shape(client.get("/api/findings/", HTTP_HOST="evil.example"), 400, "bad_request")
    # Recorded as Django records it: on the security logger, naming the host.
    assert any(r.name == "django.security.DisallowedHost" and "evil.example" in r.getMessage() for r in caplog.records)


def test_with_debug_on_a_500_keeps_djangos_debug_page(settings):
    """A developer running with DEBUG wants the traceback: the middleware leaves a crash to Django."""
    settings.DEBUG = True
    middleware = ErrorPagesInDebug(lambda request: None)  # type: ignore[arg-type,return-value]
    assert middleware.process_exception(RequestFactory().get("/findings/"), RuntimeError("boom")) is None


def test_500_and_403_have_the_shape_under_the_api_and_a_page_elsewhere(people):
    factory = RequestFactory()
    _shape(errors.server_error(factory.get("/api/findings/")), 500, "server_error")
    _shape(errors.permission_denied(factory.get("/api/findings/")), 403, "permission_denied")
    page = errors.server_error(factory.get("/findings/"))
    assert page.status_code == 500 and "500 · Something went wrong" in page.content.decode()


def test_bad_evidence_dates_are_explained_on_the_page(client_for, topic_a):
    response = client_for("admin").get(
        reverse("dashboard:evidence-download"), {"topic": topic_a.name, "start": "yesterday", "end": "2026-13-45"}
    )
    html = response.content.decode()
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")
    assert 'id="form-errors"' in html and 'data-field="start"' in html and 'data-field="end"' in html
    assert 'value="yesterday"' in html and 'id="evidence"' in html  # the form again, with what was typed


def test_bad_overview_dates_and_range_are_explained(client_for):
    client = client_for("viewer")
    for params, field in (({"start": "2026-13-45T00:00"}, "start"), ({"range": "7y"}, "range")):
        html = client.get(reverse("dashboard:overview"), params).content.decode()
        assert 'id="form-errors"' in html and f'data-field="{field}"' in html and "Showing the last 24h" in html
