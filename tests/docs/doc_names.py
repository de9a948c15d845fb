"""What README.md and docs/*.md name, and whether it exists: the helpers of tests/docs/test_names.py.

A name is found in backticks (`config/settings.py`, `make run`, `REDIS_URL`,
`recon.ledger.published_record`, `GET /api/loads/{id}`), in a command line of a
fenced block, or as a link. Each is judged by its shape:

- a repo path (its first part is a top-level entry of the repository; `<x>`, `{x}`
  and `*` match anything; a git-ignored place such as `var/` is what the scripts
  write, never checked), or a bare `*.py` name that some file has;
- a command: `make <target>`, `manage.py <command>`, `bin/<script> <sub-command>`,
  and the paths its arguments name;
- a setting (UPPER_CASE with an underscore): an environment variable the code reads
  (the register of config.env and the shell scripts), a Django setting, or a
  constant of the project's code;
- a dotted name whose first part is a project package: importable (module, then
  attributes), a model label (`recon.Load`), a file's name (`kafkacache.target`), or a
  string the code names (a Celery task name, a system check id, an audit action);
- `Class.attribute` of a class the project defines (`FeedConsumer.process_batch`,
  `Topic.method_*`): the class (or a subclass of that name) has it;
- a URL path whose first part is one of the site's: it resolves, or some route of the
  urlconf fits it (`<x>`, `{x}` and `...` stand for any part; a trailing `/` is a prefix);
- a relative link: the file exists (and its `#anchor` is a heading there).
"""

import ast
import fnmatch
import importlib
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.urls import Resolver404, resolve

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "core", "kafkacache", "recon", "replay", "monitoring", "dashboard")
SETTING = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9*]+)+$|^[A-Z][A-Z0-9]*_\*$")
CLASS_ATTR = re.compile(r"^([A-Z][A-Za-z0-9]+)\.([a-z_][\w*]*)$")
DOTTED = re.compile(r"^[a-z_][a-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+(?::[A-Za-z_]\w*)?$")
URL = re.compile(r"^(?:(?:GET|POST|PUT|PATCH|DELETE)(?:/(?:GET|POST|PUT|PATCH|DELETE))*\s+)?(/[^\s`]*)$")
PLACEHOLDER = re.compile(r"<[^>]*>|\{[^}]*\}")
FENCE = re.compile(r"^\s*```(\w*)")
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
COMMAND_HEADS = ("make", "manage.py", "python", "python3", ".venv/bin/python", ".venv/bin/pytest", "sudo")
SHELL_FENCES = ("", "sh", "bash", "shell", "console")


@dataclass(frozen=True)
class Mention:
    file: str
    line: int
    text: str
    kind: str  # "code" (inline backticks), "command" (a fenced command line), "link"

    def where(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


def doc_files() -> list[Path]:
    """README.md when there is one, and every page under docs/ (at any depth: pages by audience)."""
    readme = [ROOT / "README.md"] if (ROOT / "README.md").is_file() else []
    return [*readme, *sorted((ROOT / "docs").rglob("*.md"))]


def mentions(path: Path) -> Iterator[Mention]:
    name = str(path.relative_to(ROOT))
    fence: str | None = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        opened = FENCE.match(line)
        if opened:
            fence = None if fence is not None else opened.group(1)
            continue
        if fence is not None:
            if fence in SHELL_FENCES:
                yield from _command_lines(name, number, line)
            continue
        for match in INLINE.finditer(line):
            yield Mention(name, number, match.group(1).strip(), "code")
        for match in LINK.finditer(INLINE.sub("", line)):
            yield Mention(name, number, match.group(1) or match.group(2), "link")


def _command_lines(name: str, number: int, line: str) -> Iterator[Mention]:
    """The commands of a line of a shell block (a diagram's lines start with no command)."""
    text = line.split(" #", 1)[0].strip().removeprefix("$ ")
    for part in re.split(r"\s*(?:&&|\|\||;)\s*", text):
        head = part.split(" ", 1)[0]
        if head.startswith(("bin/", "./bin/")) or head in COMMAND_HEADS or re.match(r"^[A-Z][A-Z0-9_]*=", part):
            yield Mention(name, number, part, "command")


# --- what exists -------------------------------------------------------------------------


def _ignored_prefixes() -> tuple[str, ...]:
    """The anchored, literal entries of .gitignore (`/var`, `/bench/results/`): runtime output."""
    out = []
    for raw in (ROOT / ".gitignore").read_text().splitlines():
        entry = raw.strip()
        if entry.startswith("/") and not any(c in entry for c in "*?["):
            out.append(entry.strip("/"))
    return tuple(out)


IGNORED = _ignored_prefixes()
TOP_LEVEL = {p.name for p in ROOT.iterdir() if p.name not in (".git",)}


def named_anywhere(name: str) -> bool:
    """A file or folder called `name` somewhere in the repository. Never under .git, .venv or
    the ignored runtime output (var/: the running services' data, whose files come and go)."""
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder).relative_to(ROOT).as_posix()
        dirs[:] = [
            d for d in dirs if d not in (".git", ".venv") and not f"{here}/{d}".removeprefix("./").startswith(IGNORED)
        ]
        if name in dirs or name in files:
            return True
    return False


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


def script_subcommands(script: Path) -> set[str]:
    """The words a script's `case` dispatch answers (`up`, `redis-up`, `up --secure`)."""
    text = script.read_text()
    if "case " not in text:
        return set()
    return {m.split(" ")[0] for m in re.findall(r'(?:^|;;)\s*"?([a-z][a-z0-9-]*(?: --[a-z-]+)?)"?\)', text, re.M)}


def environment_reads(folders: tuple[str, ...]) -> set[str]:
    """Names read with os.environ.get / os.environ[...] / os.getenv in the Python files of `folders`."""
    names: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            names |= set(re.findall(r"(?:environ\.get|getenv)\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']", text))
            names |= set(re.findall(r"environ\[\s*[\"']([A-Z][A-Z0-9_]*)[\"']\s*\]", text))
    return names


def python_constants() -> set[str]:
    """UPPER_CASE names the project's code assigns (module level and class level)."""
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                targets = node.targets if isinstance(node, ast.Assign) else []
                if isinstance(node, ast.AnnAssign):
                    targets = [node.target]
                names |= {t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper()}
    return names


def class_attributes() -> dict[str, set[str]]:
    """{class name: the names its body defines} for every class of the project's code."""
    out: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.ClassDef):
                    continue
                names = out.setdefault(node.name, set())
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                        names.add(item.name)
                    elif isinstance(item, ast.Assign):
                        names |= {t.id for t in item.targets if isinstance(t, ast.Name)}
                    elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        names.add(item.target.id)
    return out


def class_attribute_problem(text: str, classes: dict[str, set[str]]) -> str | None:
    name, attribute = CLASS_ATTR.match(text).groups()  # type: ignore[union-attr]
    if name not in classes:
        return None  # a library's class (AppConfig.ready)
    return None if fnmatch.filter(classes[name], attribute) else f"{name} defines no {attribute}"


def source_text() -> str:
    return "\n".join(p.read_text() for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def repo_path_exists(text: str) -> bool:
    pattern = PLACEHOLDER.sub("*", text.rstrip("/"))
    if any(c in pattern for c in "*?["):
        return any(True for _ in ROOT.glob(pattern))
    return (ROOT / pattern).exists()


def is_repo_path(text: str) -> bool:
    first = text.split("/", 1)[0]
    return "/" in text and first in TOP_LEVEL and not text.startswith(IGNORED) and " " not in text


def path_problem(text: str) -> str | None:
    """A repo path (or `path::test_name`) that does not exist; None when it does or is no repo path."""
    path, _, test = text.partition("::")
    path = path.rstrip(".,;:")
    if not is_repo_path(path):
        if re.fullmatch(r"[\w-]+\.py", path) and not named_anywhere(path):
            return f"no file named {path} in the repository"
        return None
    if not repo_path_exists(path):
        return f"no such path {path}"
    if test and f"def {test}(" not in (ROOT / path).read_text():
        return f"{path} has no {test}"
    return None


def dotted_problem(text: str, *, model_labels: set[str], source: str) -> str | None:
    if text.split(".", 1)[0] not in PACKAGES:
        return None
    if text in model_labels or f'"{text}"' in source or named_anywhere(text):
        return None
    module_part, _, attr = text.partition(":")
    parts = module_part.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in [*parts[cut:], *([attr] if attr else [])]:
            if not hasattr(obj, name):
                return f"{'.'.join(parts[:cut])} has no {name}"
            obj = getattr(obj, name)
        return None
    return f"no module {parts[0]}"


def url_problem(path: str, url_roots: set[str], walked: list[str]) -> str | None:
    """A site path (`/api/loads/{id}`) no route fits; paths outside the site are skipped.

    `walked`: every route of the urlconf with its parameters filled (tests/url_walk.py)."""
    clean = path.split("?", 1)[0].rstrip(".,;:")
    first = clean.lstrip("/").split("/", 1)[0]
    if clean != "/" and first not in url_roots:
        return None
    for sample in ("1", "6b2f3c2e-0d7e-4f0e-9d3a-2f4f2f9b0c11"):
        try:
            resolve(PLACEHOLDER.sub(sample, clean))
            return None
        except Resolver404:
            pass
    parts = re.split(r"<[^>]*>|\{[^}]*\}|\.\.\.", clean.lstrip("/"))
    pattern = re.compile("[^/]+".join(re.escape(p) for p in parts) + ("" if clean.endswith("/") else "/?"))
    if any(pattern.fullmatch(w) or (clean.endswith("/") and pattern.match(w)) for w in walked):
        return None
    return f"no URL {clean}"


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a markdown file (a repeated heading's are `-1`, `-2`, ...;
    a `#` line in a fenced block is no heading)."""
    out: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced and (m := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)):
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def link_problem(source: Path, target: str) -> str | None:
    if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
        return None
    file, _, anchor = target.partition("#")
    path = (source.parent / file).resolve() if file else source
    if not path.exists():
        return f"no such file {file}"
    if anchor and path.suffix == ".md" and anchor not in anchors(path):
        return f"{file or source.name} has no heading #{anchor}"
    return None


def command_words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()
