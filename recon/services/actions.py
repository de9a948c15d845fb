"""The operator action trail (the Audit trail page): who did what, on which topic, with what outcome."""

from recon.models import OperatorAction, Topic


def operator_action_record(
    *,
    user,
    action: str,
    topic: Topic | None = None,
    target: str = "",
    detail: dict | None = None,
    outcome: str = "accepted",
) -> OperatorAction:
    """Every operator action goes through here: who, when, what, outcome."""
    return OperatorAction.objects.create(
        user=user if user is not None and user.is_authenticated else None,
        action=action,
        topic=topic,
        target=target,
        detail=detail or {},
        outcome=outcome,
    )
