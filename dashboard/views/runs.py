"""Runs (reconcile, cache check, validation): the "Reconcile now" / "Check cache now"
buttons, and the Runs list and detail pages.

The buttons post here; recon.access answers outsiders 404 and viewers 403,
recon.services.runs.run_queue records the run QUEUED and a worker runs it. The pages list
and show the runs of the topics the user sees, refreshing while a run is live
(dashboard/static/dashboard/live.js polls the run's status URL).
"""

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from config.errors import AppError
from dashboard.forms.runs import RunFilterForm, RunRequestForm
from dashboard.paging import keyset_page
from dashboard.views.common import PAGE_SIZE, query_without_cursor
from recon import access
from recon.models import Load, ReconRun, Topic, Window
from recon.selectors.runs import run_visible, runs_visible
from recon.services.actions import operator_action_record
from recon.services.runs import run_queue

# "Reconcile now" on a whole topic re-judges its windows of the last day.
TOPIC_SCOPE = dt.timedelta(hours=24)
_ACTIONS = {
    ReconRun.Kind.TRANSPORT: "reconcile",
    ReconRun.Kind.CACHE: "cache-check",
    ReconRun.Kind.VALIDATION: "validate",
}
_VERB = {
    ReconRun.Kind.TRANSPORT: "Reconcile",
    ReconRun.Kind.CACHE: "Cache check",
    ReconRun.Kind.VALIDATION: "Validation",
}


@login_required
@require_POST
def run_request(request: HttpRequest) -> HttpResponse:
    form = RunRequestForm(request.POST)
    if not form.is_valid():
        if not access.topics_operable(request.user).exists():  # permission first: a viewer gets 403
            raise PermissionDenied("You may not reconcile any topic.")
        messages.error(request, f"Nothing queued: {form.errors.as_text()}")
        return redirect("dashboard:runs")
    data = form.cleaned_data
    kind = data["kind"]
    window = load = None
    if data.get("window"):
        window = Window.objects.select_related("topic").filter(pk=data["window"]).first()
        topic = access.topic_for_operate(request.user, window.topic if window else None)
    elif data.get("load"):
        load = Load.objects.select_related("topic").filter(pk=data["load"]).first()
        topic = access.topic_for_operate(request.user, load.topic if load else None)
    else:
        topic = access.topic_for_operate(request.user, Topic.objects.filter(name=data["topic"]).first())
    what = f"window:{window.pk}" if window else f"load:{load.pk}" if load else f"topic:{topic.name}"
    end = timezone.now()
    try:
        with transaction.atomic():
            run = run_queue(
                kind=kind,
                topic=topic,
                window_ids=[window.pk] if window else None,
                load=load,
                start=None if window or load else end - TOPIC_SCOPE,
                end=None if window or load else end,
                trigger="dashboard",
                requested_by=request.user,
            )
            operator_action_record(
                user=request.user,
                action=_ACTIONS[kind],
                topic=topic,
                target=f"run:{run.pk}",
                detail={"kind": kind, "scope": what},
                outcome="queued",
            )
    except AppError as exc:
        messages.error(request, f"{_VERB[kind]} not queued: {exc.message}")
        return redirect("dashboard:runs")
    messages.success(request, f"{_VERB[kind]} of {what} queued.")
    return redirect("dashboard:run", pk=run.pk)


@login_required
@require_GET
def runs(request: HttpRequest) -> HttpResponse:
    form = RunFilterForm(request.GET, user=request.user)
    page = None
    if form.is_valid():
        qs = runs_visible(access.topics_visible(request.user))
        for name in ("topic", "kind", "status"):
            if form.cleaned_data.get(name):
                qs = qs.filter(**{name: form.cleaned_data[name]})
        page = keyset_page(qs, time_field="started_at", cursor=form.cleaned_data["cursor"], size=PAGE_SIZE)
    live = page is not None and any(r.status in (ReconRun.Status.QUEUED, ReconRun.Status.RUNNING) for r in page.rows)
    return render(
        request,
        "dashboard/runs.html",
        {"form": form, "page": page, "query": query_without_cursor(request), "live": live},
    )


@login_required
@require_GET
def run_detail(request: HttpRequest, pk) -> HttpResponse:
    run = run_visible(request.user, pk=pk)
    report = run.report or {}
    context = {
        "run": run,
        "live": run.status in (ReconRun.Status.QUEUED, ReconRun.Status.RUNNING),
        "findings": sorted((report.get("findings") or {}).items()) if run.kind == ReconRun.Kind.TRANSPORT else [],
        "problems": sorted((report.get("problems") or {}).items()) if run.kind != ReconRun.Kind.TRANSPORT else [],
        "windows": report.get("windows") or {},
        "can_operate": access.can_operate(request.user, run.topic),
        "error": report.get("error", ""),
    }
    return render(request, "dashboard/run_detail.html", context)
