"""Admin for alerting: rules and silences to set (saved through monitoring.services, so
audited), alerts and notifications to read."""

from django import forms
from django.contrib import admin

from monitoring import services
from monitoring.models import Alert, AlertRule, Notification, Silence


class AlertRuleAdminForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = [
            "name",
            "enabled",
            "kind",
            "topic",
            "category",
            "categories",
            "measure",
            "min_severity",
            "threshold",
            "window_minutes",
            "grace_minutes",
            "quiet_minutes",
            "email_to",
            "webhook_url",
            "webhook_format",
            "webhook_secret",
        ]
        # Never sent back to the browser; left empty, the current secret is kept.
        widgets = {"webhook_secret": forms.PasswordInput(render_value=False)}

    def clean_webhook_secret(self) -> str:
        given = self.cleaned_data.get("webhook_secret") or ""
        return given or (self.instance.webhook_secret if self.instance.pk else "")


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
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
class SilenceAdmin(admin.ModelAdmin):
    list_display = ("starts_at", "ends_at", "rule", "topic", "reason", "created_by")
    list_filter = ("topic",)
    readonly_fields = ("created_by", "created_at")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(_ReadOnly):
    list_display = ("rule", "topic", "status", "value", "first_at", "last_at", "acknowledged_by", "silenced_by")
    list_filter = ("status", "rule")
    list_select_related = ("rule", "topic", "acknowledged_by", "silenced_by")


@admin.register(Notification)
class NotificationAdmin(_ReadOnly):
    list_display = ("created_at", "alert", "channel", "event", "target", "status", "attempts", "sent_at")
    list_filter = ("status", "channel", "event")
    list_select_related = ("alert__rule", "alert__topic")
