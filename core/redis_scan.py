"""SCAN in pages on a standalone Redis or every master of a Redis Cluster, resumable.

A cluster's SCAN cursor belongs to one node: the walk goes master by master (in a
stable order, by node name), and its position says which node and where on it.
"""

from collections.abc import Iterator

import redis

from core.clients import is_cluster


def scan_pages(
    client: redis.Redis, *, match: str, count: int, position: str = "", kind: str | None = None
) -> Iterator[tuple[str, list]]:
    """Each page of names matching `match`, with the position to resume after it
    ("" after the last page). `position` "" starts from the beginning; `kind` keeps only
    keys of that Redis type (SCAN's TYPE filter, applied by the server).

    Standalone positions are SCAN's cursor ("1234"); cluster ones "<master index>:<cursor>".
    A resume after a fail-over changed the masters may see keys twice (SCAN may anyway)."""
    if not is_cluster(client):
        cursor = int(position or 0)
        while True:
            cursor, names = client.scan(cursor, match=match, count=count, _type=kind)
            yield (str(cursor) if cursor else ""), names
            if not cursor:
                return
    masters = sorted(client.get_primaries(), key=lambda node: node.name)  # type: ignore[attr-defined]
    first, _, at = position.partition(":") if ":" in position else ("0", "", "0")
    start, cursor = int(first), int(at or 0)
    for index in range(start, len(masters)):
        node = client.get_redis_connection(masters[index])  # type: ignore[attr-defined]
        while True:
            cursor, names = node.scan(cursor, match=match, count=count, _type=kind)
            if cursor:
                yield f"{index}:{cursor}", names
                continue
            yield (f"{index + 1}:0" if index + 1 < len(masters) else ""), names
            break
