"""Avro (de)serialization of message values: schemaless fastavro, schemas from .avsc files.

The schema version travels in the `schema` header, not in the value, so a value
is plain Avro binary (the smallest form: a message stays under 10 KB).
Schemas are versioned files, core/schemas/<name>.v<N>.avsc; a published
version is never edited, a change is a new file. Parsed schemas are cached: the
reader was measured at ~66k/s only with the parse reused. Values
are written by a writer compiled from each schema once (core.avro_writer: the same
bytes as fastavro's, in under half its time), fastavro taking whatever it does not.
"""

import functools
import io
import json
import re
from pathlib import Path
from typing import Any

import fastavro

from core.avro_writer import Unsupported, compile_writer

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
RECORD_SCHEMA = "client_record"
_FILE_PATTERN = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.avsc$")


class AvroError(ValueError):
    """A value that does not decode or encode with its schema."""


class UnknownSchemaVersion(AvroError):
    pass


@functools.cache
def schema_versions(name: str = RECORD_SCHEMA) -> dict[int, Path]:
    found = {}
    for path in SCHEMA_DIR.glob("*.avsc"):
        match = _FILE_PATTERN.match(path.name)
        if match and match["name"] == name:
            found[int(match["version"])] = path
    if not found:
        raise RuntimeError(f"no Avro schema files for {name!r} in {SCHEMA_DIR}")
    return found


def current_version(name: str = RECORD_SCHEMA) -> int:
    return max(schema_versions(name))


@functools.cache
def parsed_schema(version: int, name: str = RECORD_SCHEMA) -> Any:
    path = schema_versions(name).get(version)
    if path is None:
        raise UnknownSchemaVersion(f"unknown schema version {version} of {name!r}")
    return fastavro.parse_schema(json.loads(path.read_text()))


@functools.cache
def _writer(version: int, name: str):
    """The compiled writer of a schema version (core.avro_writer), None where it has a type
    the compiler does not cover."""
    try:
        return compile_writer(parsed_schema(version, name))
    except Unsupported:
        return None


def encode(record: dict, *, version: int | None = None, name: str = RECORD_SCHEMA) -> bytes:
    version = version or current_version(name)
    writer = _writer(version, name)
    if writer is not None:
        try:
            return writer(record)
        except Exception:  # noqa: S110 - a value it does not take: fastavro writes it or says why not
            pass
    schema = parsed_schema(version, name)
    out = io.BytesIO()
    try:
        fastavro.schemaless_writer(out, schema, record)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:  # a number past a C long
        raise AvroError(f"record does not fit schema {name} v{version}: {exc}") from exc
    return out.getvalue()


def decode(value: bytes, *, version: int, name: str = RECORD_SCHEMA) -> dict:
    """Decode a value written with schema `version`; trailing bytes count as malformed."""
    schema = parsed_schema(version, name)
    stream = io.BytesIO(value)
    try:
        record = fastavro.schemaless_reader(stream, schema, None)
    except Exception as exc:  # garbage can fail anywhere inside fastavro; all of it is "malformed"
        raise AvroError(f"value does not decode with schema {name} v{version}: {exc!r}") from exc
    if stream.tell() != len(value):
        raise AvroError(f"value has {len(value) - stream.tell()} bytes left over after schema {name} v{version}")
    if not isinstance(record, dict):
        raise AvroError(f"value decodes to {type(record).__name__}, not a record")
    return record
