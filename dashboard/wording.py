"""Words for people instead of raw reprs, JSON and exception text (plain functions, no Django).

`error_words` turns the errors the pipeline records (Kafka, Redis, PostgreSQL, the
feed's own) into one sentence an operator can act on; `finding_reason` says in a
few words what a finding is about; `outcome_tone` says whether an audited outcome
is good, bad, in progress or needs a look, so colours follow meaning.
"""

import datetime as dt
import re

# (pattern in the raw text, what it means for an operator)
_ERRORS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"_MSG_TIMED_OUT|Message timed out", re.I),
        "Kafka did not acknowledge in time: is the broker up and reachable?",
    ),
    (
        re.compile(r"_TRANSPORT|_ALL_BROKERS_DOWN|Connection refused.*9092|brokers are down", re.I),
        "Kafka is unreachable: no broker answered.",
    ),
    (
        re.compile(r"UNKNOWN_TOPIC_OR_PART|Unknown topic", re.I),
        "The Kafka topic does not exist (or this client may not see it).",
    ),
    (
        re.compile(r"TOPIC_AUTHORIZATION_FAILED|SASL|_AUTHENTICATION", re.I),
        "Kafka refused the credentials or the permission for this topic.",
    ),
    (re.compile(r"MSG_SIZE_TOO_LARGE|oversize|too large", re.I), "The message is larger than the size limit."),
    (
        re.compile(r"redis.*(ConnectionError|Connection refused|Timeout)|Error \d+ connecting to .*6379", re.I),
        "Redis is unreachable.",
    ),
    (
        re.compile(r"OperationalError|could not connect to server|connection to server .* failed", re.I),
        "The database is unreachable.",
    ),
    (
        re.compile(r"source connection reset|SourceError", re.I),
        "The system of record could not be read (connection lost).",
    ),
    (re.compile(r"TimeoutError|took too long", re.I), "It took too long and was stopped; try a smaller scope."),
]
_REPR = re.compile(r"^(?:[A-Za-z_.]+(?:Error|Exception)):\s*|KafkaError\{[^}]*str=\"?([^\"}]*)\"?[^}]*\}")


def error_words(text: str) -> str:
    """One sentence for a recorded error; the raw text is kept for the details view."""
    if not text:
        return ""
    for pattern, words in _ERRORS:
        if pattern.search(text):
            return words
    match = re.search(r"str=\"?([^\"}]*)", text)  # a KafkaError repr: its human part
    if match and match.group(1).strip():
        return match.group(1).strip().rstrip(".") + "."
    cleaned = _REPR.sub("", text).strip()
    return cleaned[:1].upper() + cleaned[1:] if cleaned else text


def finding_reason(category: str, detail: dict) -> str:
    """A few words on what this finding is about, from its detail."""
    d = detail or {}
    if category == "delayed" and "delay_seconds" in d:
        return f"{d['delay_seconds']:,.1f} s late (limit {d.get('limit_seconds', '?')} s)"
    if category == "duplicate":
        return f"delivered {d.get('deliveries', '?')} times" + (
            f", published {d['published']} times" if d.get("published", 1) > 1 else ""
        )
    if category == "altered":
        fields = d.get("fields") or d.get("changed_fields")
        return f"bytes differ{': ' + ', '.join(map(str, fields[:3])) if fields else ''}"
    if category == "missing":
        return "published, never consumed"
    if category == "orphan":
        return d.get("reason") or "consumed, never published by us"
    if category == "cache":
        return {
            "absent": "key absent from Redis",
            "differs": "Redis holds other bytes",
            "present after delete": "still in Redis after a delete",
        }.get(d.get("problem", ""), d.get("problem", "cache differs"))
    if category == "count":
        return f"published {d.get('published', '?')}, consumed {d.get('consumed', '?')}"
    if category == "dead-lettered":
        reason = error_words(str(d.get("last_error") or d.get("reason") or ""))
        attempts = d.get("attempts")
        return f"{reason} ({attempts} attempts)" if attempts else reason
    if category in ("invalid-data", "oversize", "rebalance-error"):
        return error_words(str(d.get("reason") or d.get("error") or "; ".join(d.get("problems") or [])))
    return ""


def outcome_tone(outcome: str) -> str:
    """ok (done and good), bad (refused or failed), warn (done, but not all of it), info (in progress)."""
    text = (outcome or "").lower()
    if text.startswith(("refused", "failed", "error")):
        return "bad"
    if text.startswith(("queued", "running", "already")):
        return "info"
    if re.search(r"\b\d+ (dead|failed)\b", text):
        return "warn"
    return "ok"


def age(at: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """How long ago, in the largest unit that fits: '45 s', '12 min', '3 h', '2 d'."""
    if at is None:
        return ""
    seconds = max(0, int(((now or dt.datetime.now(dt.UTC)) - at).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


# Detail fields a person reads first, and their names in words.
_LABELS = {
    "reason": "Reason",
    "last_error": "Last error",
    "attempts": "Attempts",
    "problem": "Problem",
    "problems": "Problems",
    "delay_seconds": "Delay (s)",
    "limit_seconds": "Latency limit (s)",
    "deliveries": "Deliveries",
    "published_at": "Published",
    "consumed_at": "Consumed",
    "partition": "Partition",
    "offset": "Offset",
    "group": "Consumer group",
    "event_type": "Event",
    "fields": "Fields that differ",
    "resolved_by": "Resolved by",
    "resolved_at": "Resolved at",
}
_HIDDEN = {"replay", "replay_uuid", "verified_by_run"}  # shown as links on the page


def detail_items(detail: dict) -> list[tuple[str, str]]:
    """A finding's detail as (label, text) lines: known fields first, in words; errors explained."""
    items = []
    keys = [k for k in _LABELS if k in detail] + sorted(k for k in detail if k not in _LABELS)
    for key in keys:
        if key in _HIDDEN:
            continue
        value = detail[key]
        if isinstance(value, list):
            text = (
                ", ".join(str(v) for v in value) if all(not isinstance(v, dict | list) for v in value) else str(value)
            )
        elif isinstance(value, dict):
            text = ", ".join(f"{k} {v}" for k, v in value.items())
        else:
            text = str(value)
        if key in ("reason", "last_error", "error"):
            words = error_words(text)
            text = words if words == text else f"{words} ({text})"
        items.append((_LABELS.get(key, key.replace("_", " ").capitalize()), text))
    return items


def category_label(category: str, display: str, detail: dict) -> str:
    if category == "cache":
        problem = (detail or {}).get("problem", "")
        return {
            "absent": "Cache: key absent",
            "differs": "Cache: value differs",
            "present after delete": "Cache: not deleted",
        }.get(problem, display)
    return display


_SUMMARY_LABELS = {
    "as_of": "Judged as of",
    "closed": "Closed (end and grace passed)",
    "fast_path": "Proved by counts and digests alone",
    "published": "Published",
    "consumed": "Consume rows",
    "delivered": "Published messages consumed",
    "pending": "Not consumed yet (window open)",
    "redelivered": "Redeliveries",
    "findings": "Findings by category",
    "classification": "Findings by classification",
    "truncated": "More discrepancies than listed",
    "methods": "Methods on",
    "duration_ms": "Took (ms)",
}


def window_summary_items(summary: dict) -> list[tuple[str, str]]:
    """A window's last reconcile as (label, text) lines, in words: never its JSON."""
    items = []
    for key in [k for k in _SUMMARY_LABELS if k in summary] + sorted(k for k in summary if k not in _SUMMARY_LABELS):
        value = summary[key]
        if key == "methods" and isinstance(value, dict):
            text = ", ".join(name for name, on in value.items() if on) or "none"
        elif isinstance(value, dict):
            text = ", ".join(f"{v} {k}" for k, v in value.items()) or "none"
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, list):
            text = ", ".join(str(v) for v in value) or "none"
        else:
            text = str(value)
        items.append((_SUMMARY_LABELS.get(key, key.replace("_", " ").capitalize()), text))
    return items


def target_items(target: dict) -> list[tuple[str, list[str], bool]]:
    """What a replay names, as (label, values, values are message UUIDs): a list stays a list."""
    items = []
    for key, value in target.items():
        values = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
        items.append((key.replace("_", " ").capitalize(), values, key in ("uuid", "uuids")))
    return items
