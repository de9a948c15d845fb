"""Replays that cannot mislead, on the real Kafka, Redis and PostgreSQL: the dry run checks
each way against what exists (the offset still in Kafka, the payload in the audit log, the
record in the source) and suggests one that works; a replay that skips ends "done with
problems" with the reason per message; its verification is queued at its end."""

import pytest
from confluent_kafka import TopicPartition

from core.clients import make_admin
from recon.models import ReconRun, Replay
from replay.preview import replay_dry_run
from replay.services.requests import replay_request
from replay.services.runs import replay_run

from .conftest import lose_one

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _log_start_past(topic_name: str, offset: int) -> None:
    """What retention does, now: the partition's records below `offset` deleted."""
    admin = make_admin()  # kept referenced until the futures resolve
    futures = admin.delete_records([TopicPartition(topic_name, 0, offset)], request_timeout=20, operation_timeout=20)
    for future in futures.values():
        assert future.result(timeout=30).low_watermark == offset


def test_below_the_log_start_the_kafka_way_is_not_suggested_and_its_replay_ends_with_problems(
    feed, client_ids, cache, people, django_capture_on_commit_callbacks
):
    topic = feed.change
    _, lost, _ = lose_one(topic, client_ids, cache)
    _log_start_past(topic.name, lost.offset + 1)  # the lost message is gone from Kafka
    target = {"uuids": [str(lost.uuid)]}

    preview = replay_dry_run(topic=topic, way="kafka", scope="messages", target=target)
    kafka = preview["ways"]["kafka"]
    assert (kafka["reachable"], kafka["unreachable"]) == (0, 1)
    assert "no longer in Kafka" in kafka["reasons"][str(lost.uuid)]
    assert preview["ways"]["audit"]["unreachable"] == 0  # the topic keeps audit payloads
    assert preview["suggested"] == "audit"
    (entry,) = preview["messages"]
    assert entry["verdict"] == "skipped" and "no longer in Kafka" in entry["reason"]  # never "same"

    # Asked anyway: every message tried, the one skipped with why, and the replay not plain done.
    replay, _ = replay_request(
        topic=topic,
        way="kafka",
        scope="messages",
        target=target,
        reason="r",
        requested_by=people["operator"],
        queue=False,
    )
    assert replay.preview["suggested"] == "audit"  # what the requester and the approver see
    with django_capture_on_commit_callbacks(execute=False):
        replay = replay_run(replay_id=replay.pk)
    item = replay.items.get()
    assert (replay.status, replay.outcome) == (Replay.Status.PROBLEMS, {"skipped": 1})
    assert item.outcome == "skipped" and "no longer in Kafka" in item.detail
    # Verification queued at the replay's end (nothing was published for the feed to consume first).
    assert ReconRun.objects.filter(replay=replay, status="queued").exists()


def test_the_suggested_way_works(feed, client_ids, cache, people, django_capture_on_commit_callbacks):
    topic = feed.change
    _, lost, _ = lose_one(topic, client_ids, cache)
    _log_start_past(topic.name, lost.offset + 1)
    target = {"uuids": [str(lost.uuid)]}
    way = replay_dry_run(topic=topic, way="kafka", scope="messages", target=target)["suggested"]
    replay, _ = replay_request(
        topic=topic, way=way, scope="messages", target=target, reason="r", requested_by=people["operator"], queue=False
    )
    with django_capture_on_commit_callbacks(execute=False):
        replay = replay_run(replay_id=replay.pk)
    assert (replay.status, replay.outcome) == (Replay.Status.DONE, {"published": 1})


def test_in_kafka_the_kafka_way_is_suggested(feed, client_ids, cache):
    topic = feed.change
    _, lost, _ = lose_one(topic, client_ids, cache)
    preview = replay_dry_run(topic=topic, way="kafka", scope="messages", target={"uuids": [str(lost.uuid)]})
    assert preview["suggested"] == "kafka" and preview["ways"]["kafka"]["unreachable"] == 0
    assert preview["messages"][0]["verdict"] == "apply"
