"""Lag that judges itself: Burrow's rules as a pure function over sample series, then against the real Kafka."""

import datetime as dt

import pytest
from confluent_kafka import TopicPartition
from django.utils import timezone

from core.clients import make_consumer, make_producer
from kafkacache.services.topics import topics_ensure
from monitoring import services
from monitoring.lag_status import Sample, lag_evaluate, worst
from monitoring.models import Alert, AlertRule, LagSample
from monitoring.selectors import lag_statuses
from recon import access
from recon.models import Topic
from tests.factories import UserFactory

T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


def _series(*points: tuple[int, int]) -> list[Sample]:
    """(committed, end) per sample, 30 s apart."""
    return [
        Sample(T0 + dt.timedelta(seconds=30 * i), c, e, max(e - c, 0) if c >= 0 else e)
        for i, (c, e) in enumerate(points)
    ]


@pytest.mark.parametrize(
    ("points", "active", "status"),
    [
        ([(10, 10), (20, 20), (30, 30)], True, "ok"),  # caught up
        ([(10, 15), (20, 26), (30, 35), (40, 44)], True, "ok"),  # committing, lag 5,6,5,4: keeping up
        ([(10, 15), (12, 20), (14, 30), (16, 45)], True, "warning"),  # committing, lag 5,8,16,29: falling behind
        ([(10, 15), (10, 18), (10, 20)], True, "stalled"),  # members, offset stuck, lag > 0
        ([(10, 15), (10, 15), (10, 15)], False, "stopped"),  # no members, no commits
        ([(10, 15), (10, 15), (10, 15)], None, "stalled"),  # members unknown: the milder judgement
        ([(-1, 40), (-1, 40)], True, "stopped"),  # never committed
        ([(-1, 0)], True, "ok"),  # never committed, nothing to read
        ([(30, 35), (12, 35), (14, 35)], True, "rewind"),  # offset went back
        ([(10, 15), (15, 15), (15, 25), (15, 30)], True, "ok"),  # lag 0 in the window: ok (Burrow rule 2)
        ([(10, 15)], True, "ok"),  # one sample: no trend to judge
        ([], True, "unknown"),
    ],
)
def test_burrow_rules(points, active, status):
    assert lag_evaluate(_series(*points), active=active).status == status


def test_a_window_the_sampler_stopped_feeding_is_unknown_and_topics_take_their_worst_partition():
    samples = _series((10, 15), (10, 15))
    judged = lag_evaluate(samples, active=True, now=T0 + dt.timedelta(hours=1), stale_after=dt.timedelta(minutes=2))
    assert judged.status == "unknown" and "no sample since" in judged.reason
    assert worst(["ok", "warning", "stalled"]) == "stalled" and worst(["ok", "rewind"]) == "rewind"
    assert worst([]) == "unknown"


@pytest.mark.integration
@pytest.mark.django_db
def test_sampled_from_real_kafka_stopped_then_rewind_then_ok_and_an_alert_rule_uses_it(client, unique_name, settings):
    settings.LAG_WINDOW_SAMPLES = 3
    name, group = unique_name("lagstatus"), unique_name("lagstatus-group")
    topics_ensure([name], partitions=1)
    topic = Topic.objects.create(name=name, consumer_group=group)
    producer = make_producer()
    for i in range(6):
        producer.produce(name, key=b"k", value=b"v%d" % i, partition=0)
    producer.flush(10)
    consumer = make_consumer(group)  # commits explicit offsets, never joins: the group has no members

    def commit(offset: int) -> None:
        consumer.commit(offsets=[TopicPartition(name, 0, offset)], asynchronous=False)

    def sample_at(seconds: int) -> str:
        services.lag_sample(now=now + dt.timedelta(seconds=seconds))
        (status,) = lag_statuses(topics=Topic.objects.filter(pk=topic.pk), now=now + dt.timedelta(seconds=seconds))
        return status.partitions[0].judgement.status

    now = timezone.now()
    try:
        commit(2)
        # lag 4 and nobody in the group: one sample judges no trend, two show the offset not moving
        assert [sample_at(0), sample_at(30), sample_at(60)] == ["ok", "stopped", "stopped"]
        sample = LagSample.objects.filter(topic=name).latest("at")
        assert (sample.committed, sample.end, sample.lag, sample.active) == (2, 6, 4, False)
        rule = AlertRule.objects.create(name="lag status", kind=AlertRule.Kind.LAG_STATUS, topic=topic, threshold=1)
        services.alerts_evaluate(now=now + dt.timedelta(seconds=60))
        assert Alert.objects.get(rule=rule).value == 1
        commit(1)
        assert sample_at(90) == "rewind"
        commit(6)
        assert sample_at(120) == "ok"  # caught up: lag 0 in the window
        services.alerts_evaluate(now=now + dt.timedelta(seconds=120))
        assert Alert.objects.get(rule=rule).status == Alert.Status.RESOLVED
    finally:
        consumer.close()

    # Served by the API and /metrics.
    user = UserFactory(username="lagviewer", password="pw", is_staff=True)
    access.topic_grant(user, topic, "viewer")
    client.force_login(user)
    (row,) = [r for r in client.get("/api/lag/").json() if r["topic"] == name]
    assert row["group"] == group and row["partitions"][0]["partition"] == 0
    metrics = client.get("/metrics").content.decode()
    assert f'kafkacache_lag_status{{group="{group}",partition="0",status="' in metrics
