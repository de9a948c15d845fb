"""The problem a finding belongs to: what one cause produced is one problem.

A reload of unchanged data republishes every key of the load (one problem: the load); a
window's lost messages on one partition are one lost range; a consumer's dead letters
for one reason are one problem; a cache run's differing keys of one load or run are one.
The key is computed where the finding is raised (recon.services.findings) and stored on
the finding (`Finding.problem`); the lists, the ageing table, the counts and the
evidence pack group by (topic, problem), and each member keeps its own key and UUID so
the per-key repair stays possible. A finding with no shared cause is its own problem.
"""

import uuid


def problem_of(
    *,
    category: str,
    window_id: int | None = None,
    load_id: uuid.UUID | str | None = None,
    run_id: uuid.UUID | str | None = None,
    detail: dict | None = None,
    key: str = "",
    message_uuid: uuid.UUID | str | None = None,
) -> str:
    """The problem key of a finding about to be raised (at most 200 characters)."""
    detail = detail or {}
    if category == "dead-lettered":
        # One consumer failing one way: its reason (without per-message numbers) is the cause.
        reason = str(detail.get("reason") or detail.get("error") or "")
        return f"{category}:reason:{_shape(reason)}"[:200]
    if category == "republished" and load_id:
        return f"{category}:load:{load_id}"  # the reload itself, whichever windows it spans
    if load_id and category in ("cache", "clock-skew", "oversize", "invalid-data"):
        return f"{category}:load:{load_id}"
    if window_id is not None:
        partition = detail.get("partition")
        where = (
            f":p{partition}"
            if category in ("missing", "delayed", "duplicate", "orphan") and partition is not None
            else ""
        )
        return f"{category}:window:{window_id}{where}"
    if load_id:
        return f"{category}:load:{load_id}"
    if run_id:
        return f"{category}:run:{run_id}"
    if category == "cache" and detail.get("source"):
        return f"{category}:source:{detail['source']}"
    return f"{category}:one:{message_uuid or key}"[:200]


def _shape(reason: str) -> str:
    """A reason with its digits taken out: "offset 12 unreadable" and "offset 13 unreadable" are one cause."""
    return "".join("#" if c.isdigit() else c for c in reason)[:120]
