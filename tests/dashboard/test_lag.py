"""Consumer lag asked of the real Kafka: end offsets minus the group's committed offsets."""

import pytest
from django.core.cache import cache

from core.clients import make_consumer, make_producer
from dashboard.selectors.lag import consumer_lag
from kafkacache.services.topics import topics_ensure

pytestmark = pytest.mark.integration


def test_lag_counts_uncommitted_messages(unique_name):
    topic, group = unique_name("dash-lag"), unique_name("dash-lag-group")
    topics_ensure([topic], partitions=2)
    producer = make_producer()
    for i in range(5):
        producer.produce(topic, key=f"k{i}".encode(), value=b"v", partition=i % 2)
    assert producer.flush(10) == 0
    cache.clear()
    assert consumer_lag(topic, group).messages == 5  # no commit yet: everything is lag

    consumer = make_consumer(group)
    consumer.subscribe([topic])
    try:
        taken = 0
        while taken < 2:
            message = consumer.poll(5.0)
            assert message is not None, "nothing consumed within 5 s"
            if message.error() is None:
                consumer.store_offsets(message)
                taken += 1
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    cache.clear()
    lag = consumer_lag(topic, group)
    assert (lag.messages, lag.partitions) == (3, 2)


def test_lag_of_unknown_topic_is_unavailable_not_an_error(unique_name):
    cache.clear()
    lag = consumer_lag(unique_name("dash-missing"), "g")
    assert lag.messages is None and lag.error
