"""The Quix Streams peer: quixstreams.sinks.community.redis.RedisSink on the bench topic.

Runs in its own virtualenv (bench/quix/requirements.txt), started and stopped by
bench/peer_quix.py. Application and sink at their defaults (commit_interval 5 s,
at-least-once, one MULTI/EXEC per partition at each checkpoint) except what the
messages need: values are Avro bytes, so they are read and written as bytes (the
defaults are JSON), keys get a prefix so the bench can count and delete them,
and reading starts at the beginning of the topic. One hook per message notes
when the first arrived (the timer's start), then does nothing.

Tuned for throughput (--commit-interval, --count): another checkpoint interval, and
Application.run(count=N), which stops at the N-th message and forces the final
checkpoint there instead of waiting for the interval to run out.
"""

import argparse
import os
import time
from pathlib import Path

from quixstreams import Application
from quixstreams.sinks.community.redis import RedisSink


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--redis-host", required=True)
    parser.add_argument("--redis-port", type=int, required=True)
    parser.add_argument("--redis-db", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--first", required=True, help="where to note the first message's time and CPU")
    parser.add_argument("--last", help="where to note the time and CPU when run(count=...) returns")
    parser.add_argument("--commit-interval", type=float, help="seconds between checkpoints (default: Quix's, 5)")
    parser.add_argument("--count", type=int, default=0, help="stop at this many messages, final checkpoint forced")
    args = parser.parse_args()

    tuned = {} if args.commit_interval is None else {"commit_interval": args.commit_interval}
    app = Application(
        broker_address=args.broker,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel="WARNING",
        **tuned,
    )
    topic = app.topic(args.topic, key_deserializer="bytes", value_deserializer="bytes")
    prefix = args.prefix.encode()
    sink = RedisSink(
        host=args.redis_host,
        port=args.redis_port,
        db=args.redis_db,
        value_serializer=lambda value: value,
        key_serializer=lambda key, _value: prefix + key,
    )
    first = Path(args.first)
    seen = [False]

    def mark(_value) -> None:
        if not seen[0]:
            seen[0] = True
            first.write_text(f"{time.time()!r} {sum(os.times()[:2])!r}")  # wall clock, own CPU

    sdf = app.dataframe(topic)
    sdf = sdf.update(mark)
    sdf.sink(sink)
    if args.count:
        app.run(count=args.count, collect=False)
        if args.last:
            Path(args.last).write_text(f"{time.time()!r} {sum(os.times()[:2])!r}")
    else:
        app.run()


if __name__ == "__main__":
    main()
