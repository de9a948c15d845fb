"""Query-string filters and action forms, shared by the pages and the API.

Filters are validated like any other input: an unknown category, a malformed
date or an injected string is a form error shown to the user, never SQL.
"""

import datetime as dt

from django import forms
from django.utils import timezone

from recon import access
from recon.models import Finding, Load, RebalanceEvent, Topic, Window

RANGES = {
    "1h": dt.timedelta(hours=1),
    "6h": dt.timedelta(hours=6),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
DEFAULT_RANGE = "24h"
MAX_SPAN = dt.timedelta(days=366)


def _blank(choices) -> list[tuple[str, str]]:
    return [("", "any"), *choices]


class _TimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self):
        super().__init__(format="%Y-%m-%dT%H:%M")


class TopicFilterForm(forms.Form):
    """Base of the list filters: the topic choice is limited to what the user may see."""

    topic = forms.ModelChoiceField(
        queryset=Topic.objects.none(), to_field_name="name", required=False, empty_label="any"
    )
    since = forms.DateTimeField(required=False, widget=_TimeInput())
    until = forms.DateTimeField(required=False, widget=_TimeInput())
    cursor = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["topic"].queryset = access.topics_visible(user).order_by("name")  # type: ignore[attr-defined]

    def clean(self):
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            raise forms.ValidationError("'since' must be before 'until'.")
        return data

    def filters(self) -> dict:
        """The cleaned filters as selector keyword arguments (empty when the form is invalid)."""
        data = dict(self.cleaned_data) if self.is_valid() else {}
        data.pop("cursor", None)
        return {k: v for k, v in data.items() if v not in (None, "")}


class FindingFilterForm(TopicFilterForm):
    category = forms.ChoiceField(choices=_blank(Finding.Category.choices), required=False)
    severity = forms.ChoiceField(choices=_blank(Finding.Severity.choices), required=False)
    status = forms.ChoiceField(choices=_blank(Finding.Status.choices), required=False)
    uuid = forms.UUIDField(required=False, label="UUID")
    key = forms.CharField(required=False, max_length=512)


class WindowFilterForm(TopicFilterForm):
    status = forms.ChoiceField(choices=_blank(Window.Status.choices), required=False)


class LoadFilterForm(TopicFilterForm):
    status = forms.ChoiceField(choices=_blank(Load.Status.choices), required=False)


class RebalanceFilterForm(TopicFilterForm):
    kind = forms.ChoiceField(choices=_blank(RebalanceEvent.Kind.choices), required=False)

    def filters(self) -> dict:
        data = super().filters()
        topic = data.pop("topic", None)
        if topic is not None:
            data["group"] = topic.consumer_group
        return data


class ActionFilterForm(TopicFilterForm):
    action = forms.CharField(required=False, max_length=32)


class RangeForm(forms.Form):
    """The overview's time range: a preset, or an explicit start and end."""

    range = forms.ChoiceField(choices=[(k, k) for k in RANGES], required=False)
    start = forms.DateTimeField(required=False, widget=_TimeInput())
    end = forms.DateTimeField(required=False, widget=_TimeInput())

    def clean(self):
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start or end:
            end = end or timezone.now()
            start = start or end - RANGES[DEFAULT_RANGE]
            if start >= end:
                raise forms.ValidationError("The start must be before the end.")
            if end - start > MAX_SPAN:
                raise forms.ValidationError("Pick a range of at most a year.")
            data["start"], data["end"] = start, end
        return data

    def bounds(self) -> tuple[dt.datetime, dt.datetime, str]:
        """(start, end, preset) - the default range when the form is invalid or empty."""
        if self.is_valid():
            if self.cleaned_data.get("start"):
                return self.cleaned_data["start"], self.cleaned_data["end"], ""
            preset = self.cleaned_data.get("range") or DEFAULT_RANGE
        else:
            preset = DEFAULT_RANGE
        end = timezone.now()
        return end - RANGES[preset], end, preset


class LoadStartForm(forms.Form):
    """A batch load on demand. The topic list offers what the user operates; the view
    still asks recon.access, so a forged topic gets 403 like any other action."""

    topic = forms.ModelChoiceField(queryset=Topic.objects.none(), to_field_name="name")
    source = forms.CharField(max_length=128, initial="ods", help_text="ods, or file:<name> in the source directory")
    client_ids = forms.CharField(
        required=False, max_length=20000, label="Client ids", help_text="comma-separated; empty: every client"
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        # Any visible topic validates (so the view can answer 403, not "invalid choice");
        # only operable bulk topics are offered.
        self.fields["topic"].queryset = access.topics_visible(user)  # type: ignore[attr-defined]
        self.fields["topic"].choices = [  # type: ignore[attr-defined]
            (t.name, t.name) for t in access.topics_operable(user).filter(kind=Topic.Kind.BULK).order_by("name")
        ]

    def clean_client_ids(self) -> list[int]:
        raw = self.cleaned_data["client_ids"].replace(";", ",").replace(" ", ",")
        try:
            ids = sorted({int(part) for part in raw.split(",") if part})
        except ValueError:
            raise forms.ValidationError("Client ids are whole numbers separated by commas.") from None
        if any(i <= 0 for i in ids):
            raise forms.ValidationError("Client ids are positive.")
        return ids


class AcknowledgeForm(forms.Form):
    comment = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), required=True)


class MessageSearchForm(forms.Form):
    """The message lookup: one text box (the old ?uuid= links still work) and an optional topic."""

    q = forms.CharField(
        required=False,
        max_length=512,
        label="UUID, load id, key, client id or partition/offset",
        widget=forms.TextInput(attrs={"size": 40, "placeholder": "e.g. client:42, 42, 3/1200 or a UUID"}),
    )
    topic = forms.ModelChoiceField(
        queryset=Topic.objects.none(), to_field_name="name", required=False, empty_label="any topic"
    )

    def __init__(self, data=None, *, user, **kwargs):
        if data is not None and not data.get("q") and data.get("uuid"):
            data = data.copy()
            data["q"] = data["uuid"]
        super().__init__(data, **kwargs)
        self.fields["topic"].queryset = access.topics_visible(user).order_by("name")  # type: ignore[attr-defined]
