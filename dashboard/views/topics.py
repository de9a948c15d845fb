"""The topic pages: the topics the user sees (with their role on each), and one topic with its
people, where the topic's admins add a person with one role, change it or remove them.
Every change is dashboard.services.topic_member_set / topic_member_remove (permission,
one role per person, the audit trail with before and after)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from config.errors import AppError
from dashboard.forms.topics import MemberForm, MemberRemoveForm
from dashboard.roles import TOPIC_ROLE_LABELS
from dashboard.services import topic_member_remove, topic_member_set, topic_people_check
from recon import access
from recon.models import Topic
from recon.selectors.runs import keys_reproved
from recon.selectors.topics import topic_members, topic_roles_of, topics_visible

PEOPLE_SUGGESTED = 500  # usernames offered to an admin while typing


@login_required
@require_GET
def topics(request: HttpRequest) -> HttpResponse:
    rows = list(topics_visible(request.user))
    roles = topic_roles_of(request.user)
    for topic in rows:
        topic.my_role = "superuser" if request.user.is_superuser else roles.get(topic.pk, "")  # type: ignore[attr-defined]
    return render(request, "dashboard/topics.html", {"rows": rows})


def _page(request: HttpRequest, topic: Topic, form: MemberForm, status: int = 200) -> HttpResponse:
    manage = access.can_manage_people(request.user, topic)
    members = topic_members(topic)
    context = {
        "topic": topic,
        "members": members,
        "labels": TOPIC_ROLE_LABELS,
        "roles": list(TOPIC_ROLE_LABELS.items()),
        "can_manage": manage,
        "reproved": keys_reproved(topic, at=timezone.now()),
        "form": form,
        "suggested": (
            User.objects.filter(is_active=True, is_superuser=False)
            .exclude(pk__in=[m.user.pk for m in members])
            .order_by("username")
            .values_list("username", flat=True)[:PEOPLE_SUGGESTED]
            if manage
            else []
        ),
    }
    return render(request, "dashboard/topic_detail.html", context, status=status)


@login_required
@require_GET
def topic_detail(request: HttpRequest, pk: int) -> HttpResponse:
    topic = access.topic_for_view(request.user, Topic.objects.filter(pk=pk).first())
    return _page(request, topic, MemberForm())


@login_required
@require_POST
def topic_member_set_view(request: HttpRequest, pk: int) -> HttpResponse:
    topic = access.topic_for_view(request.user, Topic.objects.filter(pk=pk).first())
    form = MemberForm(request.POST)
    if not form.is_valid():
        topic_people_check(topic=topic, actor=request.user, action="topic.member_set")  # a 403 before form errors
        return _page(request, topic, form, status=400)
    username = form.cleaned_data["username"]
    member = User.objects.filter(username=username).first()
    if member is None:
        topic_people_check(topic=topic, actor=request.user, action="topic.member_set")  # who exists: admins only
        messages.error(request, f"No user {username}: they log in once (or an admin creates them) first.")
        return redirect("dashboard:topic", pk=topic.pk)
    role = form.cleaned_data["role"]
    try:
        before = topic_member_set(topic=topic, actor=request.user, member=member, role=role)
    except AppError as exc:
        messages.error(request, exc.message)
    else:
        if before == role:
            messages.info(request, f"{member.username} is {role} of {topic.name} already.")
        elif before:
            messages.success(request, f"{member.username}: {before} → {role} of {topic.name}.")
        else:
            messages.success(request, f"{member.username} is now {role} of {topic.name}.")
    return redirect("dashboard:topic", pk=topic.pk)


@login_required
@require_POST
def topic_member_remove_view(request: HttpRequest, pk: int) -> HttpResponse:
    topic = access.topic_for_view(request.user, Topic.objects.filter(pk=pk).first())
    form = MemberRemoveForm(request.POST)
    member = User.objects.filter(username=form.cleaned_data["username"]).first() if form.is_valid() else None
    if member is None:
        topic_people_check(topic=topic, actor=request.user, action="topic.member_remove")
        messages.error(request, "No such person.")
        return redirect("dashboard:topic", pk=topic.pk)
    before = topic_member_remove(topic=topic, actor=request.user, member=member)
    if before:
        messages.success(request, f"{member.username} ({before}) no longer holds {topic.name}.")
    else:
        messages.info(request, f"{member.username} held nothing on {topic.name}.")
    return redirect("dashboard:topic", pk=topic.pk)
