"""The break lifecycle in the API: the same transitions as the pages (recon.breaks), plus My breaks and ageing.

POST findings/{id}/assign|investigate|fix|accept|reopen and GET/POST
findings/{id}/comments, GET findings/{id}/history; GET breaks/mine, breaks/ageing,
reason-codes. Refusals answer the one error shape: outsider 404, viewer 403
(recorded), wrong state 409, unknown reason code 400.
"""

from django.contrib.auth.models import Group, User
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import AppError
from core.masking import mask_text
from core.usernames import username_normalise
from dashboard.serializers import FindingSerializer
from recon import access, breaks
from recon.models import Finding, FindingComment, FindingTransition, ReasonCode
from recon.selectors import breaks_ageing, breaks_of


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


class BreakActionsMixin:
    """The lifecycle actions of FindingViewSet (dashboard.apis)."""

    def _done(self, finding: Finding) -> Response:
        return Response(self.get_serializer(finding).data)  # type: ignore[attr-defined]

    def _body(self, serializer_class, request: Request) -> dict:
        body = serializer_class(data=request.data)
        body.is_valid(raise_exception=True)
        return body.validated_data

    @extend_schema(request=AssignSerializer, responses={200: FindingSerializer}, summary="Give a break an owner")
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk=None) -> Response:
        finding = self.get_object()  # type: ignore[attr-defined]
        breaks.finding_operate_check(finding, request.user, "assign")  # 403 before saying who exists
        data = self._body(AssignSerializer, request)
        name = username_normalise(data["assignee"]) if data["assignee"] else ""
        assignee = User.objects.filter(username=name).first() if name else None
        group = Group.objects.filter(name=data["group"]).first() if data["group"] else None
        if (data["assignee"] and assignee is None) or (data["group"] and group is None):
            raise AppError("No such user or team.", code="bad_assignee")
        return self._done(
            breaks.finding_assign(
                finding=finding, user=request.user, assignee=assignee, group=group, comment=data["comment"]
            )
        )

    @extend_schema(request=CommentSerializer, responses={200: FindingSerializer}, summary="Start investigating")
    @action(detail=True, methods=["post"])
    def investigate(self, request: Request, pk=None) -> Response:
        finding = self.get_object()  # type: ignore[attr-defined]
        breaks.finding_operate_check(finding, request.user, "investigate")  # a viewer: 403, not a form error
        data = self._body(CommentSerializer, request)
        return self._done(breaks.finding_investigate(finding=finding, user=request.user, comment=data["comment"]))

    @extend_schema(
        request=CommentSerializer,
        responses={200: FindingSerializer},
        summary="Mark fixed (the next check that no longer finds it resolves it)",
    )
    @action(detail=True, methods=["post"])
    def fix(self, request: Request, pk=None) -> Response:
        finding = self.get_object()  # type: ignore[attr-defined]
        breaks.finding_operate_check(finding, request.user, "fix")  # a viewer: 403, not a form error
        data = self._body(CommentSerializer, request)
        return self._done(breaks.finding_fix(finding=finding, user=request.user, comment=data["comment"]))

    @extend_schema(request=AcceptSerializer, responses={200: FindingSerializer}, summary="Accept as-is with a reason")
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk=None) -> Response:
        finding = self.get_object()  # type: ignore[attr-defined]
        breaks.finding_operate_check(finding, request.user, "accept")
        data = self._body(AcceptSerializer, request)
        return self._done(
            breaks.finding_accept(
                finding=finding, user=request.user, reason_code=data["reason_code"], comment=data["comment"]
            )
        )

    @extend_schema(request=CommentSerializer, responses={200: FindingSerializer}, summary="Reopen, saying why")
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk=None) -> Response:
        finding = self.get_object()  # type: ignore[attr-defined]
        breaks.finding_operate_check(finding, request.user, "reopen")  # a viewer: 403, not a form error
        data = self._body(CommentSerializer, request)
        return self._done(breaks.finding_reopen(finding=finding, user=request.user, comment=data["comment"]))

    @extend_schema(
        methods=["GET"], responses={200: CommentOutSerializer(many=True)}, summary="The break's comment thread"
    )
    @extend_schema(
        methods=["POST"], request=CommentSerializer, responses={201: CommentOutSerializer}, summary="Add a comment"
    )
    @action(detail=True, methods=["get", "post"])
    def comments(self, request: Request, pk=None) -> Response:
        finding = self.get_object()  # type: ignore[attr-defined]
        context = {"clear": access.can_view_payload(request.user, finding.topic)}
        if request.method == "POST":
            breaks.finding_operate_check(finding, request.user, "comment")
            data = self._body(CommentSerializer, request)
            comment = breaks.finding_comment(finding=finding, user=request.user, text=data["comment"])
            return Response(CommentOutSerializer(comment, context=context).data, status=201)
        rows = FindingComment.objects.filter(finding=finding).select_related("user")
        return Response(CommentOutSerializer(rows, many=True, context=context).data)

    @extend_schema(responses={200: TransitionSerializer(many=True)}, summary="Every change of the break")
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk=None) -> Response:
        finding = self.get_object()  # type: ignore[attr-defined]
        rows = FindingTransition.objects.filter(finding=finding).select_related("user", "reason_code")
        return Response(TransitionSerializer(rows, many=True).data)


class MyBreaksApi(APIView):
    @extend_schema(responses={200: FindingSerializer(many=True)}, summary="Breaks assigned to you or your teams")
    def get(self, request: Request) -> Response:
        topics = access.topics_visible(request.user)
        rows = breaks_of(user=request.user, topics=topics)[:500]
        clear = {t.pk for t in topics if access.can_view_payload(request.user, t)}
        return Response(FindingSerializer(rows, many=True, context={"payload_topic_ids": clear}).data)


class AgeingApi(APIView):
    @extend_schema(
        responses={200: AgeingRowSerializer(many=True)},
        summary="Open breaks per topic and severity by age (< 1 h, 1-24 h, 1-7 days, > 7 days), oldest, SLA",
    )
    def get(self, request: Request) -> Response:
        rows = breaks_ageing(topics=access.topics_visible(request.user), now=timezone.now())
        return Response(AgeingRowSerializer(rows, many=True).data)


class ReasonCodeApi(APIView):
    @extend_schema(responses={200: ReasonCodeSerializer(many=True)}, summary="Reason codes for accepting a break")
    def get(self, request: Request) -> Response:
        return Response(ReasonCodeSerializer(ReasonCode.objects.filter(enabled=True), many=True).data)
