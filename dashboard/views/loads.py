"""The loads pages: the list with its "Start a load" button, and one load with its runs."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from config.errors import AppError
from dashboard.forms.loads import LoadStartForm
from dashboard.paging import keyset_page
from dashboard.views.common import PAGE_SIZE, payload_topic_ids, query_without_cursor
from kafkacache.services import loads as feed_loads
from recon import access
from recon.filters import LoadFilterForm
from recon.models import Load
from recon.selectors.loads import load_ids, load_visible, loads_filtered
from recon.selectors.runs import runs_of_load


@login_required
@require_GET
def loads(request: HttpRequest) -> HttpResponse:
    form = LoadFilterForm(request.GET, user=request.user)
    page = None
    if form.is_valid():
        qs = loads_filtered(user=request.user, **form.filters())
        page = keyset_page(qs, time_field="created_at", cursor=form.cleaned_data["cursor"], size=PAGE_SIZE)
        payload = payload_topic_ids(request)
        for load in page.rows:
            load.show_key = load.topic_id in payload
    start_form = LoadStartForm(user=request.user)
    context = {
        "form": form,
        "page": page,
        "query": query_without_cursor(request),
        "start_form": start_form if start_form.fields["topic"].choices else None,  # type: ignore[attr-defined]
        "live": page is not None
        and any(load.status in (Load.Status.QUEUED, Load.Status.RUNNING) for load in page.rows),
    }
    return render(request, "dashboard/loads.html", context)


@login_required
@require_POST
def load_start(request: HttpRequest) -> HttpResponse:
    form = LoadStartForm(request.POST, user=request.user)
    if not form.is_valid():
        messages.error(request, f"Load not started: {form.errors.as_text()}")
        return redirect("dashboard:loads")
    topic = access.topic_for_operate(request.user, form.cleaned_data["topic"])
    try:
        load = feed_loads.load_start(
            topic=topic,
            source=form.cleaned_data["source"],
            client_ids=form.cleaned_data["client_ids"],
            requested_by=request.user,
        )
    except AppError as exc:
        messages.error(request, f"Load not started: {exc.message}")
        return redirect("dashboard:loads")
    messages.success(request, f"Load {load.pk} queued.")
    return redirect("dashboard:load", pk=load.pk)


@login_required
@require_GET
def load_detail(request: HttpRequest, pk) -> HttpResponse:
    load = load_visible(request.user, pk=pk)
    context = {
        "load": load,
        "show_key": access.can_view_payload(request.user, load.topic),
        "can_operate": access.can_operate(request.user, load.topic),
        "live": load.status in (Load.Status.QUEUED, Load.Status.RUNNING),
        "runs": runs_of_load(load),
        "ids": load_ids(load),
    }
    return render(request, "dashboard/load_detail.html", context)
