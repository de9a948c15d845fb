"""Error pages on the base layout with no internals, the API's one JSON error shape for Django-level
errors under /api/, and bad filter values explained in the page."""

import json

from django.test import RequestFactory
from django.urls import reverse

from config import errors


def _shape(response, status: int, code: str) -> None:
    assert response.status_code == status and response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code


def test_404_is_the_page_and_json_under_the_api(client_for):
    client = client_for("viewer")
    page = client.get("/no-such-page/")
    html = page.content.decode()
    assert page.status_code == 404 and "404 · Not found" in html and 'aria-label="Main"' in html
    assert "Traceback" not in html and "URLconf" not in html
    _shape(client.get("/api/no-such-endpoint/"), 404, "not_found")


def test_400_is_the_page_and_json_under_the_api(client_for):
    client = client_for("viewer")
    page = client.get("/", HTTP_HOST="evil.example")  # not in ALLOWED_HOSTS: Django refuses it
    assert page.status_code == 400 and "400 · Bad request" in page.content.decode()
    _shape(client.get("/api/findings/", HTTP_HOST="evil.example"), 400, "bad_request")


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
