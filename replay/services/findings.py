"""What a replay resolves at once: the dead-lettered findings of a message it has now stored.

(A missing or altered message is resolved by the next reconcile of its window, which
counts a consumed replay as delivery: recon.services.findings.window_findings_sync.)"""

from collections.abc import Iterable

from django.utils import timezone

from recon.models import Finding, Replay
from recon.services.finding_lifecycle import finding_mark_resolved, transitions_save


def dead_letter_findings_resolve(*, replay: Replay, finding_ids: Iterable[int], delivered_uuid=None) -> int:
    """Dead-lettered findings of a message the replay has now stored: resolved, naming the replay."""
    now = timezone.now()
    findings = list(
        Finding.objects.filter(
            pk__in=list(finding_ids),
            category=Finding.Category.DEAD_LETTERED,
            status__in=Finding.STANDING,
        )
    )
    transitions = [
        finding_mark_resolved(
            finding,
            by="replay",
            now=now,
            detail={"replay": str(replay.pk), "replay_uuid": str(delivered_uuid or finding.uuid or "")},
        )
        for finding in findings
    ]
    Finding.objects.bulk_update(findings, ["status", "detail", "updated_at", "status_changed_at"])
    transitions_save(transitions)
    return len(findings)
