"""Card and account numbers masked before they reach a page, a CSV file or the API.

Anyone without payload permission on a topic sees at most the last four digits.
Two nets, because payloads come in many shapes:
- a value under a sensitive field name (cardNumber, account_id, iban, ...) is
  masked whatever it holds (security codes entirely);
- anywhere else, a run of 13-19 digits that passes the Luhn check (a card number
  pasted into a comment or an error message) is masked. Luhn keeps epoch
  timestamps, offsets and counts readable most of the time.
"""

import re
from typing import Any

from core.cards import luhn_valid

NUMBER_WORDS = frozenset({"card", "cards", "pan", "account", "accounts", "acct", "iban", "number"})
SECRET_WORDS = frozenset({"cvv", "cvv2", "cvc", "pin", "secret"})
_CARD_RUN = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
MASK = "•"


def mask_number(text: str) -> str:
    """'4111 1111 1111 1234' -> '•••• •••• •••• 1234' (separators kept, last four shown)."""
    keep_from = sum(c.isdigit() for c in text) - 4
    out, index = [], 0
    for char in text:
        if char.isdigit():
            out.append(char if index >= keep_from else MASK)
            index += 1
        else:
            out.append(char)
    return "".join(out)


def _mask_card_run(match: re.Match) -> str:
    run = match.group(0)
    return mask_number(run) if luhn_valid(re.sub(r"\D", "", run)) else run


def mask_text(text: str) -> str:
    """Free text: card numbers masked, everything else left as it is."""
    return _CARD_RUN.sub(_mask_card_run, text)


def _words(name: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(name)}


def mask_sensitive(value: Any, *, field: str = "") -> Any:
    """A copy of a JSON-like value with card and account numbers masked."""
    words = _words(field)
    if words & SECRET_WORDS and not isinstance(value, dict | list | tuple):
        return MASK * 3 if value not in (None, "") else value
    sensitive = bool(words & NUMBER_WORDS)
    if isinstance(value, dict):
        return {k: mask_sensitive(v, field=str(k) if not sensitive else f"{field} {k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_sensitive(v, field=field) for v in value]
    if isinstance(value, bytes):
        return mask_sensitive(value.decode("utf-8", "replace"), field=field)
    if isinstance(value, str):
        return mask_number(value) if sensitive else mask_text(value)
    if isinstance(value, int) and not isinstance(value, bool) and sensitive:
        return mask_number(str(value))
    return value
