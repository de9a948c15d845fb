"""API representations. Masking happens here for anything that may carry card or
account numbers (finding details, comments, action details, audit payloads)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.masking import mask_sensitive, mask_text
from recon import access
from recon.models import (
    ConsumedMessage,
    Finding,
    FindingComment,
    FindingTransition,
    OperatorAction,
    PublishedMessage,
    ReasonCode,
    RebalanceEvent,
    Topic,
    Window,
)


def _clear(serializer: serializers.Serializer, topic_id: int | None) -> bool:
    """May the caller see this topic's payloads in the clear? (computed once per request by the view)."""
    return topic_id is not None and topic_id in serializer.context.get("payload_topic_ids", set())


class TopicSerializer(serializers.ModelSerializer):
    can_operate = serializers.SerializerMethodField()
    can_view_payload = serializers.SerializerMethodField()

    class Meta:
        model = Topic
        fields = [
            "id",
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
            "audit_retention_days",
            "validate_payloads",
            "can_operate",
            "can_view_payload",
        ]

    def get_can_operate(self, obj: Topic) -> bool:
        return access.can_operate(self.context["request"].user, obj)

    def get_can_view_payload(self, obj: Topic) -> bool:
        return access.can_view_payload(self.context["request"].user, obj)


class WindowSerializer(serializers.ModelSerializer):
    topic = serializers.SlugRelatedField(slug_field="name", read_only=True)
    digests_equal = serializers.SerializerMethodField()

    class Meta:
        model = Window
        fields = [
            "id",
            "topic",
            "start",
            "end",
            "published_count",
            "consumed_count",
            "digests_equal",
            "status",
            "reconciled_at",
            "summary",
        ]

    def get_digests_equal(self, obj: Window) -> bool:
        return obj.published_digest == obj.consumed_digest


class FindingSerializer(serializers.ModelSerializer):
    topic = serializers.SlugRelatedField(slug_field="name", read_only=True)
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    assigned_user = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    assigned_group = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    reason_code = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    detail = serializers.SerializerMethodField()
    comment = serializers.SerializerMethodField()

    class Meta:
        model = Finding
        fields = [
            "id",
            "topic",
            "window",
            "run",
            "load",
            "uuid",
            "key",
            "category",
            "classification",
            "severity",
            "status",
            "detail",
            "created_at",
            "updated_at",
            "acknowledged_by",
            "comment",
            "assigned_user",
            "assigned_group",
            "assigned_at",
            "reason_code",
            "status_changed_at",
        ]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_detail(self, obj: Finding) -> dict:
        return obj.detail if _clear(self, obj.topic_id) else mask_sensitive(obj.detail)

    def get_comment(self, obj: Finding) -> str:
        return obj.comment if _clear(self, obj.topic_id) else mask_text(obj.comment)


class FindingAcknowledgeSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=2000, allow_blank=False, trim_whitespace=True)


class RebalanceSerializer(serializers.ModelSerializer):
    partitions = serializers.SerializerMethodField()

    class Meta:
        model = RebalanceEvent
        fields = ["id", "at", "group", "member", "kind", "partitions", "error"]

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_partitions(self, event: RebalanceEvent) -> list[dict]:
        """Only the partitions of topics the caller may see (the group may hold others)."""
        return access.partitions_visible(self.context["request"].user, event.partitions)


class OperatorActionSerializer(serializers.ModelSerializer):
    # null: done by a command or a shell (recon.services.grants)
    user = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    topic = serializers.SlugRelatedField(slug_field="name", read_only=True)
    detail = serializers.SerializerMethodField()

    class Meta:
        model = OperatorAction
        fields = ["id", "at", "user", "action", "topic", "target", "detail", "outcome"]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_detail(self, obj: OperatorAction) -> dict:
        return obj.detail if _clear(self, obj.topic_id) else mask_sensitive(obj.detail)


@extend_schema_field(OpenApiTypes.STR)
class _HexField(serializers.Field):
    def to_representation(self, value) -> str:
        return bytes(value).hex()


class PublishedSerializer(serializers.ModelSerializer):
    content_hash = _HexField()

    class Meta:
        model = PublishedMessage
        fields = [
            "uuid",
            "partition",
            "offset",
            "key",
            "event_type",
            "content_hash",
            "size",
            "published_at",
            "load",
            "replay_of",
        ]


class DeliverySerializer(serializers.ModelSerializer):
    content_hash = _HexField()

    class Meta:
        model = ConsumedMessage
        fields = ["group", "partition", "offset", "key", "content_hash", "published_at", "consumed_at", "outcome"]


class CacheStateSerializer(serializers.Serializer):
    record_key = serializers.CharField()
    present = serializers.BooleanField()
    uuid = serializers.CharField(help_text="UUID of the message the cache entry came from")
    holds_this_message = serializers.BooleanField()
    hash_matches = serializers.BooleanField(allow_null=True, help_text="cached bytes hash to the published hash")
    schema_version = serializers.CharField()
    created_ms = serializers.CharField()
    error = serializers.CharField()


class EventSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=["published", "consumed", "finding", "action"])
    summary = serializers.CharField()
    ok = serializers.BooleanField()


class MessageSerializer(serializers.Serializer):
    """A MessageTimeline (dashboard.selectors)."""

    uuid = serializers.UUIDField()
    topic = serializers.CharField(source="topic.name")
    published = PublishedSerializer(allow_null=True)
    deliveries = DeliverySerializer(many=True)
    cache = CacheStateSerializer(allow_null=True)
    headers = serializers.DictField(child=serializers.CharField())
    events = EventSerializer(many=True)
    findings = FindingSerializer(many=True)
    actions = OperatorActionSerializer(many=True)
    rebalances = RebalanceSerializer(many=True)
    can_operate = serializers.BooleanField()
    can_view_payload = serializers.BooleanField()
    audit_payload = serializers.JSONField(allow_null=True, help_text="Masked unless can_view_payload")


# --- a finding's lifecycle -----------------------------------------------------------------


class AssignSerializer(serializers.Serializer):
    assignee = serializers.CharField(required=False, allow_blank=True, default="", help_text="Username (or empty).")
    group = serializers.CharField(required=False, allow_blank=True, default="", help_text="Team name (or empty).")
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)


class AcceptSerializer(CommentSerializer):
    reason_code = serializers.CharField(max_length=48)


class CommentOutSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    text = serializers.SerializerMethodField()

    class Meta:
        model = FindingComment
        fields = ["id", "at", "user", "text"]

    def get_text(self, obj: FindingComment) -> str:
        return obj.text if self.context.get("clear") else mask_text(obj.text)


class TransitionSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    reason_code = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = FindingTransition
        fields = ["id", "at", "action", "from_status", "to_status", "user", "reason_code", "detail"]


class ReasonCodeSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReasonCode
        fields = ["code", "label", "description"]


class AgeingRowSerializer(serializers.Serializer):
    topic = serializers.CharField(source="topic__name")
    severity = serializers.CharField()
    total = serializers.IntegerField()
    lt_1h = serializers.IntegerField()
    h1_24 = serializers.IntegerField()
    d1_7 = serializers.IntegerField()
    gt_7d = serializers.IntegerField()
    oldest_at = serializers.DateTimeField()
    oldest_id = serializers.IntegerField(source="oldest.pk", allow_null=True, default=None)
    sla_hours = serializers.IntegerField(allow_null=True)
    over_sla = serializers.BooleanField()
