"""Where a running replay writes its items, counts and heartbeat, a batch at a time."""

from collections import Counter
from collections.abc import Sequence

from django.db import transaction
from django.db.models import F

from core.jobs import job_beat
from recon.models import Replay, ReplayItem


class Progress:
    """Where a running replay writes its items, counts and heartbeat, a batch at a time."""

    def __init__(self, replay: Replay):
        self.replay = replay
        self.counts: Counter = Counter()

    def total(self, n: int) -> None:
        job_beat(Replay, self.replay.pk, total=n)

    def record(self, items: Sequence[ReplayItem]) -> None:
        if not items:
            return
        for item in items:
            item.replay = self.replay
            item.key = (item.key or "")[:512]
            item.detail = (item.detail or "")[:2000]
        self.counts.update(str(i.outcome) for i in items)
        with transaction.atomic():
            ReplayItem.objects.bulk_create(items, batch_size=1000)
            job_beat(Replay, self.replay.pk, processed=F("processed") + len(items), outcome=dict(self.counts))
