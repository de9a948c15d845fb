"""The access rule (recon.access) in the admin site: one mixin for every topic-scoped model.

Staff who are not superusers see and open only rows of topics they may view by a
per-topic grant: a global "Can view finding" (or any other model permission) says
which kind of row they may look at, never which topic's. Everything the admin shows
of a model comes through `get_queryset`, so the one filter there holds for the
changelist, the change (read) view, history, delete, the raw-id popup (a changelist)
and autocomplete (Django asks the related model's admin for its queryset). The
changelist's related-object filters offer only what that related model's admin
shows the user (`ScopedRelatedFilter`), so no topic name leaks through a sidebar.

Writes (add, change, delete) of topic-scoped rows are for superusers only: a topic's
policy, rules and alerting decide what reconciliation reports and when four-eyes
applies, and operators change their topics' alert rules and silences on the
dashboard's pages (monitoring.access). Rows about no topic are for superusers unless
the model says otherwise (`topic_null_visible`: alert rules and silences over every
topic, which every logged-in person sees on the dashboard too).
"""

from django.contrib import admin
from django.db.models import Q, QuerySet

from recon import access


def _superuser(request) -> bool:
    return bool(request.user.is_active and request.user.is_superuser)


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A related-object filter whose choices are what the related model's admin shows this user."""

    def field_choices(self, field, request, model_admin):
        related_admin = model_admin.admin_site._registry.get(field.remote_field.model)
        if related_admin is None or _superuser(request):
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin) or ()
        rows = related_admin.get_queryset(request).order_by(*ordering)
        return [(row.pk, str(row)) for row in rows]


class TopicScopedAdmin:
    """Mix in before the ModelAdmin class. `topic_path` leads from the model to its topic
    ("finding__topic"); None keeps the model to superusers (rows naming many topics)."""

    topic_path: str | None = "topic"
    topic_null_visible = False

    def scope(self, request, rows: QuerySet) -> QuerySet:
        """The rows the user may see; a model whose topic is reached otherwise overrides this."""
        if self.topic_path is None:
            return rows.none()
        visible = Q(**{f"{self.topic_path}__in": access.topics_visible(request.user)})
        if self.topic_null_visible:
            visible |= Q(**{f"{self.topic_path}__isnull": True})
        return rows.filter(visible)

    def get_queryset(self, request):
        rows = super().get_queryset(request)  # type: ignore[misc]
        return rows if _superuser(request) else self.scope(request, rows)

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)  # type: ignore[misc]
        return [self._scoped_filter(entry) for entry in filters]

    def _scoped_filter(self, entry):
        if not isinstance(entry, str) or "__" in entry:
            return entry
        field = self.model._meta.get_field(entry)  # type: ignore[attr-defined]
        return (entry, ScopedRelatedFilter) if field.is_relation and field.many_to_one else entry

    def has_view_permission(self, request, obj=None) -> bool:
        if self.topic_path is None and not _superuser(request):
            return False
        return super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request, *args) -> bool:
        return _superuser(request) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request, obj=None) -> bool:
        return _superuser(request) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request, obj=None) -> bool:
        return _superuser(request) and super().has_delete_permission(request, obj)  # type: ignore[misc]
