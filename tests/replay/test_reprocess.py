"""Dead letters reprocessed once their cause is fixed land in Redis; the outcome is kept per message."""

import datetime as dt

import pytest
from django.utils import timezone

from kafkacache.consumer import FeedConsumer
from kafkacache.services.change_feed import change_publish
from recon.models import ConsumedMessage, Finding
from replay.services.requests import replay_request
from replay.services.runs import replay_run
from tests.cache_state import cached
from tests.documents import client_doc

from .conftest import fetch, finding_of, reconcile

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _reprocess(topic, operator, **target):
    scope = "findings" if "findings" in target else "range"
    replay, created = replay_request(
        topic=topic,
        way="dead-letter",
        scope=scope,
        target=target,
        reason="schema limit raised",
        requested_by=operator,
        queue=False,
    )
    assert created
    return replay_run(replay_id=replay.pk)


def test_dead_letters_reprocessed_after_the_fix_land_in_redis(feed, client_ids, cache, people, settings):
    topic, operator = feed.change, people["operator"]
    first, second = (change_publish(topic=topic, event="add", record=client_doc(next(client_ids))) for _ in range(2))
    messages = fetch(topic.name, first.offset, 2)
    settings.MESSAGE_MAX_BYTES = 256  # the cause: a limit too small for the records
    FeedConsumer().process_batch(messages)
    assert cached(cache, first.key) is None and cached(cache, second.key) is None
    dead_first, dead_second = (
        finding_of(topic, "dead-lettered", first.uuid),
        finding_of(topic, "dead-lettered", second.uuid),
    )
    assert "oversize" in dead_first.detail["reason"]

    # Reprocessed before the fix: dead again, with the reason; the finding stays open.
    replay = _reprocess(topic, operator, findings=[dead_first.pk])
    item = replay.items.get()
    assert (replay.status, item.outcome, item.original_uuid) == ("problems", "dead", first.uuid)
    assert "oversize" in item.detail
    dead_first.refresh_from_db()
    assert dead_first.status == Finding.Status.OPEN
    # One problem, one finding: the failed attempt is counted on it, not added as another.
    assert Finding.objects.filter(topic=topic, category="dead-lettered", uuid=first.uuid).count() == 1
    assert dead_first.detail["attempts"] == 2 and "oversize" in dead_first.detail["last_error"]

    settings.MESSAGE_MAX_BYTES = 10240  # the fix
    replay = _reprocess(topic, operator, findings=[dead_first.pk])
    item = replay.items.get()
    assert (item.outcome, item.partition, item.offset) == ("stored", 0, first.offset)
    assert cached(cache, first.key).value == messages[0].value()
    dead_first.refresh_from_db()
    assert (dead_first.status, dead_first.detail["resolved_by"], dead_first.detail["replay"]) == (
        "resolved",
        "replay",
        str(replay.pk),
    )
    assert finding_of(topic, "dead-lettered", second.uuid).status == Finding.Status.OPEN  # not asked for

    # In bulk: every dead letter of the topic over a time range (the first is resolved, so only the second).
    now = timezone.now()
    replay = _reprocess(
        topic,
        operator,
        start=(now - dt.timedelta(hours=1)).isoformat(),
        end=(now + dt.timedelta(minutes=1)).isoformat(),
    )
    assert (replay.status, replay.outcome) == ("done", {"stored": 1})
    assert replay.items.get().original_uuid == second.uuid
    assert cached(cache, second.key).value == messages[1].value()
    dead_second.refresh_from_db()
    assert dead_second.status == Finding.Status.RESOLVED

    # The ledger has each message's dead attempts and its one delivery, in its own topic/partition/offset;
    # the reconcile counts it delivered once: no missing, no duplicate, nothing late.
    rows = ConsumedMessage.objects.filter(uuid=first.uuid).order_by("consumed_at")
    assert [(r.outcome, r.offset) for r in rows] == [
        ("dead", first.offset),
        ("dead", first.offset),
        ("stored", first.offset),
    ]
    run = reconcile(topic)
    assert run.report["findings"] == {}


@pytest.mark.parametrize("forge", ["value", "key", "uuid"])
def test_a_forged_dead_letter_at_the_findings_coordinates_is_refused(feed, client_ids, cache, people, settings, forge):
    """Reprocess does not trust coordinates: someone who may write to the dead-letter
    topic plants a letter naming the finding's partition and offset; its uuid, key or
    content hash is not the finding's (and the consume ledger's), so nothing runs."""
    from core.clients import make_producer

    topic, operator = feed.change, people["operator"]
    victim = change_publish(topic=topic, event="add", record=client_doc(next(client_ids)))
    (message,) = fetch(topic.name, victim.offset, 1)
    settings.MESSAGE_MAX_BYTES = 256
    FeedConsumer().process_batch([message])
    dead = finding_of(topic, "dead-lettered", victim.uuid)
    settings.MESSAGE_MAX_BYTES = 10240

    headers = dict(message.headers())
    key, value = message.key(), message.value()
    other = change_publish(topic=topic, event="add", record=client_doc(next(client_ids)))
    if forge == "value":
        (value,) = [m.value() for m in fetch(topic.name, other.offset, 1)]
    elif forge == "key":
        key = other.key.encode()
    else:
        headers["uuid"] = str(other.uuid).encode()
    headers.update({"dlq-topic": topic.name.encode(), "dlq-partition": b"%d" % message.partition()})
    headers["dlq-offset"] = b"%d" % message.offset()
    producer = make_producer()
    producer.produce(feed.dead_letter, key=key, value=value, headers=list(headers.items()))
    producer.flush(10)

    replay = _reprocess(topic, operator, findings=[dead.pk])
    item = replay.items.get()
    assert item.outcome == "failed" and "not the finding's message" in item.detail
    assert cached(cache, victim.key) is None and cached(cache, other.key) is None
    dead.refresh_from_db()
    assert dead.status == Finding.Status.OPEN
