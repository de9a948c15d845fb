"""The list filters of the record's reads, as forms: the API validates its query string with them
(recon.apis) and the pages render them (dashboard.views).

Filters are validated like any other input: an unknown category, a malformed date or an
injected string is a form error, never SQL. The topic choice is limited to what the user may see."""

from django import forms

from recon import access
from recon.models import Finding, Load, RebalanceEvent, Topic, Window
from recon.services.evidence import FORMATS


def _blank(choices) -> list[tuple[str, str]]:
    return [("", "any"), *choices]


class TimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self):
        super().__init__(format="%Y-%m-%dT%H:%M")


class TopicFilterForm(forms.Form):
    """Base of the list filters: the topic choice is limited to what the user may see."""

    topic = forms.ModelChoiceField(
        queryset=Topic.objects.none(), to_field_name="name", required=False, empty_label="any"
    )
    since = forms.DateTimeField(required=False, widget=TimeInput())
    until = forms.DateTimeField(required=False, widget=TimeInput())
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
    problem = forms.CharField(required=False, max_length=200)  # one problem's members (recon.problems)
    info = forms.BooleanField(required=False, label="Show info")
    # The page's rows: one per problem (the default) or one per finding.
    rows = forms.ChoiceField(choices=[("", "per problem"), ("finding", "per finding")], required=False)

    def filters(self) -> dict:
        data = super().filters()
        data.pop("rows", None)  # how the page lays them out, not which findings
        return data


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


class EvidenceForm(forms.Form):
    """An evidence pack asked for: a topic, a range, a format (the page's download and the API)."""

    topic = forms.CharField(max_length=249)
    start = forms.DateTimeField()
    end = forms.DateTimeField()
    format = forms.ChoiceField(choices=[(f, f) for f in FORMATS], required=False)

    def clean_topic(self) -> str:
        value = self.cleaned_data["topic"]
        if "\x00" in value:
            raise forms.ValidationError("Not a topic name.")
        return value
