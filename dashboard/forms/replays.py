"""Forms of the replay and reprocess buttons and the Replays page (replay.services.requests does the checking).

A form only turns the posted fields into a request; what is allowed (way,
scope, target, permission) is decided by replay.services.requests and recon.access, so a
forged post meets the same checks as the API.
"""

from django import forms

from recon.filters import TopicFilterForm
from recon.models import Replay

_LIST_SEPARATORS = str.maketrans({";": ",", " ": ",", "\n": ",", "\r": ","})


def _items(raw: str) -> list[str]:
    return [part for part in raw.translate(_LIST_SEPARATORS).split(",") if part]


class ReplayStartForm(forms.Form):
    topic = forms.CharField(max_length=249)
    way = forms.ChoiceField(choices=Replay.Way.choices)
    scope = forms.ChoiceField(choices=Replay.Scope.choices)
    reason = forms.CharField(max_length=2000)
    # The scope's parameters; each scope reads its own.
    uuids = forms.CharField(required=False, max_length=400_000, label="Message UUIDs")
    window = forms.IntegerField(required=False, min_value=1)
    start = forms.DateTimeField(required=False)
    end = forms.DateTimeField(required=False)
    load = forms.UUIDField(required=False)
    partition = forms.IntegerField(required=False, min_value=0)
    start_offset = forms.IntegerField(required=False, min_value=0)
    end_offset = forms.IntegerField(required=False, min_value=0)
    keys = forms.CharField(required=False, max_length=400_000, label="Client keys or ids")
    findings = forms.CharField(required=False, max_length=400_000, label="Finding ids")
    source = forms.CharField(required=False, max_length=128)
    next = forms.CharField(required=False, max_length=2000)

    def target(self) -> dict:
        data = self.cleaned_data
        scope = data["scope"]
        if scope == Replay.Scope.MESSAGES:
            return {"uuids": _items(data["uuids"])}
        if scope == Replay.Scope.WINDOW:
            return {"window": data["window"]}
        if scope == Replay.Scope.RANGE:
            return {"start": data["start"], "end": data["end"]}
        if scope == Replay.Scope.LOAD:
            return {"load": data["load"]}
        if scope == Replay.Scope.OFFSETS:
            return {k: data[k] for k in ("partition", "start_offset", "end_offset")}
        if scope == Replay.Scope.CLIENTS:
            return {"keys": _items(data["keys"]), **({"source": data["source"]} if data["source"] else {})}
        return {"findings": _items(data["findings"])}


class ReprocessForm(forms.Form):
    """Dead-lettered findings, one or many (the findings list's checkboxes)."""

    findings = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=True)
    reason = forms.CharField(max_length=2000)
    next = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any integer id validates here; replay.services.requests checks they are dead-lettered findings of one topic.
        posted = self.data.getlist("findings") if hasattr(self.data, "getlist") else []
        self.fields["findings"].choices = [(v, v) for v in posted if str(v).isdigit()]  # type: ignore[attr-defined]


class ReplayFilterForm(TopicFilterForm):
    status = forms.ChoiceField(choices=[("", "any"), *Replay.Status.choices], required=False)
    way = forms.ChoiceField(choices=[("", "any"), *Replay.Way.choices], required=False)
