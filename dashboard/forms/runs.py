"""Forms of the "Reconcile now" / "Check cache now" buttons and the Runs page's filter."""

from django import forms

from recon import access
from recon.models import ReconRun, Topic


class RunRequestForm(forms.Form):
    kind = forms.ChoiceField(choices=ReconRun.Kind.choices)
    window = forms.IntegerField(required=False, min_value=1)
    load = forms.UUIDField(required=False)
    topic = forms.CharField(required=False, max_length=249)

    def clean(self):
        data = super().clean() or {}
        given = [name for name in ("window", "load", "topic") if data.get(name)]
        if len(given) != 1:
            raise forms.ValidationError("Give one of a window, a load or a topic.")
        return data


class RunFilterForm(forms.Form):
    topic = forms.ModelChoiceField(queryset=Topic.objects.none(), required=False, to_field_name="name")
    kind = forms.ChoiceField(choices=[("", "any"), *ReconRun.Kind.choices], required=False)
    status = forms.ChoiceField(choices=[("", "any"), *ReconRun.Status.choices], required=False)
    cursor = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["topic"].queryset = access.topics_visible(user)  # type: ignore[attr-defined]
