"""Admin for alerting: rules of every kind and silences to set (saved through
monitoring.services, so audited; the webhook secret write-only), alerts,
notifications and the lag samples the lag status is judged from, to read."""

from django import forms
from django.contrib import admin

from core.admin_tools import CappedCountPaginator, ReadOnlyAdmin
from monitoring import services
from monitoring.models import Alert, AlertRule, LagSample, Notification, Silence
from recon import access
from recon.admin_access import TopicScopedAdmin


@admin.register(LagSample)
class LagSampleAdmin(TopicScopedAdmin, ReadOnlyAdmin):
    def scope(self, request, rows):
        return rows.filter(topic__in=access.topics_visible(request.user).values("name"))  # a sample names its topic

    list_display = ("at", "group", "topic", "partition", "committed", "end", "lag", "active")
    list_filter = ("group", "topic")
    show_full_result_count = False
    paginator = CappedCountPaginator


class AlertRuleAdminForm(forms.ModelForm):
    webhook_url = forms.URLField(required=False, assume_scheme="https")
    # Write-only: the secret is never sent back to a browser (not even an admin's); empty keeps it.
    webhook_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="HMAC-SHA256 key for the signature. Leave empty to keep the current one.",
    )

    class Meta:
        model = AlertRule
        fields = list(AlertRule.EDITABLE)

    def clean_webhook_secret(self) -> str:
        given = self.cleaned_data.get("webhook_secret") or ""
        return given or (self.instance.webhook_secret if self.instance.pk else "")


@admin.register(AlertRule)
class AlertRuleAdmin(TopicScopedAdmin, admin.ModelAdmin):
    """Alert rules of every kind: findings (new, open, age), lag, findings past their SLA, lag status."""

    topic_null_visible = True  # as on the dashboard (monitoring.access): a rule over every topic

    form = AlertRuleAdminForm
    list_display = ("name", "kind", "measure", "topic", "threshold", "min_severity", "enabled", "updated_at")
    list_filter = ("enabled", "kind", "measure", "min_severity", "webhook_format")
    search_fields = ("name",)
    readonly_fields = ("created_by", "updated_at")

    def save_model(self, request, obj, form, change):
        services.alert_rule_save(rule=obj, user=request.user)

    def delete_model(self, request, obj):
        services.alert_rule_delete(rule=obj, user=request.user)


@admin.register(Silence)
class SilenceAdmin(TopicScopedAdmin, admin.ModelAdmin):
    topic_null_visible = True
    list_display = ("starts_at", "ends_at", "rule", "topic", "reason", "created_by")
    list_filter = ("topic",)
    readonly_fields = ("created_by", "created_at")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Alert)
class AlertAdmin(TopicScopedAdmin, ReadOnlyAdmin):
    list_display = ("rule", "topic", "status", "value", "first_at", "last_at", "acknowledged_by", "silenced_by")
    list_filter = ("status", "rule")
    list_select_related = ("rule", "topic", "acknowledged_by", "silenced_by")


@admin.register(Notification)
class NotificationAdmin(TopicScopedAdmin, ReadOnlyAdmin):
    topic_path = "alert__topic"
    list_display = ("created_at", "alert", "channel", "event", "target", "status", "attempts", "sent_at")
    list_filter = ("status", "channel", "event")
    list_select_related = ("alert__rule", "alert__topic")
