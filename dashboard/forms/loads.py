"""The form of the "Start a load" button."""

from django import forms

from recon import access
from recon.models import Topic


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
