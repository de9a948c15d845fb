import pytest

from tests.kafkacache.conftest import feed  # noqa: F401 - fixture, re-exported for pytest

from .redis_cluster import RedisClusterServices


@pytest.fixture(scope="session")
def redis_cluster():
    """One Redis Cluster for the run: pytest-django orders database tests before the
    others, which split a module's tests and would start a module-scoped cluster three times."""
    services = RedisClusterServices.create()
    try:
        services.up()
        yield services
    finally:
        services.down()
