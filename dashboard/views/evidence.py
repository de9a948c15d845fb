"""The evidence page: pick a topic and a range; the download (JSON, CSV zip, printable HTML)
goes through the API's one export path (recon.apis.evidence.evidence_response: export
permission, the pack built and its export recorded with the pack's checksum)."""

import datetime as dt
from typing import Any

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
    return _evidence_page(request, form=None)


def _evidence_page(request: HttpRequest, *, form: EvidenceForm | None, status: int = 200) -> HttpResponse:
    """The page, with what was asked and why it was refused when `form` is an invalid request."""
    now = timezone.now().replace(second=0, microsecond=0)
    context: dict[str, Any] = {
        "topics": access.topics_exportable(request.user).order_by("name"),
        "start": (now - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
        "end": now.strftime("%Y-%m-%dT%H:%M"),
        "formats": FORMATS,
        "form": form,
    }
    if form is not None:  # keep what was typed, so it can be corrected
        context.update({k: form.data.get(k, "") for k in ("start", "end")})
        context["chosen"] = {k: form.data.get(k, "") for k in ("topic", "format")}
    return render(request, "dashboard/evidence.html", context, status=status)


@login_required
@require_GET
def evidence_download(request: HttpRequest) -> HttpResponse:
    form = EvidenceForm(request.GET)
    if not form.is_valid():
        return _evidence_page(request, form=form, status=400)
    return evidence_response(request.user, form.cleaned_data, default_format="html")
