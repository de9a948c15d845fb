"""Writes of the audit log: a batch of payloads kept, sealed (recon.audit.seal); payloads past
their retention removed."""

import datetime as dt
import logging
from collections.abc import Sequence

from django.db import connection
from django.utils import timezone

from recon.audit import SIDES, seal
from recon.models import AuditPayload, Topic

logger = logging.getLogger(__name__)


def payloads_record(*, topic: Topic, side: str, items: Sequence[tuple]) -> int:
    """Keep one batch of payloads: items are (uuid, value_bytes, at_datetime[, schema_version]).

    One bulk insert per call; nothing is kept when the topic's audit method is off.
    Answers how many payloads were stored.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    if not topic.method_audit or not items:
        return 0
    now = timezone.now()
    expires = now + dt.timedelta(days=topic.audit_retention_days)
    rows = []
    for item in items:
        message_uuid, value, at = item[0], item[1], item[2]
        schema_version = item[3] if len(item) > 3 else None
        value = bytes(value or b"")
        key_id, blob = seal(value, topic_id=topic.pk, message_uuid=message_uuid, side=side)
        rows.append(
            AuditPayload(
                uuid=message_uuid,
                topic_id=topic.pk,
                side=side,
                key_id=key_id,
                payload=blob,
                size=len(value),
                schema_version=schema_version,
                at=at,
                stored_at=now,
                expires_at=expires,
            )
        )
    AuditPayload.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def audit_purge(*, now: dt.datetime | None = None, chunk: int = 10_000) -> int:
    """Delete payloads past their retention, a chunk per statement (short locks)."""
    now = now or timezone.now()
    total = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "DELETE FROM recon_auditpayload WHERE id IN "
                "(SELECT id FROM recon_auditpayload WHERE expires_at < %s LIMIT %s)",
                [now, chunk],
            )
            total += cursor.rowcount
            if cursor.rowcount < chunk:
                break
    if total:
        logger.info("audit purge removed %s payloads", total)
    return total
