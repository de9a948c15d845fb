"""The overview's time range: a preset, or an explicit start and end."""

import datetime as dt

from django import forms
from django.utils import timezone

from recon.filters import TimeInput

RANGES = {
    "1h": dt.timedelta(hours=1),
    "6h": dt.timedelta(hours=6),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}


DEFAULT_RANGE = "24h"


MAX_SPAN = dt.timedelta(days=366)


class RangeForm(forms.Form):
    """The overview's time range: a preset, or an explicit start and end."""

    range = forms.ChoiceField(choices=[(k, k) for k in RANGES], required=False)
    start = forms.DateTimeField(required=False, widget=TimeInput())
    end = forms.DateTimeField(required=False, widget=TimeInput())

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

    def complaints(self) -> list[tuple[str, str]]:
        """Why the page shows the default range instead of the one asked for, per field
        ("__all__" for the range as a whole; [] when it shows the one asked for): a bad
        value in the URL is named with what was typed, not ignored."""
        if self.is_valid():
            return []
        return [
            (
                name,
                " ".join(map(str, errors))
                if name == "__all__"
                else f"{self[name].label} {self.data.get(name)!r}: {' '.join(map(str, errors))}",
            )
            for name, errors in self.errors.items()
        ]

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
