"""The scheduled consumer: a start while a run holds the lock is a no-op, and a
restarted static member takes its partitions back without a group rebalance."""

import threading
import time

import pytest
from django.db import connection

from core.clients import redis_client
from core.ods import ods_seed
from kafkacache.consumer import FeedConsumer
from kafkacache.services.loads import load_run, load_start
from kafkacache.tasks import change_feed_task, consume_task
from recon.models import AuditPayload, RebalanceEvent
from recon.services.feed import feed_topics_ensure

from .conftest import cached_keys, consume_all, wait_for

pytestmark = pytest.mark.integration


@pytest.mark.django_db
def test_a_scheduled_start_while_a_run_holds_the_lock_is_a_no_op(feed):
    lock = redis_client().lock(f"kc:lock:consumer:{feed.KAFKA_CONSUMER_GROUP}:0", timeout=30)
    assert lock.acquire(blocking=False)
    try:
        started = time.monotonic()
        assert consume_task(instance=0) == {"skipped": True, "reason": "another run holds the lock"}
        assert time.monotonic() - started < 5  # did not join the group
    finally:
        lock.release()
    assert not RebalanceEvent.objects.filter(group=feed.KAFKA_CONSUMER_GROUP).exists()


@pytest.mark.django_db
def test_the_change_feed_task_runs_the_feed_once_at_a_time(feed):
    ods_seed(clients=2, using="default")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ods.clients SET name = 'Changed' WHERE client_id = 2")
    lock = redis_client().lock("kc:lock:change-feed:ods", timeout=30)
    assert lock.acquire(blocking=False)
    try:
        assert change_feed_task() == {"skipped": 1}
    finally:
        lock.release()
    assert change_feed_task()["published"] == 1


@pytest.mark.django_db
def test_rebalance_callbacks_are_recorded_and_audit_payloads_kept_on_both_sides(feed, cache):
    ods_seed(clients=3, using="default")
    rows = feed_topics_ensure()
    bulk = rows["bulk"]
    bulk.method_audit = True
    bulk.save()
    load = load_start(topic=bulk, source="ods", client_ids=None, requested_by=None, queue=False)
    assert load_run(load_id=load.id).published == 3
    consume_all()
    kinds = list(RebalanceEvent.objects.filter(group=feed.KAFKA_CONSUMER_GROUP).values_list("kind", flat=True))
    assert sorted(kinds) == ["assigned", "revoked"]
    assigned = RebalanceEvent.objects.get(group=feed.KAFKA_CONSUMER_GROUP, kind="assigned")
    assert {p["topic"] for p in assigned.partitions} == {bulk.name, rows["change"].name}
    sides = sorted(AuditPayload.objects.filter(topic=bulk).values_list("side", flat=True))
    assert sides == ["consumed"] * 3 + ["published"] * 3


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # member A records its rebalances from its own thread
def test_a_restarted_static_member_gets_its_partitions_back_without_a_rebalance(feed):
    group = feed.KAFKA_CONSUMER_GROUP
    a = FeedConsumer(instance_id=f"{group}-a")

    def run_a() -> None:
        try:
            a.run(max_seconds=60)
        finally:
            connection.close()  # the thread's own connection, or the test database stays in use

    runner = threading.Thread(target=run_a, daemon=True)
    runner.start()
    try:
        wait_for(lambda: len(a.assigned) == 4, timeout=30, what="member a to get all partitions")
        b = FeedConsumer(instance_id=f"{group}-b")
        _poll_until(b, lambda: len(b.assigned) == 2 and len(a.assigned) == 2, what="the group to split")
        b.close()  # a static member leaves no gap in the group: no LeaveGroup is sent
        events_of_a = _events(group, "a")

        b = FeedConsumer(instance_id=f"{group}-b")  # the next scheduled run
        _poll_until(b, lambda: len(b.assigned) == 2, what="b to get its partitions back")
        time.sleep(2)  # time for a rebalance to reach member a, if there were one
        b.close()
        assert _events(group, "a") == events_of_a  # a never saw a revoke or an assign
        assert len(a.assigned) == 2
    finally:
        a.stop()
        runner.join(timeout=30)


def _events(group: str, member: str) -> list[str]:
    return list(
        RebalanceEvent.objects.filter(group=group, member__startswith=f"{group}-{member}-")
        .order_by("id")
        .values_list("kind", flat=True)
    )


def _poll_until(consumer: FeedConsumer, condition, *, what: str, timeout: float = 45) -> None:
    if consumer.consumer is None:
        consumer.open()
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        consumer.consumer.consume(num_messages=10, timeout=0.2)


@pytest.mark.django_db
def test_the_consume_task_consumes_for_its_run_time_as_a_static_member(feed, cache, settings):
    ods_seed(clients=4, using="default")
    bulk = feed_topics_ensure()["bulk"]
    load = load_start(topic=bulk, source="ods", client_ids=None, requested_by=None, queue=False)
    assert load_run(load_id=load.id).published == 4
    settings.CONSUMER_RUN_SECONDS = 4
    result = consume_task(instance=0)
    assert (result["skipped"], result["stopped"], result["stored"]) == (False, False, 4)
    assert result["seconds"] >= 4  # it ran for its run time (and returned: the test's timeout bounds it)
    assert len(cached_keys(cache)) == 4
    member = RebalanceEvent.objects.filter(group=feed.KAFKA_CONSUMER_GROUP, kind="assigned").get().member
    assert member.startswith(f"{feed.KAFKA_CONSUMER_GROUP}-0-")  # group.instance.id = <group>-<instance>
    assert redis_client().get(f"kc:lock:consumer:{feed.KAFKA_CONSUMER_GROUP}:0") is None  # released
