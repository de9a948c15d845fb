"""Replay and reprocess buttons and the Replays pages.

The buttons post here; replay.services.requests.topic_for_replay answers outsiders 404 and
viewers 403 (and writes the refusal to the audit trail), replay.services.requests.replay_request
validates and queues. The pages list and show replays of the topics the user sees.
"""

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from config.errors import AppError
from core.masking import mask_text
from dashboard.forms.replays import ReplayFilterForm, ReplayStartForm, ReprocessForm
from dashboard.paging import keyset_page
from dashboard.views.common import PAGE_SIZE, query_without_cursor, safe_next
from recon import access
from recon.models import Finding, Replay, ReplayItem, Topic
from replay.preview import preview_shown
from replay.preview import replay_dry_run as dry_run
from replay.selectors import replay_for_view, replay_items, replays_visible
from replay.services.approval import replay_approve, replay_reject
from replay.services.requests import replay_request, target_clean, topic_for_replay

ITEMS_SHOWN = 500


def _queued(request: HttpRequest, replay: Replay, created: bool) -> HttpResponse:
    verb = "Reprocess" if replay.way == Replay.Way.DEAD_LETTER else "Replay"
    if created and replay.status == Replay.Status.PENDING:
        messages.success(request, f"{verb} {replay.pk} awaits a second operator's approval.")
    elif created:
        messages.success(request, f"{verb} {replay.pk} queued.")
    else:
        messages.info(request, f"The same {verb.lower()} is already {replay.status}: {replay.pk}.")
    return redirect("dashboard:replay", pk=replay.pk)


def _start_form(request: HttpRequest, posted=None) -> tuple[ReplayStartForm, Topic | None, dict]:
    """The posted replay form, the topic (outsider 404, viewer 403) and the target in its JSON form."""
    form = ReplayStartForm(posted if posted is not None else request.POST)
    if not form.is_valid():
        # Permission first: a viewer's malformed post is a 403, not a form error.
        topic_for_replay(request.user, Topic.objects.filter(name=request.POST.get("topic", "")).first())
        return form, None, {}
    data = form.cleaned_data
    topic = topic_for_replay(request.user, Topic.objects.filter(name=data["topic"]).first(), way=data["way"])
    target = form.target()
    for name in ("start", "end"):
        if isinstance(target.get(name), dt.datetime):
            target[name] = target[name].isoformat()
    if "load" in target and target["load"] is not None:
        target["load"] = str(target["load"])
    return form, topic, target


@login_required
@require_POST
def replay_start(request: HttpRequest) -> HttpResponse:
    back = safe_next(request, reverse("dashboard:replays"))
    form, topic, target = _start_form(request)
    if topic is None:
        messages.error(request, f"Replay not queued: {form.errors.as_text()}")
        return redirect(back)
    data = form.cleaned_data
    try:
        replay, created = replay_request(
            topic=topic,
            way=data["way"],
            scope=data["scope"],
            target=target,
            reason=data["reason"],
            requested_by=request.user,
        )
    except AppError as exc:
        messages.error(request, f"Replay not queued: {exc.message}")
        return redirect(back)
    return _queued(request, replay, created)


@login_required
@require_POST
def reprocess(request: HttpRequest) -> HttpResponse:
    form = ReprocessForm(request.POST)
    back = safe_next(request, reverse("dashboard:findings"))
    ids = [int(v) for v in request.POST.getlist("findings") if str(v).isdigit()]
    topic_ids = set(Finding.objects.filter(pk__in=ids).values_list("topic_id", flat=True))
    visible = set(access.topics_visible(request.user).filter(pk__in=topic_ids).values_list("pk", flat=True))
    if not topic_ids or visible != topic_ids:
        raise Http404("No such finding.")
    topics = list(Topic.objects.filter(pk__in=topic_ids))
    for topic in topics:
        topic_for_replay(request.user, topic, way=Replay.Way.DEAD_LETTER)
    if not form.is_valid():
        messages.error(request, f"Nothing reprocessed: {form.errors.as_text()}")
        return redirect(back)
    if len(topics) > 1:
        messages.error(request, "Nothing reprocessed: pick dead letters of one topic at a time.")
        return redirect(back)
    try:
        replay, created = replay_request(
            topic=topics[0],
            way=Replay.Way.DEAD_LETTER,
            scope=Replay.Scope.FINDINGS,
            target={"findings": form.cleaned_data["findings"]},
            reason=form.cleaned_data["reason"],
            requested_by=request.user,
        )
    except AppError as exc:
        messages.error(request, f"Nothing reprocessed: {exc.message}")
        return redirect(back)
    return _queued(request, replay, created)


@login_required
@require_GET
def replays(request: HttpRequest) -> HttpResponse:
    form = ReplayFilterForm(request.GET, user=request.user)
    page = None
    if form.is_valid():
        filters = form.filters()
        qs = replays_visible(access.topics_visible(request.user))
        if "topic" in filters:
            qs = qs.filter(topic=filters["topic"])
        for name in ("status", "way"):
            if name in filters:
                qs = qs.filter(**{name: filters[name]})
        if "since" in filters:
            qs = qs.filter(created_at__gte=filters["since"])
        if "until" in filters:
            qs = qs.filter(created_at__lt=filters["until"])
        page = keyset_page(qs, time_field="created_at", cursor=form.cleaned_data["cursor"], size=PAGE_SIZE)
        reasons_masked(request, page.rows)
    operable = access.topics_operable(request.user).order_by("name")
    context = {
        "form": form,
        "page": page,
        "query": query_without_cursor(request),
        "operable": operable,
        "ways": Replay.Way.choices,
        "scopes": Replay.Scope.choices,
        "live": page is not None and any(r.status in Replay.ACTIVE for r in page.rows),
    }
    return render(request, "dashboard/replays.html", context)


def _verifying(replay: Replay, runs: list) -> bool:
    """Finished, and its verification not done yet: the page keeps following it."""
    if replay.status in Replay.ACTIVE or replay.finished_at is None:
        return False
    if runs:
        return any(r.status in ("queued", "running") for r in runs)
    waited = timezone.now() - replay.finished_at
    return waited < dt.timedelta(seconds=settings.RECON_VERIFY_WAIT_SECONDS * (settings.RECON_VERIFY_MAX_WAITS + 2))


def _status_text(replay: Replay) -> str:
    """ "done" only when every message got where it belongs; otherwise what did not, by outcome."""
    if replay.status == Replay.Status.PROBLEMS:
        parts = [f"{replay.outcome[o]} {o}" for o in ("skipped", "failed", "dead") if replay.outcome.get(o)]
        return f"done with problems: {', '.join(parts)}"
    if replay.status != Replay.Status.DONE:
        return replay.status
    bad = sum(replay.outcome.get(k, 0) for k in (ReplayItem.Outcome.DEAD, ReplayItem.Outcome.FAILED))
    if bad:
        return f"done, {bad} not delivered"
    return replay.status


def reasons_masked(request: HttpRequest, replays: list[Replay]) -> None:
    clear = {t.pk for t in access.topics_visible(request.user) if access.can_view_payload(request.user, t)}
    for replay in replays:
        replay.reason_shown = replay.reason if replay.topic_id in clear else mask_text(replay.reason)  # type: ignore[attr-defined]


@login_required
@require_GET
def replay_detail(request: HttpRequest, pk) -> HttpResponse:
    replay = replay_for_view(request.user, pk)
    reasons_masked(request, [replay])
    items = list(replay_items(replay)[: ITEMS_SHOWN + 1])
    mine = replay.requested_by_id is not None and replay.requested_by_id == request.user.pk
    verify_runs = list(replay.runs.order_by("started_at")[:30])
    fixed = Finding.objects.filter(topic=replay.topic, status=Finding.Status.RESOLVED, detail__replay=str(replay.pk))
    context = {
        "replay": replay,
        "items": items[:ITEMS_SHOWN],
        "more_items": len(items) > ITEMS_SHOWN,
        "running": replay.status in Replay.ACTIVE,
        "preview": preview_shown(replay.preview, clear=access.can_view_payload(request.user, replay.topic)),
        # The buttons follow the server's rule (replay.services.approval): an operator, never the requester.
        "can_decide": replay.status == Replay.Status.PENDING and access.can_operate(request.user, replay.topic),
        "own_request": mine,
        "replay_status_text": _status_text(replay),
        "verify_runs": verify_runs,
        "verifying": _verifying(replay, verify_runs),
        "fixed": fixed.count(),
        "fixed_verified": fixed.filter(detail__has_key="verified_by_run").count(),
    }
    return render(request, "dashboard/replay_detail.html", context)


@login_required
@require_POST
def replay_dry_run(request: HttpRequest) -> HttpResponse:
    """What the posted replay would do, without doing it; the page offers to queue it."""
    posted = request.POST.copy()
    posted["reason"] = posted.get("reason") or "dry run"  # a dry run needs no reason; the replay will
    form, topic, target = _start_form(request, posted)
    if topic is None:
        messages.error(request, f"No dry run: {form.errors.as_text()}")
        return redirect(reverse("dashboard:replays"))
    data = form.cleaned_data
    try:
        clean = target_clean(topic=topic, way=data["way"], scope=data["scope"], target=target)
        preview = dry_run(topic=topic, way=data["way"], scope=data["scope"], target=clean)
    except AppError as exc:
        messages.error(request, f"No dry run: {exc.message}")
        return redirect(reverse("dashboard:replays"))
    context = {
        "topic": topic,
        "way": data["way"],
        "scope": data["scope"],
        "posted": [(k, v) for k, v in request.POST.items() if k not in ("csrfmiddlewaretoken", "dry_run")],
        "preview": preview_shown(preview, clear=access.can_view_payload(request.user, topic)),
    }
    return render(request, "dashboard/replay_dry_run.html", context)


def _decision(request: HttpRequest, pk, decide) -> HttpResponse:
    """Approve or reject, then back to where the click was (the replay page or the inbox)."""
    replay = replay_for_view(request.user, pk)
    try:
        replay = decide(replay)
    except AppError as exc:
        messages.error(request, exc.message)
    else:
        verb = "approved and queued" if replay.status != Replay.Status.REJECTED else "rejected"
        # A link to follow it from the inbox: the approver sees it run and verified in one click.
        url = reverse("dashboard:replay", args=[replay.pk])
        messages.success(request, format_html('Replay <a href="{}" id="decided">{}</a> {}.', url, replay.pk, verb))
    return redirect(safe_next(request, reverse("dashboard:replay", args=[replay.pk])))


@login_required
@require_POST
def replay_approve_view(request: HttpRequest, pk) -> HttpResponse:
    comment = (request.POST.get("comment") or "")[:2000]
    return _decision(request, pk, lambda r: replay_approve(replay=r, user=request.user, comment=comment))


@login_required
@require_POST
def replay_reject_view(request: HttpRequest, pk) -> HttpResponse:
    comment = (request.POST.get("comment") or "")[:2000]
    return _decision(request, pk, lambda r: replay_reject(replay=r, user=request.user, comment=comment))
