"""Admin for the feed. Loads are started from the dashboard or the API (which queue the
work); here admins look at them."""

from django.contrib import admin

from core.admin_tools import ReadOnlyAdmin
from kafkacache.models import FeedCursor, Load
from recon import access
from recon.admin_access import TopicScopedAdmin


@admin.register(Load)
class LoadAdmin(TopicScopedAdmin, ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "topic",
        "source",
        "status",
        "total",
        "built",
        "published",
        "failed",
        "exceptions",
        "requested_by",
    )
    list_filter = ("status", "source", "topic")
    search_fields = ("=retrieval_key",)
    search_help_text = "Exact retrieval key"
    list_select_related = ("topic", "requested_by")
    show_full_result_count = False

    # A retrieval key reads the load's records: the admin never shows one (not editable), and
    # finds a load by its key only for who may read payloads (recon.access), as the API does.
    def get_search_results(self, request, queryset, search_term):
        rows, duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            rows = rows.filter(topic__in=access.topics_payload(request.user))
        return rows, duplicates


@admin.register(FeedCursor)
class FeedCursorAdmin(ReadOnlyAdmin):
    """Moved only by the change feed after Kafka and the ledger acknowledged a batch."""

    list_display = ("source", "change_id", "published", "updated_at")
    search_fields = ("source",)
