"""Pages show fields in words, never a Python or JSON dump: a replay's UUIDs as a list of links, a
window's last reconcile as labelled fields."""

import datetime as dt

from django.urls import reverse
from django.utils import timezone

from recon.models import Replay, Window
from recon.services.windows import window_reconcile


def test_a_replay_lists_its_uuids_as_links(client_for, data, people, topic_a):
    uuids = [str(row.uuid) for row in data["rows_a"][:2]]
    replay = Replay.objects.create(
        topic=topic_a,
        way="kafka",
        scope="messages",
        target={"uuids": uuids},
        fingerprint="dumps",
        reason="lost",
        requested_by=people["operator"],
        size=2,
        expires_at=timezone.now() + dt.timedelta(hours=1),
    )
    html = client_for("viewer").get(reverse("dashboard:replay", args=[replay.pk])).content.decode()
    assert "uuids=" not in html and "['" not in html
    for u in uuids:
        assert f'<li><a href="{reverse("dashboard:message", args=[u])}">{u}</a></li>' in html


def test_a_window_shows_its_last_reconcile_as_fields(client_for, data, topic_a):
    window = Window.objects.filter(topic=topic_a).first()
    window_reconcile(window_id=window.pk, now=timezone.now() + dt.timedelta(days=1))
    html = client_for("viewer").get(reverse("dashboard:window", args=[window.pk])).content.decode()
    assert "<pre>" not in html and '"as_of"' not in html and "{&quot;" not in html
    assert "<dt>Published messages consumed</dt><dd>5</dd>" in html
    assert "<dt>Findings by category</dt><dd>1 missing</dd>" in html
