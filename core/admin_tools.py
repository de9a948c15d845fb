"""Admin building blocks for tables of millions of rows (the ledgers, audit payloads)."""

import uuid

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.utils.functional import cached_property

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows: COUNT(*) over a partitioned ledger reads every row.

    The admin then offers pages up to the cap; narrower filters or a UUID search
    reach anything beyond it.
    """

    @cached_property
    def count(self) -> int:
        queryset: QuerySet = self.object_list  # type: ignore[assignment]
        return queryset.order_by()[: COUNT_CAP + 1].count()


class UuidSearchMixin:
    """Search by exact UUID (indexed) or, failing that, the exact `exact_search_fields`.

    The admin using it sets `search_fields` (any value) to show the search box.

    Django's own search would compare a UUID column with LIKE (no index) or fail
    on text that is not a UUID; here a bad term simply finds nothing.
    """

    uuid_field = "uuid"
    exact_search_fields: tuple[str, ...] = ()

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(**{self.uuid_field: uuid.UUID(term)}), False
        except ValueError:
            pass
        condition = Q(pk__in=[])
        for field in self.exact_search_fields:
            condition |= Q(**{field: term})
        return queryset.filter(condition), False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the pipeline or the engine: people look, nobody edits."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class LedgerAdmin(UuidSearchMixin, ReadOnlyAdmin):
    """A ledger: read-only, no full count, capped paginator, newest (highest id) first."""

    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 50
    ordering = ("-id",)
    search_fields = ("uuid",)  # shows the search box; UuidSearchMixin does the lookup
    list_select_related = ("topic",)
    search_help_text = "Exact message UUID"
