"""A consumer whose Kafka client fails fatally makes a new client and goes on.

librdkafka reports a fatal error when a static member is fenced: another client
joined with its group.instance.id, or (as the Kafka fault scenario met) the broker
was away longer than the session timeout and the member's old identity was
replaced when it came back. A fatal client consumes nothing ever again; the loop
used to keep polling it forever, alive and idle. Here a second client takes the
member's instance id; the loop must record the error, join again with a new client,
and still cache what is published afterwards.
"""

import threading
import time

import pytest

from core.clients import make_consumer, make_producer
from kafkacache.consumer import FeedConsumer
from recon.models import RebalanceEvent
from recon.services.feed import feed_topics_ensure
from tests.kafkacache.conftest import cached_keys
from tests.reliability.bad_input import good_message

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]


def test_a_fenced_static_member_joins_again_with_a_new_client(feed, cache, transactional_db):
    change = feed_topics_ensure()["change"]
    change.accepts_unsealed = True  # the intruder's producer holds no signing key
    change.save(update_fields=["accepts_unsealed"])
    instance = f"{feed.KAFKA_CONSUMER_GROUP}-0"
    loop = FeedConsumer(instance_id=instance, poll_timeout=0.2)
    failures: list[str] = []

    def intruder() -> None:
        try:
            deadline = time.monotonic() + 30
            while not loop.assigned and time.monotonic() < deadline:
                time.sleep(0.1)
            other = make_consumer(feed.KAFKA_CONSUMER_GROUP, **{"group.instance.id": instance})
            other.subscribe([change.name])
            end = time.monotonic() + 4
            while time.monotonic() < end:
                other.poll(0.2)
            other.close()
            producer = make_producer()
            for client_id in (1, 2, 3):
                message = good_message(client_id)
                producer.produce(change.name, key=message.key.encode(), value=message.value, headers=message.headers)
            producer.flush(10)
            deadline = time.monotonic() + 45
            while len(cached_keys(cache)) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
        except Exception as exc:  # reported by the main thread
            failures.append(repr(exc))
        finally:
            loop.stop()

    helper = threading.Thread(target=intruder)
    helper.start()
    loop.run(max_seconds=80)
    helper.join(timeout=10)

    assert not failures
    errors = RebalanceEvent.objects.filter(group=feed.KAFKA_CONSUMER_GROUP, kind="error")
    assert any("fatal" in e.error.lower() or "fenced" in e.error.lower() for e in errors), [e.error for e in errors]
    assert cached_keys(cache) == {"client:1", "client:2", "client:3"}  # consumed by the new client
