"""Short pieces (STYLE.md): a function over MAX_LINES lines says why in its docstring,
and a comment or docstring names only modules and functions that exist.

Over the product, bench/ and scripts/ (not tests/, not migrations). A long function is
split into well-named helpers where that makes it clearer; where it does not (a table of
demo data, one pipelined loop), its docstring has a sentence starting "Long because".
The inline-import rule is beside the circle check in test_imports.py."""

import ast
import importlib
import importlib.util
import io
import os
import re
import tokenize
from pathlib import Path

import django
import pytest
from celery import current_app
from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "core", "recon", "kafkacache", "replay", "monitoring", "dashboard")
SCANNED = (*PACKAGES, "bench", "scripts")
MAX_LINES = 60
REASON = "Long because"


@pytest.fixture(scope="module", autouse=True)
def _django_set_up():
    """The names resolve against the project's modules, which need Django set up (also under -p no:django)."""
    if not apps.ready:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
        django.setup()


def _files():
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path.relative_to(ROOT).as_posix(), path


def _functions(tree: ast.AST, prefix: str = ""):
    """(qualified name, node) of every function, methods as Class.method."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, node
            yield from _functions(node, prefix + node.name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, prefix + node.name + ".")
        else:
            yield from _functions(node, prefix)


def _long(source: str) -> list[tuple[str, int, bool]]:
    """(name, lines, explained) of every function longer than MAX_LINES."""
    found = []
    for name, node in _functions(ast.parse(source)):
        lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
        if lines > MAX_LINES:
            found.append((name, lines, REASON in " ".join((ast.get_docstring(node) or "").split())))
    return found


def _long_functions() -> dict[str, tuple[int, bool]]:
    return {
        f"{rel}:{name}": (lines, explained)
        for rel, path in _files()
        for name, lines, explained in _long(path.read_text())
    }


def test_a_long_function_says_why_in_its_docstring():
    unexplained = sorted(
        f"{where} ({lines} lines)" for where, (lines, explained) in _long_functions().items() if not explained
    )
    assert unexplained == []


NAME = re.compile(r"(?<![\w.])(?:" + "|".join(PACKAGES) + r")(?:\.[A-Za-z_]\w*)+")


def _prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found.append((token.start[0], token.string))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                found.append((first.lineno, first.value.value))
    return found


def _django_names() -> set[str]:
    """`app.Model` and `app.codename` of every permission: how Django spells them."""
    names = set()
    for model in apps.get_models():
        meta = model._meta
        names.add(f"{meta.app_label}.{model.__name__}")
        codenames = [f"{action}_{meta.model_name}" for action in meta.default_permissions]
        names.update(f"{meta.app_label}.{codename}" for codename in codenames)
        names.update(f"{meta.app_label}.{codename}" for codename, _ in meta.permissions)
    return names


def _resolves(name: str, known: set[str]) -> bool:
    """A module, or an attribute of one (a class, a function, a constant), a Celery task's
    name, or a name in `known`."""
    if name in known or name in current_app.tasks:
        return True
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def _stale_names(source: str, known: set[str]) -> list[tuple[int, str]]:
    return [(line, name) for line, text in _prose(source) for name in NAME.findall(text) if not _resolves(name, known)]


def test_comments_name_code_that_exists():
    """A comment or docstring naming `app.module.function` names one that exists: a module
    that moved leaves no comment pointing at its old place. Not checked: a name spelled
    with django. before it (django.core.…): that one is Django's."""
    for module in ("config.celery", *(f"{package}.tasks" for package in PACKAGES)):
        if importlib.util.find_spec(module):
            importlib.import_module(module)  # registers its tasks' names
    known = _django_names()
    stale = [f"{rel}:{line}: {name}" for rel, path in _files() for line, name in _stale_names(path.read_text(), known)]
    assert stale == []


def test_the_checks_catch_a_long_function_and_a_stale_name():
    long_body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    method_body = "\n".join(f"    {line}" for line in long_body.splitlines())
    planted = (
        f"def short():\n    return 1\n"
        f"def silent():\n{long_body}\n"
        f'def said():\n    """Long because one table of demo rows reads best in one place."""\n{long_body}\n'
        f"class Leg:\n    def run(self):\n{method_body}\n"
    )
    assert _long(planted) == [
        ("silent", MAX_LINES + 1, False),
        ("said", MAX_LINES + 2, True),
        ("Leg.run", MAX_LINES + 1, False),
    ]

    prose = (
        '"""Calls recon.services.runs.replay_verify and kafkacache.loads.load_run."""\n'
        "# queued as recon.tasks.run_execute; see core.jobs\n"
        "value = 'recon.nothing_here'  # strings in code are not prose\n"
    )
    assert _stale_names(prose, {"recon.tasks.run_execute"}) == [(1, "kafkacache.loads.load_run")]
