"""Reads of topics: the ones a user may see, by name."""

from django.db.models import QuerySet

from recon import access
from recon.models import (
    Topic,
)


def topics_visible(user) -> QuerySet[Topic]:
    return access.topics_visible(user).order_by("name")


def topic_visible(user, *, name: str) -> Topic:
    """A topic by name, 404 for names the user may not see (or that do not exist)."""
    return access.topic_for_view(user, Topic.objects.filter(name=name).first())
