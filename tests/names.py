"""The names a test run makes for its Kafka topics and groups, and the run's own topics at its end.

Every made name holds a random token of 10 hex digits between separators; the run keeps the
tokens it made, so at its end it deletes exactly the topics it created on the shared broker
(tests/conftest.py, pytest_sessionfinish), never one another run on the same broker still uses.
"""

import re
import uuid

TOKENS: set[str] = set()  # this process's tokens
_PARTS = re.compile(r"[^0-9A-Za-z]+")


def token_make() -> str:
    token = uuid.uuid4().hex[:10]
    TOKENS.add(token)
    return token


def name_make(prefix: str) -> str:
    return f"{prefix}-{token_make()}"


def names_made(names) -> list[str]:
    """The names among `names` that hold a token of this run."""
    return sorted(name for name in names if TOKENS.intersection(_PARTS.split(name)))
