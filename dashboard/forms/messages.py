"""The message search box."""

from django import forms

from recon import access
from recon.models import Topic


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
