"""Every file path, command, setting, project name, URL and link that README.md and docs/*.md
name exists (how each is recognised: tests/docs/doc_names.py). One test per kind, each
listing every stale mention with its file and line."""

import fnmatch
import re

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import get_commands
from django.urls import get_resolver

from scripts.docs_generate import shell_reads
from tests.docs import doc_names as d
from tests.url_walk import all_paths

# UPPER_CASE words in the docs that are neither our settings nor our constants, and why.
NOT_OURS = {
    "HTTP_X_FORWARDED_PROTO": "the request header as Django's META names it (DJANGO_SECURE_PROXY_SSL_HEADER's value)",
    "REBALANCE_IN_PROGRESS": "a Kafka error code",
    "NOT_ENOUGH_REPLICAS": "a Kafka error code",
    "IBM_DB_HOME": "the IBM DB2 driver's own variable (where its client library is)",
}
# URL paths in the docs that are another product's, and whose.
NOT_OUR_URLS = {"/api/v2/alerts": "Alertmanager's API, the shape of the Alertmanager webhook"}


@pytest.fixture(scope="module")
def all_mentions() -> list[d.Mention]:
    return [m for path in d.doc_files() for m in d.mentions(path)]


@pytest.fixture(scope="module")
def known_settings(register) -> set[str]:
    return (
        {s["name"] for s in register["settings"]}
        | set(shell_reads())
        | {name for name in dir(settings) if name.isupper()}
        | d.python_constants()
        | d.environment_reads(("tests", "bench", "scripts"))  # the tests' and benches' own knobs
        | set(NOT_OURS)
    )


def _setting_problem(name: str, known: set[str]) -> str | None:
    if "*" in name:
        return None if fnmatch.filter(known, name) else f"no setting matches {name}"
    return None if name in known else f"{name} is not a setting the code reads, a Django setting or a constant"


def _words(m: d.Mention) -> list[str]:
    words = d.command_words(m.text)
    return words[1:] if words[:1] == ["sudo"] else words


def _is_command(m: d.Mention) -> bool:
    words = _words(m)
    if m.kind == "command":
        return True
    if len(words) < 2:
        return False
    return words[0] in ("make", "manage.py") or words[0].startswith(("bin/", ".venv/bin/")) or words[1] == "manage.py"


def _command_problems(m: d.Mention, *, targets: set[str], commands: set[str], known: set[str]) -> list[str]:
    words = _words(m)
    problems = []
    while words and re.match(r"^[A-Z][A-Z0-9_]*=", words[0]):
        problems.append(_setting_problem(words.pop(0).split("=", 1)[0], known))
    if words[:1] in (["python"], ["python3"], [".venv/bin/python"]) and words[1:2] == ["manage.py"]:
        words = words[1:]
    head, args = (words[0], words[1:]) if words else ("", [])
    plain = [a for a in args if a != "|" and not a.startswith(("-", "<", "[")) and "=" not in a]
    if head == "make":
        problems += [f"no make target {t}" for t in plain[:1] if t not in targets]
    elif head == "manage.py" and plain:
        problems.append(None if plain[0] in commands else f"no management command {plain[0]}")
    elif head.startswith(("bin/", "./bin/")):
        script = d.ROOT / head.removeprefix("./")
        if not script.is_file():
            problems.append(f"no script {head}")
        elif subs := d.script_subcommands(script):
            # `bin/services up | down | status`: the word after the script and its alternatives
            chosen = [args[i] for i in range(0, len(args), 2) if i == 0 or args[i - 1] == "|"]
            problems += [f"{head} has no sub-command {w}" for w in chosen if not w.startswith("-") and w not in subs]
            text = script.read_text()
            problems += [f"{head} knows no {a}" for a in args if a.startswith("--") and a not in text]
    problems += [d.path_problem(w) for w in args if d.is_repo_path(w.split("::")[0])]
    return [p for p in problems if p]


def classify(m: d.Mention) -> str | None:
    """Which kind of name `m` is: path, command, setting, dotted, url, link, or None (not a name we check)."""
    if m.kind == "link":
        return "link"
    if _is_command(m):
        return "command"
    name = m.text.split("=", 1)[0]
    if d.SETTING.match(name) and (name == m.text or "=" in m.text):
        return "setting"
    if d.URL.match(m.text):
        return "url"
    if (d.DOTTED.match(m.text) and m.text.split(".", 1)[0] in d.PACKAGES) or d.CLASS_ATTR.match(m.text):
        return "dotted"
    words = m.text.split()
    if any(d.is_repo_path(w.split("::")[0]) for w in words) or re.fullmatch(r"[\w-]+\.py", m.text):
        return "path"
    return None


def judge(m: d.Mention, kind: str, c: dict) -> str | None:
    """What is wrong with mention `m` of `kind`; None when what it names exists."""
    if kind == "link":
        return d.link_problem(d.ROOT / m.file, m.text)
    if kind == "command":
        return "; ".join(_command_problems(m, **c["commands"])) or None
    if kind == "setting":
        return _setting_problem(m.text.split("=", 1)[0], c["known"])
    if kind == "url":
        path = d.URL.match(m.text).group(1)
        return None if path in NOT_OUR_URLS else d.url_problem(path, c["url_roots"], c["walked"])
    if kind == "dotted" and d.CLASS_ATTR.match(m.text):
        return d.class_attribute_problem(m.text, c["classes"])
    if kind == "dotted":
        return d.dotted_problem(m.text, **c["dotted"])
    return "; ".join(filter(None, (d.path_problem(w) for w in m.text.split()))) or None


@pytest.fixture(scope="module")
def context(known_settings) -> dict:
    url_roots = {str(p.pattern).lstrip("^").split("/", 1)[0].rstrip("$") for p in get_resolver().url_patterns}
    return {
        "known": known_settings,
        "url_roots": url_roots - {""},
        "walked": all_paths(),
        "classes": d.class_attributes(),
        "commands": {"targets": d.make_targets(), "commands": set(get_commands()), "known": known_settings},
        "dotted": {"model_labels": {m._meta.label for m in apps.get_models()}, "source": d.source_text()},
    }


KINDS = ["path", "command", "setting", "dotted", "url", "link"]


@pytest.mark.parametrize("kind", KINDS)
def test_what_the_docs_name_exists(kind, all_mentions, context):
    problems = [
        f"{m.where()}  <- {problem}"
        for m in all_mentions
        if classify(m) == kind and (problem := judge(m, kind, context))
    ]
    assert problems == [], f"{len(problems)} stale {kind} mention(s):\n" + "\n".join(problems)


def test_the_checker_recognises_each_kind_and_fails_a_wrong_name(all_mentions, context):
    """Today's docs name things of every kind (so each check has something to judge), and a
    wrong name of each kind is recognised as that kind and judged stale."""
    counts = {kind: sum(classify(m) == kind for m in all_mentions) for kind in KINDS}
    assert all(n >= 5 for n in counts.values()), counts
    wrong = {
        "config/nowhere.py": "path",
        "tests/kafkacache/test_seal.py::test_no_such_test": "path",
        "make no-such-target": "command",
        "manage.py no_such_command": "command",
        "bin/services sideways": "command",
        "NO_SUCH_SETTING": "setting",
        "recon.ledger.no_such_function": "dotted",
        "FeedConsumer.no_such_method": "dotted",
        "GET /api/no-such-endpoint/": "url",
    }
    # Judged as a line of docs/configuration.md (written by `make docs`, so always there),
    # whatever README.md and the other pages say today.
    page = "docs/configuration.md"
    for text, kind in wrong.items():
        m = d.Mention(page, 1, text, "code")
        assert (classify(m), bool(judge(m, kind, context))) == (kind, True), text
    for target in ("nowhere.md", "configuration.md#no-such-heading", "../no-such-dir/"):
        assert judge(d.Mention(page, 1, target, "link"), "link", context), target
    assert judge(d.Mention(page, 1, "../Makefile", "link"), "link", context) is None


def test_anchors_are_githubs(tmp_path):
    """A repeated heading's anchor gets -1, a `#` line in a fenced block is no heading."""
    page = tmp_path / "page.md"
    page.write_text("# Set-up: the `env` file\n\n## Notes\n\n```sh\n# not a heading\n```\n\n## Notes ##\n")
    assert d.anchors(page) == {"set-up-the-env-file", "notes", "notes-1"}
