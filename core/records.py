"""The client record: what a source row becomes, and what a message value holds.

A *plain* record is a dict in the shape of schemas/client_record.v<N>.avsc with
`account_number` and `card_number` as digit strings. `record_encode` encrypts
those two fields (core.crypto), each in the mode FIELD_ENCRYPTION_MODES gives it
(AES-GCM bytes, or FF1 digits with a `<field>_fpe` tag naming key and format), and
Avro-encodes the result; the value never carries them in clear. `record_decode` is the way back, used by the retrieval
API and by reconciliation (the shared-record contract).
"""

import datetime as dt
import functools
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from django.conf import settings

from core import avro
from core.crypto import CryptoError, Keyring, field_bindings, key_id_of, keyring
from core.fpe import DigitFormat, digit_format, format_for

# Which nested list holds which encrypted field, and where its clear last 4 go.
SENSITIVE = (("accounts", "account_number", "account_last4"), ("cards", "card_number", "card_last4"))

_CLIENT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "segment": str,
    "status": str,
    "country": str,
}
_ACCOUNT_FIELDS: dict[str, type] = {
    "product": str,
    "currency": str,
    "daily_limit_cents": int,
    "overdraft_enabled": bool,
    "alerts_enabled": bool,
    "statement_day": int,
    "language": str,
}
_CARD_FIELDS: dict[str, type] = {"card_id": int, "brand": str, "expiry": str, "status": str}


# A source version; versions compare as Lua numbers (doubles) in the cache's script: exact up to 2**53.
MAX_VERSION = 2**53 - 1


class RecordError(ValueError):
    """Input that cannot become a client record; the message says which field and why."""


class EncodedRecord(NamedTuple):
    value: bytes
    schema_version: int
    key_id: str


def record_key(client_id: int) -> str:
    return f"client:{client_id}"


def client_id_of(key: str) -> int | None:
    """The client id in a record key, or None when the key is not a client key."""
    prefix, _, rest = key.partition(":")
    if prefix != "client" or not rest.isdigit():
        return None
    return int(rest)


def _millis(at: dt.datetime) -> dt.datetime:
    # Avro timestamp-millis keeps milliseconds; truncate here so a decoded record
    # compares equal to the one that was built.
    if at.tzinfo is None:
        raise RecordError("updated_at must carry a time zone")
    return at.astimezone(dt.UTC).replace(microsecond=at.microsecond // 1000 * 1000)


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return _millis(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise RecordError(f"updated_at: {value!r} is not an ISO-8601 time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return _millis(parsed)
    raise RecordError(f"updated_at: expected a time, got {type(value).__name__}")


def _digits(value: Any, field: str, *, low: int, high: int) -> str:
    text = str(value).replace(" ", "") if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not text.isdigit() or not low <= len(text) <= high:
        raise RecordError(f"{field}: expected {low}-{high} digits")
    return text


_MISSING = object()


def _typed_check(name: str, kind: type | tuple[type, ...], value: Any, where: str | tuple[str, int]) -> None:
    if value is _MISSING:
        raise RecordError(f"{_where(where)}{name}: missing")
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise RecordError(
            f"{_where(where)}{name}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}"
        )


def _where(where: str | tuple[str, int]) -> str:
    return where if isinstance(where, str) else f"{where[0]}[{where[1]}]."


# The columns of the rows a record is built from, in order (core.sources.sql reads them so).
CLIENT_COLUMNS = ("client_id", "name", "email", "segment", "status", "country", "updated_at")
ACCOUNT_COLUMNS = (
    "account_number",
    "product",
    "currency",
    "daily_limit_cents",
    "overdraft_enabled",
    "alerts_enabled",
    "statement_day",
    "language",
)
CARD_COLUMNS = ("card_id", "card_number", "brand", "expiry", "status")
# What a column is absent as in a mapping: None where None has its own error, else _MISSING.
_GOT_NONE = {"client_id", "email", "updated_at", "account_number", "card_number"}

_client_clear = operator.itemgetter(*(CLIENT_COLUMNS.index(name) for name in _CLIENT_FIELDS))
_CLIENT_NAMES = tuple(_CLIENT_FIELDS)
_CLIENT_KINDS = tuple(_CLIENT_FIELDS.values())
_ACCOUNT_NAMES = ACCOUNT_COLUMNS[1:]
_ACCOUNT_KINDS = tuple(_ACCOUNT_FIELDS[name] for name in _ACCOUNT_NAMES)
_CARD_NAMES = tuple(_CARD_FIELDS)  # card_id, brand, expiry, status: columns 0, 2, 3, 4
_CARD_KINDS = tuple(_CARD_FIELDS.values())


def _checked(values: Sequence, names: tuple[str, ...], kinds: tuple, where: str | tuple[str, int]) -> None:
    """Each value of its field's type. The exact types are the usual case, checked in one
    comparison; anything else takes the full check, which names the first wrong field."""
    if tuple(map(type, values)) != kinds:
        for name, kind, value in zip(names, kinds, values, strict=True):
            if type(value) is not kind:
                _typed_check(name, kind, value, where)


def client_record_build(*, client: Mapping, accounts: Sequence[Mapping], cards: Sequence[Mapping]) -> dict:
    """A plain record from a client row and its account-setting and card rows.

    Also the validator of untrusted input (file sources, the change API): every
    field is checked, and the message names the first one that is wrong.
    """
    return client_record_from_rows(
        _row(client, CLIENT_COLUMNS),
        _rows(accounts, "accounts", ACCOUNT_COLUMNS),
        _rows(cards, "cards", CARD_COLUMNS),
    )


def _row(data: Mapping, columns: tuple[str, ...]) -> tuple:
    return tuple(data.get(name) if name in _GOT_NONE else data.get(name, _MISSING) for name in columns)


def _rows(items: Sequence[Mapping], name: str, columns: tuple[str, ...]) -> Iterator[tuple]:
    """Each item as a row, checked to be a mapping as the builder reaches it (so errors come in field order)."""
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise RecordError(f"{name}[{i}]: expected an object")
        yield _row(item, columns)


def client_record_from_rows(client: Sequence, accounts: Iterable[Sequence], cards: Iterable[Sequence]) -> dict:
    """client_record_build from rows in column order (CLIENT_COLUMNS, ACCOUNT_COLUMNS,
    CARD_COLUMNS): what the SQL source reads, with no mapping made per row. Paths in
    messages are formatted only when a field is wrong (a load builds every row)."""
    client_id, name, email, segment, status, country, updated_at = client
    if not isinstance(client_id, int) or isinstance(client_id, bool) or client_id <= 0:
        raise RecordError("client_id: expected a positive integer")
    _checked(_client_clear(client), _CLIENT_NAMES, _CLIENT_KINDS, "")
    if email is not None and not isinstance(email, str):
        raise RecordError("email: expected a string or null")
    record: dict[str, Any] = {
        "client_id": client_id,
        "name": name,
        "email": email or None,
        "segment": segment,
        "status": status,
        "country": country,
        "updated_at": _timestamp(updated_at),
    }
    record["accounts"] = out_accounts = []
    for i, row in enumerate(accounts):
        number = row[0]
        if type(number) is not str or not 6 <= len(number) <= 34 or not number.isdigit():
            number = _digits(number, f"accounts[{i}].account_number", low=6, high=34)
        clear = row[1:]
        _checked(clear, _ACCOUNT_NAMES, _ACCOUNT_KINDS, ("accounts", i))
        account = dict(zip(_ACCOUNT_NAMES, clear, strict=True))
        account["account_number"] = number
        account["account_last4"] = number[-4:]
        out_accounts.append(account)
    record["cards"] = out_cards = []
    for i, row in enumerate(cards):
        card_id, number, brand, expiry, card_status = row
        if type(number) is not str or not 12 <= len(number) <= 19 or not number.isdigit():
            number = _digits(number, f"cards[{i}].card_number", low=12, high=19)
        _checked((card_id, brand, expiry, card_status), _CARD_NAMES, _CARD_KINDS, ("cards", i))
        out_cards.append(
            {
                "card_id": card_id,
                "card_number": number,
                "card_last4": number[-4:],
                "brand": brand,
                "expiry": expiry,
                "status": card_status,
            }
        )
    return record


def record_from_document(document: Any) -> dict:
    """A plain record from a JSON-shaped document (a file line, an API body)."""
    if not isinstance(document, Mapping):
        raise RecordError("record: expected an object")
    accounts, cards = document.get("accounts", []), document.get("cards", [])
    if not isinstance(accounts, list) or not isinstance(cards, list):
        raise RecordError("accounts and cards must be lists")
    return client_record_build(client=document, accounts=accounts, cards=cards)


def field_identity(list_name: str, item: Mapping) -> str:
    """What identifies an encrypted field's item, from its clear fields: a card's id and last
    4 digits, an account's last 4 (the account number itself is the ciphertext)."""
    if list_name == "cards":
        return f"card_id={item['card_id']};last4={item['card_last4']}"
    return f"last4={item['account_last4']}"


def _places(record: Mapping) -> list[tuple[dict, str, str, str]]:
    """Each encrypted field of a record: (its item, field name, path, item identity), in one order."""
    return [
        (item, field, f"{list_name}[{i}].{field}", field_identity(list_name, item))
        for list_name, field, _ in SENSITIVE
        for i, item in enumerate(record[list_name])
    ]


def _bindings(key: str, record: Mapping):
    places = _places(record)
    bindings = field_bindings(key, [(path, identity) for _, _, path, identity in places])
    for (item, field, path, _), binding in zip(places, bindings, strict=True):
        yield item, field, path, binding


# The schema a record is written with: v1 holds AES-GCM fields only (bytes); v2 lets each
# field be either mode (core/schemas/client_record.v2.avsc). A record with no FF1 field is
# written in v1, so a deployment that never turns FF1 on publishes the bytes it always did,
# and readers need v2 only before the first field moves.
AES_ONLY_SCHEMA = 1
FPE_SCHEMA = 2
AES_GCM = "aes-gcm"


def fpe_tag(field: str) -> str:
    """The name of the field beside an encrypted field that says how FF1 encrypted it (v2)."""
    return f"{field}_fpe"


def field_modes() -> dict[str, DigitFormat | None]:
    """The configured mode of each encrypted field, by field name: None for AES-GCM, else the
    FF1 digit format (settings.FIELD_ENCRYPTION_MODES, "cards.card_number=ff1-luhn-last4")."""
    return _field_modes(tuple(sorted(settings.FIELD_ENCRYPTION_MODES.items())))


@functools.cache
def _field_modes(configured: tuple[tuple[str, str], ...]) -> dict[str, DigitFormat | None]:
    paths = {f"{list_name}.{field}": field for list_name, field, _ in SENSITIVE}
    out: dict[str, DigitFormat | None] = dict.fromkeys(paths.values())
    for path, mode in configured:
        if path not in paths:
            raise ValueError(f"FIELD_ENCRYPTION_MODES: {path!r} is not an encrypted field ({', '.join(paths)})")
        out[paths[path]] = None if mode == AES_GCM else digit_format(mode)
    return out


def field_key_id(item: Mapping, field: str, *, legacy: bool = False) -> str:
    """The key id an encrypted field names, in either mode, without decrypting it.
    Raises CryptoError when the field is neither an AES-GCM ciphertext nor a tagged FF1 one."""
    value, tag = item[field], item.get(fpe_tag(field))
    if isinstance(value, str):
        if not tag:
            raise CryptoError(f"{field}: digits without a format-preserving key id (not encrypted)")
        return tag["key_id"]
    if tag:
        raise CryptoError(f"{field}: AES-GCM bytes with a format-preserving key id")
    return key_id_of(value, legacy=legacy)


def record_key_ids(record: Mapping) -> list[str]:
    """The key id of each encrypted field of a decoded (not decrypted) record, in field order."""
    return [field_key_id(item, field) for item, field, _, _ in _places(record)]


def record_encode(plain: Mapping, *, ring: Keyring | None = None) -> EncodedRecord:
    """Encrypt the sensitive fields with the current key, each in its configured mode, then Avro-encode.

    Each ciphertext is bound to the record key, its path and its item's identity
    (core.crypto.field_binding): AES-GCM's associated data, FF1's tweak. It decrypts in
    this place only (AES-GCM) or to other digits (FF1). Raises RecordError for a number
    its FF1 format cannot take (fewer than six digits to encrypt)."""
    ring = ring or keyring()
    modes = field_modes()
    sealed = {**plain, **{name: [dict(item) for item in plain[name]] for name, _, _ in SENSITIVE}}
    fields = list(_bindings(record_key(plain["client_id"]), sealed))
    # One pass per record, not per field: the key's part of the bindings made once, the nonces drawn at once.
    gcm = [(item, field, binding) for item, field, _, binding in fields if modes[field] is None]
    fpe = [(item, field, path, binding) for item, field, path, binding in fields if modes[field] is not None]
    for (item, field, _), blob in zip(
        gcm, ring.encrypt_many([(str(item[field]).encode(), binding) for item, field, binding in gcm]), strict=True
    ):
        item[field] = blob
        item[fpe_tag(field)] = None
    if fpe:
        try:
            out = ring.fpe_encrypt_many(
                [(str(item[field]), binding, modes[field], path) for item, field, path, binding in fpe]  # type: ignore[misc]
            )
        except CryptoError as exc:
            raise RecordError(str(exc)) from None
        for (item, field, _, _), (digits, fmt) in zip(fpe, out, strict=True):
            item[field] = digits
            item[fpe_tag(field)] = {"key_id": ring.current, "format": fmt}
    version = FPE_SCHEMA if fpe else AES_ONLY_SCHEMA
    return EncodedRecord(avro.encode(sealed, version=version), version, ring.current)


class Reencrypted(NamedTuple):
    value: bytes
    replaced: set[str]  # key ids (or modes) of the fields it rewrote; empty: `value` itself
    schema_version: int  # a field moved to FF1 moves a v1 record to v2


def record_reencrypt(
    value: bytes, *, schema_version: int, key: str | None = None, ring: Keyring | None = None
) -> Reencrypted:
    """The value with every sensitive field under the current key, in its configured mode (and
    AES-GCM format 2), and the key ids of the fields it replaced (none: `value` itself, already current).

    Everything else stays as it was (the clear fields; the schema version unless a field
    moves to FF1 in a v1 record); a field becomes the same bytes each time (AES-GCM:
    core.crypto Keyring.reencrypt; FF1 is deterministic). `key` as in record_decode.
    Raises avro.AvroError / crypto.CryptoError like record_decode."""
    ring = ring or keyring()
    modes = field_modes()
    record = avro.decode(value, version=schema_version)
    replaced: set[str] = set()
    for item, field, path, binding in list(_bindings(key or record_key(record["client_id"]), record)):
        wanted, tag = modes[field], item.get(fpe_tag(field))
        if _field_current(ring, item, field, path, binding, wanted):
            continue
        replaced.add(field_key_id(item, field, legacy=True))
        if tag:
            clear = ring.fpe_decrypt(
                item[field], key_id=tag["key_id"], format_name=tag["format"], field=path, binding=binding
            )
        else:
            clear = ring.decrypt(item[field], field=path, binding=binding, legacy=True).decode()
        if wanted is None:
            # The nonce from the old ciphertext and the binding: one old value, one new one.
            old = item[field] if isinstance(item[field], bytes) else _fpe_bytes(item[field], tag)
            item[field] = ring.reencrypt_clear(clear.encode(), old=old, binding=binding)
            item[fpe_tag(field)] = None
        else:
            [(digits, fmt)] = ring.fpe_encrypt_many([(clear, binding, wanted, path)])
            item[field] = digits
            item[fpe_tag(field)] = {"key_id": ring.current, "format": fmt}
    if not replaced:
        return Reencrypted(value, replaced, schema_version)
    has_fpe = any(item.get(fpe_tag(field)) for item, field, _, _ in _places(record))
    version = max(schema_version, FPE_SCHEMA) if has_fpe else schema_version
    if version != schema_version:
        for item, field, _, _ in _places(record):
            item.setdefault(fpe_tag(field), None)
    return Reencrypted(avro.encode(record, version=version), replaced, version)


def _field_current(
    ring: Keyring, item: dict, field: str, path: str, binding: bytes, wanted: DigitFormat | None
) -> bool:
    """Whether a field is under the current key in the configured mode (and format)."""
    value, tag = item[field], item.get(fpe_tag(field))
    if wanted is None:
        return not tag and isinstance(value, bytes) and ring.is_current(value)
    if not tag or not isinstance(value, str) or tag["key_id"] != ring.current:
        return False
    if tag["format"] == wanted.name:
        return True
    # The non-Luhn twin is current for a number that fails the Luhn check itself.
    if wanted.luhn and tag["format"] == wanted.plain_twin.name:
        clear = ring.fpe_decrypt(value, key_id=tag["key_id"], format_name=tag["format"], field=path, binding=binding)
        return format_for(wanted, clear) is not wanted
    return False


def _fpe_bytes(digits: str, tag: Mapping) -> bytes:
    """An FF1 field as bytes, to derive a re-encryption nonce from (moving it to AES-GCM)."""
    return f"{tag['key_id']}:{tag['format']}:{digits}".encode()


def record_decode(
    value: bytes, *, schema_version: int, decrypt: bool, key: str | None = None, legacy: bool = False
) -> dict:
    """Decode a message value; with decrypt=True the sensitive fields become digit strings.

    `key` is the record key the value was found under (the cache or message key); a
    ciphertext made for another record does not decrypt under it (AES-GCM), or decrypts to
    other digits (FF1). None: the key the record's own client_id gives. legacy=True also
    reads format-1 ciphertexts (re-encryption). Decrypted, a record has the plain shape
    (no `<field>_fpe` tags), whichever mode each field used. Without decrypt they stay
    ciphertexts, bytes or digits beside their tag (use record_mask for display).
    Raises avro.AvroError for a value that does not decode and
    crypto.CryptoError for a field that does not decrypt.
    """
    record = avro.decode(value, version=schema_version)
    if decrypt:
        ring = keyring()
        fpe: list[tuple[dict, str, tuple[str, str, str, str, bytes]]] = []
        for item, field, path, binding in _bindings(key or record_key(record["client_id"]), record):
            tag = item.pop(fpe_tag(field), None)
            if tag:
                if not isinstance(item[field], str):
                    raise CryptoError(f"{path}: AES-GCM bytes with a format-preserving key id")
                fpe.append((item, field, (item[field], tag["key_id"], tag["format"], path, binding)))
            elif isinstance(item[field], str):
                raise CryptoError(f"{path}: digits without a format-preserving key id (not encrypted)")
            else:
                item[field] = ring.decrypt(item[field], field=path, binding=binding, legacy=legacy).decode()
        if fpe:  # a record's FF1 fields in step (core.fpe)
            for (item, field, _), clear in zip(fpe, ring.fpe_decrypt_many([f[2] for f in fpe]), strict=True):
                item[field] = clear
    return record


def mask_card(last4: str) -> str:
    return f"**** **** **** {last4}"


def mask_account(last4: str) -> str:
    return f"****{last4}"


def record_mask(record: Mapping) -> dict:
    """A decoded record fit for callers without payload permission: numbers masked."""
    masked = dict(record)
    masked["accounts"] = [
        {**item, "account_number": mask_account(item["account_last4"])} for item in record["accounts"]
    ]
    masked["cards"] = [{**item, "card_number": mask_card(item["card_last4"])} for item in record["cards"]]
    return masked
