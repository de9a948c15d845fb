"""docs/architecture.md names only what exists: every file or folder path, every dotted module
name of the project, and every function or class it names right after a file (`a/b.py` `name`).
A file moved or a function renamed without the map redrawn fails here."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
TOP = ("config", "core", "recon", "kafkacache", "replay", "monitoring", "dashboard", "templates", "tests", "docs")
PACKAGES = TOP[:7]

PATH = re.compile(r"(?<![\w./:-])((?:" + "|".join(TOP) + r")/[\w./-]*)")
DOTTED = re.compile(r"`((?:" + "|".join(PACKAGES) + r")(?:\.\w+)+)`")
NAMED_AFTER_FILE = re.compile(r"`([\w/]+\.py)`\s+`(\w+)`")


def _defined(path: Path, name: str) -> bool:
    """A function, class or module-level name of `path` (a method counts too)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return True
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
    return False


def _module_or_attribute(dotted: str) -> bool:
    """A module (file or package), or a name defined in the longest module prefix of `dotted`."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:cut])
        module = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if module.is_file():
            rest = parts[cut:]
            return not rest or (len(rest) == 1 and _defined(module, rest[0]))
    return False


def test_every_path_in_the_architecture_doc_exists():
    text = DOC.read_text()
    missing = sorted({p.rstrip(".,;:)") for p in PATH.findall(text) if not (ROOT / p.rstrip(".,;:)")).exists()})
    assert missing == []


def test_every_module_the_architecture_doc_names_exists():
    text = DOC.read_text()
    missing = sorted({name for name in DOTTED.findall(text) if not _module_or_attribute(name)})
    assert missing == []


def test_every_function_named_after_a_file_is_in_that_file():
    text = DOC.read_text()
    missing = sorted(
        {f"{path} {name}" for path, name in NAMED_AFTER_FILE.findall(text) if not _defined(ROOT / path, name)}
    )
    assert missing == []
