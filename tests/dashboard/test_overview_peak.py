"""The overview's busiest second is the windows' kept peak, and equals a scan of the publish
ledger, after a real audit replay republished a lost message into the same window (real
Kafka, Redis and PostgreSQL)."""

import uuid

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from kafkacache.services.change_feed import change_publish
from replay.services.requests import replay_request
from replay.services.runs import replay_run
from tests.documents import client_doc
from tests.people import people_make
from tests.replay.conftest import feed_topics_make, lose_one, reconcile
from tests.window_figures import figures_match_ledger

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _busiest_second_scanned(topic) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM recon_publishedmessage
               WHERE topic_id = %s GROUP BY date_trunc('second', published_at)) s""",
            [topic.pk],
        )
        return cursor.fetchone()[0]


def _overview_peak(client: Client, topic) -> int:
    response = client.get(reverse("dashboard:overview"), {"range": "24h"})
    assert response.status_code == 200
    [item] = [i for i in response.context["items"] if i.topic.pk == topic.pk]
    return item.throughput_peak


def test_overview_peak_equals_the_ledger_scan_after_a_replay(settings, unique_name, cache):
    topic = feed_topics_make(settings, unique_name).change
    base = uuid.uuid4().int % 10**9 * 100 + 1000
    client_ids = iter(range(base, base + 100))
    people = people_make(viewed=[topic], operated=[topic], roles=("viewer", "operator"), role_groups=False)
    viewer = Client()
    viewer.force_login(people["viewer"])
    _, lost, _ = lose_one(topic, client_ids, cache)
    for _ in range(4):  # more in the same hour's window, in their own batches
        change_publish(topic=topic, event="add", record=client_doc(next(client_ids)))
    figures_match_ledger(topic)
    assert _overview_peak(viewer, topic) == _busiest_second_scanned(topic) > 0

    replay, _ = replay_request(
        topic=topic,
        way="audit",
        scope="messages",
        target={"uuids": [str(lost.uuid)]},
        reason="lost between broker and consumer",
        requested_by=people["operator"],
        queue=False,
    )
    assert replay_run(replay_id=replay.pk).outcome == {"published": 1}
    reconcile(topic)
    [window] = figures_match_ledger(topic)  # the replayed message is in its window's seconds
    assert window.published_count == 8
    assert _overview_peak(viewer, topic) == _busiest_second_scanned(topic) == window.published_peak
