"""Object permissions per topic: outsiders get 404, viewers 403 on actions."""

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404

from recon import access
from recon.models import Topic
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def topics():
    return Topic.objects.create(name="a", consumer_group="g"), Topic.objects.create(name="b", consumer_group="g")


def test_roles_per_topic(topics):
    a, b = topics
    viewer = UserFactory(username="v")
    operator = UserFactory(username="o")
    outsider = UserFactory(username="x")
    access.topic_grant(viewer, a, "viewer")
    access.topic_grant(operator, a, "operator")
    access.topic_grant(operator, b, "viewer")

    assert list(access.topics_visible(viewer)) == [a]
    assert list(access.topics_visible(outsider)) == []
    assert set(access.topics_visible(operator)) == {a, b}
    assert list(access.topics_operable(operator)) == [a]

    assert access.topic_for_operate(operator, a) == a
    with pytest.raises(PermissionDenied):
        access.topic_for_operate(operator, b)
    with pytest.raises(PermissionDenied):
        access.topic_for_operate(viewer, a)
    with pytest.raises(PermissionDenied):
        access.topic_for_payload(viewer, a)
    with pytest.raises(Http404):
        access.topic_for_view(outsider, a)
    with pytest.raises(Http404):
        access.topic_for_operate(outsider, a)


def test_downgrade_removes_operate(topics):
    a, _ = topics
    user = UserFactory(username="u")
    access.topic_grant(user, a, "operator")
    access.topic_grant(user, a, "viewer")
    user = User.objects.get(pk=user.pk)  # fresh permission cache
    assert access.can_view(user, a) and not access.can_operate(user, a) and not access.can_view_payload(user, a)


def test_superuser_sees_and_operates_everything(topics):
    admin = UserFactory(username="root", password="x", is_staff=True, is_superuser=True)
    assert set(access.topics_operable(admin)) == set(topics)
    assert access.can_view_payload(admin, topics[1])
