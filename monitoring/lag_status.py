"""Lag that judges itself: Burrow's rules over a sliding window of offset samples, no fixed thresholds.

A pure function of one partition's window (oldest first) of (committed offset,
end offset, lag) samples, after LinkedIn's Burrow (its "consumer status" rules):

1. the group never committed on the partition and there is something to read: STOPPED;
   nothing left to read now: OK;
2. the committed offset went back between two samples: REWIND;
3. the lag was zero at some point in the window: OK (the consumer caught up);
4. the committed offset did not move across the window while lag > 0: STALLED when
   the group has members (it polls but commits nothing), STOPPED when it has none;
5. the offset moves but the lag never shrank and ended higher: WARNING (falling behind);
6. otherwise OK.

UNKNOWN when there is nothing recent to judge (no samples, or the sampler stopped).
A topic's status is the worst of its partitions' (RANK).
"""

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import NamedTuple

OK, WARNING, STALLED, STOPPED, REWIND, UNKNOWN = "ok", "warning", "stalled", "stopped", "rewind", "unknown"
STATUSES = (OK, WARNING, STALLED, STOPPED, REWIND, UNKNOWN)
RANK = {UNKNOWN: -1, OK: 0, WARNING: 1, REWIND: 2, STALLED: 3, STOPPED: 4}
NOT_OK = (WARNING, STALLED, STOPPED, REWIND)


class Sample(NamedTuple):
    at: dt.datetime
    committed: int  # negative: never committed
    end: int
    lag: int


class Judgement(NamedTuple):
    status: str
    reason: str
    lag: int | None = None
    samples: int = 0


def lag_evaluate(
    samples: Sequence[Sample], *, active: bool | None = None, now: dt.datetime | None = None, stale_after=None
) -> Judgement:
    """Judge one partition's window (oldest first). `active`: the group has members (None: not known).

    With `now` and `stale_after` (a timedelta), a window whose newest sample is older is UNKNOWN."""
    if not samples:
        return Judgement(UNKNOWN, "no samples yet")
    last = samples[-1]
    n = len(samples)
    if now is not None and stale_after is not None and now - last.at > stale_after:
        return Judgement(UNKNOWN, f"no sample since {last.at:%Y-%m-%d %H:%M:%S}", last.lag, n)
    if last.committed < 0:
        if last.lag > 0:
            return Judgement(STOPPED, "the group never committed on this partition", last.lag, n)
        return Judgement(OK, "nothing to read", last.lag, n)
    if last.lag == 0:
        return Judgement(OK, "caught up", 0, n)
    for before, after in itertools.pairwise(samples):
        if before.committed >= 0 and after.committed < before.committed:
            return Judgement(
                REWIND, f"committed offset went back from {before.committed} to {after.committed}", last.lag, n
            )
    if any(s.lag == 0 for s in samples):
        return Judgement(OK, "caught up within the window", last.lag, n)
    if n < 2:
        return Judgement(OK, "too few samples to judge a trend", last.lag, n)
    first = samples[0]
    if first.committed == last.committed:
        if active is False:
            return Judgement(STOPPED, f"no commits over the window and no members; lag {last.lag}", last.lag, n)
        return Judgement(STALLED, f"committed offset stuck at {last.committed} while lag is {last.lag}", last.lag, n)
    lags = [s.lag for s in samples]
    if all(b >= a for a, b in itertools.pairwise(lags)) and last.lag > first.lag:
        return Judgement(WARNING, f"lag grew from {first.lag} to {last.lag} while committing", last.lag, n)
    return Judgement(OK, "committing and keeping up", last.lag, n)


def worst(statuses: Sequence[str]) -> str:
    return max(statuses, key=lambda s: RANK[s], default=UNKNOWN)
