"""The API: token auth, cursor pagination, filters, the OpenAPI schema."""

import pytest
from django.urls import include, path, reverse
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from knox.models import AuthToken
from rest_framework.test import APIClient

from recon.models import Finding

pytestmark = pytest.mark.django_db


def _token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


def test_token_auth_and_topic_flags(people, data, topic_a, topic_b):
    body = _token_client(people["operator"]).get(reverse("api-topic-list")).json()
    flags = {t["name"]: (t["can_operate"], t["can_view_payload"]) for t in body}
    assert flags == {topic_a.name: (True, True), topic_b.name: (False, False)}
    assert APIClient().get(reverse("api-topic-list")).status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert bad.get(reverse("api-topic-list")).status_code == 401


def test_findings_cursor_pagination_and_filters(people, topic_a, topic_b):
    Finding.objects.bulk_create(
        Finding(topic=topic_a if i % 2 else topic_b, category="missing", classification="exception", key=f"k{i}")
        for i in range(30)
    )
    client = _token_client(people["viewer"])
    seen, url = [], reverse("api-finding-list") + "?limit=7"
    while url:
        page = client.get(url).json()
        seen.extend(r["id"] for r in page["results"])
        url = page["next"]
    assert len(seen) == len(set(seen)) == 30
    only_a = client.get(reverse("api-finding-list"), {"topic": topic_a.name, "limit": 100}).json()["results"]
    assert len(only_a) == 15 and {r["topic"] for r in only_a} == {topic_a.name}
    bad = client.get(reverse("api-finding-list"), {"severity": "nope"})
    assert bad.status_code == 400 and "severity" in bad.json()["error"]["details"]


def test_acknowledge_via_api(people, data):
    missing = data["missing"]
    client = _token_client(people["operator"])
    url = reverse("api-finding-acknowledge", args=[missing.pk])
    assert client.post(url, {"comment": ""}, format="json").status_code == 400
    response = client.post(url, {"comment": "ticket OPS-1"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "acknowledged" and response.json()["acknowledged_by"] == "operator1"
    # A viewer with an empty comment still gets 403, not a validation hint.
    assert _token_client(people["viewer"]).post(url, {"comment": ""}, format="json").status_code == 403


def test_windows_rebalances_actions(people, data, topic_a):
    client = _token_client(people["viewer"])
    windows = client.get(reverse("api-window-list"), {"topic": topic_a.name}).json()["results"]
    assert sum(w["published_count"] for w in windows) == 6
    assert all(w["topic"] == topic_a.name for w in windows)
    rebalances = client.get(reverse("api-rebalance-list")).json()["results"]
    assert [r["member"] for r in rebalances] == ["member-1"]
    actions = client.get(reverse("api-operator-action-list")).json()["results"]
    # the fixture's topic grants are in the trail too (recon.services.grants), as every grant is
    assert [a["action"] for a in actions if a["action"] != "grant"] == ["reconcile"]
    assert {a["action"] for a in actions} == {"reconcile", "grant"}


def test_dashboard_schema_is_valid_without_warnings():
    """The dashboard's part of the OpenAPI schema (other apps' endpoints are their owners' to keep clean)."""
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/", include("recon.urls"))])
    schema = generator.get_schema(request=None, public=True)
    validate_schema(schema)
    assert not GENERATOR_STATS, (
        f"warnings: {dict(GENERATOR_STATS._warn_cache)} errors: {dict(GENERATOR_STATS._error_cache)}"
    )
    for route in ("/api/findings/", "/api/findings/{id}/acknowledge/", "/api/messages/{uuid}/", "/api/topics/{name}/"):
        assert route in schema["paths"]
    params = {p["name"] for p in schema["paths"]["/api/findings/"]["get"]["parameters"]}
    assert {"topic", "category", "severity", "status", "since", "until", "uuid", "key", "cursor"} <= params


def test_whole_schema_is_served_and_docs_are_local(client_for):
    assert client_for("viewer").get(reverse("api-schema")).status_code == 200
    docs = client_for("viewer").get(reverse("api-docs")).content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower() and "//unpkg" not in docs
