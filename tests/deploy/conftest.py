from tests.kafkacache.conftest import feed  # noqa: F401 - fixture, re-exported for pytest
