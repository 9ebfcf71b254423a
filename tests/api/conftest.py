"""Fixtures of the API tests: a real Redis (the one every machine runs, under a prefix of its own per test)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from api.store import MemoryStore, Store
from api.store.redis import RedisStore

REDIS_URL = os.environ.get("LASTMILE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {REDIS_URL} is required on CI: {e}")
        pytest.skip(f"no Redis at {REDIS_URL}: {e}")
    return client


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the machine's Redis, deleted afterwards."""
    client = _redis_or_skip()
    prefix = f"lastmile-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """Each store in turn: the memory store and the Redis store (under this test's prefix)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    s = RedisStore(REDIS_URL, prefix=request.getfixturevalue("redis_prefix"))
    yield s
    s.close()
