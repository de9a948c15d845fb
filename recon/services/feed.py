"""What the feed records about itself (below it in the layers): its topic rows and its rebalances."""

import logging

from django.conf import settings
from django.db import transaction

from recon.models import Finding, RebalanceEvent, Topic
from recon.services.findings import finding_record

logger = logging.getLogger(__name__)


def feed_topics_ensure() -> dict[str, Topic]:
    """The Topic rows of the feed's bulk and change topics (KAFKA_TOPIC_BULK, KAFKA_TOPIC_CHANGE),
    created when missing, by kind ("bulk", "change")."""
    out = {}
    for kind, name in ((Topic.Kind.BULK, settings.KAFKA_TOPIC_BULK), (Topic.Kind.CHANGE, settings.KAFKA_TOPIC_CHANGE)):
        topic, created = Topic.objects.get_or_create(
            name=name, defaults={"kind": kind, "consumer_group": settings.KAFKA_CONSUMER_GROUP}
        )
        if created:
            logger.info("topic row %s created (%s, group %s)", name, kind, settings.KAFKA_CONSUMER_GROUP)
        out[str(kind)] = topic
    return out


@transaction.atomic
def rebalance_record(
    *, group: str, member: str, kind: str, partitions: list[dict], error: str = "", topic: Topic | None = None
) -> RebalanceEvent:
    """Record a rebalance callback; an error during one is also a finding on its topic."""
    event = RebalanceEvent.objects.create(group=group, member=member, kind=kind, partitions=partitions, error=error)
    if error and topic is not None:
        finding_record(
            topic=topic,
            category=Finding.Category.REBALANCE_ERROR,
            detail={"group": group, "member": member, "kind": kind, "error": error, "partitions": partitions},
        )
    return event
