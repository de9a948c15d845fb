"""Keyset pagination for pages over big tables: "older than this row", never OFFSET.

OFFSET n reads and throws away n rows, and a page count needs COUNT(*); on a
table of millions both grow with the table. A keyset page reads `size + 1` rows
from an index whatever page it is, and the cursor (the last row's time and id)
survives rows arriving while someone pages.
"""

import base64
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet

COUNT_CAP = 1000  # pages say "1,000+" rather than count further


@dataclass
class Page:
    rows: list[Any]
    next_cursor: str = ""
    is_first: bool = True
    count: int = 0  # capped at COUNT_CAP + 1
    extra: dict = field(default_factory=dict)

    @property
    def count_label(self) -> str:
        return f"{COUNT_CAP:,}+" if self.count > COUNT_CAP else f"{self.count:,}"


def cursor_encode(at: dt.datetime, pk: Any) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{pk}".encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[dt.datetime, str] | None:
    """None for anything that is not a cursor this module made (the first page is shown)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, pk = raw.split("|", 1)
        moment = dt.datetime.fromisoformat(at)
    except (ValueError, UnicodeDecodeError):
        return None
    if moment.tzinfo is None or not pk or len(pk) > 64:
        return None
    return moment, pk


def keyset_page(
    qs: QuerySet, *, time_field: str, cursor: str = "", size: int = 50, count: bool = True, descending: bool = True
) -> Page:
    """Rows newest first (or oldest first), by (time_field, pk); `size` rows after the cursor."""
    sign, after = ("-", "lt") if descending else ("", "gt")
    ordered = qs.order_by(f"{sign}{time_field}", f"{sign}pk")
    total = ordered.order_by()[: COUNT_CAP + 1].count() if count else 0
    position = cursor_decode(cursor) if cursor else None
    if position is not None:
        at, pk = position
        try:
            pk_value = qs.model._meta.pk.to_python(pk)
        except ValidationError:  # a forged cursor is simply ignored
            position = None
        else:
            ordered = ordered.filter(
                Q(**{f"{time_field}__{after}": at}) | Q(**{time_field: at, f"pk__{after}": pk_value})
            )
    rows = list(ordered[: size + 1])
    next_cursor = ""
    if len(rows) > size:
        rows = rows[:size]
        last: Model = rows[-1]
        next_cursor = cursor_encode(getattr(last, time_field), last.pk)
    return Page(rows=rows, next_cursor=next_cursor, is_first=position is None, count=total)
