"""The feed's own state: how far the change feed of each source got. (A bulk load is a
record of what happened: recon.models.Load.)"""

from django.db import models


class FeedCursor(models.Model):
    """Progress of the change feed of a source, for ops and the dashboard.

    The source's change table itself says what is left to publish (published
    rows are deleted from it); this keeps the last change id published and a
    running count. Moved only by kafkacache.services.change_feed.change_feed_run, after the
    batch is acknowledged by Kafka and in the ledger (at-least-once).
    """

    source = models.CharField(max_length=128, unique=True)
    change_id = models.BigIntegerField(default=0)
    published = models.BigIntegerField(default=0)  # changes published so far, for the dashboard
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.source} @ {self.change_id}"
