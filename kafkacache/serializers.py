from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from kafkacache.services.change_feed import CHANGE_EVENTS
from recon.models import Load


class LoadCreateSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=128, default="ods")
    client_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=100_000
    )
    topic = serializers.CharField(max_length=249, required=False, allow_blank=True, default="")


class LoadSerializer(serializers.ModelSerializer):
    topic = serializers.CharField(source="topic.name")
    requested_by = serializers.CharField(source="requested_by.username", default=None, allow_null=True)
    clients = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()
    cache_url = serializers.SerializerMethodField()
    # The retrieval key reads the load's records: shown only to who may read payloads
    # (context "payload_topics": their topic ids), null for everyone else.
    retrieval_key = serializers.SerializerMethodField()
    # The client-id ranges it was split into, run by any number of workers (0 until split).
    parts = serializers.IntegerField(source="part_count", read_only=True)

    class Meta:
        model = Load
        fields = [
            "id",
            "retrieval_key",
            "topic",
            "source",
            "clients",
            "status",
            "total",
            "built",
            "published",
            "failed",
            "exceptions",
            "parts",
            "error",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "status_url",
            "cache_url",
        ]

    def get_clients(self, load: Load) -> int | str:
        return len(load.client_ids) or "all"

    def get_status_url(self, load: Load) -> str:
        return reverse("api-load", args=[load.id])

    def _may_read(self, load: Load) -> bool:
        return load.topic_id in self.context.get("payload_topics", ())

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_retrieval_key(self, load: Load) -> str | None:
        return load.retrieval_key if self._may_read(load) else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_cache_url(self, load: Load) -> str | None:
        return reverse("api-cache", args=[load.retrieval_key]) if self._may_read(load) else None


class ChangeCreateSerializer(serializers.Serializer):
    event = serializers.ChoiceField(choices=CHANGE_EVENTS)
    key = serializers.CharField(max_length=512, required=False, allow_blank=True, default="")
    old_key = serializers.CharField(max_length=512, required=False, allow_blank=True, default="")
    record = serializers.JSONField(required=False, default=None)
    # The record's version in the system of record, at most the source's bound (a 400 names
    # it); without one, the change gets a version drawn from the source's sequence.
    version = serializers.IntegerField(required=False, default=None, allow_null=True, min_value=1)


class LoadStartedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    retrieval_key = serializers.CharField()
    status_url = serializers.CharField()


class CacheRecordsSerializer(serializers.Serializer):
    load = serializers.UUIDField()
    status = serializers.CharField()
    count = serializers.IntegerField()
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()
    decrypted = serializers.BooleanField()
    results = serializers.ListField(child=serializers.DictField())


class ChangeSerializer(serializers.Serializer):
    """A change accepted: published to the change topic, not yet applied (status_url says
    what the cache did with it once the feed consumed it)."""

    uuid = serializers.UUIDField()
    key = serializers.CharField()
    event = serializers.CharField()
    partition = serializers.IntegerField()
    offset = serializers.IntegerField()
    version = serializers.IntegerField()
    status = serializers.CharField(default="published")
    status_url = serializers.SerializerMethodField()

    def get_status_url(self, change) -> str:
        return reverse("api-change", args=[change.uuid])


class ChangeDeliverySerializer(serializers.Serializer):
    group = serializers.CharField()
    outcome = serializers.CharField()
    consumed_at = serializers.DateTimeField()
    partition = serializers.IntegerField()
    offset = serializers.IntegerField()


class ChangeStatusSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    topic = serializers.CharField()
    key = serializers.CharField()
    event = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    partition = serializers.IntegerField()
    offset = serializers.IntegerField()
    # published (not consumed yet), or the latest delivery's outcome in the consume ledger
    status = serializers.CharField()
    deliveries = ChangeDeliverySerializer(many=True)
