"""demo_seed (the screenshots' and a demo's data): traffic reconciled, and breaks along their lifecycle."""

import datetime as dt

import pytest

from dashboard.demo import demo_seed
from recon import access
from recon.models import Finding, FindingTransition, Topic
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_demo_seed_leaves_breaks_owned_investigated_and_accepted(reason_codes):
    # The traffic is drawn from the topic's name and the time: both fixed, so the breaks it
    # makes are the same every run (a random name and the clock could make too few).
    topic = Topic.objects.create(name="demo.bulk", kind=Topic.Kind.BULK, consumer_group="demo.group")
    operator = UserFactory(username="demo-op", password="x")
    access.topic_grant(operator, topic, "operator")
    demo_seed(topics=[topic], operator=operator, now=dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC), hours=2)
    owned = Finding.objects.filter(topic=topic, assigned_user=operator)
    assert owned.count() == 3
    assert owned.filter(status=Finding.Status.INVESTIGATING).count() == 1
    accepted = owned.get(status=Finding.Status.ACCEPTED)
    assert accepted.reason_code.code == "timing"
    assert FindingTransition.objects.filter(finding__topic=topic, action="assign").count() == 3
