"""The ways a replay gets messages where they belong (called by replay.services.runs.replay_run),
one module each: audit, kafka, source, dead_letters, and restore, the way back from any bad
version (their docstrings say how).
"""

from collections.abc import Callable

from recon.models import Replay
from replay.services.progress import Progress
from replay.ways.audit import replay_audit
from replay.ways.dead_letters import replay_dead_letters
from replay.ways.kafka import replay_kafka
from replay.ways.restore import replay_restore
from replay.ways.source import replay_source

WAYS: dict[str, Callable[[Replay, Progress], None]] = {
    Replay.Way.AUDIT: replay_audit,
    Replay.Way.KAFKA: replay_kafka,
    Replay.Way.SOURCE: replay_source,
    Replay.Way.DEAD_LETTER: replay_dead_letters,
    Replay.Way.RESTORE: replay_restore,
}
