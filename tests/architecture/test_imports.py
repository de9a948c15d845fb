"""The dependency rule's second half (docs/architecture.md): no import circles between
files, and an import written inside a function says why on its line. The layers
themselves are .importlinter's contract, checked by `lint-imports` in `make test`."""

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "core", "recon", "kafkacache", "replay", "monitoring", "dashboard")


def _source_files():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _inline_imports(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every import statement inside a function of `path`."""
    lines = path.read_text().splitlines()
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom) and not (
                    isinstance(inner, ast.ImportFrom) and inner.level
                ):
                    found.append((inner.lineno, lines[inner.end_lineno - 1]))
    return found


def _is_project(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def test_an_import_inside_a_function_says_why():
    """Allowed where a real cycle needs one (a service queuing its own task) or where
    Django wants it (AppConfig.ready); each says so in a comment on its line."""
    unexplained = []
    for path in _source_files():
        for line, text in _inline_imports(path):
            module = text.split("import")[0].replace("from", "").strip() or text.split()[1]
            if _is_project(module) and "#" not in text:
                unexplained.append(f"{path.relative_to(ROOT)}:{line}: {text.strip()}")
    assert unexplained == []


def _cycles(graph: grimp.ImportGraph, cut: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), without the `cut` edges."""
    modules = sorted(m for m in graph.modules if _is_project(m))
    edges = {
        m: sorted(n for n in graph.find_modules_directly_imported_by(m) if _is_project(n) and (m, n) not in cut)
        for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return groups


def test_no_import_circles_between_files():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    # The explained imports inside functions are the only cycle breakers there are.
    cut = set()
    for importer in graph.modules:
        if not _is_project(importer):
            continue
        for imported in graph.find_modules_directly_imported_by(importer):
            details = graph.get_import_details(importer=importer, imported=imported)
            path = ROOT / (importer.replace(".", "/") + ".py")
            if not path.exists():
                path = ROOT / importer.replace(".", "/") / "__init__.py"
            inline = {line for line, text in _inline_imports(path) if "#" in text}
            if details and all(d["line_number"] in inline for d in details):
                cut.add((importer, imported))
    assert _cycles(graph, cut) == []
