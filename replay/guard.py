"""The replay guard: how often each message was replayed already, and the refusal of a
request naming one replayed REPLAY_MAX_PER_MESSAGE times. Read by the request, the dry
run and the ways (which skip such messages); no task, so none of them sits in a circle."""

import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db.models import Count

from config.errors import AppError
from recon.models import Replay, ReplayItem, Topic
from recon.services.actions import operator_action_record

Way = Replay.Way

# Item outcomes that count as a replay of the message (skips and failures did not replay it).
_REPLAYED = [o for o in ReplayItem.Outcome.values if o not in (ReplayItem.Outcome.SKIPPED, ReplayItem.Outcome.FAILED)]


def replays_per_message(uuids: Iterable[uuid.UUID | str | None]) -> dict[uuid.UUID, int]:
    """How many times each message was replayed already (served by replayitem_original)."""
    wanted = list({uuid.UUID(str(u)) for u in uuids if u})
    if not wanted:
        return {}
    rows = (
        ReplayItem.objects.filter(original_uuid__in=wanted, outcome__in=_REPLAYED)
        .values("original_uuid")
        .annotate(n=Count("replay_id", distinct=True))
        .values_list("original_uuid", "n")
    )
    return {u: n for u, n in rows if u is not None}


def replay_guard_check(*, topic: Topic, uuids: Iterable[uuid.UUID | str], user, way: str) -> None:
    """Refuse a request naming a message replayed REPLAY_MAX_PER_MESSAGE times already (recorded)."""
    limit = settings.REPLAY_MAX_PER_MESSAGE
    over = sorted(str(u) for u, n in replays_per_message(uuids).items() if n >= limit)
    if not over:
        return
    operator_action_record(
        user=user,
        action="reprocess" if way == Way.DEAD_LETTER else "replay",
        topic=topic,
        detail={"over_limit": over[:20], "limit": limit},
        outcome="refused: replay guard",
    )
    raise AppError(
        f"{len(over)} message(s) were replayed {limit} times already (REPLAY_MAX_PER_MESSAGE): {', '.join(over[:5])}",
        code="replay_limit",
        details={"uuids": over[:100], "limit": limit},
        status_code=409,
    )
