"""seed_demo: users in their role groups and the demo topic grants."""

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command

from recon import access
from recon.models import Topic

pytestmark = pytest.mark.django_db


def test_seed_demo_grants(capsys):
    extra = Topic.objects.create(name="dash.extra", consumer_group="g")
    call_command("seed_demo")
    call_command("seed_demo")  # idempotent
    bulk = Topic.objects.get(name=settings.KAFKA_TOPIC_BULK)
    change = Topic.objects.get(name=settings.KAFKA_TOPIC_CHANGE)
    viewer, operator, admin = (User.objects.get(username=n) for n in ("viewer", "operator", "admin"))
    assert [g.name for g in viewer.groups.all()] == ["viewer"]
    assert set(access.topics_visible(viewer)) == {bulk, change, extra}
    assert list(access.topics_operable(viewer)) == []
    assert list(access.topics_operable(operator)) == [bulk]
    assert access.can_view(operator, change) and not access.can_operate(operator, change)
    assert not access.can_view_payload(operator, change)
    assert admin.is_superuser and access.can_operate(admin, change)
    assert viewer.check_password("kafkacache-demo")
    assert "operator operates" in capsys.readouterr().out
