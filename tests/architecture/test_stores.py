"""One reader and one writer per store (docs/architecture.md): the Redis cache's layout
(core.redis_keys) is read by core.cache_records and written by kafkacache.cache only.

No other module of the product, bench/ or scripts/ imports the layout, builds a kc:rec:,
kc:dv: or kc:load: name, names a record field in a hash command, or runs a script that
does. tests/ may check raw Redis state where that is what a test proves (tests/cache_state.py
damages it behind the writer's back)."""

import ast
import re
from pathlib import Path

from core.redis_keys import (
    HEAD_BYTES,
    LEGACY_FIELDS,
    LOAD_PREFIX,
    REC_PREFIX,
    RECORD_MAGIC,
    TOMBSTONE_PREFIX,
    record_pack,
    record_unpack,
)

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("config", "core", "recon", "kafkacache", "replay", "monitoring", "dashboard", "bench", "scripts")
LAYOUT = "core/redis_keys.py"
READER = "core/cache_records.py"
WRITER = "kafkacache/cache.py"
ALLOWED = {LAYOUT, READER, WRITER}

PREFIXES = (REC_PREFIX, TOMBSTONE_PREFIX, LOAD_PREFIX)
HASH_COMMANDS = {"hget", "hmget", "hset", "hsetnx", "hdel", "hexists", "hincrby", "hincrbyfloat", "hmset", "hstrlen"}
RAW_COMMANDS = {"execute_command", "pack_command"}  # a command spelled out: ("HSET", name, field, ...)
LUA_FIELD = re.compile("['\"](" + "|".join(LEGACY_FIELDS) + ")['\"]")


def _files():
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path.relative_to(ROOT).as_posix(), path


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _literals(node: ast.AST) -> list[str]:
    """The string constants in a call's arguments: positional, in lists and tuples, a mapping's keys."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [text for item in node.elts for text in _literals(item)]
    if isinstance(node, ast.Dict):
        return [text for key in node.keys if key is not None for text in _literals(key)]
    if isinstance(node, ast.Starred):
        return _literals(node.value)
    return []


def _imports_layout(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.module == "core.redis_keys" or (
            node.module == "core" and any(alias.name == "redis_keys" for alias in node.names)
        )
    return isinstance(node, ast.Import) and any(alias.name == "core.redis_keys" for alias in node.names)


def _violations(relative: str, path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = _docstrings(tree)
    out = []
    for node in ast.walk(tree):
        where = f"{relative}:{getattr(node, 'lineno', '?')}"
        if _imports_layout(node):
            out.append(f"{where}: imports the layout (read through core.cache_records, write through {WRITER})")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if node.value.startswith(PREFIXES):
                out.append(f"{where}: builds a cache key name by hand: {node.value[:40]!r}")
            elif "redis.call" in node.value and LUA_FIELD.search(node.value):
                out.append(f"{where}: a script naming a record field")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            arguments = [*node.args, *(k.value for k in node.keywords)]
            texts = [text for argument in arguments for text in _literals(argument)]
            raw_hash = name in RAW_COMMANDS and any(t.lower() in HASH_COMMANDS for t in texts)
            if (name in HASH_COMMANDS or raw_hash) and set(texts) & set(LEGACY_FIELDS):
                out.append(f"{where}: names a record field in {name}(): {sorted(set(texts) & set(LEGACY_FIELDS))}")
    return out


def test_only_the_reader_and_the_writer_know_the_cache_layout():
    found = [v for relative, path in _files() if relative not in ALLOWED for v in _violations(relative, path)]
    assert found == []


def test_the_check_sees_each_kind_of_hand_made_access(tmp_path):
    """The rule above is only as good as what it notices: each way of going around the reader."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from core.redis_keys import rec_key\n"
        'client.hmget(name, ["sv", "u"])\n'
        'pipe.hset(name, mapping={"p": value})\n'
        'client.get(f"kc:dv:{{{key}}}")\n'
        'client.smembers("kc:load:" + key)\n'
        "hiredis.pack_command(('HSET', name, 'tp', topic))\n"
        "SCRIPT = \"redis.call('HGET', KEYS[1], 'rn')\"\n"
        "from core import redis_keys\n"
        'client.hgetall("kc:metrics:hist:x")\n'  # another store's hash: fine
    )
    found = _violations("sample.py", sample)
    assert sorted(int(v.split(":")[1]) for v in found) == [1, 2, 3, 4, 5, 6, 7, 8], found


def test_the_writer_and_the_layout_agree_on_the_packed_record():
    """The writer's scripts read a record's head as the layout packs it, and name no hash
    field but those of the layout before (read until rewritten): the layout's documentation
    cannot drift from the writes."""
    text = (ROOT / WRITER).read_text()
    tree = ast.parse(text)
    scripts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and "redis.call" in str(n.value)]
    named: set[str] = set()
    for script in scripts:
        for _command, arguments in re.findall(r"redis\.p?call\('(H[A-Z]+)', KEYS\[[^\]]+\],?([^)]*)\)", script):
            named |= set(re.findall(r"'([a-z]+)'", arguments))
    assert named <= set(LEGACY_FIELDS), named - set(LEGACY_FIELDS)
    assert f"'GETRANGE', key, 0, {HEAD_BYTES - 1})" in text
    assert f"string.sub(head, 1, 2) == '{RECORD_MAGIC.decode()}'" in text
    assert f"string.sub(head, 3, {HEAD_BYTES})" in text
    packed = record_pack(b"a|b", "u-1", 2, 1765000000000, 2**53 - 1, "bank.cache.bulk", "blake2b:00", "ff")
    assert packed[:HEAD_BYTES] == RECORD_MAGIC + b"9007199254740991"
    assert tuple(record_unpack(packed)) == (
        b"a|b",
        "u-1",
        2,
        1765000000000,
        2**53 - 1,
        "bank.cache.bulk",
        "blake2b:00",
        "ff",
    )
    assert tuple(record_unpack(b"hand-written")) == (b"hand-written", "", 0, 0, 0, "", "", "")
