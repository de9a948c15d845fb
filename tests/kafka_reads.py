"""Reading back what landed on a Kafka topic."""

import time
import uuid

from core.clients import make_consumer
from kafkacache.messages import headers_dict


def headers_read_all(topic: str, *, expected: int, timeout: float = 20) -> list[dict]:
    """The headers of the first `expected` messages on `topic` (read from the start by a fresh group)."""
    consumer = make_consumer(f"reader-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([topic])
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=100, timeout=0.5):
                if msg.error() is None:
                    out.append(headers_dict(msg.headers()))
    finally:
        consumer.close()
    return out
