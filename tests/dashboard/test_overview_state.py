"""The overview tells the truth while the consumer is down: messages pending judgement with when they
are judged, the lag the beat's sampler saw (and how old that sample is), and an amber or red state."""

import datetime as dt
import re

from django.urls import reverse

from monitoring.models import LagSample
from recon.models import Finding
from tests.dashboard.conftest import publish


def _samples(topic, lags, *, at):
    LagSample.objects.bulk_create(
        LagSample(group=topic.consumer_group, topic=topic.name, partition=p, committed=5, end=5 + lag, lag=lag, at=at)
        for p, lag in enumerate(lags)
    )


def test_consumer_stopped_shows_pending_amber_and_the_sampled_lag_with_its_age(client_for, topic_a, people):
    now = dt.datetime.now(dt.UTC)
    publish(topic_a, 40, at=now - dt.timedelta(minutes=1))  # the consumer is stopped: nothing consumed
    _samples(topic_a, [200, 202], at=now - dt.timedelta(minutes=3))  # an older one the page must not show
    sampled_at = now - dt.timedelta(seconds=20)
    _samples(topic_a, [190, 212], at=sampled_at)
    before = LagSample.objects.count()
    response = client_for("viewer").get(reverse("dashboard:overview"))
    [item] = [i for i in response.context["items"] if i.topic == topic_a]
    # The topic is not in Kafka at all: a lag asked of Kafka would be "n/a"; this is the sampler's.
    assert (item.lag.messages, item.lag.partitions, item.lag.at) == (402, 2, sampled_at)
    assert LagSample.objects.count() == before  # the page read the samples, it took none
    assert item.pending == 40 and item.open_findings == 0 and item.state == "warn"
    assert item.pending_judged_at > now
    html = response.content.decode()
    card = re.search(rf'<section class="card topic state-warn" data-topic="{topic_a.name}".*?</section>', html, re.S)
    assert card, "the topic's card is amber"
    assert f"not consumed yet, judged at {item.pending_judged_at:%H:%M:%S} UTC" in card[0]
    assert "sampled 0\xa0minutes ago" in card[0] or "sampled 0 minutes ago" in card[0]
    assert "(and 40 not judged yet)" in card[0]


def test_an_open_finding_turns_the_topic_red(client_for, topic_a, people):
    now = dt.datetime.now(dt.UTC)
    [lost] = publish(topic_a, 1, at=now - dt.timedelta(minutes=1))
    _samples(topic_a, [0], at=now)
    Finding.objects.create(topic=topic_a, uuid=lost.uuid, key=lost.key, category="missing", severity="critical")
    [item] = [i for i in client_for("viewer").get(reverse("dashboard:overview")).context["items"] if i.topic == topic_a]
    assert item.state == "bad"


def test_no_sample_yet_says_so_and_is_not_ok(client_for, topic_a, people):
    response = client_for("viewer").get(reverse("dashboard:overview"))
    [item] = [i for i in response.context["items"] if i.topic == topic_a]
    assert item.lag.messages is None and item.lag.at is None and item.state == "warn"
    assert "no lag sample yet" in response.content.decode()
