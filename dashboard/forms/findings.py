"""The form of a finding's Acknowledge button."""

from django import forms


class AcknowledgeForm(forms.Form):
    comment = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), required=True)
