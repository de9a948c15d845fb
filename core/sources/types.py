"""What every source gives: items (a record or why not, with its version), and for the SQL
source its changes."""

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
