"""The forms of a topic's people: add or change a person's one role, remove them."""

from django import forms

from core.usernames import username_normalise
from dashboard.roles import TOPIC_ROLE_LABELS
from recon.access import TOPIC_ROLES


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150, label="Person (username)")
    role = forms.ChoiceField(choices=[(r, TOPIC_ROLE_LABELS[r]) for r in TOPIC_ROLES], label="Role")

    def clean_username(self) -> str:
        return username_normalise(self.cleaned_data["username"])


class MemberRemoveForm(forms.Form):
    username = forms.CharField(max_length=150)

    def clean_username(self) -> str:
        return username_normalise(self.cleaned_data["username"])
