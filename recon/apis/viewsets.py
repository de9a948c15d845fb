"""The dashboard's API for automation: the same reads and actions as the pages.

Token or session auth; every queryset starts from recon.access.topics_visible,
so an outsider gets 404 and a viewer acting gets 403, exactly as on the pages.
Filters are the pages' forms (dashboard.forms); lists page by cursor, never COUNT.
"""

from django import forms as django_forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard import forms, selectors
from dashboard.break_apis import BreakActionsMixin
from dashboard.serializers import (
    FindingAcknowledgeSerializer,
    FindingSerializer,
    MessageSerializer,
    OperatorActionSerializer,
    RebalanceSerializer,
    TopicSerializer,
    WindowSerializer,
)
from recon import access
from recon.services import finding_lifecycle


def _cursor_pagination(field: str) -> type[CursorPagination]:
    return type(
        f"By{field.title().replace('_', '')}",
        (CursorPagination,),
        {"ordering": (f"-{field}", "-pk"), "page_size": 50, "max_page_size": 500, "page_size_query_param": "limit"},
    )


def _parameters(form_class: type[django_forms.Form]) -> list[OpenApiParameter]:
    """OpenAPI query parameters from a filter form, so the schema cannot drift from the code."""
    params = []
    for name, field in form_class.base_fields.items():
        if name == "cursor":
            continue  # documented by the paginator
        kind: object = OpenApiTypes.STR
        enum = None
        if isinstance(field, django_forms.DateTimeField):
            kind = OpenApiTypes.DATETIME
        elif isinstance(field, django_forms.UUIDField):
            kind = OpenApiTypes.UUID
        elif isinstance(field, django_forms.ChoiceField) and not isinstance(field, django_forms.ModelChoiceField):
            enum = [value for value, _ in field.choices if value]  # type: ignore[union-attr,misc]
        description = "topic name" if name == "topic" else str(field.label or name)
        params.append(OpenApiParameter(name, kind, OpenApiParameter.QUERY, enum=enum, description=description))
    return params


class _DashboardViewSet(viewsets.GenericViewSet):
    filter_form: type[forms.TopicFilterForm] = forms.TopicFilterForm

    def filters(self) -> dict:
        form = self.filter_form(self.request.query_params, user=self.request.user)
        if not form.is_valid():
            raise ValidationError(form.errors.get_json_data())
        return form.filters()

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        user = self.request.user
        context["payload_topic_ids"] = {t.pk for t in access.topics_visible(user) if access.can_view_payload(user, t)}
        return context


@extend_schema_view(list=extend_schema(summary="Topics you may see, with what you may do on each"))
class TopicViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _DashboardViewSet):
    serializer_class = TopicSerializer
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"  # Kafka topic names contain dots
    pagination_class = None

    def get_queryset(self):
        return selectors.topics_visible(self.request.user)


@extend_schema_view(list=extend_schema(parameters=_parameters(forms.WindowFilterForm)))
class WindowViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _DashboardViewSet):
    serializer_class = WindowSerializer
    pagination_class = _cursor_pagination("start")
    filter_form = forms.WindowFilterForm

    def get_queryset(self):
        if self.action == "list":
            return selectors.windows_filtered(user=self.request.user, **self.filters())
        return selectors.windows_filtered(user=self.request.user)


@extend_schema_view(list=extend_schema(parameters=_parameters(forms.FindingFilterForm)))
class FindingViewSet(BreakActionsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, _DashboardViewSet):
    serializer_class = FindingSerializer
    pagination_class = _cursor_pagination("created_at")
    filter_form = forms.FindingFilterForm

    def get_queryset(self):
        if self.action == "list":
            return selectors.findings_filtered(user=self.request.user, **self.filters())
        return selectors.findings_filtered(user=self.request.user)

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


@extend_schema_view(list=extend_schema(parameters=_parameters(forms.RebalanceFilterForm)))
class RebalanceViewSet(mixins.ListModelMixin, _DashboardViewSet):
    serializer_class = RebalanceSerializer
    pagination_class = _cursor_pagination("at")
    filter_form = forms.RebalanceFilterForm

    def get_queryset(self):
        return selectors.rebalances_filtered(user=self.request.user, **self.filters())


@extend_schema_view(list=extend_schema(parameters=_parameters(forms.ActionFilterForm)))
class OperatorActionViewSet(mixins.ListModelMixin, _DashboardViewSet):
    serializer_class = OperatorActionSerializer
    pagination_class = _cursor_pagination("at")
    filter_form = forms.ActionFilterForm

    def get_queryset(self):
        return selectors.actions_filtered(user=self.request.user, **self.filters())


class MessageApi(APIView):
    """One message's drill-down: ledger rows, deliveries, cache state, findings, rebalances."""

    @extend_schema(responses={200: MessageSerializer}, summary="Message drill-down by UUID")
    def get(self, request: Request, uuid) -> Response:
        timeline = selectors.message_timeline(user=request.user, uuid=uuid)
        context = {
            "request": request,
            "payload_topic_ids": {timeline.topic.pk} if timeline.can_view_payload else set(),
        }
        return Response(MessageSerializer(timeline, context=context).data)
