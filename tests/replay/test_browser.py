"""End to end in headless Chromium: an operator's replay click restores a lost message in Redis.

The click posts the finding page's form to the live server, which queues the
replay; a real Celery worker process runs it (Kafka re-read, the feed's consumer
logic, Redis, ledger); the next reconcile resolves the finding naming the replay.
"""

import time

import pytest
from django.urls import reverse

from kafkacache.consumer import FeedConsumer
from kafkacache.redis_keys import rec_key
from kafkacache.services import change_publish
from recon.models import Finding, Replay
from tests.documents import client_doc

from .conftest import fetch, finding_of, reconcile

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def test_an_operators_replay_click_restores_the_lost_message_in_redis(
    transactional_db,
    live_server,
    login,
    feed,
    people,
    client_ids,
    cache,
    celery_worker_process,
):
    topic = feed.change
    kept, lost = (change_publish(topic=topic, event="add", record=client_doc(next(client_ids))) for _ in range(2))
    messages = fetch(topic.name, kept.offset, 2)
    FeedConsumer().process_batch(messages[:1])  # the subscriber never got the second one
    reconcile(topic)
    missing = finding_of(topic, "missing", lost.uuid)
    assert not cache.exists(rec_key(lost.key))

    page = login("operator1")
    page.goto(live_server.url + reverse("dashboard:finding", args=[missing.pk]))
    page.fill(f"#replay-{lost.uuid} input[name=reason]", "lost between Kafka and Redis")
    page.click(f"#replay-{lost.uuid} button[value=kafka]")
    page.wait_for_selector("#replay-status")
    replay = Replay.objects.get()
    assert page.url == live_server.url + reverse("dashboard:replay", args=[replay.pk])
    assert "queued." in page.inner_text(".msg")

    deadline = time.monotonic() + 60
    while not cache.exists(rec_key(lost.key)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cache.hget(rec_key(lost.key), "p") == messages[1].value()
    page.wait_for_function("() => document.querySelector('#replay-status').textContent === 'done'", timeout=20000)
    assert page.locator("tr[data-item] .badge").all_inner_texts() == ["Stored in Redis"]
    replay.refresh_from_db()
    assert (replay.status, replay.outcome, replay.requested_by) == ("done", {"stored": 1}, people["operator"])

    reconcile(topic)
    missing.refresh_from_db()
    assert (missing.status, missing.detail["replay"]) == (Finding.Status.RESOLVED, str(replay.pk))
