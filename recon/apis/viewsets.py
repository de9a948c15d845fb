"""What the record's list APIs share: cursor pages (never COUNT), OpenAPI query parameters read
from the filter forms, and a base viewset that validates the filters and tells the serializers
which topics' payloads the caller sees.

Token or session auth; every queryset starts from recon.access.topics_visible, so an
outsider gets 404 and a viewer acting gets 403, exactly as on the pages.
"""

from django import forms as django_forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination

from recon import access
from recon.filters import TopicFilterForm


def cursor_pagination(field: str) -> type[CursorPagination]:
    return type(
        f"By{field.title().replace('_', '')}",
        (CursorPagination,),
        {"ordering": (f"-{field}", "-pk"), "page_size": 50, "max_page_size": 500, "page_size_query_param": "limit"},
    )


def filter_parameters(form_class: type[django_forms.Form]) -> list[OpenApiParameter]:
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


class RecordViewSet(viewsets.GenericViewSet):
    filter_form: type[TopicFilterForm] = TopicFilterForm

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
