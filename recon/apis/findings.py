"""Findings in the API: the list and one finding, their lifecycle (the same transitions as the
pages: recon.services.finding_lifecycle), My findings, ageing, reason codes.

POST findings/{id}/acknowledge|assign|investigate|fix|accept|reopen and GET/POST
findings/{id}/comments, GET findings/{id}/history; GET breaks/mine, breaks/ageing,
reason-codes. Refusals answer the one error shape: outsider 404, viewer 403
(recorded), wrong state 409, unknown reason code 400.
"""

from django.contrib.auth.models import Group, User
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import AppError
from core.usernames import username_normalise
from recon import access
from recon.apis.viewsets import RecordViewSet, cursor_pagination, filter_parameters
from recon.filters import FindingFilterForm
from recon.models import Finding, FindingComment, FindingTransition, ReasonCode
from recon.selectors.findings import findings_ageing, findings_assigned, findings_filtered
from recon.serializers import (
    AcceptSerializer,
    AgeingRowSerializer,
    AssignSerializer,
    CommentOutSerializer,
    CommentSerializer,
    FindingAcknowledgeSerializer,
    FindingSerializer,
    ReasonCodeSerializer,
    TransitionSerializer,
)
from recon.services import finding_lifecycle


@extend_schema_view(list=extend_schema(parameters=filter_parameters(FindingFilterForm)))
class FindingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, RecordViewSet):
    serializer_class = FindingSerializer
    pagination_class = cursor_pagination("created_at")
    filter_form = FindingFilterForm

    def get_queryset(self):
        if self.action == "list":
            return findings_filtered(user=self.request.user, **self.filters())
        return findings_filtered(user=self.request.user)

    @extend_schema(
        request=FindingAcknowledgeSerializer,
        responses={200: FindingSerializer},
        summary="Acknowledge an open finding with a comment (operators of its topic)",
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk=None) -> Response:
        finding = self.get_object()
        body = FindingAcknowledgeSerializer(data=request.data)
        if not body.is_valid():
            access.topic_for_operate(request.user, finding.topic)  # a viewer gets 403, not a validation message
            raise ValidationError(body.errors)
        finding = finding_lifecycle.finding_acknowledge(
            finding=finding, user=request.user, comment=body.validated_data["comment"]
        )
        return Response(self.get_serializer(finding).data)

    def _done(self, finding: Finding) -> Response:
        return Response(self.get_serializer(finding).data)

    def _body(self, serializer_class, request: Request) -> dict:
        body = serializer_class(data=request.data)
        body.is_valid(raise_exception=True)
        return body.validated_data

    @extend_schema(request=AssignSerializer, responses={200: FindingSerializer}, summary="Give a finding an owner")
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk=None) -> Response:
        finding = self.get_object()
        finding_lifecycle.finding_operate_check(finding, request.user, "assign")  # 403 before saying who exists
        data = self._body(AssignSerializer, request)
        name = username_normalise(data["assignee"]) if data["assignee"] else ""
        assignee = User.objects.filter(username=name).first() if name else None
        group = Group.objects.filter(name=data["group"]).first() if data["group"] else None
        if (data["assignee"] and assignee is None) or (data["group"] and group is None):
            raise AppError("No such user or team.", code="bad_assignee")
        return self._done(
            finding_lifecycle.finding_assign(
                finding=finding, user=request.user, assignee=assignee, group=group, comment=data["comment"]
            )
        )

    @extend_schema(request=CommentSerializer, responses={200: FindingSerializer}, summary="Start investigating")
    @action(detail=True, methods=["post"])
    def investigate(self, request: Request, pk=None) -> Response:
        finding = self.get_object()
        finding_lifecycle.finding_operate_check(finding, request.user, "investigate")  # a viewer: 403, not a form error
        data = self._body(CommentSerializer, request)
        return self._done(
            finding_lifecycle.finding_investigate(finding=finding, user=request.user, comment=data["comment"])
        )

    @extend_schema(
        request=CommentSerializer,
        responses={200: FindingSerializer},
        summary="Mark fixed (the next check that no longer finds it resolves it)",
    )
    @action(detail=True, methods=["post"])
    def fix(self, request: Request, pk=None) -> Response:
        finding = self.get_object()
        finding_lifecycle.finding_operate_check(finding, request.user, "fix")  # a viewer: 403, not a form error
        data = self._body(CommentSerializer, request)
        return self._done(finding_lifecycle.finding_fix(finding=finding, user=request.user, comment=data["comment"]))

    @extend_schema(request=AcceptSerializer, responses={200: FindingSerializer}, summary="Accept as-is with a reason")
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk=None) -> Response:
        finding = self.get_object()
        finding_lifecycle.finding_operate_check(finding, request.user, "accept")
        data = self._body(AcceptSerializer, request)
        return self._done(
            finding_lifecycle.finding_accept(
                finding=finding, user=request.user, reason_code=data["reason_code"], comment=data["comment"]
            )
        )

    @extend_schema(request=CommentSerializer, responses={200: FindingSerializer}, summary="Reopen, saying why")
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk=None) -> Response:
        finding = self.get_object()
        finding_lifecycle.finding_operate_check(finding, request.user, "reopen")  # a viewer: 403, not a form error
        data = self._body(CommentSerializer, request)
        return self._done(finding_lifecycle.finding_reopen(finding=finding, user=request.user, comment=data["comment"]))

    @extend_schema(
        methods=["GET"], responses={200: CommentOutSerializer(many=True)}, summary="The finding's comment thread"
    )
    @extend_schema(
        methods=["POST"], request=CommentSerializer, responses={201: CommentOutSerializer}, summary="Add a comment"
    )
    @action(detail=True, methods=["get", "post"])
    def comments(self, request: Request, pk=None) -> Response:
        finding = self.get_object()
        context = {"clear": access.can_view_payload(request.user, finding.topic)}
        if request.method == "POST":
            finding_lifecycle.finding_operate_check(finding, request.user, "comment")
            data = self._body(CommentSerializer, request)
            comment = finding_lifecycle.finding_comment(finding=finding, user=request.user, text=data["comment"])
            return Response(CommentOutSerializer(comment, context=context).data, status=201)
        rows = FindingComment.objects.filter(finding=finding).select_related("user")
        return Response(CommentOutSerializer(rows, many=True, context=context).data)

    @extend_schema(responses={200: TransitionSerializer(many=True)}, summary="Every change of the finding")
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk=None) -> Response:
        finding = self.get_object()
        rows = FindingTransition.objects.filter(finding=finding).select_related("user", "reason_code")
        return Response(TransitionSerializer(rows, many=True).data)


class MyFindingsApi(APIView):
    @extend_schema(responses={200: FindingSerializer(many=True)}, summary="Findings assigned to you or your teams")
    def get(self, request: Request) -> Response:
        topics = access.topics_visible(request.user)
        rows = findings_assigned(user=request.user, topics=topics)[:500]
        clear = {t.pk for t in topics if access.can_view_payload(request.user, t)}
        return Response(FindingSerializer(rows, many=True, context={"payload_topic_ids": clear}).data)


class AgeingApi(APIView):
    @extend_schema(
        responses={200: AgeingRowSerializer(many=True)},
        summary="Open findings per topic and severity by age (< 1 h, 1-24 h, 1-7 days, > 7 days), oldest, SLA",
    )
    def get(self, request: Request) -> Response:
        rows = findings_ageing(topics=access.topics_visible(request.user), now=timezone.now())
        return Response(AgeingRowSerializer(rows, many=True).data)


class ReasonCodeApi(APIView):
    @extend_schema(responses={200: ReasonCodeSerializer(many=True)}, summary="Reason codes for accepting a finding")
    def get(self, request: Request) -> Response:
        return Response(ReasonCodeSerializer(ReasonCode.objects.filter(enabled=True), many=True).data)
