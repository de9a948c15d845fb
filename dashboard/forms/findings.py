"""The form of a finding's Acknowledge button."""

from django import forms


class AcknowledgeForm(forms.Form):
    comment = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), required=True)


class IdsField(forms.Field):
    """The ticked findings' ids (checkboxes named `findings`)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        values = value if isinstance(value, list | tuple) else ([value] if value else [])
        try:
            return [int(v) for v in values]
        except (TypeError, ValueError) as exc:
            raise forms.ValidationError("Finding ids are numbers.") from exc


class BulkForm(forms.Form):
    """The findings list's bulk form: one action on the ticked findings."""

    ACTIONS = [
        ("assign_me", "Assign to me"),
        ("assign", "Assign to the person named"),
        ("acknowledge", "Acknowledge"),
        ("accept", "Accept as-is, with the reason code"),
        ("comment", "Comment"),
    ]
    findings = IdsField(error_messages={"required": "Tick at least one finding."})
    action = forms.ChoiceField(choices=ACTIONS, label="With the ticked findings")
    assignee = forms.CharField(max_length=150, required=False, label="Person")
    reason_code = forms.CharField(max_length=64, required=False, label="Reason code")
    comment = forms.CharField(max_length=4000, required=False, label="Comment")

    def clean(self):
        data = super().clean() or {}
        action = data.get("action")
        if action == "assign" and not data.get("assignee"):
            self.add_error("assignee", "Name the person to assign to.")
        if action == "accept" and not data.get("reason_code"):
            self.add_error("reason_code", "Choose a reason code.")
        if action in ("comment", "acknowledge") and not (data.get("comment") or "").strip():
            self.add_error("comment", "Write the comment.")
        return data
