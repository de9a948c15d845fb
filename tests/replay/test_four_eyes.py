"""Four eyes on replays (replay.services.approval) and the replay guard, on the real Kafka, Redis and PostgreSQL."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from config.errors import AppError, Conflict
from kafkacache.services.change_feed import change_publish
from recon import access
from recon.models import OperatorAction, PublishedMessage, Replay, Window
from replay.services.approval import replay_approve, replay_reject
from replay.services.requests import replay_request
from replay.services.runs import replay_run
from replay.tasks import replay_approvals_expire_task
from tests.documents import client_doc
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def checker(people, feed):
    user = UserFactory(username="checker1", password=PASSWORD)
    access.topic_grant(user, feed.change, "operator")
    return user


def _ask(topic, user, uuids, **extra):
    return replay_request(
        topic=topic,
        way=extra.pop("way", "audit"),
        scope="messages",
        target={"uuids": [str(u) for u in uuids]},
        reason="cache lost it",
        requested_by=user,
        queue=False,
    )


def test_above_the_threshold_a_replay_waits_for_a_second_operator_who_is_never_the_requester(
    feed, client_ids, cache, people, checker
):
    topic, maker = feed.change, people["operator"]
    topic.approval_threshold = 1
    topic.save()
    one = change_publish(topic=topic, event="add", record=client_doc(next(client_ids)))
    two = change_publish(topic=topic, event="add", record=client_doc(next(client_ids)))

    small, _ = _ask(topic, maker, [one.uuid])  # 1 message: not above the threshold
    assert (small.status, small.needs_approval) == ("queued", False)
    replay, created = _ask(topic, maker, [one.uuid, two.uuid])
    assert created and (replay.status, replay.needs_approval, replay.size) == ("pending", True, 2)
    assert replay.expires_at > timezone.now() + dt.timedelta(hours=23)
    assert replay.preview["totals"]["messages"] == 2 and len(replay.preview["messages"]) == 2
    # Nothing pending runs, whoever asks.
    assert replay_run(replay_id=replay.pk).status == "pending"

    with pytest.raises(PermissionDenied):
        replay_approve(replay=replay, user=maker)
    with pytest.raises(PermissionDenied):
        replay_approve(replay=replay, user=people["viewer"])
    with pytest.raises(Http404):
        replay_approve(replay=replay, user=people["outsider"])
    refusals = OperatorAction.objects.filter(action="replay.approve", target=f"replay:{replay.pk}")
    assert sorted(refusals.values_list("user__username", "outcome")) == [
        ("operator1", "refused: own request"),
        ("viewer1", "refused"),
    ]

    approved = replay_approve(replay=replay, user=checker, comment="checked the two keys")
    assert (approved.status, approved.decided_by) == ("queued", checker)
    entry = OperatorAction.objects.get(action="replay.approve", outcome="approved: queued")
    assert (
        entry.user == checker
        and entry.detail["requested_by"] == "operator1"
        and entry.detail["decided_by"] == "checker1"
    )
    with pytest.raises(Conflict):
        replay_approve(replay=replay, user=checker)  # approved once only
    done = replay_run(replay_id=replay.pk)
    assert done.status == "done" and done.outcome == {"published": 2}
    assert PublishedMessage.objects.filter(replay_of__in=[one.uuid, two.uuid]).count() == 2


def test_rejected_and_expired_requests_never_run_and_both_are_in_the_audit_trail(
    feed, client_ids, cache, people, checker
):
    topic, maker = feed.change, people["operator"]
    topic.approval_always = True
    topic.save()
    one = change_publish(topic=topic, event="add", record=client_doc(next(client_ids)))
    two = change_publish(topic=topic, event="add", record=client_doc(next(client_ids)))

    rejected, _ = _ask(topic, maker, [one.uuid])
    with pytest.raises(AppError):
        replay_reject(replay=rejected, user=checker, comment="")
    rejected = replay_reject(replay=rejected, user=checker, comment="wrong key")
    assert rejected.status == "rejected" and replay_run(replay_id=rejected.pk).status == "rejected"
    entry = OperatorAction.objects.get(action="replay.reject")
    assert (entry.user, entry.detail["requested_by"], entry.detail["comment"]) == (checker, "operator1", "wrong key")

    late, _ = _ask(topic, maker, [two.uuid])
    Replay.objects.filter(pk=late.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert replay_approvals_expire_task() == 1  # the beat task, called as the worker would
    late.refresh_from_db()
    assert late.status == "expired"
    expired = OperatorAction.objects.get(action="replay.expire")
    assert expired.user is None and expired.detail["requested_by"] == "operator1"
    with pytest.raises(Conflict):
        replay_approve(replay=late, user=checker)
    assert not PublishedMessage.objects.filter(replay_of__in=[one.uuid, two.uuid]).exists()
    # The same request again is a new one (the expired one is not live).
    again, created = _ask(topic, maker, [two.uuid])
    assert created and again.status == "pending"


def test_the_replay_guard_refuses_a_message_replayed_n_times(feed, client_ids, cache, people, settings):
    settings.REPLAY_MAX_PER_MESSAGE = 1
    topic, operator = feed.change, people["operator"]
    lost = change_publish(topic=topic, event="add", record=client_doc(next(client_ids)))
    other = change_publish(topic=topic, event="add", record=client_doc(next(client_ids)))
    first, _ = _ask(topic, operator, [lost.uuid], way="kafka")
    assert replay_run(replay_id=first.pk).outcome == {"stored": 1}

    with pytest.raises(AppError) as refused:
        _ask(topic, operator, [lost.uuid], way="kafka")
    assert refused.value.code == "replay_limit" and refused.value.status_code == 409
    assert refused.value.details["uuids"] == [str(lost.uuid)]
    assert OperatorAction.objects.filter(action="replay", outcome="refused: replay guard", user=operator).count() == 1

    # A wider scope that reaches it skips it with the reason and replays the rest.
    at = PublishedMessage.objects.get(uuid=lost.uuid).published_at
    window = Window.objects.get(topic=topic, start__lte=at, end__gt=at)
    wide, _ = replay_request(
        topic=topic,
        way="kafka",
        scope="window",
        target={"window": window.pk},
        reason="all of it",
        requested_by=operator,
        queue=False,
    )
    wide = replay_run(replay_id=wide.pk)
    outcomes = {str(i.original_uuid): (i.outcome, i.detail) for i in wide.items.all()}
    assert outcomes[str(lost.uuid)][0] == "skipped" and "replay guard" in outcomes[str(lost.uuid)][1]
    assert outcomes[str(other.uuid)][0] == "stored"
    # An offset range is known message by message only once read: the guard skips it then.
    row = PublishedMessage.objects.get(uuid=lost.uuid)
    offsets, _ = replay_request(
        topic=topic,
        way="kafka",
        scope="offsets",
        target={"partition": row.partition, "start_offset": row.offset, "end_offset": row.offset},
        reason="by offset",
        requested_by=operator,
        queue=False,
    )
    item = replay_run(replay_id=offsets.pk).items.get()
    assert (item.original_uuid, item.outcome) == (lost.uuid, "skipped") and "replay guard" in item.detail


def test_a_replay_split_into_small_requests_still_waits_for_a_second_operator(
    feed, client_ids, cache, people, checker, settings
):
    """The threshold counts what one person asked for on the topic without a second operator
    over REPLAY_APPROVAL_WINDOW_HOURS, not each request alone."""
    topic, maker = feed.change, people["operator"]
    topic.approval_threshold = 2
    topic.save()
    messages = [change_publish(topic=topic, event="add", record=client_doc(next(client_ids))) for _ in range(5)]
    first, _ = _ask(topic, maker, [messages[0].uuid])
    second, _ = _ask(topic, maker, [messages[1].uuid])
    assert (first.status, second.status) == ("queued", "queued")  # 1, then 2 in all: not above 2
    third, _ = _ask(topic, maker, [messages[2].uuid])
    assert (third.status, third.needs_approval) == ("pending", True)  # 3 in the window: four eyes
    # another operator's requests are counted on their own
    theirs, _ = _ask(topic, checker, [messages[3].uuid])
    assert theirs.status == "queued"
    # what ran without approval before the window no longer counts; the pending one never did
    Replay.objects.filter(pk__in=[first.pk, second.pk]).update(
        created_at=timezone.now() - dt.timedelta(hours=settings.REPLAY_APPROVAL_WINDOW_HOURS, minutes=1)
    )
    later, _ = _ask(topic, maker, [messages[4].uuid])
    assert later.status == "queued"
