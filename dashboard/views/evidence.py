"""The evidence page: pick a topic and a range; the download (JSON, CSV zip, printable HTML)
goes through the API's one export path (recon.apis.evidence.evidence_response: export
permission, the pack built and its export recorded with the pack's checksum)."""

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from recon import access
from recon.apis.evidence import evidence_response
from recon.filters import EvidenceForm
from recon.services.evidence import FORMATS


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
    return evidence_response(request.user, form.cleaned_data, default_format="html")
