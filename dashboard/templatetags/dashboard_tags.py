from django import template
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from dashboard import wording
from dashboard.charts import duration_words
from dashboard.plotly_assets import GLOBAL_STYLE_ID, plotly_styles
from replay.selectors import replays_awaiting

register = template.Library()


@register.filter
def thousands(value) -> str:
    """12345 -> '12,345' (without turning on django.contrib.humanize for one filter)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "" if value is None else str(value)


@register.filter
def hexbytes(value) -> str:
    """A BinaryField (memoryview/bytes) as hex."""
    return bytes(value).hex() if value is not None else ""


@register.filter
def percent(part, whole) -> str:
    try:
        return f"{100 * int(part) / int(whole):.0f}%" if int(whole) else "-"
    except (TypeError, ValueError):
        return "-"


@register.filter
def minus(value, other) -> int | str:
    try:
        return int(value) - int(other)
    except (TypeError, ValueError):
        return ""


@register.filter
def millis(value) -> str:
    """A UTC time to the millisecond ('2026-11-25 10:00:00.123'): ledger times need more than seconds."""
    if value is None:
        return ""
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


@register.simple_tag
def plotly_stylesheet() -> SafeString:
    """plotly's CSS as a linked stylesheet, under the ids that make plotly.js skip its inline <style>."""
    link = format_html(
        '<link rel="stylesheet" id="{}" class="no-inline-styles" href="{}">',
        GLOBAL_STYLE_ID,
        reverse("dashboard:plotly-css"),
    )
    markers = format_html_join("", '<meta id="{}">', ((style_id,) for style_id in plotly_styles()[1]))
    return link + markers


@register.filter
def duration(seconds) -> str:
    """A bucket's length in words: 300 -> "5 min"."""
    try:
        return duration_words(int(seconds))
    except (TypeError, ValueError):
        return ""


@register.filter
def error_words(value) -> str:
    return wording.error_words(str(value or ""))


@register.filter
def reason(finding) -> str:
    return wording.finding_reason(finding.category, finding.detail)


@register.filter
def tone(outcome) -> str:
    return wording.outcome_tone(str(outcome or ""))


@register.filter
def age(at) -> str:
    return wording.age(at)


@register.filter
def category_label(finding) -> str:
    """The category as people say it; a cache finding names its problem (an absent key does not "differ")."""
    return wording.category_label(finding.category, finding.get_category_display(), finding.detail)


@register.filter
def target_items(target) -> list:
    return wording.target_items(target or {})


@register.simple_tag(takes_context=True)
def approvals_waiting(context) -> int:
    """How many requests wait for this user's approval (the header's count): one COUNT query."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    return replays_awaiting(user).count()
