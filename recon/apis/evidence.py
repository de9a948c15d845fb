"""The evidence pack API: GET api/evidence/?topic=&start=&end=&format= (json by default, csv: a zip,
html: the printable summary); the pack's SHA-256 in the X-Evidence-SHA256 header."""

import base64
import hashlib
import re

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView

from recon import access
from recon.filters import EvidenceForm
from recon.services.evidence import FORMATS, evidence_export, topic_for_export


def evidence_response(user, data: dict, *, default_format: str) -> HttpResponse:
    """The one export path of the page and the API: access checked, the pack built and recorded, sent."""
    topic = topic_for_export(user, data["topic"])
    export = evidence_export(
        topic=topic,
        start=data["start"],
        end=data["end"],
        user=user,
        fmt=data.get("format") or default_format,
        can_payload=access.can_view_payload(user, topic),
    )
    response = HttpResponse(export.body, content_type=export.content_type)
    disposition = "inline" if export.content_type.startswith("text/html") else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{export.filename}"'
    response["X-Evidence-SHA256"] = export.checksum
    response["Cache-Control"] = "no-store"
    if disposition == "inline":
        # The printable pack is one self-contained file (its style inline): the CSP allows that block by its hash.
        style = re.search(rb"<style>(.*?)</style>", export.body, re.S)
        if style:
            digest = base64.b64encode(hashlib.sha256(style[1]).digest()).decode()
            response._csp_update = {"style-src": [f"'sha256-{digest}'"]}  # type: ignore[attr-defined]
    return response


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
        return evidence_response(request.user, form.cleaned_data, default_format="json")
