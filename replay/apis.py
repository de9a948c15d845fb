"""Replay and reprocess API (mounted at api/recon/): ask for one, follow it.

POST replays {topic, way, scope, target, reason} queues a replay and answers 202
with it (200 with the request already queued or running, when the same one is
asked again); POST reprocess {findings | topic+start+end, reason} is the same for
dead letters. GET replays / replays/{id} read them back with progress and the
outcome of each message. Acting needs operate permission on the topic (viewer 403,
outsider 404), reading needs view permission (recon.access).
"""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import paginated
from core.masking import mask_text
from recon import access
from recon.models import Finding, Replay, ReplayItem, Topic
from replay.preview import preview_shown, replay_dry_run
from replay.selectors import replay_for_view, replay_items, replays_visible
from replay.services.approval import replay_approve, replay_reject
from replay.services.requests import replay_request, target_clean, topic_for_replay

API_MAX_ITEMS = 1000  # per-message outcomes in one answer (the page pages through them all)


def _topic(value) -> Topic | None:
    value = str(value)
    found = Topic.objects.filter(name=value).first()
    if found is None and value.isdigit():
        found = Topic.objects.filter(pk=int(value)).first()
    return found


class ReplayCreateSerializer(serializers.Serializer):
    topic = serializers.CharField(help_text="Topic name (or id).")
    way = serializers.ChoiceField(choices=Replay.Way.choices)
    scope = serializers.ChoiceField(choices=Replay.Scope.choices)
    target = serializers.JSONField(
        help_text=(
            'messages {"uuids": [..]}, window {"window": id}, range {"start", "end"}, load {"load": id}, '
            'offsets {"partition", "start_offset", "end_offset"}, clients {"keys": ["client:42", ..]}, '
            'findings {"findings": [ids]}; source replays may add "source" (default "ods")'
        )
    )
    reason = serializers.CharField(max_length=2000)


class ReprocessSerializer(serializers.Serializer):
    findings = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=100_000)
    topic = serializers.CharField(required=False)
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)
    reason = serializers.CharField(max_length=2000)

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("findings") and not all(attrs.get(k) for k in ("topic", "start", "end")):
            raise serializers.ValidationError("Give dead-lettered finding ids, or a topic with start and end.")
        return attrs


class ReplayItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReplayItem
        fields = ["original_uuid", "uuid", "key", "partition", "offset", "outcome", "detail", "at"]


class ReplaySerializer(serializers.ModelSerializer):
    topic = serializers.CharField(source="topic.name")
    requested_by = serializers.CharField(source="requested_by.username", default=None, allow_null=True)
    decided_by = serializers.CharField(source="decided_by.username", default=None, allow_null=True)
    reason = serializers.SerializerMethodField()

    class Meta:
        model = Replay
        fields = [
            "id",
            "topic",
            "way",
            "scope",
            "target",
            "reason",
            "requested_by",
            "status",
            "total",
            "processed",
            "outcome",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "size",
            "needs_approval",
            "expires_at",
            "decided_by",
            "decided_at",
            "decision_comment",
        ]

    def get_reason(self, replay: Replay) -> str:
        # Free text: a card number pasted into it is masked for those without payload permission.
        clear = replay.topic_id in self.context.get("payload_topic_ids", set())
        return replay.reason if clear else mask_text(replay.reason)


class ReplayDetailSerializer(ReplaySerializer):
    items = serializers.SerializerMethodField()
    items_truncated = serializers.SerializerMethodField()
    preview = serializers.SerializerMethodField()

    class Meta(ReplaySerializer.Meta):
        fields = [*ReplaySerializer.Meta.fields, "preview", "items", "items_truncated"]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_preview(self, replay: Replay) -> dict:
        """The dry run the requester and the approver saw (replay.preview)."""
        return preview_shown(replay.preview, clear=replay.topic_id in self.context.get("payload_topic_ids", set()))

    def _items(self, replay: Replay) -> list[ReplayItem]:
        if not hasattr(replay, "_items_cache"):
            replay._items_cache = list(replay_items(replay)[: API_MAX_ITEMS + 1])  # type: ignore[attr-defined]
        return replay._items_cache  # type: ignore[attr-defined]

    @extend_schema(responses=ReplayItemSerializer(many=True))
    def get_items(self, replay: Replay) -> list[dict]:
        return list(ReplayItemSerializer(self._items(replay)[:API_MAX_ITEMS], many=True).data)

    def get_items_truncated(self, replay: Replay) -> bool:
        return len(self._items(replay)) > API_MAX_ITEMS


def _context(request: Request) -> dict:
    user = request.user
    return {
        "request": request,
        "payload_topic_ids": {t.pk for t in access.topics_visible(user) if access.can_view_payload(user, t)},
    }


def _answer(request: Request, replay: Replay, created: bool) -> Response:
    data = ReplaySerializer(replay, context=_context(request)).data
    return Response(data, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


class ReplayListCreateApi(APIView):
    @extend_schema(
        request=ReplayCreateSerializer,
        responses={202: ReplaySerializer, 200: ReplaySerializer},
        summary="Queue a replay (operators of the topic); 200 when the same one is already queued or running",
    )
    def post(self, request: Request) -> Response:
        body = ReplayCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        topic = topic_for_replay(request.user, _topic(data["topic"]), way=data["way"])
        target = data["target"] if isinstance(data["target"], dict) else {}
        replay, created = replay_request(
            topic=topic,
            way=data["way"],
            scope=data["scope"],
            target=target,
            reason=data["reason"],
            requested_by=request.user,
        )
        return _answer(request, replay, created)

    @extend_schema(
        operation_id="recon_replays_list",
        responses={200: paginated(ReplaySerializer, "PaginatedReplayList")},
        parameters=[
            OpenApiParameter("topic", str),
            OpenApiParameter("status", str, enum=Replay.Status.values),
            OpenApiParameter("way", str, enum=Replay.Way.values),
        ],
        summary="Replays of the topics you may see",
    )
    def get(self, request: Request) -> Response:
        replays = replays_visible(access.topics_visible(request.user))
        for name in ("status", "way"):
            if request.query_params.get(name):
                replays = replays.filter(**{name: request.query_params[name]})
        if request.query_params.get("topic"):
            replays = replays.filter(topic__name=request.query_params["topic"])
        paginator = generics.GenericAPIView.pagination_class()
        assert paginator is not None
        page = paginator.paginate_queryset(replays.order_by("-created_at"), request)
        return paginator.get_paginated_response(ReplaySerializer(page, many=True, context=_context(request)).data)


class ReplayDetailApi(APIView):
    @extend_schema(
        responses={200: ReplayDetailSerializer}, summary="A replay with its progress and per-message outcome"
    )
    def get(self, request: Request, replay_id) -> Response:
        replay = replay_for_view(request.user, replay_id)
        return Response(ReplayDetailSerializer(replay, context=_context(request)).data)


class ReprocessApi(APIView):
    @extend_schema(
        request=ReprocessSerializer,
        responses={202: ReplaySerializer, 200: ReplaySerializer},
        summary="Reprocess dead letters by finding ids, or all of a topic's over a time range",
    )
    def post(self, request: Request) -> Response:
        body = ReprocessSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data.get("findings"):
            topic_ids = set(Finding.objects.filter(pk__in=data["findings"]).values_list("topic_id", flat=True))
            visible = set(access.topics_visible(request.user).filter(pk__in=topic_ids).values_list("pk", flat=True))
            if not topic_ids or visible != topic_ids:
                raise Http404("No such finding.")
            if len(topic_ids) > 1:
                raise serializers.ValidationError({"findings": "Give findings of one topic per request."})
            topic = topic_for_replay(request.user, Topic.objects.get(pk=topic_ids.pop()), way=Replay.Way.DEAD_LETTER)
            scope, target = Replay.Scope.FINDINGS, {"findings": data["findings"]}
        else:
            topic = topic_for_replay(request.user, _topic(data["topic"]), way=Replay.Way.DEAD_LETTER)
            scope, target = Replay.Scope.RANGE, {"start": data["start"].isoformat(), "end": data["end"].isoformat()}
        replay, created = replay_request(
            topic=topic,
            way=Replay.Way.DEAD_LETTER,
            scope=scope,
            target=target,
            reason=data["reason"],
            requested_by=request.user,
        )
        return _answer(request, replay, created)


class DryRunSerializer(serializers.Serializer):
    topic = serializers.CharField(help_text="Topic name (or id).")
    way = serializers.ChoiceField(choices=Replay.Way.choices)
    scope = serializers.ChoiceField(choices=Replay.Scope.choices)
    target = serializers.JSONField(help_text="As for POST replays.")


class DecisionSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ReplayDryRunApi(APIView):
    @extend_schema(
        request=DryRunSerializer,
        responses={200: OpenApiTypes.OBJECT},
        summary="What a replay would publish and what the cache would make of it, per message (nothing is done)",
    )
    def post(self, request: Request) -> Response:
        body = DryRunSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        topic = topic_for_replay(request.user, _topic(data["topic"]), way=data["way"])
        target = target_clean(
            topic=topic,
            way=data["way"],
            scope=data["scope"],
            target=data["target"] if isinstance(data["target"], dict) else {},
        )
        preview = replay_dry_run(topic=topic, way=data["way"], scope=data["scope"], target=target)
        return Response(preview_shown(preview, clear=access.can_view_payload(request.user, topic)))


def _replay_of(request: Request, replay_id) -> Replay:
    replay = replay_for_view(request.user, replay_id)
    return replay


class ReplayApproveApi(APIView):
    @extend_schema(
        request=DecisionSerializer,
        responses={200: ReplaySerializer},
        summary="Approve a pending replay (a second operator of the topic, never the requester): it is queued",
    )
    def post(self, request: Request, replay_id) -> Response:
        replay = _replay_of(request, replay_id)
        body = DecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        replay = replay_approve(replay=replay, user=request.user, comment=body.validated_data["comment"])
        return Response(ReplaySerializer(replay, context=_context(request)).data)


class ReplayRejectApi(APIView):
    @extend_schema(
        request=DecisionSerializer,
        responses={200: ReplaySerializer},
        summary="Reject a pending replay, saying why (a second operator of the topic, never the requester)",
    )
    def post(self, request: Request, replay_id) -> Response:
        replay = _replay_of(request, replay_id)
        body = DecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        replay = replay_reject(replay=replay, user=request.user, comment=body.validated_data["comment"])
        return Response(ReplaySerializer(replay, context=_context(request)).data)
