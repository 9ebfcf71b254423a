"""The production store: the `Store` protocol on Redis (any number of API processes and workers over one server).

Everything that must be atomic is one Lua script: `append` (idempotency check, order-id check, clock, sequence
number, stream entry, order record: `SET NX` inside `MULTI` would not stop the commands after it), `publish`
(lease check, views, reply, `applied`), lease renewal and snapshots (lease check). Keys live under a prefix
(`lastmile:` by default) so that deployments and tests can share a server. The command stream is a Redis
stream whose entry ids are the sequence numbers (`{seq}-0`).

Durability is Redis's: run it with `appendonly yes` and `appendfsync always` so that an acknowledged command
survives a crash of the server (see docs/api.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import redis
import redis.asyncio

from api.store.base import COUNTER_PREFIX, STREAM_KEEP, Appended, Applied, Claim, json_text, order_key

_APPEND = """
local idem, order = KEYS[4], KEYS[5]
if ARGV[3] ~= '' then
  local got = redis.call('HGET', idem, 'hash')
  if got then
    local seq = tonumber(redis.call('HGET', idem, 'seq'))
    if got == ARGV[3] then return {'duplicate', seq, 0} end
    return {'conflict', seq, 0}
  end
end
if ARGV[4] ~= '' and redis.call('EXISTS', order) == 1 then return {'exists', 0, 0} end
local prefix = ARGV[8]
local claims = cjson.decode(ARGV[6])
for _, c in ipairs(claims) do
  local held = tonumber(redis.call('HGET', prefix .. c[1], c[2]) or '0')
  if held < c[3] then return {'short', 0, 0, c[1] .. '|' .. c[2]} end
end
for _, c in ipairs(claims) do redis.call('HINCRBY', prefix .. c[1], c[2], -c[3]) end
local extra = ''
if ARGV[7] ~= '' then
  local c = cjson.decode(ARGV[7])
  local held = tonumber(redis.call('HGET', prefix .. c[1], c[2]) or '0')
  redis.call('HSET', prefix .. c[1], c[2], c[3])
  extra = ',"delta":' .. string.format('%d', c[3] - held)
end
local now = math.max(tonumber(ARGV[2]), tonumber(redis.call('GET', KEYS[3]) or '0'))
redis.call('SET', KEYS[3], now)
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], seq .. '-0', 'c', ARGV[1] .. extra .. ',"now":' .. now .. ',"seq":' .. seq .. '}')
if ARGV[3] ~= '' then
  redis.call('HSET', idem, 'hash', ARGV[3], 'seq', seq)
  redis.call('EXPIRE', idem, tonumber(ARGV[5]))
end
if ARGV[4] ~= '' then
  local fields, flat = cjson.decode(ARGV[4]), {}
  for k, v in pairs(fields) do flat[#flat + 1] = k; flat[#flat + 1] = v end
  if #flat > 0 then redis.call('HSET', order, unpack(flat)) end
end
return {'accepted', seq, now}
"""

_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local applied = tonumber(redis.call('GET', KEYS[2]) or '0')
local prefix, ttl = ARGV[2], tonumber(ARGV[3])
for _, entry in ipairs(cjson.decode(ARGV[4])) do
  local seq = entry[1]
  if seq > applied then
    for _, op in ipairs(entry[2]) do
      local kind, key, value = op[1], prefix .. op[2], op[3]
      if kind == 'hset' then  -- one command per hash: one entry in the AOF
        local flat = {}
        for k, v in pairs(value) do flat[#flat + 1] = k; flat[#flat + 1] = v end
        if #flat > 0 then redis.call('HSET', key, unpack(flat)) end
      elseif kind == 'hdel' then
        if #value > 0 then redis.call('HDEL', key, unpack(value)) end
      elseif kind == 'hincrby' then
        for k, v in pairs(value) do redis.call('HINCRBY', key, k, v) end
      elseif kind == 'rpush' then
        redis.call('RPUSH', key, value)
      elseif kind == 'set' then
        redis.call('SET', key, value)
      elseif kind == 'xadd' then
        redis.call('XADD', key, 'MAXLEN', '~', ARGV[5], value[1], 'e', value[2])
      else
        redis.call('DEL', key)
      end
    end
    if entry[3] ~= '' then
      redis.call('SET', prefix .. 'reply:' .. seq, entry[3], 'EX', ttl)
      redis.call('RPUSH', prefix .. 'wake:' .. seq, 1)
      redis.call('EXPIRE', prefix .. 'wake:' .. seq, 60)
    end
    applied = seq
  end
end
redis.call('SET', KEYS[2], applied)
return 1
"""

_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

_SNAPSHOT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'seq', ARGV[2], 'data', ARGV[3])
return 1
"""

IDEMPOTENCY_TTL_S = 24 * 3600
REPLY_TTL_S = 3600


class _Pipelined:
    """Appends of one event loop, sent together: those made in one turn of the loop go to Redis as one pipeline
    (one write and one read on the socket for all, instead of one each), as they queue up under load. Each script
    stays atomic on its own and they run in the order made; a pipeline is not a transaction (none is needed)."""

    def __init__(self, client: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.client, self.loop = client, loop
        self.sha = client.register_script(_APPEND).sha
        self.pending: list[tuple[list[str], list[Any], asyncio.Future[Any]]] = []

    def append(self, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()
        if not self.pending:
            self.loop.call_soon(self._flush)
        self.pending.append((keys, args, future))
        return future

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        task = self.loop.create_task(self._send(batch))
        task.add_done_callback(_BACKGROUND.discard)
        _BACKGROUND.add(task)

    async def _send(self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]]) -> None:
        """EVALSHA of each append; those that found the script missing (Redis restarted) ran nothing: the script
        is loaded and they are sent again. Each append's future gets its reply or its error."""
        try:
            results = await self._evalsha([(keys, args) for keys, args, _ in batch])
            missing = [i for i, got in enumerate(results) if isinstance(got, redis.exceptions.NoScriptError)]
            if missing:
                await self.client.script_load(_APPEND)
                again = await self._evalsha([batch[i][:2] for i in missing])
                for i, got in zip(missing, again, strict=True):
                    results[i] = got
        except Exception as e:  # the connection failed: every append of the batch fails alike
            results = [e] * len(batch)
        for (*_, future), got in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(got, Exception):
                future.set_exception(got)
            else:
                future.set_result(got)

    async def _evalsha(self, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """The replies of the calls, an error in place of a reply where one failed (one call goes on its own)."""
        if len(calls) == 1:
            keys, args = calls[0]
            try:
                return [await self.client.evalsha(self.sha, len(keys), *keys, *args)]
            except redis.exceptions.ResponseError as e:
                return [e]
        async with self.client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))


_BACKGROUND: set[asyncio.Task[None]] = set()
"""Pipelines under way (the event loop holds tasks weakly)."""


SOCKET_TIMEOUT_S = 60.0
"""How long a Redis call may go unanswered before it fails: longer than any blocking call the store makes (a
request's wait for the worker's reply is cut at `SOCKET_TIMEOUT_S - 5`), so a wait that times out answers 202,
not a socket error."""
_CLIENT_OPTIONS: dict[str, Any] = {"socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": 5.0,
                                   "health_check_interval": 2}
"""A connection idle for 2 s is pinged before its next use, so one left stale by a Redis restart is replaced
rather than failing the request that draws it from the pool."""


class RedisStore:
    """`api.store.base.Store` on a Redis server (see the module doc)."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "lastmile:") -> None:
        self.url = url
        self.prefix = prefix
        # typed Any: redis-py's stubs type every reply as a union of sync and async, bytes and str
        self.client: Any = redis.Redis.from_url(url, decode_responses=False, **_CLIENT_OPTIONS)
        self._append: Any = self.client.register_script(_APPEND)
        self._publish: Any = self.client.register_script(_PUBLISH)
        self._lease: Any = self.client.register_script(_LEASE)
        self._release: Any = self.client.register_script(_RELEASE)
        self._snapshot: Any = self.client.register_script(_SNAPSHOT)
        self._async: dict[asyncio.AbstractEventLoop, tuple[Any, Any]] = {}

    def _k(self, name: str) -> str:
        return self.prefix + name

    # --- command stream ------------------------------------------------------------------------------------

    def _async_client(self) -> Any:
        """A redis.asyncio client of the running event loop (made on first use there)."""
        loop = asyncio.get_running_loop()
        got = self._async.get(loop)
        if got is None:
            if len(self._async) > 8:  # loops of finished test clients
                self._async.clear()
            client = redis.asyncio.Redis.from_url(self.url, decode_responses=False, **_CLIENT_OPTIONS)
            got = self._async[loop] = (client, _Pipelined(client, loop))
        return got

    def _append_args(self, command: Mapping[str, Any], now: int, idempotency: tuple[str, str] | None,
                     order: tuple[str, Mapping[str, str]] | None, claims: Sequence[Claim],
                     count: Claim | None) -> tuple[list[str], list[Any]]:
        text = json_text(dict(command))
        if not text.startswith("{") or text == "{}":
            raise ValueError("a command is a non-empty JSON object")
        keys = [self._k("stream"), self._k("seq"), self._k("clock"),
                self._k(f"idem:{idempotency[0]}") if idempotency else self._k("idem:"),
                self._k(order_key(order[0])) if order else self._k("order:")]
        args = [text[:-1], int(now), idempotency[1] if idempotency else "",
                orjson.dumps(dict(order[1])) if order else "", IDEMPOTENCY_TTL_S,
                orjson.dumps([[n, f, int(u)] for n, f, u in claims]) if claims else "[]",
                orjson.dumps([count[0], count[1], int(count[2])]) if count is not None else "",
                self._k(COUNTER_PREFIX)]
        return keys, args

    @staticmethod
    def _appended(got: Sequence[Any]) -> Appended:
        status, seq, stamped, *short = got
        return Appended(status=status.decode(), seq=int(seq), now=int(stamped),
                        short=short[0].decode() if short else "")

    async def append_async(self, command: Mapping[str, Any], *, now: int,
                           idempotency: tuple[str, str] | None = None,
                           order: tuple[str, Mapping[str, str]] | None = None, claims: Sequence[Claim] = (),
                           count: Claim | None = None) -> Appended:
        keys, args = self._append_args(command, now, idempotency, order, claims, count)
        _, pipelined = self._async_client()
        return self._appended(await pipelined.append(keys, args))

    async def counters_async(self, wanted: Sequence[tuple[str, Sequence[str]]]) -> list[list[int]]:
        if not wanted:
            return []
        client, _ = self._async_client()
        async with client.pipeline(transaction=False) as pipe:
            for name, fields in wanted:
                pipe.hmget(self._k(COUNTER_PREFIX + name), list(fields))
            got = await pipe.execute()
        return [[int(v or 0) for v in values] for values in got]

    async def hgetall_async(self, key: str) -> dict[str, str]:
        client, _ = self._async_client()
        got = await client.hgetall(self._k(key))
        return {k.decode(): v.decode() for k, v in got.items()}

    def append(self, command: Mapping[str, Any], *, now: int, idempotency: tuple[str, str] | None = None,
               order: tuple[str, Mapping[str, str]] | None = None, claims: Sequence[Claim] = (),
               count: Claim | None = None) -> Appended:
        keys, args = self._append_args(command, now, idempotency, order, claims, count)
        return self._appended(self._append(keys=keys, args=args))

    def read(self, after: int, *, count: int = 512, block_ms: int = 0) -> list[tuple[int, dict[str, Any]]]:
        if block_ms > 0:
            got = self.client.xread({self._k("stream"): f"{after}-0"}, count=count, block=block_ms)
            entries = got[0][1] if got else []
        else:
            entries = self.client.xrange(self._k("stream"), min=f"{after + 1}-0", count=count)
        return [(int(eid.split(b"-")[0]), orjson.loads(fields[b"c"])) for eid, fields in entries]

    def trim(self, upto: int) -> None:
        self.client.xtrim(self._k("stream"), minid=f"{min(upto, self.applied()) + 1}-0", approximate=False)

    def last_seq(self) -> int:
        return int(self.client.get(self._k("seq")) or 0)

    # --- views ---------------------------------------------------------------------------------------------

    def publish(self, worker: str, batch: Sequence[Applied]) -> bool:
        entries = [[e.seq, [op.wire() for op in e.ops], json_text(dict(e.reply)) if e.reply else ""] for e in batch]
        args = [worker, self.prefix, REPLY_TTL_S, orjson.dumps(entries), STREAM_KEEP]  # a batch is tens of KB
        return bool(self._publish(keys=[self._k("lease"), self._k("applied")], args=args))

    def applied(self) -> int:
        return int(self.client.get(self._k("applied")) or 0)

    def counters(self, wanted: Sequence[tuple[str, Sequence[str]]]) -> list[list[int]]:
        if not wanted:
            return []
        pipe = self.client.pipeline(transaction=False)
        for name, fields in wanted:
            pipe.hmget(self._k(COUNTER_PREFIX + name), list(fields))
        return [[int(v or 0) for v in got] for got in pipe.execute()]

    def seed_counters(self, levels: Mapping[str, Mapping[str, int]]) -> None:
        pipe = self.client.pipeline(transaction=True)
        for name, fields in levels.items():
            for f, value in fields.items():
                pipe.hsetnx(self._k(COUNTER_PREFIX + name), f, int(value))
        pipe.execute()

    def reply(self, seq: int) -> dict[str, Any] | None:
        raw = self.client.get(self._k(f"reply:{seq}"))
        return None if raw is None else json.loads(raw)

    def wait_reply(self, seq: int, timeout_s: float) -> dict[str, Any] | None:
        """Blocks on the command's wake-up list (one token, passed on to any other waiter), not by polling."""
        got = self.reply(seq)
        if got is not None:
            return got
        woke = self.client.blpop([self._k(f"wake:{seq}")], timeout=min(max(0.01, timeout_s), SOCKET_TIMEOUT_S - 5))
        if woke is not None:
            self.client.rpush(self._k(f"wake:{seq}"), 1)  # wake the next waiter for the same command, if any
        return self.reply(seq)

    def hgetall(self, key: str) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.client.hgetall(self._k(key)).items()}

    def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, str]]:
        if not keys:
            return []
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(self._k(key))
        return [{k.decode(): v.decode() for k, v in got.items()} for got in pipe.execute()]

    def lrange(self, key: str) -> list[str]:
        return [v.decode() for v in self.client.lrange(self._k(key), 0, -1)]

    def get(self, key: str) -> str | None:
        raw = self.client.get(self._k(key))
        return None if raw is None else raw.decode()

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        return [None if raw is None else raw.decode() for raw in self.client.mget([self._k(k) for k in keys])]

    def read_stream(self, key: str, after: str, *, count: int = 256, block_ms: int = 0) -> list[tuple[str, str]]:
        if block_ms > 0:
            got = self.client.xread({self._k(key): after}, count=count, block=block_ms)
            entries = got[0][1] if got else []
        else:
            entries = self.client.xrange(self._k(key), min="(" + after, count=count)
        return [(eid.decode(), fields[b"e"].decode()) for eid, fields in entries]

    def hset(self, key: str, fields: Mapping[str, str]) -> None:
        self.client.hset(self._k(key), mapping=dict(fields))

    def hdel(self, key: str, field: str) -> bool:
        return bool(self.client.hdel(self._k(key), field))

    def set(self, key: str, value: str) -> None:
        self.client.set(self._k(key), value)

    def log(self, key: str, value: str, keep: int) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.rpush(self._k(key), value).ltrim(self._k(key), -keep, -1).execute()

    # --- workers -------------------------------------------------------------------------------------------

    def lease(self, worker: str, ttl_ms: int, name: str = "lease") -> bool:
        return bool(self._lease(keys=[self._k(name)], args=[worker, int(ttl_ms)]))

    def lease_holder(self, name: str = "lease") -> str | None:
        holder = self.client.get(self._k(name))
        return None if holder is None else holder.decode()

    def release(self, worker: str, name: str = "lease") -> None:
        self._release(keys=[self._k(name)], args=[worker])

    def save_snapshot(self, worker: str, seq: int, data: bytes) -> bool:
        return bool(self._snapshot(keys=[self._k("lease"), self._k("snapshot")], args=[worker, seq, data]))

    def load_snapshot(self) -> tuple[int, bytes] | None:
        got = self.client.hgetall(self._k("snapshot"))
        return None if not got else (int(got[b"seq"]), bytes(got[b"data"]))

    def claim(self, key: str, value: str) -> str:
        self.client.set(self._k(key), value, nx=True)
        return str(self.client.get(self._k(key)).decode())

    # --- keys and health -----------------------------------------------------------------------------------

    def put_key(self, key_id: str, record: Mapping[str, str]) -> None:
        self.client.hset(self._k(f"key:{key_id}"), mapping=dict(record))

    def get_key(self, key_id: str) -> dict[str, str] | None:
        got = self.client.hgetall(self._k(f"key:{key_id}"))
        return {k.decode(): v.decode() for k, v in got.items()} or None

    def delete_key(self, key_id: str) -> bool:
        return bool(self.client.delete(self._k(f"key:{key_id}")))

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    async def get_many_async(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        client, _ = self._async_client()
        got = await client.mget([self._k(k) for k in keys])
        return [None if raw is None else raw.decode() for raw in got]

    async def close_async(self) -> None:
        """Close the event loop's async client, if it made one."""
        got = self._async.pop(asyncio.get_running_loop(), None)
        if got is not None:
            await got[0].aclose()

    def close(self) -> None:
        self.client.close()
