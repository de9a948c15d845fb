"""Reads of the audit log: a message's kept payloads, published against consumed field by field,
and the changed fields an altered finding names."""

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from core.records import record_decode
from recon.audit import field_diff, payload_hash, unseal
from recon.engine import Draft
from recon.models import AuditPayload, Finding, Topic

logger = logging.getLogger(__name__)


# A diff is worked out for at most this many altered messages per window pass.
DIFF_LIMIT = 500


def payloads_of(*, topic: Topic, uuids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[AuditPayload]]:
    found: dict[uuid.UUID, list[AuditPayload]] = {}
    for row in AuditPayload.objects.filter(topic=topic, uuid__in=list(uuids)).order_by("at", "id"):
        found.setdefault(row.uuid, []).append(row)
    return found


def _decode(row: AuditPayload, value: bytes, *, decrypt: bool) -> dict:
    return record_decode(value, schema_version=row.schema_version or 1, decrypt=decrypt)


def message_diff(*, topic: Topic, message_uuid: uuid.UUID, decrypt: bool = False) -> dict:
    """Published vs consumed payloads of one message, field by field.

    With decrypt=False sensitive fields compare as ciphertext: a changed card
    number shows as a changed path without revealing it. Callers check
    recon.access.topic_for_payload before asking for values.
    """
    rows = payloads_of(topic=topic, uuids=[message_uuid]).get(message_uuid, [])
    published = [r for r in rows if r.side == AuditPayload.Side.PUBLISHED]
    consumed = [r for r in rows if r.side == AuditPayload.Side.CONSUMED]
    if not published or not consumed:
        return {"available": False, "reason": "no audit payload on " + ("both sides" if not rows else "one side")}
    pub_row = published[0]
    pub_value = unseal(pub_row)
    # Re-encrypted payloads compare by the original bytes' hash they keep (payload_hash).
    pub_hash = payload_hash(pub_row, pub_value, topic.hash_algorithm)
    # The delivery that differs, if any; else the first one.
    con_row, con_value = consumed[0], unseal(consumed[0])
    con_hash = payload_hash(con_row, con_value, topic.hash_algorithm)
    for row in consumed:
        value = unseal(row)
        if payload_hash(row, value, topic.hash_algorithm) != pub_hash:
            con_row, con_value, con_hash = row, value, payload_hash(row, value, topic.hash_algorithm)
            break
    result: dict[str, Any] = {"available": True, "bytes_equal": pub_value == con_value or pub_hash == con_hash}
    if result["bytes_equal"]:
        result["fields"] = []
        return result
    try:
        fields = field_diff(_decode(pub_row, pub_value, decrypt=decrypt), _decode(con_row, con_value, decrypt=decrypt))
    except LookupError as exc:
        result.update(fields=None, reason=str(exc))
    except Exception as exc:  # an undecodable (corrupted) payload is itself the answer
        result.update(fields=None, reason=f"payload does not decode: {exc.__class__.__name__}: {exc}")
    else:
        result["fields"] = fields
    return result


def altered_with_field_diff(*, topic: Topic, drafts: list[Draft]) -> list[Draft]:
    """Add the changed field paths (not values: findings are seen by viewers) to altered drafts."""
    altered = [d.uuid for d in drafts if d.category == Finding.Category.ALTERED and d.uuid][:DIFF_LIMIT]
    if not altered:
        return drafts
    have = set(AuditPayload.objects.filter(topic=topic, uuid__in=altered).values_list("uuid", flat=True))
    diffs: dict[uuid.UUID, dict] = {}
    for message_uuid in altered:
        if message_uuid not in have:
            continue
        try:
            diff = message_diff(topic=topic, message_uuid=message_uuid, decrypt=False)
        except Exception as exc:  # a bad row must not stop the reconcile
            logger.warning("audit diff of %s failed: %s", message_uuid, exc)
            diff = {"available": False, "reason": f"{exc.__class__.__name__}"}
        if diff.get("fields") is not None:
            diff["fields"] = [f["path"] for f in diff["fields"]]
        diffs[message_uuid] = diff
    return [
        d._replace(detail={**d.detail, "audit": diffs[d.uuid]})
        if d.category == Finding.Category.ALTERED and d.uuid in diffs
        else d
        for d in drafts
    ]
