"""Admin for reconciliation: topic policies (with per-object permissions), rules, and
read-only views of everything the pipeline and the engine write. Every topic-scoped
admin follows the access rule (recon.admin_access.TopicScopedAdmin)."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.html import format_html
from guardian.admin import GuardedModelAdmin

from core.admin_tools import CappedCountPaginator, LedgerAdmin, ReadOnlyAdmin, UuidSearchMixin
from recon import access
from recon.admin_access import TopicScopedAdmin
from recon.models import (
    AuditPayload,
    CacheScrub,
    ConsumedMessage,
    Finding,
    FindingComment,
    FindingTransition,
    Load,
    LoadPart,
    OperatorAction,
    PublishedMessage,
    ReasonCode,
    RebalanceEvent,
    ReconRun,
    Replay,
    ReplayItem,
    Rule,
    Topic,
    Window,
)
from recon.services.actions import operator_action_record


def _hex(value) -> str:
    return bytes(value).hex() if value is not None else ""


@admin.register(Topic)
class TopicAdmin(TopicScopedAdmin, GuardedModelAdmin):  # type: ignore[misc]  # guardian's own two bases disagree
    """Object permissions ("Object permissions" button) are where admins grant topics to people."""

    topic_path = "pk"  # staff see the topics granted to them; settings are changed by superusers

    # Who may see a topic is granted here: superusers only. guardian asks only for "Can
    # change topic", so staff with it could grant themselves payload access. Every grant
    # and revoke is in the audit trail either way (recon.services.grants).
    def _grants_allowed(self, request) -> None:
        if not request.user.is_superuser:
            raise PermissionDenied("Object permissions are managed by superusers.")

    def obj_perms_manage_view(self, request, object_pk):
        self._grants_allowed(request)
        return super().obj_perms_manage_view(request, object_pk)

    # guardian routes any string as the user or group id and then fails on a non-number
    # inside the query (a 500): such a URL names nobody, so it is a 404.
    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        self._grants_allowed(request)
        if not str(user_id).isdigit():
            raise Http404("No such user.")
        return super().obj_perms_manage_user_view(request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        self._grants_allowed(request)
        if not str(group_id).isdigit():
            raise Http404("No such group.")
        return super().obj_perms_manage_group_view(request, object_pk, group_id)

    list_display = (
        "name",
        "kind",
        "consumer_group",
        "method_counts",
        "method_uuid",
        "method_hash",
        "method_audit",
        "hash_algorithm",
        "window_seconds",
        "grace_seconds",
        "latency_limit_seconds",
    )
    list_filter = ("kind", "method_audit", "hash_algorithm", "validate_payloads", "accepts_unsealed")
    search_fields = ("name", "consumer_group")
    fieldsets = (
        (None, {"fields": ("name", "kind", "consumer_group")}),
        ("Methods", {"fields": ("method_counts", "method_uuid", "method_hash", "method_audit", "hash_algorithm")}),
        (
            "Tolerances",
            {
                "fields": (
                    "window_seconds",
                    "grace_seconds",
                    "latency_limit_seconds",
                    "audit_retention_days",
                    "validate_payloads",
                )
            },
        ),
        ("Four eyes (replay approvals)", {"fields": ("approval_threshold", "approval_always")}),
        ("Feed integrity", {"fields": ("accepts_unsealed",)}),
    )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # Policy changes change what reconciliation reports: they belong in the audit trail.
        detail: dict = {"changed": sorted(form.changed_data)}
        if "accepts_unsealed" in form.changed_data:  # who opened the feed to unverified producers, and when
            detail["accepts_unsealed"] = {"before": not obj.accepts_unsealed, "after": obj.accepts_unsealed}
        operator_action_record(
            user=request.user,
            action="topic-change" if change else "topic-add",
            topic=obj,
            target=f"topic:{obj.pk}",
            detail=detail,
        )


@admin.register(Rule)
class RuleAdmin(TopicScopedAdmin, admin.ModelAdmin):
    list_display = (
        "name",
        "topic",
        "category",
        "event_type",
        "detail_field",
        "min_value",
        "max_value",
        "classification",
        "severity",
        "priority",
        "enabled",
    )
    list_filter = ("enabled", "category", "classification", "severity", "topic")
    search_fields = ("name", "detail_field")
    list_select_related = ("topic",)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        operator_action_record(
            user=request.user,
            action="rule-change" if change else "rule-add",
            topic=obj.topic,
            target=f"rule:{obj.pk}",
            detail={"name": obj.name, "changed": sorted(form.changed_data)},
        )

    def delete_model(self, request, obj):
        operator_action_record(
            user=request.user, action="rule-delete", topic=obj.topic, target=f"rule:{obj.pk}", detail={"name": obj.name}
        )
        super().delete_model(request, obj)


@admin.register(PublishedMessage)
class PublishedMessageAdmin(TopicScopedAdmin, LedgerAdmin):
    list_display = ("uuid", "topic", "partition", "offset", "key", "event_type", "size", "published_at", "hash")
    list_filter = ("topic", "event_type")
    exact_search_fields = ("key",)
    search_help_text = "Exact message UUID or record key"

    @admin.display(description="content hash")
    def hash(self, obj) -> str:
        return _hex(obj.content_hash)


@admin.register(ConsumedMessage)
class ConsumedMessageAdmin(TopicScopedAdmin, LedgerAdmin):
    list_display = ("uuid", "topic", "group", "partition", "offset", "key", "outcome", "published_at", "consumed_at")
    list_filter = ("topic", "outcome")
    exact_search_fields = ("key",)
    search_help_text = "Exact message UUID or record key"


@admin.register(AuditPayload)
class AuditPayloadAdmin(TopicScopedAdmin, LedgerAdmin):
    """Metadata only: the payload is ciphertext, read on the dashboard's message page with masking."""

    list_display = ("uuid", "topic", "side", "key_id", "size", "at", "stored_at", "expires_at")
    list_filter = ("topic", "side", "key_id")
    exclude = ("payload",)


_LOAD_PART_COLUMNS = (
    "number",
    "key_after",
    "key_last",
    "status",
    "total",
    "built",
    "published",
    "failed",
    "attempts",
    "worker",
    "heartbeat_at",
    "finished_at",
    "error",
)


class LoadPartInline(admin.TabularInline):
    """A load's client-id ranges, each run by whichever worker claimed it."""

    model = LoadPart
    fields = _LOAD_PART_COLUMNS
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True


@admin.register(LoadPart)
class LoadPartAdmin(TopicScopedAdmin, ReadOnlyAdmin):
    """One part of a load (kafkacache.services.loads moves it); read here, e.g. which worker holds it."""

    topic_path = "load__topic"

    list_display = ("load", *_LOAD_PART_COLUMNS)
    list_filter = ("status",)
    list_select_related = ("load",)
    readonly_fields = [f.name for f in LoadPart._meta.fields]
    show_full_result_count = False


@admin.register(Load)
class LoadAdmin(TopicScopedAdmin, ReadOnlyAdmin):
    """Loads are started from the dashboard or the API (which queue the work); here admins look at them."""

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
    inlines = [LoadPartInline]

    # A retrieval key reads the load's records: the admin never shows one (not editable), and
    # finds a load by its key only for who may read payloads (recon.access), as the API does.
    def get_search_results(self, request, queryset, search_term):
        rows, duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            rows = rows.filter(topic__in=access.topics_payload(request.user))
        return rows, duplicates


@admin.register(Window)
class WindowAdmin(TopicScopedAdmin, ReadOnlyAdmin):
    list_display = (
        "topic",
        "start",
        "end",
        "published_count",
        "consumed_count",
        "digests_equal",
        "status",
        "reconciled_at",
    )
    list_filter = ("status", "topic")
    list_select_related = ("topic",)
    show_full_result_count = False
    ordering = ("-start",)

    @admin.display(boolean=True, description="digests equal")
    def digests_equal(self, obj) -> bool:
        return obj.published_digest == obj.consumed_digest


class FindingTransitionInline(admin.TabularInline):
    model = FindingTransition
    fields = ("at", "action", "from_status", "to_status", "user", "reason_code", "detail")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


class FindingCommentInline(admin.TabularInline):
    model = FindingComment
    fields = ("at", "user", "text")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(FindingTransition)
class FindingTransitionAdmin(TopicScopedAdmin, ReadOnlyAdmin):
    """The history of findings (recon.services.finding_lifecycle writes it): read-only, admins included."""

    topic_path = "finding__topic"

    list_display = ("at", "finding", "action", "from_status", "to_status", "user", "reason_code")
    list_filter = ("action", "to_status")
    list_select_related = ("user", "reason_code")
    show_full_result_count = False
    paginator = CappedCountPaginator


@admin.register(FindingComment)
class FindingCommentAdmin(TopicScopedAdmin, ReadOnlyAdmin):
    topic_path = "finding__topic"
    list_display = ("at", "finding", "user", "text")
    list_select_related = ("user",)
    show_full_result_count = False
    paginator = CappedCountPaginator


@admin.register(ReasonCode)
class ReasonCodeAdmin(admin.ModelAdmin):
    """The configurable list a finding is accepted as-is from. Disable a code rather than delete it."""

    list_display = ("code", "label", "enabled", "position")
    list_editable = ("enabled", "position")
    search_fields = ("code", "label")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # accepted findings point at their code (PROTECT): disable instead

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        operator_action_record(
            user=request.user,
            action="reason-code-change" if change else "reason-code-add",
            target=f"reason-code:{obj.code}",
            detail={"changed": sorted(form.changed_data)},
        )


@admin.register(Finding)
class FindingAdmin(TopicScopedAdmin, UuidSearchMixin, admin.ModelAdmin):
    """Findings change state through recon.services.finding_lifecycle (the pages' and the API's buttons), not here."""

    inlines = [FindingTransitionInline, FindingCommentInline]

    list_display = (
        "id",
        "created_at",
        "topic",
        "category",
        "classification",
        "severity",
        "status",
        "assigned_user",
        "uuid",
        "key",
    )
    list_filter = ("status", "category", "classification", "severity", "topic", "assigned_group")
    exact_search_fields = ("key",)
    search_fields = ("uuid",)
    search_help_text = "Exact message UUID or record key"
    list_select_related = ("topic",)
    show_full_result_count = False
    readonly_fields = [f.name for f in Finding._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ReconRun)
class ReconRunAdmin(TopicScopedAdmin, ReadOnlyAdmin):
    list_display = ("id", "topic", "range_start", "range_end", "trigger", "requested_by", "status", "started_at")
    list_filter = ("status", "trigger", "topic")
    list_select_related = ("topic", "requested_by")


@admin.register(CacheScrub)
class CacheScrubAdmin(TopicScopedAdmin, ReadOnlyAdmin):
    topic_path = None  # a pass reads the records of every topic: superusers only
    list_display = (
        "started_at",
        "finished_at",
        "next_slot",
        "slices",
        "keys_read",
        "buckets_repaired",
        "values_differ",
        "seconds",
    )


@admin.register(RebalanceEvent)
class RebalanceEventAdmin(TopicScopedAdmin, ReadOnlyAdmin):
    topic_path = None  # one consumer group's partitions can be of several topics: superusers only
    list_display = ("at", "group", "member", "kind", "partition_list", "error")
    list_filter = ("kind", "group")
    search_fields = ("group", "member")

    @admin.display(description="partitions")
    def partition_list(self, obj) -> str:
        return ", ".join(f"{p.get('topic')}/{p.get('partition')}" for p in obj.partitions or [] if isinstance(p, dict))


@admin.register(OperatorAction)
class OperatorActionAdmin(TopicScopedAdmin, ReadOnlyAdmin):
    """The audit trail of people: nobody edits or deletes it, admins included."""

    list_display = ("at", "user", "action", "topic", "target_link", "outcome")
    list_filter = ("action", "outcome", "topic")
    search_fields = ("target", "user__username")
    list_select_related = ("user", "topic")

    @admin.display(description="target")
    def target_link(self, obj) -> str:
        kind, _, ident = obj.target.partition(":")
        if kind == "message" and ident:
            return format_html('<a href="/messages/{}/">{}</a>', ident, obj.target)
        return obj.target


class ReplayItemInline(admin.TabularInline):
    model = ReplayItem
    fields = ("original_uuid", "uuid", "key", "partition", "offset", "outcome", "detail", "at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False


@admin.register(Replay)
class ReplayAdmin(TopicScopedAdmin, UuidSearchMixin, ReadOnlyAdmin):
    """Replays are asked for on the dashboard or the API (with the operator action); here they are read."""

    list_display = ("created_at", "topic", "way", "scope", "status", "processed", "total", "requested_by", "decided_by")
    list_filter = ("status", "way", "scope", "topic")
    uuid_field = "id"
    search_fields = ("id",)  # shows the search box; UuidSearchMixin does the lookup
    search_help_text = "Exact replay id"
    list_select_related = ("topic", "requested_by")
    readonly_fields = [f.name for f in Replay._meta.fields]
    inlines = [ReplayItemInline]


@admin.register(ReplayItem)
class ReplayItemAdmin(TopicScopedAdmin, UuidSearchMixin, ReadOnlyAdmin):
    """What each replayed message became; searched by the original message's UUID."""

    topic_path = "replay__topic"

    list_display = ("at", "replay", "original_uuid", "uuid", "key", "partition", "offset", "outcome", "detail")
    list_filter = ("outcome",)
    uuid_field = "original_uuid"
    search_fields = ("original_uuid",)  # shows the search box; UuidSearchMixin does the lookup
    search_help_text = "Exact UUID of the original message"
    show_full_result_count = False
    paginator = CappedCountPaginator
    ordering = ("-id",)
