"""A replay request: validated, recorded, claimed once; the same request twice gives the same result."""

import pytest

from config.errors import AppError
from kafkacache.consumer import FeedConsumer
from kafkacache.services.change_feed import change_publish
from recon.models import OperatorAction, PublishedMessage, Replay
from replay.services.requests import replay_request
from replay.services.runs import replay_run
from tests.documents import client_doc

from .conftest import fetch

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _ask(topic, operator, uuids, **extra):
    return replay_request(
        topic=topic,
        way=extra.pop("way", "audit"),
        scope="messages",
        target={"uuids": [str(u) for u in uuids]},
        reason=extra.pop("reason", "cache lost it"),
        requested_by=operator,
        queue=False,
        **extra,
    )


def test_the_same_request_twice_gives_the_same_replay_and_a_second_run_does_nothing(feed, client_ids, cache, people):
    topic, operator = feed.change, people["operator"]
    doc = client_doc(next(client_ids))
    lost = change_publish(topic=topic, event="add", record=doc, version=1)

    first, created = _ask(topic, operator, [lost.uuid])
    again, created_again = _ask(topic, operator, [lost.uuid])  # a double click while it is queued
    assert created and not created_again and again.pk == first.pk
    assert Replay.objects.filter(topic=topic).count() == 1
    assert list(
        OperatorAction.objects.filter(target=f"replay:{first.pk}").order_by("at").values_list("outcome", flat=True)
    ) == ["queued", "already queued"]

    done = replay_run(replay_id=first.pk)
    rerun = replay_run(replay_id=first.pk)  # a redelivered task
    assert done.status == rerun.status == "done"
    assert PublishedMessage.objects.filter(replay_of=lost.uuid).count() == 1
    assert rerun.items.count() == 1

    # Once the replay was consumed and the record changed again, asking again is a new request
    # that finds nothing to do: the cache holds a newer version, and a replay never goes back in time.
    replayed = PublishedMessage.objects.get(replay_of=lost.uuid)
    assert replayed.source_version == 1  # the replay carries the version of what it replays
    FeedConsumer().process_batch(fetch(topic.name, replayed.offset, 1))
    newer = change_publish(topic=topic, event="update", record={**doc, "name": "Newer"}, version=2)
    FeedConsumer().process_batch(fetch(topic.name, newer.offset, 1, partition=newer.partition))
    second, created = _ask(topic, operator, [lost.uuid])
    assert created and second.pk != first.pk
    second = replay_run(replay_id=second.pk)
    item = second.items.get()
    assert (second.status, item.outcome) == ("problems", "skipped") and "superseded" in item.detail
    assert PublishedMessage.objects.filter(replay_of=lost.uuid).count() == 1


@pytest.mark.parametrize(
    ("way", "scope", "target", "code"),
    [
        ("audit", "offsets", {"partition": 0, "start_offset": 0, "end_offset": 1}, "bad_scope"),
        ("kafka", "messages", {"uuids": ["not-a-uuid"]}, "bad_target"),
        ("kafka", "offsets", {"partition": 0, "start_offset": 5, "end_offset": 1}, "bad_target"),
        ("source", "clients", {"keys": ["card:1"]}, "bad_target"),
        ("dead-letter", "findings", {"findings": [999999999]}, "bad_target"),
        ("kafka", "window", {"window": 999999999}, "bad_target"),
        ("sideways", "messages", {"uuids": []}, "bad_way"),
    ],
)
def test_a_malformed_request_is_refused_with_a_clear_error_and_nothing_queued(feed, people, way, scope, target, code):
    with pytest.raises(AppError) as refused:
        replay_request(
            topic=feed.change, way=way, scope=scope, target=target, reason="x", requested_by=people["operator"]
        )
    assert refused.value.code == code
    assert not Replay.objects.exists()


def test_a_request_needs_a_reason_and_an_audit_replay_needs_the_audit_log(feed, people):
    topic = feed.change
    with pytest.raises(AppError, match="reason"):
        _ask(topic, people["operator"], ["6f1c2a52-8a8e-4bd4-9c55-1f3a8f0f9a11"], reason="  ")
    topic.method_audit = False
    topic.save()
    with pytest.raises(AppError) as refused:
        _ask(topic, people["operator"], ["6f1c2a52-8a8e-4bd4-9c55-1f3a8f0f9a11"])
    assert refused.value.code == "no_audit_log"


def test_a_run_that_breaks_ends_failed_with_the_reason(feed, people, settings):
    replay, _ = replay_request(
        topic=feed.change,
        way="source",
        scope="clients",
        target={"keys": ["client:1"], "source": "file:nowhere.jsonl"},
        reason="rebuild",
        requested_by=people["operator"],
        queue=False,
    )
    replay = replay_run(replay_id=replay.pk)
    assert replay.status == "failed" and "nowhere.jsonl" in replay.error
    finish = OperatorAction.objects.get(target=f"replay:{replay.pk}", action="replay.finish")
    assert finish.outcome.startswith("failed: ")
