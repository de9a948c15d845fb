"""Forms of the alert pages: a rule, a silence. Topics offered are the ones the user may change."""

import datetime as dt

from django import forms

from monitoring.models import AlertRule
from recon import access
from recon.models import Finding, Topic


class AlertRuleForm(forms.ModelForm):
    categories = forms.MultipleChoiceField(
        choices=Finding.Category.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every category.",
    )
    webhook_url = forms.URLField(required=False, assume_scheme="https", label="Webhook URL")
    webhook_secret = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text="HMAC-SHA256 key for signed webhooks. Left empty when editing: the current one is kept.",
    )

    class Meta:
        model = AlertRule
        fields = list(AlertRule.EDITABLE)
        labels = {
            "min_severity": "At least severity",
            "window_minutes": "Window (minutes, for new findings)",
            "grace_minutes": "Grace (minutes)",
            "quiet_minutes": "Notify again after (minutes)",
            "email_to": "Email to",
            "webhook_url": "Webhook URL",
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        topic = self.fields["topic"]
        topic.queryset = access.topics_operable(user)  # type: ignore[attr-defined]
        topic.required = not user.is_staff
        topic.empty_label = "every topic (staff only)" if user.is_staff else None  # type: ignore[attr-defined]
        if self.instance.pk:
            self.initial["categories"] = self.instance.category_list()

    def clean(self):
        data = super().clean() or {}
        secret = data.get("webhook_secret") or (self.instance.webhook_secret if self.instance.pk else "")
        if data.get("webhook_url") and data.get("webhook_format") == AlertRule.WebhookFormat.SIGNED and not secret:
            self.add_error("webhook_secret", "A signed webhook needs a secret.")
        return data

    def save(self, commit: bool = True) -> AlertRule:
        secret = self.cleaned_data.get("webhook_secret")
        kept = AlertRule.objects.filter(pk=self.instance.pk).values_list("webhook_secret", flat=True).first()
        rule = super().save(commit=False)
        rule.categories = list(self.cleaned_data.get("categories") or [])
        rule.category = ""  # the list says it all
        rule.webhook_secret = secret or kept or ""
        return rule


class SilenceForm(forms.Form):
    rule = forms.ModelChoiceField(queryset=AlertRule.objects.none(), required=False, empty_label="every rule")
    topic = forms.ModelChoiceField(
        queryset=Topic.objects.none(), required=False, empty_label="every topic (staff only)"
    )
    starts_at = forms.DateTimeField(label="From (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    ends_at = forms.DateTimeField(label="Until (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    reason = forms.CharField(max_length=500, label="Why (maintenance, change number)")

    def __init__(self, *args, user, rules, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rule"].queryset = rules  # type: ignore[attr-defined]
        self.fields["topic"].queryset = access.topics_operable(user)  # type: ignore[attr-defined]

    def clean(self):
        data = super().clean() or {}
        for name in ("starts_at", "ends_at"):
            if data.get(name) and data[name].tzinfo is None:
                data[name] = data[name].replace(tzinfo=dt.UTC)
        return data
