"""plotly.js's own CSS, served as a stylesheet so the CSP needs no inline <style>.

plotly.js adds its rules at run time in <style> elements (its global rules, and a
bundled map stylesheet), which a CSP without 'unsafe-inline' blocks. It skips that
when the page already has an element with the style's id (the global one marked
`no-inline-styles`), so the overview links this stylesheet under those ids and
plotly draws with the same rules. The rules are read from the plotly package
itself (the same copy views.plotly_js serves): an upgrade brings its own rules.
"""

import functools
import re
from pathlib import Path

import plotly

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
GLOBAL_STYLE_ID = "plotly.js-style-global"
_STRING = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
_GLOBAL_RULES = re.compile(r"=(\{\"X,X div\":.*?\});for\(\w+ in \w+\)", re.S)
_RULE = re.compile(rf"({_STRING})\s*:\s*({_STRING})")
_BUNDLED = re.compile(
    r"document\.getElementById\(\"([0-9a-f]{64})\"\)\)\{var \w+=document\.createElement\(\"style\"\);"
    rf"\w+\.id=\"\1\",\w+\.textContent=({_STRING})"
)


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


@functools.cache
def plotly_styles() -> tuple[str, tuple[str, ...]]:
    """(plotly's CSS, the ids of the bundled style elements it would otherwise inject)."""
    source = PLOTLY_JS.read_text()
    parts = []
    found = _GLOBAL_RULES.search(source)
    if found:
        for selector, rule in _RULE.findall(found.group(1)):
            name = _unquote(selector).removeprefix(",")
            name = name.replace("X", ".js-plotly-plot .plotly").replace("Y", ".plotly-notifier")
            parts.append(f"{name}{{{_unquote(rule)}}}")
    ids = []
    for style_id, text in _BUNDLED.findall(source):
        ids.append(style_id)
        parts.append(_unquote(text))
    return "\n".join(parts) + "\n", tuple(ids)
