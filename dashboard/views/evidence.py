"""The evidence pack: a page to pick a topic and a range, the download (JSON, CSV zip, printable HTML), the API.

Export permission on the topic (recon.access.topic_for_evidence: outsider 404,
others 403 with the refusal in the audit trail); the export itself is recorded
with the pack's checksum (dashboard.evidence).
"""

import datetime as dt

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView

from dashboard.evidence import FORMATS, Export, evidence_export
from recon import access
from recon.models import Topic
from recon.services.actions import operator_action_record


class EvidenceForm(forms.Form):
    topic = forms.CharField(max_length=249)
    start = forms.DateTimeField()
    end = forms.DateTimeField()
    format = forms.ChoiceField(choices=[(f, f) for f in FORMATS], required=False)

    def clean_topic(self) -> str:
        value = self.cleaned_data["topic"]
        if "\x00" in value:
            raise forms.ValidationError("Not a topic name.")
        return value


def _topic_checked(user, name: str) -> Topic:
    topic = access.topic_for_view(user, Topic.objects.filter(name=name).first())
    try:
        return access.topic_for_evidence(user, topic)
    except PermissionDenied:
        operator_action_record(user=user, action="evidence.export", topic=topic, outcome="refused")
        raise


def _download(export: Export) -> HttpResponse:
    response = HttpResponse(export.body, content_type=export.content_type)
    disposition = "inline" if export.content_type.startswith("text/html") else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{export.filename}"'
    response["X-Evidence-SHA256"] = export.checksum
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def evidence(request: HttpRequest) -> HttpResponse:
    now = timezone.now().replace(second=0, microsecond=0)
    context = {
        "topics": access.topics_exportable(request.user).order_by("name"),
        "start": (now - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
        "end": now.strftime("%Y-%m-%dT%H:%M"),
        "formats": FORMATS,
    }
    return render(request, "dashboard/evidence.html", context)


@login_required
@require_GET
def evidence_download(request: HttpRequest) -> HttpResponse:
    form = EvidenceForm(request.GET)
    if not form.is_valid():
        return HttpResponse(f"Invalid request: {form.errors.as_text()}", status=400, content_type="text/plain")
    return _export(request.user, form.cleaned_data, default_format="html")


class EvidenceApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("topic", str, required=True),
            OpenApiParameter("start", OpenApiTypes.DATETIME, required=True),
            OpenApiParameter("end", OpenApiTypes.DATETIME, required=True),
            OpenApiParameter("format", str, enum=list(FORMATS), description="json (default), csv (a zip), html"),
        ],
        responses={(200, "application/json"): OpenApiTypes.OBJECT},
        summary="The evidence pack of a topic over a range; its SHA-256 is in the X-Evidence-SHA256 header",
    )
    def get(self, request: Request) -> HttpResponse:
        form = EvidenceForm(request.query_params)
        if not form.is_valid():
            raise ValidationError(form.errors.get_json_data())
        return _export(request.user, form.cleaned_data, default_format="json")


def _export(user, data: dict, *, default_format: str) -> HttpResponse:
    """The one export path of the page and the API: access checked, the pack built, downloaded."""
    topic = _topic_checked(user, data["topic"])
    export = evidence_export(
        topic=topic,
        start=data["start"],
        end=data["end"],
        user=user,
        fmt=data.get("format") or default_format,
        can_payload=access.can_view_payload(user, topic),
    )
    return _download(export)
