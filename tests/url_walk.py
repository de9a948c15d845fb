"""The site's URLs, walked from the urlconf (a page added tomorrow is walked too), with sample parameters.

OPEN_BY_DESIGN: the paths anyone may reach — /healthz and its per-role probes (load
balancers probe them; no details without login), the login pages and logout.
"""

import re

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

OPEN_BY_DESIGN = {"healthz", "healthz/queue/x", "healthz/x"}
OPEN_BY_DESIGN |= {"accounts/login/", "accounts/logout/", "admin/login/", "admin/logout/"}
# Fixed, not random: the test ids hold it, and pytest-xdist needs every worker to collect the same ids.
SAMPLE_UUID = "5a3c1e2f-0b7d-4c9e-8f61-2d4a6b8c0e13"


def _fill_route(route: str) -> str:
    def sample(match: re.Match) -> str:
        converter, name = match.group(1) or "str", match.group(2)
        return {"int": "1", "uuid": SAMPLE_UUID}.get(converter, "x" if "uuid" not in name else SAMPLE_UUID)

    return re.sub(r"<(?:(\w+):)?(\w+)>", sample, route)


def _fill_regex(regex: str) -> str:
    """'^findings/(?P<pk>[^/.]+)/$' -> 'findings/1/' (groups filled, anchors and escapes dropped)."""
    out, i = [], 0
    text = regex.lstrip("^").rstrip("$")
    while i < len(text):
        if text.startswith("(?P<", i):
            name = text[i + 4 : text.index(">", i)]
            depth, j = 0, i
            while True:
                depth += {"(": 1, ")": -1}.get(text[j], 0) if text[j - 1 : j] != "\\" else 0
                j += 1
                if depth == 0:
                    break
            out.append(SAMPLE_UUID if "uuid" in name else ("json" if name == "format" else "1"))
            i = j
        elif text[i] == "\\":
            out.append(text[i + 1])
            i += 2
        elif text[i] in "?*+":
            i += 1  # an optional trailing slash and the like: keep the character before, drop the quantifier
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _walk(patterns, prefix: str = ""):
    for p in patterns:
        pattern = p.pattern
        if isinstance(pattern, RoutePattern):
            part = _fill_route(str(pattern))
        elif isinstance(pattern, RegexPattern):
            part = _fill_regex(pattern.regex.pattern)
        else:  # pragma: no cover - Django has only these two
            raise AssertionError(f"unknown pattern {pattern!r}")
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + part)
        elif isinstance(p, URLPattern):
            yield prefix + part


def all_paths() -> list[str]:
    """Every path of the urlconf, its parameters filled with samples."""
    return sorted(set(_walk(get_resolver().url_patterns)))
