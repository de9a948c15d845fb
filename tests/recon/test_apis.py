"""The on-demand reconcile API: permissions through recon.access, runs stored, actions recorded."""

import datetime as dt

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from recon import access
from recon.models import OperatorAction, ReconRun
from tests.recon.helpers import T0, scenario_write, topic_make

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

URL = "/api/recon/runs"


@pytest.fixture
def topic():
    t = topic_make("api-topic")
    scenario_write(t, n=30, missing=1, orphan=1)
    return t


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _user(name, topic=None, role=None):
    user = User.objects.create_user(name)
    if role:
        access.topic_grant(user, topic, role)
    return user


def _body(topic, **extra):
    # A day later: the test window has closed and its grace has passed.
    return {"topic": topic.name, "start": T0.isoformat(), "end": (T0 + dt.timedelta(minutes=5)).isoformat(), **extra}


def test_anonymous_is_refused(topic):
    response = _client().post(URL, _body(topic), format="json")
    assert response.status_code in (401, 403)
    assert _client().get(URL).status_code in (401, 403)
    assert not ReconRun.objects.exists()


def test_outsider_gets_404_and_viewer_403(topic):
    outsider = _user("outsider")
    response = _client(outsider).post(URL, _body(topic), format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"]

    viewer = _user("viewer", topic, "viewer")
    response = _client(viewer).post(URL, _body(topic), format="json")
    assert response.status_code == 403
    assert not ReconRun.objects.exists()


def test_operator_reconciles_and_reads_the_run_back(topic):
    operator = _user("operator", topic, "operator")
    response = _client(operator).post(URL, _body(topic), format="json")
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["status"] == "done" and run["kind"] == "transport" and run["requested_by"] == "operator"
    assert {c: e["count"] for c, e in run["report"]["findings"].items()} == {"missing": 1, "orphan": 1}

    action = OperatorAction.objects.get(action="reconcile")
    assert action.user == operator and action.target == f"run:{run['id']}" and action.outcome == "done"

    viewer = _user("viewer", topic, "viewer")
    got = _client(viewer).get(f"{URL}/{run['id']}")
    assert got.status_code == 200 and got.json()["report"] == run["report"]
    listed = _client(viewer).get(URL, {"topic": topic.name}).json()
    assert [r["id"] for r in listed["results"]] == [run["id"]]
    assert _client(_user("stranger")).get(f"{URL}/{run['id']}").status_code == 404
    assert _client(_user("stranger2")).get(URL).json()["results"] == []


def test_bad_input_gets_the_one_error_shape(topic):
    operator = _user("operator", topic, "operator")
    response = _client(operator).post(URL, _body(topic, end=T0.isoformat()), format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and "end" in str(error["details"])
    too_long = _body(topic, end=(T0 + dt.timedelta(days=400)).isoformat())
    response = _client(operator).post(URL, too_long, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "range_too_long"
    response = _client(operator).post(URL, {"topic": "no-such-topic", "start": T0, "end": T0}, format="json")
    assert response.status_code in (400, 404)
