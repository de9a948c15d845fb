"""The dependency rule's second half (docs/architecture.md): no import circles between
files, and an import written inside a function only where that function's docstring
says why. The layers themselves are .importlinter's contract, checked by
`lint-imports` in `make test`."""

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


def _is_project(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _app_config_ready(tree: ast.Module, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """`ready` of an AppConfig subclass: Django loads the models only then."""
    if function.name != "ready":
        return False
    return any(
        function in node.body and any(ast.unparse(base).endswith("AppConfig") for base in node.bases)
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    )


def _inline_imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, text, explained) of every import statement inside a function of `path`;
    explained: the function is AppConfig.ready, or its docstring says why it imports there."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = (ast.get_docstring(node) or "").lower()
            explained = _app_config_ready(tree, node) or "import" in docstring
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom) and not (
                    isinstance(inner, ast.ImportFrom) and inner.level
                ):
                    found.append((inner.lineno, lines[inner.lineno - 1], explained))
    return found


def test_an_import_inside_a_function_is_explained_by_its_docstring():
    """Django's AppConfig.ready, or a function whose docstring says why it imports there
    (a module that must not load before Django is set up, a native library loaded only
    when configured). Never to break a circle: there are none (below)."""
    unexplained = [
        f"{path.relative_to(ROOT)}:{line}: {text.strip()}"
        for path in _source_files()
        for line, text, explained in _inline_imports(path)
        if not explained
    ]
    assert unexplained == []


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    modules = sorted(m for m in graph.modules if _is_project(m))
    edges = {m: sorted(n for n in graph.find_modules_directly_imported_by(m) if _is_project(n)) for m in modules}
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
    """Every import counts, at module level or inside a function, commented or not."""
    assert _cycles(grimp.build_graph(*PACKAGES, cache_dir=None)) == []


def test_the_checks_catch_a_circle_and_an_unexplained_import(tmp_path):
    """The two checks above can fail: a planted circle is found, and an import in a
    function without a reason is told from one in AppConfig.ready or with its reason."""
    graph = grimp.ImportGraph()
    graph.add_import(importer="recon.services.runs", imported="recon.tasks")
    graph.add_import(importer="recon.tasks", imported="recon.services.runs")
    graph.add_import(importer="recon.tasks", imported="core.jobs")
    assert _cycles(graph) == [["recon.services.runs", "recon.tasks"]]

    planted = tmp_path / "planted.py"
    planted.write_text(
        "from django.apps import AppConfig\n"
        "class RecordConfig(AppConfig):\n"
        "    def ready(self):\n"
        "        from recon import grants\n"
        "def service():\n"
        '    """Queues its task."""\n'
        "    from recon.tasks import run_execute_task  # a comment is not a reason any more\n"
        "def hook():\n"
        '    """Imports Django here: the file is read before Django is set up."""\n'
        "    import django\n"
    )
    assert sorted((line, explained) for line, _, explained in _inline_imports(planted)) == [
        (4, True),
        (7, False),
        (10, True),
    ]


def _layered(module: str, layers: list[str]) -> bool:
    return any(module == layer or module.startswith(layer + ".") for layer in layers)


def test_every_module_is_in_a_layer_of_the_contract():
    """A module outside every layer is a module lint-imports never checks (config.middleware was one)."""
    text = (ROOT / ".importlinter").read_text()
    block = text.split("layers =", 1)[1]
    layers = [
        name.strip()
        for line in block.splitlines()
        if line.startswith("    ") and not line.strip().startswith(";")
        for name in line.replace("|", ":").split(":")
    ]
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    outside = sorted(m for m in graph.modules if m not in PACKAGES and not _layered(m, layers))
    assert outside == []
    assert "ignore_imports" not in text  # no exception to the layers
