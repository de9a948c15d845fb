"""Validation "beyond recon": business rules on consumed data.

Transport reconciliation (use case 1) proves the cache holds what was published,
garbage included. This check reads the cached records back, decrypts them
(core.records.record_decode) and applies business rules: required fields,
card numbers that pass the Luhn check, card expiry not past, last-four digits
that agree with the number, plus the feed's clear-field checks
(core.record_checks: key, country, currency, ...). Each failing record is an "invalid-data" finding
with source "validation", reported in its own run (kind "validation").

Problems name the field and the rule, never a full card or account number.
"""

import datetime as dt
import logging
import re
import uuid
from collections.abc import Mapping

from django.db import connection
from django.utils import timezone

from core.cache_records import cache_records_get
from core.cards import luhn_valid as card_luhn_valid
from core.clients import redis_client
from core.record_checks import record_problems as clear_field_problems
from core.records import record_decode
from recon.models import ConsumedMessage, Finding, ReconRun, Topic
from recon.services.findings import key_findings_sync
from recon.services.run_lifecycle import run_finish, run_for_check

logger = logging.getLogger(__name__)

CHUNK = 1000
_HANDLED = ConsumedMessage.APPLIED  # stored, invalid, deleted, unsealed: the cache took them


def keys_handled(*, topic: Topic, start: dt.datetime | None, end: dt.datetime | None, load_id=None) -> list[str]:
    """Record keys the consumer stored or deleted: of a load, or of the topic's messages in [start, end)."""
    with connection.cursor() as cursor:
        if load_id is not None:
            cursor.execute(
                """SELECT DISTINCT c.key FROM recon_publishedmessage p
                   JOIN recon_consumedmessage c ON c.uuid = p.uuid AND c.published_at = p.published_at
                   WHERE p.load_id = %s AND c.outcome = ANY(%s) ORDER BY 1""",
                [load_id, list(_HANDLED)],
            )
        else:
            cursor.execute(
                """SELECT DISTINCT key FROM recon_consumedmessage
                   WHERE topic_id = %s AND published_at >= %s AND published_at < %s AND outcome = ANY(%s)
                   ORDER BY 1""",
                [topic.pk, start, end, list(_HANDLED)],
            )
        return [row[0] for row in cursor.fetchall()]


REQUIRED = ("name", "segment", "status", "country")
_EXPIRY = re.compile(r"^(?P<month>0[1-9]|1[0-2])/(?P<year>\d{2})$")


def luhn_valid(number: str) -> bool:
    """A card number: at least 12 digits ending in their Luhn check digit."""
    return len(number) >= 12 and card_luhn_valid(number)


def expiry_end(expiry: str) -> dt.date | None:
    """The last day a card with expiry "MM/YY" is valid, or None when the text is not MM/YY."""
    match = _EXPIRY.match(expiry.strip())
    if not match:
        return None
    year, month = 2000 + int(match["year"]), int(match["month"])
    first_of_next = dt.date(year + month // 12, month % 12 + 1, 1)
    return first_of_next - dt.timedelta(days=1)


def record_problems(record: Mapping, *, today: dt.date) -> list[str]:
    """Business-rule violations of one decrypted client record (empty when it is valid)."""
    problems = []
    client_id = record.get("client_id")
    if not isinstance(client_id, int) or client_id <= 0:
        problems.append("client_id: required, a positive integer")
    for field in REQUIRED:
        value = record.get(field)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{field}: required")
    for i, card in enumerate(record.get("cards") or []):
        number = str(card.get("card_number") or "")
        last4 = str(card.get("card_last4") or "")
        where = f"cards[{i}]"
        if not luhn_valid(number):
            problems.append(f"{where}.card_number: fails the Luhn check (ending {number[-4:] or '?'})")
        elif last4 != number[-4:]:
            problems.append(f"{where}.card_last4: does not match the card number")
        end = expiry_end(str(card.get("expiry") or ""))
        if end is None:
            problems.append(f"{where}.expiry: expected MM/YY, got {card.get('expiry')!r}")
        elif end < today:
            problems.append(f"{where}.expiry: {card.get('expiry')} is past")
    for i, account in enumerate(record.get("accounts") or []):
        number = str(account.get("account_number") or "")
        if not number.isdigit():
            problems.append(f"accounts[{i}].account_number: expected digits")
        elif str(account.get("account_last4") or "") != number[-4:]:
            problems.append(f"accounts[{i}].account_last4: does not match the account number")
    return problems


def cached_problems(keys: list[str], *, today: dt.date) -> dict[str, tuple[uuid.UUID | None, dict]]:
    """Read each key's cached record, decrypt and check it; {key: (uuid, detail)} for each invalid one."""
    problems: dict[str, tuple[uuid.UUID | None, dict]] = {}
    client = redis_client()
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i : i + CHUNK]
        cached = cache_records_get(client, chunk)
        for key in chunk:
            held = cached.get(key)
            if held is None:
                continue  # absent (deleted, or the cache leg's business)
            message_uuid = _uuid(held.uuid)
            version = held.schema_version or 1
            try:
                record = record_decode(held.value, schema_version=version, decrypt=True, key=key)
            except Exception as exc:  # undecodable data is invalid data, not a crash
                schema = str(held.schema_version) if held.schema_version else None
                detail = {"problems": [f"value does not decode: {exc.__class__.__name__}"], "schema": schema}
                problems[key] = (message_uuid, detail)
                continue
            # The feed's checks of fields in clear (what the consumer flags as it goes), then ours.
            found = clear_field_problems(record, key=key) + record_problems(record, today=today)
            found = list(dict.fromkeys(found))  # "name: required" is a rule of both
            if found:
                problems[key] = (message_uuid, {"problems": found, "schema": version})
    return problems


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


def validation_run(
    *,
    topic: Topic,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    load=None,
    trigger: str = "schedule",
    requested_by=None,
    today: dt.date | None = None,
    run: ReconRun | None = None,
) -> ReconRun:
    """Validate the cached records of a load or a range; a run of kind "validation".

    `run`: the queued run a worker claimed (recon.services.runs.run_execute), filled instead of
    a new one (trigger and requested_by are then its own).
    """
    today = today or timezone.now().date()
    run = run_for_check(
        run,
        kind=ReconRun.Kind.VALIDATION,
        topic=topic,
        start=start,
        end=end,
        load=load,
        trigger=trigger,
        requested_by=requested_by,
    )
    with run_finish(run) as report:
        keys = keys_handled(topic=topic, start=start, end=end, load_id=load.pk if load else None)
        problems = cached_problems(keys, today=today)
        outcome = key_findings_sync(
            topic=topic,
            category=Finding.Category.INVALID_DATA,
            source="validation",
            checked=keys,
            problems=problems,
            run=run,
            load_id=load.pk if load else None,
        )
        report.update(
            checked=len(keys),
            invalid={"count": len(problems), "keys": sorted(problems)[:1000]},
            all_valid=not problems,
            findings=outcome,
            as_of=timezone.now().isoformat(),
        )
    return run
