"""Writes of the reconciliation app. Each state change has one function here."""

import logging
import uuid

from django.db import transaction

from recon.models import Finding, OperatorAction, RebalanceEvent, Topic

logger = logging.getLogger(__name__)

# Until rules are configured (recon.Rule), each category has this default.
_DEFAULT_CLASSIFICATION: dict[str, tuple[str, str]] = {
    Finding.Category.DELAYED: (Finding.Classification.MISMATCH, Finding.Severity.INFO),
    Finding.Category.DUPLICATE: (Finding.Classification.MISMATCH, Finding.Severity.INFO),
}


def finding_record(
    *,
    topic: Topic,
    category: str,
    uuid: uuid.UUID | None = None,
    key: str = "",
    detail: dict | None = None,
    load_id: uuid.UUID | None = None,
) -> Finding:
    classification, severity = _DEFAULT_CLASSIFICATION.get(
        category, (Finding.Classification.EXCEPTION.value, Finding.Severity.WARNING.value)
    )
    finding = Finding.objects.create(
        topic=topic,
        category=category,
        classification=classification,
        severity=severity,
        uuid=uuid,
        key=key[:512],
        detail=detail or {},
        load_id=load_id,
    )
    logger.warning("finding %s on %s: uuid=%s key=%s %s", category, topic.name, uuid, key, detail or "")
    return finding


@transaction.atomic
def rebalance_record(
    *, group: str, member: str, kind: str, partitions: list[dict], error: str = "", topic: Topic | None = None
) -> RebalanceEvent:
    """Record a rebalance callback; an error during one is also a finding on its topic."""
    event = RebalanceEvent.objects.create(group=group, member=member, kind=kind, partitions=partitions, error=error)
    if error and topic is not None:
        finding_record(
            topic=topic,
            category=Finding.Category.REBALANCE_ERROR,
            detail={"group": group, "member": member, "kind": kind, "error": error, "partitions": partitions},
        )
    return event


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
