"""Admin for the feed: the change feed's cursors, to look at. (Loads are records: recon.admin.)"""

from django.contrib import admin

from core.admin_tools import ReadOnlyAdmin
from kafkacache.models import FeedCursor


@admin.register(FeedCursor)
class FeedCursorAdmin(ReadOnlyAdmin):
    """Moved only by the change feed after Kafka and the ledger acknowledged a batch."""

    list_display = ("source", "change_id", "published", "updated_at")
    search_fields = ("source",)
