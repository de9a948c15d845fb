"""demo_seed (the screenshots' and a demo's data): traffic reconciled, and breaks along their lifecycle."""

import pytest
from django.utils import timezone

from dashboard.demo import demo_seed
from recon import access
from recon.models import Finding, FindingTransition, Topic
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_demo_seed_leaves_breaks_owned_investigated_and_accepted(unique_name):
    topic = Topic.objects.create(name=unique_name("demo.bulk"), kind=Topic.Kind.BULK, consumer_group=unique_name("g"))
    operator = UserFactory(username="demo-op", password="x")
    access.topic_grant(operator, topic, "operator")
    demo_seed(topics=[topic], operator=operator, now=timezone.now(), hours=2)
    owned = Finding.objects.filter(topic=topic, assigned_user=operator)
    assert owned.count() == 3
    assert owned.filter(status=Finding.Status.INVESTIGATING).count() == 1
    accepted = owned.get(status=Finding.Status.ACCEPTED)
    assert accepted.reason_code.code == "timing"
    assert FindingTransition.objects.filter(finding__topic=topic, action="assign").count() == 3
