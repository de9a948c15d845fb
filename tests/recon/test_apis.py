"""The on-demand reconcile API: permissions through recon.access, runs stored, actions recorded."""

import datetime as dt

import pytest
from rest_framework.test import APIClient

from recon import access
from recon.models import OperatorAction, ReconRun
from recon.tasks import run_execute_task
from tests.factories import UserFactory
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
    user = UserFactory(username=name)
    if role:
        access.topic_grant(user, topic, role)
    return user


def _body(topic, **extra):
    # A day later: the test window has closed and its grace has passed.
    return {"topic": topic.name, "start": T0.isoformat(), "end": (T0 + dt.timedelta(minutes=5)).isoformat(), **extra}


def test_anonymous_is_refused(topic):
    response = _client().post(URL, _body(topic), format="json")
    assert response.status_code == 401
    assert _client().get(URL).status_code == 401
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


def test_operator_queues_a_reconcile_and_reads_the_run_back(topic, django_capture_on_commit_callbacks):
    operator = _user("operator", topic, "operator")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = _client(operator).post(URL, _body(topic), format="json")
    # Answered at once: the run is queued for a worker, not run inside the request.
    assert response.status_code == 202, response.content
    run = response.json()
    assert run["status"] == "queued" and run["kind"] == "transport" and run["requested_by"] == "operator"
    assert run["status_url"] == f"{URL}/{run['id']}" and run["report"] == {}
    assert len(queued) == 1

    action = OperatorAction.objects.get(action="reconcile")
    assert action.user == operator and action.target == f"run:{run['id']}" and action.outcome == "queued"

    assert run_execute_task(run["id"]) == "done"
    assert run_execute_task(run["id"]) == "done"  # a redelivered task finds it taken: no second pass
    viewer = _user("viewer", topic, "viewer")
    got = _client(viewer).get(f"{URL}/{run['id']}")
    assert got.status_code == 200
    done = got.json()
    assert done["status"] == "done" and done["total"] == 1 and done["processed"] == 1
    assert {c: e["count"] for c, e in done["report"]["findings"].items()} == {"missing": 1, "orphan": 1}
    run = done
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


def test_cache_and_validation_runs_are_queued_and_run_as_one_run(topic, django_capture_on_commit_callbacks):
    operator = _user("operator", topic, "operator")
    for kind in ("cache", "validation"):
        with django_capture_on_commit_callbacks(execute=False):
            response = _client(operator).post(URL, _body(topic, kind=kind), format="json")
        assert response.status_code == 202, response.content
        assert run_execute_task(response.json()["id"]) == "done"
    # The check took the queued run over instead of adding its own.
    assert ReconRun.objects.count() == 2
    assert set(ReconRun.objects.values_list("kind", "status")) == {("cache", "done"), ("validation", "done")}
    cache = ReconRun.objects.get(kind="cache")
    assert cache.report["kind"] == "cache" and "checked" in cache.report and cache.trigger == "api"


def test_a_run_whose_task_was_lost_is_queued_again_and_a_silent_transport_run_taken_over(
    topic, django_capture_on_commit_callbacks, settings, monkeypatch
):
    """A broker restart loses a queued run's task; a worker dies inside a transport run.
    runs_resume (beat) queues both again; a live cache run is never taken over. The
    queued-again task runs in this process (Celery's eager mode) as a worker would run it."""
    from config.celery import app
    from recon.tasks import runs_resume_task

    monkeypatch.setitem(app.conf, "task_always_eager", True)
    operator = _user("operator", topic, "operator")
    ids = {}
    for kind in ("transport", "cache"):
        with django_capture_on_commit_callbacks(execute=False):  # the tasks are lost
            ids[kind] = _client(operator).post(URL, _body(topic, kind=kind), format="json").json()["id"]
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=settings.RECON_RUN_STALE_SECONDS + 5)
    ReconRun.objects.filter(pk=ids["transport"]).update(created_at=long_ago)
    ReconRun.objects.filter(pk=ids["cache"]).update(created_at=dt.datetime.now(dt.UTC))  # just queued: left

    assert runs_resume_task() == [ids["transport"]]
    assert ReconRun.objects.get(pk=ids["transport"]).status == "done"

    # A transport run whose worker died mid-run (claimed, then silent) is taken over; a
    # running cache run (it does not beat) is left to its worker.
    stalled = ReconRun.objects.get(pk=ids["transport"])
    ReconRun.objects.filter(pk=stalled.pk).update(status="running", heartbeat_at=long_ago, finished_at=None)
    ReconRun.objects.filter(pk=ids["cache"]).update(status="running", heartbeat_at=long_ago)
    assert sorted(runs_resume_task()) == [ids["transport"]]
    again = ReconRun.objects.get(pk=ids["transport"])
    assert again.status == "done" and again.heartbeat_at > long_ago and again.processed == again.total == 1
    assert ReconRun.objects.get(pk=ids["cache"]).status == "running"
    assert run_execute_task(ids["cache"]) == "running"  # a redelivered task does not run it twice
