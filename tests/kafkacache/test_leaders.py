"""The leader watch against the real broker: nothing recorded on the first look or without a
change; a partition whose leader or ISR differs from the last look is recorded as a rebalance
event of kind "leader". (Brokers really lost and back: tests/deploy/test_cluster.py.)"""

import json

import pytest

from kafkacache.services.leaders import _state_key, leaders_now, leaders_watch
from kafkacache.services.topics import feed_topics
from recon.models import RebalanceEvent

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_a_changed_leader_is_recorded_once(feed, cache):
    group = feed.KAFKA_CONSUMER_GROUP
    assert leaders_watch() == []  # the first look
    assert leaders_watch() == []  # nothing moved
    state = json.loads(cache.get(_state_key(group)))
    assert state == leaders_now(feed_topics()) and len(state) == 3 * feed.KAFKA_TOPIC_PARTITIONS
    moved = f"{feed.KAFKA_TOPIC_BULK}/0"
    state[moved] = {"leader": 7, "isr": [7, 1]}  # as it was before broker 7 went away
    cache.set(_state_key(group), json.dumps(state))
    [event] = leaders_watch()
    assert (event.group, event.kind, event.member) == (group, RebalanceEvent.Kind.LEADER, "leader-watch")
    [change] = event.partitions
    assert change["topic"] == feed.KAFKA_TOPIC_BULK and change["partition"] == 0
    assert change["previous_leader"] == 7 and change["leader"] == 1 and change["previous_isr"] == [7, 1]
    assert leaders_watch() == []
