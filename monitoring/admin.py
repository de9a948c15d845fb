"""Admin of monitoring: the lag samples the lag status is judged from (read-only)."""

from django.contrib import admin

from dashboard.admin_tools import CappedCountPaginator, ReadOnlyAdmin
from monitoring.models import LagSample


@admin.register(LagSample)
class LagSampleAdmin(ReadOnlyAdmin):
    list_display = ("at", "group", "topic", "partition", "committed", "end", "lag", "active")
    list_filter = ("group", "topic")
    show_full_result_count = False
    paginator = CappedCountPaginator
