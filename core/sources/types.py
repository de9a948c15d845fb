"""What every source gives: items (a record or why not, with its version) in batches that
say where reading resumes, its split into load parts, and for the SQL source its changes."""

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol


class SourceError(ValueError):
    """A source that does not exist or cannot be read."""


class SourceItem(NamedTuple):
    key: str
    record: dict | None  # the plain record; None when `error` says why not
    error: str = ""
    where: str = ""  # "client 42", "line 7": where to look in the source
    version: int | None = None  # the record's source version; None: the source has none (unordered)


class SourceBatch(NamedTuple):
    items: list[SourceItem]
    position: int  # where reading resumes after this batch: its last client key (SQL), its last line (files)


class PartRange(NamedTuple):
    """A load part's share of the source: the keys in (key_after, key_last], None unbounded."""

    key_after: int | None
    key_last: int | None
    total: int  # the source's count of the range when it was split


class Change(NamedTuple):
    change_id: int
    client_id: int
    old_client_id: int | None
    op: str  # add | update | delete
    version: int  # the client's version after the change; a delete's own version


class Source(Protocol):
    name: str

    def count(self, *, client_ids: Sequence[int] | None = None) -> int: ...

    def batches(self, *, client_ids: Sequence[int] | None = None, batch_size: int) -> Iterator[list[SourceItem]]: ...

    def parts(self, *, client_ids: Sequence[int] | None = None, size: int) -> list[PartRange]:
        """The source split into ranges of about `size` clients, in key order, covering every key."""
        ...

    def read(
        self,
        *,
        batch_size: int,
        client_ids: Sequence[int] | None = None,
        key_after: int | None = None,
        key_last: int | None = None,
        after: int | None = None,
    ) -> Iterator[SourceBatch]:
        """The batches of a range (of the chosen clients in it), from the position `after` on."""
        ...
