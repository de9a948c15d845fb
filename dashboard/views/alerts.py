"""The alert pages: alert history (acknowledge), alert rules (create, change, test, delete) and
silences (set, end). Who may see and change a rule or a silence: monitoring.access (the rule's
topic decides); the writes are monitoring.services."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from config.errors import AppError
from dashboard.forms.alerts import AlertRuleForm, SilenceForm
from monitoring import access as monitoring_access
from monitoring import selectors, services
from monitoring.models import Alert, AlertRule, Silence
from recon import access


@login_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    """Alert history: what fired, when, who acknowledged it and why, what a silence held back."""
    status = request.GET.get("status") or None
    if status not in Alert.Status.values:
        status = None  # an unknown status filters nothing (and never reaches the database)
    alerts = selectors.alerts_visible(request.user, status=status).select_related("silenced_by")
    rule_id = request.GET.get("rule", "")
    if rule_id.isdigit():
        alerts = alerts.filter(rule_id=int(rule_id))
    operable = set(access.topics_operable(request.user).values_list("pk", flat=True))
    context = {
        "alerts": alerts.prefetch_related("notifications")[:200],
        "operable": operable,
        "statuses": Alert.Status.choices,
        "status": status or "",
        "rules": monitoring_access.rules_visible(request.user).order_by("name"),
        "rule_id": int(rule_id) if rule_id.isdigit() else None,
        "silences": list(
            services.silences_active(now=timezone.now()).filter(pk__in=monitoring_access.silences_visible(request.user))
        ),
    }
    return render(request, "dashboard/alerts/alerts.html", context)


@login_required
@require_GET
def rule_list(request: HttpRequest) -> HttpResponse:
    rules = monitoring_access.rules_visible(request.user).order_by("name")
    form = None
    if request.user.is_staff or access.topics_operable(request.user).exists():
        form = AlertRuleForm(user=request.user)
    return render(request, "dashboard/alerts/rules.html", {"rules": rules, "form": form})


@login_required
@require_POST
def rule_create(request: HttpRequest) -> HttpResponse:
    form = AlertRuleForm(request.POST, user=request.user)
    if not form.is_valid():
        rules = monitoring_access.rules_visible(request.user).order_by("name")
        return render(request, "dashboard/alerts/rules.html", {"rules": rules, "form": form}, status=400)
    monitoring_access.scope_for_change(request.user, form.cleaned_data.get("topic"))
    if "preview" in request.POST:  # what it would match and send, before it exists
        preview = services.alert_rule_preview(rule=form.save(commit=False), user=request.user)
        rules = monitoring_access.rules_visible(request.user).order_by("name")
        return render(request, "dashboard/alerts/rules.html", {"rules": rules, "form": form, "preview": preview})
    rule = services.alert_rule_save(rule=form.save(), user=request.user)
    messages.success(request, f"Alert rule {rule.name!r} created.")
    return redirect("dashboard:alert-rule", rule_id=rule.pk)


@login_required
def rule_detail(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = monitoring_access.rule_for_view(request.user, AlertRule.objects.filter(pk=rule_id).first())
    can_change = monitoring_access.scope_can_change(request.user, rule.topic)
    form = AlertRuleForm(instance=rule, user=request.user) if can_change else None
    status = 200
    preview = None
    if request.method == "POST":
        monitoring_access.rule_for_change(request.user, rule)
        # The form changes its own copy, so "Fires when" keeps saying what is saved during a preview.
        edited = AlertRule.objects.get(pk=rule.pk)
        form = AlertRuleForm(request.POST, instance=edited, user=request.user)
        if form.is_valid() and "preview" in request.POST:
            monitoring_access.scope_for_change(request.user, form.cleaned_data.get("topic"))
            preview = services.alert_rule_preview(rule=form.save(commit=False), user=request.user)
        elif form.is_valid():
            monitoring_access.scope_for_change(request.user, form.cleaned_data.get("topic"))
            services.alert_rule_save(rule=form.save(), user=request.user)
            messages.success(request, f"Alert rule {rule.name!r} saved.")
            return redirect("dashboard:alert-rule", rule_id=rule.pk)
        else:
            status = 400
    elif request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST"])
    elif can_change and rule.kind in (AlertRule.Kind.DISCREPANCY, AlertRule.Kind.BREAK_SLA):
        # A rule over findings is previewed on every view; a lag rule only on asking (it asks Kafka).
        preview = services.alert_rule_preview(rule=rule, user=request.user)
    alerts = selectors.alerts_visible(request.user).filter(rule=rule)[:20]
    context = {"rule": rule, "form": form, "can_change": can_change, "alerts": alerts, "preview": preview}
    return render(request, "dashboard/alerts/rule_detail.html", context, status=status)


@login_required
@require_POST
def rule_test(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = monitoring_access.rule_for_change(request.user, AlertRule.objects.filter(pk=rule_id).first())
    results = services.alert_rule_test(rule=rule, user=request.user)
    if not results:
        messages.error(request, "This rule has no channel to test: give an email address or a webhook URL.")
    for channel, target, outcome in results:
        ok = outcome.startswith("sent")
        (messages.success if ok else messages.error)(request, f"Test {channel} to {target}: {outcome}")
    return redirect("dashboard:alert-rule", rule_id=rule.pk)


@login_required
@require_POST
def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = monitoring_access.rule_for_change(request.user, AlertRule.objects.filter(pk=rule_id).first())
    services.alert_rule_delete(rule=rule, user=request.user)
    messages.success(request, f"Alert rule {rule.name!r} deleted.")
    return redirect("dashboard:alert-rules")


@login_required
def silence_list(request: HttpRequest) -> HttpResponse:
    rules = monitoring_access.rules_visible(request.user).order_by("name")
    form = SilenceForm(request.POST or None, user=request.user, rules=rules)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            rule = data.get("rule")
            topic = monitoring_access.scope_for_change(
                request.user, data.get("topic") or (rule.topic if rule else None)
            )
            try:
                silence = services.silence_create(
                    user=request.user,
                    starts_at=data["starts_at"],
                    ends_at=data["ends_at"],
                    reason=data["reason"],
                    rule=rule,
                    topic=topic,
                )
            except AppError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Silence until {silence.ends_at:%Y-%m-%d %H:%M} UTC set.")
                return redirect("dashboard:silences")
        status = 400
    elif request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST"])
    silences = list(monitoring_access.silences_visible(request.user).order_by("-starts_at")[:100])
    now = timezone.now()
    for silence in silences:
        silence.active = silence.starts_at <= now < silence.ends_at  # type: ignore[attr-defined]
        silence.can_end = silence.ends_at > now and monitoring_access.scope_can_change(request.user, silence.topic)  # type: ignore[attr-defined]
    can_create = request.user.is_staff or access.topics_operable(request.user).exists()
    context = {"silences": silences, "form": form if can_create else None}
    return render(request, "dashboard/alerts/silences.html", context, status=status)


@login_required
@require_POST
def silence_end(request: HttpRequest, silence_id: int) -> HttpResponse:
    silence = monitoring_access.silence_for_change(request.user, Silence.objects.filter(pk=silence_id).first())
    try:
        services.silence_end(silence=silence, user=request.user)
        messages.success(request, "Silence ended: notifications resume.")
    except AppError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard:silences")


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = get_object_or_404(selectors.alerts_visible(request.user), pk=alert_id)
    access.topic_for_operate(request.user, alert.topic)
    try:
        services.alert_acknowledge(alert=alert, user=request.user, comment=request.POST.get("comment", "")[:2000])
        messages.success(request, f"Alert {alert.pk} acknowledged.")
    except AppError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard:alerts")
