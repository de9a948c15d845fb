"""What the list reads share: a half-open time range on one column."""

import datetime as dt

from django.db.models import QuerySet


def in_range(qs: QuerySet, field: str, since: dt.datetime | None, until: dt.datetime | None) -> QuerySet:
    """Rows with since <= field < until; an open end is not filtered."""
    if since is not None:
        qs = qs.filter(**{f"{field}__gte": since})
    if until is not None:
        qs = qs.filter(**{f"{field}__lt": until})
    return qs
