"""The governance pages: ageing on the overview, the break panel, My breaks, the dry run page."""

import pytest
from django.urls import reverse

from recon.models import Replay
from recon.services import finding_lifecycle

pytestmark = pytest.mark.django_db


def test_overview_shows_ageing_and_the_oldest_open_break(client_for, data, topic_a):
    content = client_for("viewer").get(reverse("dashboard:overview")).content.decode()
    assert 'id="ageing"' in content
    assert f'data-ageing="{topic_a.name}:critical"' in content
    assert reverse("dashboard:finding", args=[data["missing"].pk]) in content  # the oldest critical break of A
    assert client_for("outsider").get(reverse("dashboard:overview")).content.count(b"data-ageing=") == 0


def test_break_panel_buttons_follow_permissions_and_my_breaks_lists_assigned_ones(client_for, data, people):
    missing = data["missing"]
    page = reverse("dashboard:finding", args=[missing.pk])
    as_operator = client_for("operator").get(page).content.decode()
    as_viewer = client_for("viewer").get(page).content.decode()
    for form in ("assign", "investigate", "fix", "accept", "comment"):
        assert f'id="{form}"' in as_operator and f'id="{form}"' not in as_viewer, form
    assert "timing" in as_operator  # the reason codes to accept with
    response = client_for("operator").post(
        reverse("dashboard:finding-assign", args=[missing.pk]), {"assignee": "operator1", "comment": "mine"}
    )
    assert response.status_code == 302
    mine = client_for("operator").get(reverse("dashboard:my-breaks")).content.decode()
    assert f'data-finding="{missing.pk}"' in mine
    assert (
        f'data-finding="{missing.pk}"' not in client_for("viewer").get(reverse("dashboard:my-breaks")).content.decode()
    )
    bad = client_for("operator").post(reverse("dashboard:finding-accept", args=[missing.pk]), {"reason_code": "x"})
    assert bad.status_code == 302
    missing.refresh_from_db()
    assert missing.status == "open"  # refused, with the reason in the message
    finding_lifecycle.finding_fix(finding=missing, user=people["operator"], comment="done")
    assert "Fixed" in client_for("viewer").get(page).content.decode()


def test_dry_run_page_shows_the_preview_and_queues_nothing(client_for, data, topic_a, cache):
    missing = data["missing"]
    body = {"topic": topic_a.name, "way": "kafka", "scope": "messages", "uuids": str(missing.uuid)}
    response = client_for("operator").post(reverse("dashboard:replay-dry-run"), body)
    assert response.status_code == 200
    content = response.content.decode()
    # The fixture's message was never in Kafka: the kafka way cannot reach it, and says so.
    assert f'data-preview="{missing.uuid}"' in content and ">skipped<" in content and ">apply<" not in content
    assert 'id="ways-check"' in content
    assert 'id="queue-after-dry-run"' in content
    assert not Replay.objects.exists()
    assert client_for("viewer").post(reverse("dashboard:replay-dry-run"), body).status_code == 403
    assert client_for("outsider").post(reverse("dashboard:replay-dry-run"), body).status_code == 404
