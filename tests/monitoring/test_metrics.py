"""/metrics parses with prometheus_client's parser and its counters match the ledger."""

import datetime as dt
import uuid

import pytest
from confluent_kafka import TopicPartition
from knox.models import AuthToken
from prometheus_client.parser import text_string_to_metric_families

from core.clients import make_consumer, make_producer
from core.hashing import content_hash
from kafkacache.latencies import BatchLatencies
from kafkacache.services.topics import topics_ensure
from recon.models import ConsumedMessage, Finding, PublishedMessage, Topic
from recon.services.ledger import ConsumedRow, PublishedRow, consumed_record, published_record
from tests.factories import UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

T0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


def _scrape(client, **headers) -> dict:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_anonymous_scrape_is_refused_and_tokens_work(client, settings):
    settings.METRICS_TOKEN = "scrape-token-123"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    # A non-ASCII token is a wrong token, not a 500 (the compare is on bytes).
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer sc\u00e9rape-token-123").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-123").status_code == 200
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    user = UserFactory(username="plain", password="pw")
    token = AuthToken.objects.create(user=user)[1]
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


def test_a_user_scrapes_only_the_topics_they_may_see(client, unique_name):
    """/metrics uses the lists' rule (recon.access.topics_visible): a topic granted to the
    user is in the answer, another one is not, and staff or a global permission add nothing."""
    from django.contrib.auth.models import Permission

    from recon import access

    mine = Topic.objects.create(name=unique_name("m.mine"), consumer_group=unique_name("g"), window_seconds=60)
    other = Topic.objects.create(name=unique_name("m.other"), consumer_group=unique_name("g"), window_seconds=60)
    for topic in (mine, other):
        Finding.objects.create(topic=topic, category="missing", classification="exception", key="k")
    user = UserFactory(username="scraper", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_topic"))  # global: grants no topic
    access.topic_grant(user, mine, "viewer")
    client.login(username="scraper", password="pw")
    body = client.get("/metrics").content.decode()
    assert f'topic="{mine.name}"' in body
    assert other.name not in body


def test_a_user_scrapes_the_lag_status_of_their_topics_only(client, unique_name):
    """kafkacache_lag_status narrows to the user's topics like every other family: a topic
    with lag samples that the user may not see is not named."""
    from monitoring.models import LagSample
    from recon import access

    mine = Topic.objects.create(name=unique_name("m.mine"), consumer_group=unique_name("g"), window_seconds=60)
    other = Topic.objects.create(name=unique_name("m.other"), consumer_group=unique_name("g"), window_seconds=60)
    now = dt.datetime.now(dt.UTC)
    for topic in (mine, other):
        LagSample.objects.create(
            group=topic.consumer_group, topic=topic.name, partition=0, committed=1, end=5, lag=4, at=now
        )
    user = UserFactory(username="lag-scraper", password="pw")
    access.topic_grant(user, mine, "viewer")
    client.login(username="lag-scraper", password="pw")
    statuses = [labels for (name, labels) in _scrape(client) if name == "kafkacache_lag_status"]
    assert {dict(labels)["topic"] for labels in statuses} == {mine.name}


def test_counters_match_the_ledger_and_lag_matches_kafka(client, unique_name):
    topic_name, group = unique_name("metrics"), unique_name("metrics-group")
    topics_ensure([topic_name], partitions=2)
    topic = Topic.objects.create(name=topic_name, consumer_group=group, window_seconds=60)

    rows = [
        PublishedRow(
            uuid.uuid4(), i % 2, i, f"client:{i}", "bulk", content_hash(b"%d" % i), 9, T0 + dt.timedelta(seconds=i)
        )
        for i in range(130)
    ]
    published_record(topic=topic, rows=rows)
    consumed = [
        ConsumedRow(r.uuid, group, r.partition, r.offset, r.key, r.content_hash, r.published_at, T0, "stored")
        for r in rows[:100]
    ]
    consumed_record(topic=topic, rows=consumed)
    for i in range(3):
        Finding.objects.create(topic=topic, category="dead-lettered", classification="exception", key=f"k{i}")
    Finding.objects.create(topic=topic, category="missing", classification="exception", status="acknowledged")
    latencies = BatchLatencies(group=group, flush_seconds=3600)
    latencies.observe(batch_seconds=0.004, redis_seconds=0.0007)
    latencies.observe(batch_seconds=0.3, redis_seconds=0.02)
    latencies.flush()

    # Real lag: 7 messages on partition 0, the group committed 5 of them.
    producer = make_producer()
    for i in range(7):
        producer.produce(topic_name, key=b"k", value=b"v%d" % i, partition=0)
    producer.flush(10)
    consumer = make_consumer(group)
    consumer.commit(offsets=[TopicPartition(topic_name, 0, 5)], asynchronous=False)
    consumer.close()

    UserFactory(username="u", password="pw", is_staff=True, is_superuser=True)  # every topic, as the scrape token
    client.login(username="u", password="pw")
    s = _scrape(client)
    label = (("topic", topic_name),)
    assert s[("kafkacache_produced_total", label)] == PublishedMessage.objects.filter(topic=topic).count() == 130
    assert s[("kafkacache_consumed_total", label)] == ConsumedMessage.objects.filter(topic=topic).count() == 100
    assert s[("kafkacache_dead_lettered_total", label)] == 3
    assert s[("kafkacache_discrepancies_total", (("category", "missing"), ("topic", topic_name)))] == 1
    assert s[("kafkacache_open_discrepancies", (("category", "missing"), ("topic", topic_name)))] == 0
    assert s[("kafkacache_open_discrepancies", (("category", "dead-lettered"), ("topic", topic_name)))] == 3
    lag = (("group", group), ("partition", "0"), ("topic", topic_name))
    assert s[("kafkacache_consumer_lag", lag)] == 2
    by_group = (("group", group),)
    assert s[("kafkacache_consume_batch_seconds_count", by_group)] == 2
    assert s[("kafkacache_consume_batch_seconds_bucket", (("group", group), ("le", "0.005")))] == 1
    assert s[("kafkacache_consume_batch_seconds_bucket", (("group", group), ("le", "+Inf")))] == 2
    assert s[("kafkacache_redis_write_seconds_sum", by_group)] == pytest.approx(0.0207)


@pytest.mark.django_db(transaction=True)
def test_the_consumer_records_its_batch_latencies(client, settings, unique_name):
    from kafkacache.consumer import FeedConsumer
    from kafkacache.services.change_feed import change_publish
    from recon.services.feed import feed_topics_ensure

    settings.KAFKA_TOPIC_BULK = unique_name("m.bulk")
    settings.KAFKA_TOPIC_CHANGE = unique_name("m.change")
    settings.KAFKA_TOPIC_DEAD_LETTER = unique_name("m.dlq")
    settings.KAFKA_CONSUMER_GROUP = group = unique_name("m.group")
    topics_ensure([settings.KAFKA_TOPIC_BULK, settings.KAFKA_TOPIC_CHANGE, settings.KAFKA_TOPIC_DEAD_LETTER])
    change = feed_topics_ensure()["change"]
    for i in range(3):
        change_publish(topic=change, event="delete", key=f"client:{880000 + i}")
    consumer = FeedConsumer()
    consumer.run(drain=True, max_seconds=30)
    assert consumer.totals["batches"] >= 1

    UserFactory(username="u", password="pw", is_staff=True, is_superuser=True)  # every topic, as the scrape token
    client.login(username="u", password="pw")
    s = _scrape(client)
    assert s[("kafkacache_consumed_total", (("topic", change.name),))] == 3
    assert s[("kafkacache_consume_batch_seconds_count", (("group", group),))] == consumer.totals["batches"]
    assert s[("kafkacache_redis_write_seconds_count", (("group", group),))] == consumer.totals["batches"]
    assert s[("kafkacache_consume_batch_seconds_sum", (("group", group),))] > 0


def test_batch_latencies_reach_redis_a_flush_at_a_time_and_survive_a_failed_flush(cache, unique_name):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    group = unique_name("m.lat")
    key = f"kc:metrics:hist:batch:{group}"
    latencies = BatchLatencies(group=group, flush_seconds=3600)
    latencies.observe(batch_seconds=0.004, redis_seconds=0.001)
    assert not cache.exists(key)  # counted in the process until a flush is due
    working = latencies.client
    latencies.client = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    latencies.flush()  # Redis unreachable: logged, nothing lost
    latencies.client = working
    latencies.observe(batch_seconds=0.3, redis_seconds=0.02)
    latencies.flush()
    assert cache.hget(key, "count") == b"2" and cache.hget(key, "0.005") == b"1"
    assert float(cache.hget(key, "sum")) == pytest.approx(0.304)
    latencies.flush()  # nothing new: nothing added twice
    assert cache.hget(key, "count") == b"2"
    cache.delete(key, f"kc:metrics:hist:redis:{group}")
