"""Builders for the bad-input tests: a good message, its headers changed, values sealed by hand."""

from core import avro
from core.records import SENSITIVE, record_encode, record_from_document
from kafkacache.messages import message_build
from tests.documents import DOC


def good_message(client_id: int, **overrides):
    """A valid change message of DOC as client `client_id` (event "add" unless `event=` says
    otherwise; other keywords go to message_build, e.g. `problems=[]` for a sealable one)."""
    encoded = record_encode(record_from_document({**DOC, "client_id": client_id}))
    return message_build(
        key=f"client:{client_id}",
        event=overrides.pop("event", "add"),
        value=encoded.value,
        source="test",
        schema_version=encoded.schema_version,
        hash_algorithm="blake2b",
        key_id=encoded.key_id,
        **overrides,
    )


def headers_replaced(message, **changes) -> list[tuple[str, bytes]]:
    """The message's headers with some replaced (None removes one)."""
    out = dict(message.headers)
    for name, value in changes.items():
        out[name.replace("_", "-")] = value
    return [(k, v) for k, v in out.items() if v is not None]


def plain_and_sealed(client_id: int) -> tuple[dict, dict]:
    """DOC as client `client_id`: the record in clear, and as the Avro value holds it (sensitive fields sealed)."""
    plain = record_from_document({**DOC, "client_id": client_id})
    sealed = avro.decode(record_encode(plain).value, version=1)
    return plain, sealed


def sealed_with(client_id: int, seal) -> bytes:
    """A value whose sensitive fields were sealed by `seal(clear_bytes, field)`."""
    plain, sealed = plain_and_sealed(client_id)
    for list_name, field, _ in SENSITIVE:
        for item, clear in zip(sealed[list_name], plain[list_name], strict=True):
            item[field] = seal(str(clear[field]).encode(), field)
    return avro.encode(sealed, version=1)
