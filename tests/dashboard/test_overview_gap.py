"""The overview's gap counts only what the topic's producer published, on the real feed: another
producer's garbage on the topic (dead-lettered, so consumed) and a redelivered batch never hide
a lost message."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from core.clients import make_producer
from kafkacache.consumer import FeedConsumer
from kafkacache.services.change_feed import change_publish
from recon.models import ConsumedMessage, Window
from tests.documents import client_doc
from tests.people import people_make
from tests.replay.conftest import feed_topics_make, fetch, reconcile

pytestmark = [pytest.mark.integration]

PUBLISHED, LOST = 20, 15


def _garbage(topic: str) -> None:
    """Two messages of another producer: one with a uuid header the publish ledger never saw, one with none."""
    producer = make_producer()
    producer.produce(topic, key=b"client:garbage-1", value=b"\x00not avro", headers={"uuid": str(uuid.uuid4())})
    producer.produce(topic, key=b"client:garbage-2", value=b"garbage")
    assert producer.flush(10) == 0


def test_garbage_and_a_redelivery_do_not_hide_lost_messages(db, settings, unique_name, cache):
    feed = feed_topics_make(settings, unique_name)
    topic = feed.change
    base = uuid.uuid4().int % 10**9 * 100 + 1000
    published = [change_publish(topic=topic, event="add", record=client_doc(base + i)) for i in range(PUBLISHED)]
    _garbage(topic.name)
    messages = fetch(topic.name, published[0].offset, PUBLISHED + 2)
    lost = {p.offset for p in published[:LOST]}
    kept = [m for m in messages if m.offset() not in lost]
    consumer = FeedConsumer()
    consumer.process_batch(kept)
    consumer.process_batch(kept[:2])  # redelivered: a consumer that died before committing
    assert ConsumedMessage.objects.filter(topic=topic, outcome="dead").count() == 2  # the garbage was consumed

    reconcile(topic)
    [window] = Window.objects.filter(topic=topic)
    assert (window.published_count, window.consumed_count) == (PUBLISHED, PUBLISHED - LOST + 2 + 2)
    assert window.consumed_other == 4  # two garbage messages, two redeliveries

    viewer = people_make(viewed=[topic], roles=("viewer",), role_groups=False)["viewer"]
    client = Client()
    client.force_login(viewer)
    response = client.get(reverse("dashboard:overview"))
    [item] = [i for i in response.context["items"] if i.topic == topic]
    assert (item.gap, item.pending, item.consumed_other) == (LOST, 0, 4)
    assert [p.gap for p in item.series] == [LOST]
    assert f'data-gap="{LOST}"' in response.content.decode()
