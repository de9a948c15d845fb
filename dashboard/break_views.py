"""Break pages: a finding's lifecycle buttons (assign, investigate, fix, accept, reopen, comment) and My breaks.

Each post checks access through the service (recon.breaks: outsider 404, viewer
403, recorded) and redirects back to the finding with what happened.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group, User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from config.errors import AppError
from core.masking import mask_text
from core.usernames import username_normalise
from dashboard import selectors
from recon import access, breaks
from recon.models import Finding
from recon.selectors import breaks_of


def _back(request: HttpRequest, finding: Finding) -> HttpResponse:
    target = request.POST.get("next") or ""
    if not (
        target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure())
    ):
        target = reverse("dashboard:finding", args=[finding.pk])
    return redirect(target)


def _act(request: HttpRequest, pk: int, verb: str, call) -> HttpResponse:
    finding = selectors.finding_visible(request.user, pk=pk)  # outsider: 404
    try:
        call(finding)
    except AppError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Finding {finding.pk} {verb}.")
    return _back(request, finding)


def _comment(request: HttpRequest) -> str:
    return (request.POST.get("comment") or "")[:4000]


@login_required
@require_POST
def finding_assign(request: HttpRequest, pk: int) -> HttpResponse:
    username = (request.POST.get("assignee") or "").strip()
    group_name = (request.POST.get("group") or "").strip()

    def call(finding: Finding) -> None:
        breaks.finding_operate_check(finding, request.user, "assign")  # 403 before telling who exists
        assignee = User.objects.filter(username=username_normalise(username)).first() if username else None
        group = Group.objects.filter(name=group_name).first() if group_name else None
        if username and assignee is None:
            raise AppError(f"No user {username}.", code="bad_assignee")
        if group_name and group is None:
            raise AppError(f"No team {group_name}.", code="bad_assignee")
        breaks.finding_assign(
            finding=finding, user=request.user, assignee=assignee, group=group, comment=_comment(request)
        )

    return _act(request, pk, "assigned", call)


@login_required
@require_POST
def finding_investigate(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        "under investigation",
        lambda f: breaks.finding_investigate(finding=f, user=request.user, comment=_comment(request)),
    )


@login_required
@require_POST
def finding_fix(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        "marked fixed: the next reconcile verifies it",
        lambda f: breaks.finding_fix(finding=f, user=request.user, comment=_comment(request)),
    )


@login_required
@require_POST
def finding_accept(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        "accepted as-is",
        lambda f: breaks.finding_accept(
            finding=f, user=request.user, reason_code=request.POST.get("reason_code", ""), comment=_comment(request)
        ),
    )


@login_required
@require_POST
def finding_reopen(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        "reopened",
        lambda f: breaks.finding_reopen(finding=f, user=request.user, comment=_comment(request)),
    )


@login_required
@require_POST
def finding_comment(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        "commented",
        lambda f: breaks.finding_comment(finding=f, user=request.user, text=_comment(request)),
    )


@login_required
@require_GET
def my_breaks(request: HttpRequest) -> HttpResponse:
    rows = list(breaks_of(user=request.user, topics=access.topics_visible(request.user))[:500])
    clear = {t.pk for t in access.topics_visible(request.user) if access.can_view_payload(request.user, t)}
    for f in rows:
        f.comment_shown = f.comment if f.topic_id in clear else mask_text(f.comment)  # type: ignore[attr-defined]
    return render(request, "dashboard/my_breaks.html", {"rows": rows})
