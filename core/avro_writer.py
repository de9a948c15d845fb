"""A schema's Avro writer compiled to Python once (core.avro.encode): a bulk load encodes
every record of a source.

fastavro's schemaless_writer interprets the parsed schema for each value, field by field
(65-100 us for a 1 KB client record with six accounts and six cards on a 2-core bench
machine); straight-line code made from the schema once writes the same bytes in
35-40 us. The compiled writer covers what the record schemas use (records,
arrays, unions of null, string, bytes and records of plain fields, long, int,
boolean, string, bytes, timestamp-millis) and writes exactly what fastavro writes;
whatever it does not take (another type, a value of another Python type, a number
out of range) raises, and the caller hands the value to fastavro, which writes it or
says why not. tests/kafkacache/test_avro.py compares both writers.
"""

import datetime as dt
import itertools
from collections.abc import Callable, Mapping
from typing import Any

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_PLAIN = {"string", "bytes", "long", "int"}  # a record in a union: writable iff fastavro's validation takes it


class _Unwritten(Exception):
    """A value (or schema) the compiled writer does not take: fastavro writes it instead."""


class Unsupported(Exception):
    """A schema with a type the compiler does not know: it is written by fastavro alone."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# The zig-zag varint of 0..63: one byte each (lengths and small counts, the usual case).
_SMALL = tuple(bytes((2 * n,)) for n in range(64))


def _long(n: Any) -> bytes:
    if type(n) is not int and type(n) is not bool:
        raise _Unwritten
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise _Unwritten
    z = (n << 1) ^ (n >> 63)
    if z < 0x4000:  # amounts, days, ids below 8192: two bytes at most
        return bytes((z,)) if z < 0x80 else bytes(((z & 0x7F) | 0x80, z >> 7))
    if z < 0x200000:
        return bytes(((z & 0x7F) | 0x80, ((z >> 7) & 0x7F) | 0x80, z >> 14))
    return _varint(z)


def _int(n: Any) -> bytes:
    if type(n) is not int and type(n) is not bool:
        raise _Unwritten
    if not _INT_MIN <= n <= _INT_MAX:
        raise _Unwritten
    return _varint((n << 1) ^ (n >> 63))


def _millis(at: Any) -> int:
    if isinstance(at, dt.datetime):
        if at.tzinfo is None:  # fastavro reads a naive time as local time
            raise _Unwritten
        delta = at - _EPOCH
        return (delta.days * 86400 + delta.seconds) * 1000 + int(delta.microseconds / 1000)
    if type(at) is int:
        return at
    raise _Unwritten


class _Compiler:
    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named  # fastavro's parsed named types, by full name
        self.defaults: list[Any] = []
        self.lines: list[str] = []
        self.names = itertools.count()
        self.stack: list[str] = []  # records being written: a recursive schema is not compiled

    def var(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def resolve(self, schema: Any) -> Any:
        """A named type given by its name: its schema."""
        return self.named.get(schema, schema) if isinstance(schema, str) else schema

    def value(self, schema: Any, v: str, depth: int) -> None:
        """Lines appending the encoding of the value in variable `v`."""
        schema = self.resolve(schema)
        if isinstance(schema, list):
            return self.union(schema, v, depth)
        kind = schema if isinstance(schema, str) else schema.get("type")
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        if logical is not None:
            if (kind, logical) != ("long", "timestamp-millis"):
                raise Unsupported(f"logical type {logical}")
            self.emit(depth, f"append(_long(_millis({v})))")
        elif kind == "null":
            self.emit(depth, f"if {v} is not None: raise _Unwritten")
        elif kind == "boolean":
            self.emit(depth, f"append(b'\\x01' if {v} else b'\\x00')")
        elif kind == "long":
            self.emit(depth, f"append(_SMALL[{v}] if type({v}) is int and 0 <= {v} < 64 else _long({v}))")
        elif kind == "int":
            self.emit(depth, f"append(_SMALL[{v}] if type({v}) is int and 0 <= {v} < 64 else _int({v}))")
        elif kind in ("string", "bytes"):
            raw = self.var("b")
            if kind == "string":
                # only a str has .encode(): anything else raises, and fastavro says why
                self.emit(depth, f"{raw} = {v}.encode()")
            else:
                self.emit(depth, f"if type({v}) is not bytes: raise _Unwritten")
                raw = v
            n = self.var("n")
            self.emit(depth, f"{n} = len({raw})")
            self.emit(depth, f"append(_SMALL[{n}] if {n} < 64 else _long({n}))")
            self.emit(depth, f"append({raw})")
        elif kind == "array":
            n, item = self.var("n"), self.var("i")
            self.emit(depth, f"if type({v}) is not list and type({v}) is not tuple: raise _Unwritten")
            self.emit(depth, f"{n} = len({v})")
            self.emit(depth, f"if {n}:")
            self.emit(depth + 1, f"append(_SMALL[{n}] if {n} < 64 else _long({n}))")
            self.emit(depth + 1, f"for {item} in {v}:")
            self.value(schema["items"], item, depth + 2)
            self.emit(depth, "append(b'\\x00')")
        elif kind in ("record", "error"):
            self.record(schema, v, depth)
        else:
            raise Unsupported(f"type {kind}")

    def record(self, schema: dict, v: str, depth: int) -> None:
        if schema["name"] in self.stack:
            raise Unsupported(f"recursive record {schema['name']}")
        self.stack.append(schema["name"])
        self.emit(depth, f"if not isinstance({v}, _Mapping): raise _Unwritten")
        for field in schema["fields"]:
            name, ftype = field["name"], field["type"]
            fv = self.var("v")
            if "default" in field:
                self.emit(depth, f"{fv} = {v}.get({name!r}, _DEFAULTS[{self.default(field['default'])}])")
            elif isinstance(ftype, list) and "null" in ftype:
                self.emit(depth, f"{fv} = {v}.get({name!r})")
            else:
                self.emit(depth, f"{fv} = {v}[{name!r}]")
            self.value(ftype, fv, depth)
        self.stack.pop()

    def union(self, branches: list, v: str, depth: int) -> None:
        tests = []
        branches = [self.resolve(b) for b in branches]
        for index, branch in enumerate(branches):
            kind = branch if isinstance(branch, str) else branch.get("type")
            if isinstance(branch, dict) and branch.get("logicalType"):
                raise Unsupported("a logical type in a union")
            if kind == "null":
                test = f"{v} is None"
            elif kind == "string":
                test = f"type({v}) is str"
            elif kind == "bytes":
                test = f"type({v}) is bytes"
            elif kind == "record" and all(_plain(f["type"]) for f in branch["fields"]):
                if any(isinstance(b, dict) and b.get("type") == "record" for b in branches[index + 1 :]):
                    raise Unsupported("a union of two records")
                test = f"type({v}) is dict and '-type' not in {v}"
            else:
                raise Unsupported(f"a union with {kind}")
            tests.append((test, index, branch, kind))
        for position, (test, index, branch, kind) in enumerate(tests):
            self.emit(depth, f"{'if' if position == 0 else 'elif'} {test}:")
            self.emit(depth + 1, f"append({_SMALL[index]!r})")
            if kind != "null":
                self.value(branch, v, depth + 1)
        self.emit(depth, "else: raise _Unwritten")

    def default(self, value: Any) -> int:
        self.defaults.append(value)
        return len(self.defaults) - 1


def _plain(ftype: Any) -> bool:
    return isinstance(ftype, str) and ftype in _PLAIN


def compile_writer(schema: dict) -> Callable[[Mapping], bytes]:
    """The writer of a parsed record schema: value -> bytes, or _Unwritten. Raises
    Unsupported for a schema it does not cover."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise Unsupported("not a record")
    compiler = _Compiler(schema.get("__named_schemas") or {})
    compiler.emit(0, "def write(d):")
    compiler.emit(1, "out = []")
    compiler.emit(1, "append = out.append")
    compiler.record(schema, "d", 1)
    compiler.emit(1, "return b''.join(out)")
    namespace: dict[str, Any] = {
        "_SMALL": _SMALL,
        "_long": _long,
        "_int": _int,
        "_millis": _millis,
        "_Unwritten": _Unwritten,
        "_Mapping": Mapping,
        "_DEFAULTS": tuple(compiler.defaults),
    }
    exec(compile("\n".join(compiler.lines), f"<avro writer {schema['name']}>", "exec"), namespace)  # noqa: S102
    return namespace["write"]
