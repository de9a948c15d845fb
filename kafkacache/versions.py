"""The source's version bound: what no version the feed takes without proof may exceed.

Every record version comes from one sequence of the system of record (core.sources:
the SQL source's `version_sequence`, or its clock for timestamp versions), so a
version above the sequence's current value is one the source cannot have given.
Two places take versions nobody sealed, and both hold them to this bound:

- the consumer, for a message of a topic that accepts unsealed producers
  (kafkacache.batch_plan): `SourceBound` reads the bound at most once every
  SOURCE_BOUND_SECONDS, and again (at most once a second) when a message needs a
  higher one, never per message;
- the change API (kafkacache.services.change_feed.change_publish): a given version above the
  bound is refused; a change without one gets a version drawn from the same
  sequence, so API changes, source changes, replays and deletes follow one order.
"""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError
from sqlalchemy.exc import SQLAlchemyError

from config.errors import AppError
from core.sources import SourceError, SqlSource

logger = logging.getLogger(__name__)

_RETRY_SECONDS = 1.0  # a message above the cached bound reads it again, at most this often


def source_bound_read() -> int | None:
    """The SQL source's bound now; None when it has none or cannot be read (logged)."""
    try:
        return SqlSource().version_bound()
    except (SourceError, DatabaseError, SQLAlchemyError) as exc:
        logger.warning("source version bound not read: %s: %s", type(exc).__name__, exc)
        return None


class SourceBound:
    """The bound, cached: called with the version a message needs, answers the bound."""

    def __init__(self, read: Callable[[], int | None] = source_bound_read, *, seconds: float | None = None):
        self.read = read
        self.seconds = settings.SOURCE_BOUND_SECONDS if seconds is None else seconds
        self.value: int | None = None
        self.read_at = -1e18
        self.reads = 0

    def __call__(self, wanted: int) -> int | None:
        age = time.monotonic() - self.read_at
        if age >= self.seconds or (self.value is not None and wanted > self.value and age >= _RETRY_SECONDS):
            self.refresh()
        return self.value

    def refresh(self) -> None:
        self.value = self.read()
        self.read_at = time.monotonic()
        self.reads += 1


def change_version(version: int | None) -> int:
    """The version a change of the API carries: the caller's, if within the source's bound
    (else a 400 naming the bound), or, without one, a version drawn from the source's
    sequence (newer than every one it gave so far)."""
    source = SqlSource()
    try:
        if version is None:
            return source.version_draw()
        bound = source.version_bound()
    except (SourceError, DatabaseError, SQLAlchemyError) as exc:
        raise AppError(
            f"the source gives no version bound to order this change by ({exc}); nothing was published",
            code="no_source_bound",
            status_code=503,
        ) from None
    if version > bound:
        raise AppError(
            f"version {version} is beyond the source's bound {bound}: no record of the source is that new",
            code="version_beyond_bound",
            details={"version": version, "bound": bound},
        )
    return version
