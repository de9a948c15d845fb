"""The Runs pages and the "Reconcile now" / "Check cache now" buttons: same access rule as
every page (outsider 404, viewer 403), queued for a worker, followed live, audited."""

import pytest
from django.urls import reverse

from recon.models import Finding, OperatorAction, ReconRun, Window
from recon.tasks import run_execute_task

pytestmark = pytest.mark.django_db


def _post(client, capture, **fields):
    with capture(execute=False) as queued:
        response = client.post(reverse("dashboard:run-request"), fields)
    return response, queued


def test_operator_reconciles_a_window_now_and_follows_the_run(
    client_for, data, topic_a, django_capture_on_commit_callbacks
):
    window = Window.objects.filter(topic=topic_a).first()
    client = client_for("operator")
    page = client.get(reverse("dashboard:window", args=[window.pk])).content.decode()
    assert "Reconcile now" in page and "Check cache now" in page

    response, queued = _post(client, django_capture_on_commit_callbacks, kind="transport", window=window.pk)
    run = ReconRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:run", args=[run.pk])
    assert (run.status, run.kind, run.params, run.trigger) == (
        "queued",
        "transport",
        {"windows": [window.pk]},
        "dashboard",
    )
    assert len(queued) == 1
    action = OperatorAction.objects.get(action="reconcile", target=f"run:{run.pk}")
    assert (action.target, action.outcome) == (f"run:{run.pk}", "queued") and action.user.username == "operator1"

    live = client.get(reverse("dashboard:run", args=[run.pk])).content.decode()
    # Followed by the static poller (no inline script), through the run's status URL.
    assert f'data-live-url="{reverse("api-recon-run", args=[run.pk])}"' in live and "live.js" in live
    assert "<script>" not in live and "style=" not in live and "onclick" not in live

    assert run_execute_task(str(run.pk)) == "done"
    done = client.get(reverse("dashboard:run", args=[run.pk])).content.decode()
    assert "data-live-url" not in done, done
    assert "What it found" in done and "open missing findings" in done
    listed = client.get(reverse("dashboard:runs")).content.decode()
    assert str(run.pk) in listed and "st-done" in listed


def test_check_cache_now_for_a_topic_and_a_load(client_for, data, topic_a, django_capture_on_commit_callbacks):
    from recon.models import Load

    client = client_for("operator")
    assert "Check cache now" in client.get(reverse("dashboard:overview")).content.decode()
    response, _ = _post(client, django_capture_on_commit_callbacks, kind="cache", topic=topic_a.name)
    run = ReconRun.objects.get()
    assert response.status_code == 302 and run.kind == "cache" and run.status == "queued"
    assert run_execute_task(str(run.pk)) == "done"
    run.refresh_from_db()
    assert run.report["kind"] == "cache" and ReconRun.objects.count() == 1  # the check took the queued run over

    load = Load.objects.create(topic=topic_a, source="ods", status="done")
    page = client.get(reverse("dashboard:load", args=[load.pk])).content.decode()
    assert "Check cache now" in page
    response, _ = _post(client, django_capture_on_commit_callbacks, kind="validation", load=str(load.pk))
    assert response.status_code == 302 and ReconRun.objects.get(load=load).kind == "validation"


def test_viewer_gets_403_outsider_404_and_no_buttons(client_for, data, topic_a, django_capture_on_commit_callbacks):
    window = Window.objects.filter(topic=topic_a).first()
    viewer = client_for("viewer")
    assert "Reconcile now" not in viewer.get(reverse("dashboard:window", args=[window.pk])).content.decode()
    response, queued = _post(viewer, django_capture_on_commit_callbacks, kind="transport", window=window.pk)
    assert response.status_code == 403 and not queued
    response, _ = _post(client_for("outsider"), django_capture_on_commit_callbacks, kind="cache", topic=topic_a.name)
    assert response.status_code == 404
    assert not ReconRun.objects.exists()

    run = ReconRun.objects.create(kind="transport", topic=topic_a, range_start=window.start, range_end=window.end)
    assert viewer.get(reverse("dashboard:run", args=[run.pk])).status_code == 200
    assert client_for("outsider").get(reverse("dashboard:run", args=[run.pk])).status_code == 404
    assert str(run.pk) not in client_for("outsider").get(reverse("dashboard:runs")).content.decode()


def test_a_bad_request_says_what_is_wrong(client_for, data, django_capture_on_commit_callbacks):
    client = client_for("operator")
    response, queued = _post(client, django_capture_on_commit_callbacks, kind="transport")
    assert response.status_code == 302 and not queued
    page = client.get(response["Location"]).content.decode()
    assert "Give one of a window, a load or a topic." in page


def test_finding_page_says_fixed_by_replay_verified_by_run(client_for, data):
    finding = data["missing"]
    run = ReconRun.objects.create(
        kind="transport", topic=finding.topic, range_start=finding.window.start, range_end=finding.window.end
    )
    from recon.models import Replay

    replay = Replay.objects.create(topic=finding.topic, way="kafka", scope="messages", fingerprint="x", reason="r")
    Finding.objects.filter(pk=finding.pk).update(
        status="resolved",
        detail={
            "resolved_by": "replay",
            "replay": str(replay.pk),
            "verified_by_run": str(run.pk),
            "resolved_at": "2026-12-01T10:00:00+00:00",
        },
    )
    page = client_for("viewer").get(reverse("dashboard:finding", args=[finding.pk])).content.decode()
    assert "fixed by replay" in page and "verified by run" in page
    assert reverse("dashboard:replay", args=[replay.pk]) in page and reverse("dashboard:run", args=[run.pk]) in page
