"""The recon.Topic rows of the feed's topics."""

import logging

from django.conf import settings

from recon.models import Topic

logger = logging.getLogger(__name__)


def topic_rows_ensure() -> dict[str, Topic]:
    """The recon.Topic rows of the bulk and change topics (created when missing)."""
    out = {}
    for kind, name in ((Topic.Kind.BULK, settings.KAFKA_TOPIC_BULK), (Topic.Kind.CHANGE, settings.KAFKA_TOPIC_CHANGE)):
        topic, created = Topic.objects.get_or_create(
            name=name, defaults={"kind": kind, "consumer_group": settings.KAFKA_CONSUMER_GROUP}
        )
        if created:
            logger.info("topic row %s created (%s, group %s)", name, kind, settings.KAFKA_CONSUMER_GROUP)
        out[str(kind)] = topic
    return out
