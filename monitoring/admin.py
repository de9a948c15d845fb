"""Admin of monitoring: alert rules (secrets write-only), and the lag samples the lag status is judged from."""

from django import forms
from django.contrib import admin

from dashboard.admin_tools import CappedCountPaginator, ReadOnlyAdmin
from monitoring.models import AlertRule, LagSample
from recon.services import operator_action_record


@admin.register(LagSample)
class LagSampleAdmin(ReadOnlyAdmin):
    list_display = ("at", "group", "topic", "partition", "committed", "end", "lag", "active")
    list_filter = ("group", "topic")
    show_full_result_count = False
    paginator = CappedCountPaginator


class AlertRuleForm(forms.ModelForm):
    webhook_url = forms.URLField(required=False, assume_scheme="https")
    # Write-only: the secret is never sent back to a browser (not even an admin's); empty keeps it.
    webhook_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="HMAC-SHA256 key for the signature. Leave empty to keep the current one.",
    )

    class Meta:
        model = AlertRule
        fields = [
            "name",
            "kind",
            "topic",
            "category",
            "min_severity",
            "threshold",
            "window_minutes",
            "quiet_minutes",
            "email_to",
            "webhook_url",
            "webhook_secret",
            "enabled",
        ]

    def clean_webhook_secret(self) -> str:
        value = self.cleaned_data.get("webhook_secret") or ""
        return value or (self.instance.webhook_secret if self.instance.pk else "")


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    """Alert rules of every kind: discrepancies, lag, break SLA, lag status (monitoring.models)."""

    form = AlertRuleForm
    list_display = ("name", "kind", "topic", "category", "min_severity", "threshold", "enabled")
    list_filter = ("kind", "enabled")
    search_fields = ("name",)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        operator_action_record(
            user=request.user,
            action="alert-rule-change" if change else "alert-rule-add",
            topic=obj.topic,
            target=f"alert-rule:{obj.pk}",
            detail={"changed": sorted(f for f in form.changed_data if f != "webhook_secret")},
        )
