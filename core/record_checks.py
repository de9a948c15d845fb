"""Business checks on a consumed record, beyond reconciliation.

A record that decodes but breaks these rules is still cached (garbage in,
garbage out is the subscriber's contract) and its consume-ledger row says
"invalid", with an invalid-data finding, when the topic has validate_payloads.
The checks use only fields in clear: no decryption in the consume path.
"""

import re
from collections.abc import Mapping

from core.records import record_key

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_LAST4 = re.compile(r"^\d{4}$")
_EXPIRY = re.compile(r"^(0[1-9]|1[0-2])/\d{2}$")
# Avro cannot tell a null written into a required string from "" (both are a zero
# length), so an empty required field is how a producer's null shows up here.
REQUIRED = ("name", "segment", "status")
CARD_STATUSES = {"active", "blocked", "expired", "closed"}


def record_problems(record: Mapping, *, key: str) -> list[str]:
    problems = []
    if record_key(record["client_id"]) != key:
        problems.append(f"message key {key!r} is not the record's key {record_key(record['client_id'])!r}")
    for name in REQUIRED:
        if not record[name].strip():
            problems.append(f"{name}: required")
    if not _COUNTRY.match(record["country"]):
        problems.append(f"country {record['country']!r} is not an ISO-3166 alpha-2 code")
    if record["email"] is not None and "@" not in record["email"]:
        problems.append("email has no @")
    for i, account in enumerate(record["accounts"]):
        if not _CURRENCY.match(account["currency"]):
            problems.append(f"accounts[{i}].currency {account['currency']!r} is not an ISO-4217 code")
        if account["daily_limit_cents"] < 0:
            problems.append(f"accounts[{i}].daily_limit_cents is negative")
        if not 1 <= account["statement_day"] <= 31:
            problems.append(f"accounts[{i}].statement_day {account['statement_day']} is not a day of the month")
        if not _LAST4.match(account["account_last4"]):
            problems.append(f"accounts[{i}].account_last4 is not four digits")
    for i, card in enumerate(record["cards"]):
        if not _EXPIRY.match(card["expiry"]):
            problems.append(f"cards[{i}].expiry {card['expiry']!r} is not MM/YY")
        if card["status"] not in CARD_STATUSES:
            problems.append(f"cards[{i}].status {card['status']!r} is not one of {sorted(CARD_STATUSES)}")
        if not _LAST4.match(card["card_last4"]):
            problems.append(f"cards[{i}].card_last4 is not four digits")
    return problems
