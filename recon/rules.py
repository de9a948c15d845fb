"""Classification of findings by the rules kept in the ORM (recon.models.Rule).

Pure lookups: load a topic's rules once (`rules_for`), then `classify` each
finding in memory, so the engine classifies thousands of findings with one query.
"""

from collections.abc import Sequence
from typing import NamedTuple

from django.db.models import Q

from recon.models import Finding, Rule, Topic

C, S = Finding.Classification, Finding.Severity

# Without a fitting rule. At-least-once delivery makes duplicates expected (the
# cache write is an idempotent overwrite) and a late message still arrived, so
# both are mismatches to look at, not exceptions to act on.
DEFAULTS: dict[str, tuple[str, str]] = {
    Finding.Category.DELAYED: (C.MISMATCH, S.INFO),
    Finding.Category.DUPLICATE: (C.MISMATCH, S.INFO),
    Finding.Category.MISSING: (C.EXCEPTION, S.CRITICAL),
    Finding.Category.ALTERED: (C.EXCEPTION, S.CRITICAL),
    Finding.Category.ORPHAN: (C.EXCEPTION, S.WARNING),
    Finding.Category.COUNT: (C.EXCEPTION, S.WARNING),
    Finding.Category.CACHE: (C.EXCEPTION, S.WARNING),
    # The same record version again under a new UUID (a restarted load): harmless to the
    # cache (an equal version is an idempotent write), worth knowing about.
    Finding.Category.REPUBLISHED: (C.MISMATCH, S.INFO),
}
FALLBACK = (C.EXCEPTION.value, S.WARNING.value)


class Verdict(NamedTuple):
    classification: str
    severity: str
    rule_id: int | None


def rules_for(topic: Topic) -> list[Rule]:
    """Enabled rules that apply to the topic: its own first, then global, by priority."""
    rules = list(Rule.objects.filter(Q(topic=topic) | Q(topic__isnull=True), enabled=True))
    rules.sort(key=lambda r: (r.topic_id is None, r.priority, r.pk))
    return rules


def _fits(rule: Rule, category: str, detail: dict) -> bool:
    if rule.category != category:
        return False
    if rule.event_type and detail.get("event_type") != rule.event_type:
        return False
    if rule.detail_field:
        try:
            value = float(detail[rule.detail_field])
        except (KeyError, TypeError, ValueError):
            return False
        if rule.min_value is not None and value < rule.min_value:
            return False
        if rule.max_value is not None and value >= rule.max_value:
            return False
    return True


def classify(rules: Sequence[Rule], *, category: str, detail: dict) -> Verdict:
    for rule in rules:
        if _fits(rule, category, detail):
            return Verdict(rule.classification, rule.severity, rule.pk)
    classification, severity = DEFAULTS.get(category, FALLBACK)
    return Verdict(str(classification), str(severity), None)
