"""What only the Redis store does: appends of one event loop turn go as one pipeline, and survive Redis losing
its scripts."""

from __future__ import annotations

import asyncio

import redis

from api.store import body_hash
from api.store.redis import RedisStore
from tests.api.conftest import REDIS_URL


def test_pipelined_appends_reload_a_lost_script_and_append_once(redis_prefix: str) -> None:
    """After SCRIPT FLUSH (what a Redis restart does) a pipeline of appends loads the script again and each
    command is appended exactly once."""
    store = RedisStore(REDIS_URL, prefix=redis_prefix)

    async def batch(first: int) -> list[tuple[str, int]]:
        got = await asyncio.gather(*(store.append_async({"op": "place", "order": {"id": f"o{k}"}}, now=k,
                                                        idempotency=(f"k{k}", body_hash({"id": f"o{k}"})))
                                     for k in range(first, first + 8)))
        return [(a.status, a.seq) for a in got]

    async def run() -> list[list[tuple[str, int]]]:
        out = [await batch(0)]
        redis.Redis.from_url(REDIS_URL).script_flush()
        out.append(await batch(8))
        await store.close_async()
        return out

    before, after = asyncio.run(run())
    assert before == [("accepted", k) for k in range(1, 9)]
    assert sorted(after) == [("accepted", k) for k in range(9, 17)]
    assert [seq for seq, _ in store.read(0, count=100)] == list(range(1, 17))
    store.close()
