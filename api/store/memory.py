"""The embedded store: the `Store` protocol in one process's memory (the default of `lastmile serve`).

Every call holds one lock, so appends are atomic exactly as the Redis store's scripts are; `wait_reply` and
`read` wait on a condition instead of polling. Nothing survives the process: for that, use Redis.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from api.store.base import COUNTER_PREFIX, STREAM_KEEP, Appended, Applied, Claim, Op, order_key, stream_id

MAX_REPLIES = 100_000
"""Replies kept for late readers; a retry of an older command reads the order record instead."""


class MemoryStore:
    """`api.store.base.Store` in memory (see the module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._stream: list[tuple[int, dict[str, Any]]] = []
        self._trimmed = 0  # commands dropped from the front of the stream (their sequence numbers stay taken)
        self._idempotency: dict[str, tuple[str, int]] = {}
        self._hashes: dict[str, dict[str, str]] = {}
        self._lists: dict[str, list[str]] = {}
        self._values: dict[str, str] = {}
        self._replies: dict[int, dict[str, Any]] = {}
        self._keys: dict[str, dict[str, str]] = {}
        self._last_now = 0
        self._applied = 0
        self._streams: dict[str, list[tuple[tuple[int, int], str, str]]] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._snapshot: tuple[int, bytes] | None = None

    # --- command stream ------------------------------------------------------------------------------------

    def append(self, command: Mapping[str, Any], *, now: int, idempotency: tuple[str, str] | None = None,
               order: tuple[str, Mapping[str, str]] | None = None, claims: Sequence[Claim] = (),
               count: Claim | None = None) -> Appended:
        with self._lock:
            if idempotency is not None and idempotency[0] in self._idempotency:
                fingerprint, seq = self._idempotency[idempotency[0]]
                return Appended(status="duplicate" if fingerprint == idempotency[1] else "conflict", seq=seq)
            if order is not None and order_key(order[0]) in self._hashes:
                return Appended(status="exists")
            for name, field, units in claims:
                if int(self._hashes.get(COUNTER_PREFIX + name, {}).get(field, "0")) < units:
                    return Appended(status="short", short=f"{name}|{field}")
            for name, field, units in claims:
                counter = self._hashes[COUNTER_PREFIX + name]
                counter[field] = str(int(counter[field]) - units)
            extra: dict[str, Any] = {}
            if count is not None:
                counter = self._hashes.setdefault(COUNTER_PREFIX + count[0], {})
                extra["delta"] = int(count[2]) - int(counter.get(count[1], "0"))
                counter[count[1]] = str(int(count[2]))
            self._last_now = now = max(int(now), self._last_now)
            seq = self._trimmed + len(self._stream) + 1
            self._stream.append((seq, json.loads(json.dumps({**command, **extra, "now": now, "seq": seq}))))
            if idempotency is not None:
                self._idempotency[idempotency[0]] = (idempotency[1], seq)
            if order is not None:
                self._hashes[order_key(order[0])] = dict(order[1])
            self._lock.notify_all()
            return Appended(status="accepted", seq=seq, now=now)

    def read(self, after: int, *, count: int = 512, block_ms: int = 0) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            if self._last() <= after and block_ms > 0:
                self._lock.wait_for(lambda: self._last() > after, timeout=block_ms / 1000)
            start = max(0, after - self._trimmed)
            return [(seq, dict(c)) for seq, c in self._stream[start:start + count]]

    def _last(self) -> int:
        return self._trimmed + len(self._stream)

    def trim(self, upto: int) -> None:
        with self._lock:
            drop = max(0, min(upto, self._applied) - self._trimmed)
            del self._stream[:drop]
            self._trimmed += drop

    def last_seq(self) -> int:
        with self._lock:
            return self._last()

    # --- views ---------------------------------------------------------------------------------------------

    def publish(self, worker: str, batch: Sequence[Applied]) -> bool:
        with self._lock:
            if not self._holds(worker):
                return False
            for entry in batch:
                if entry.seq > self._applied:
                    self._write(entry.ops)
                    self._applied = entry.seq
                    if entry.reply:
                        self._replies[entry.seq] = json.loads(json.dumps(entry.reply))
            while len(self._replies) > MAX_REPLIES:  # the oldest go first (Redis lets them expire)
                del self._replies[next(iter(self._replies))]
            self._lock.notify_all()
            return True

    def _write(self, ops: Sequence[Op]) -> None:
        for op in ops:
            if op.kind == "hset":
                self._hashes.setdefault(op.key, {}).update(op.value)
            elif op.kind == "hdel":
                fields = self._hashes.get(op.key, {})
                for name in op.value:
                    fields.pop(name, None)
            elif op.kind == "hincrby":
                counters = self._hashes.setdefault(op.key, {})
                for name, amount in op.value.items():
                    counters[name] = str(int(counters.get(name, "0")) + int(amount))
            elif op.kind == "rpush":
                self._lists.setdefault(op.key, []).append(op.value)
            elif op.kind == "set":
                self._values[op.key] = op.value
            elif op.kind == "xadd":
                stream = self._streams.setdefault(op.key, [])
                stream.append((stream_id(op.value[0]), op.value[0], op.value[1]))
                del stream[:max(0, len(stream) - STREAM_KEEP)]
            else:
                for space in (self._hashes, self._lists, self._values):
                    space.pop(op.key, None)

    def applied(self) -> int:
        with self._lock:
            return self._applied

    def counters(self, wanted: Sequence[tuple[str, Sequence[str]]]) -> list[list[int]]:
        with self._lock:
            return [[int(self._hashes.get(COUNTER_PREFIX + name, {}).get(f, "0")) for f in fields]
                    for name, fields in wanted]

    async def append_async(self, command: Mapping[str, Any], *, now: int,
                           idempotency: tuple[str, str] | None = None,
                           order: tuple[str, Mapping[str, str]] | None = None, claims: Sequence[Claim] = (),
                           count: Claim | None = None) -> Appended:
        return self.append(command, now=now, idempotency=idempotency, order=order, claims=claims, count=count)

    async def counters_async(self, wanted: Sequence[tuple[str, Sequence[str]]]) -> list[list[int]]:
        return self.counters(wanted)

    async def hgetall_async(self, key: str) -> dict[str, str]:
        return self.hgetall(key)

    async def get_many_async(self, keys: Sequence[str]) -> list[str | None]:
        return self.get_many(keys)

    async def close_async(self) -> None:
        return None

    def seed_counters(self, levels: Mapping[str, Mapping[str, int]]) -> None:
        with self._lock:
            for name, fields in levels.items():
                counter = self._hashes.setdefault(COUNTER_PREFIX + name, {})
                for f, value in fields.items():
                    counter.setdefault(f, str(int(value)))

    def reply(self, seq: int) -> dict[str, Any] | None:
        with self._lock:
            return self._replies.get(seq)

    def wait_reply(self, seq: int, timeout_s: float) -> dict[str, Any] | None:
        with self._lock:
            self._lock.wait_for(lambda: seq in self._replies, timeout=timeout_s)
            return self._replies.get(seq)

    def hgetall(self, key: str) -> dict[str, str]:
        with self._lock:
            return dict(self._hashes.get(key, {}))

    def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, str]]:
        with self._lock:
            return [dict(self._hashes.get(key, {})) for key in keys]

    def lrange(self, key: str) -> list[str]:
        with self._lock:
            return list(self._lists.get(key, []))

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._values.get(key)

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        with self._lock:
            return [self._values.get(key) for key in keys]

    def read_stream(self, key: str, after: str, *, count: int = 256, block_ms: int = 0) -> list[tuple[str, str]]:
        since = stream_id(after)

        def newer() -> list[tuple[str, str]]:
            stream = self._streams.get(key, [])
            start = bisect.bisect_right(stream, since, key=lambda entry: entry[0])  # ids increase along the stream
            return [(i, data) for _, i, data in stream[start:start + count]]

        with self._lock:
            if block_ms > 0 and not newer():
                self._lock.wait_for(lambda: bool(newer()), timeout=block_ms / 1000)
            return newer()

    def hset(self, key: str, fields: Mapping[str, str]) -> None:
        with self._lock:
            self._hashes.setdefault(key, {}).update(fields)

    def hdel(self, key: str, field: str) -> bool:
        with self._lock:
            return self._hashes.get(key, {}).pop(field, None) is not None

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self._values[key] = value

    def log(self, key: str, value: str, keep: int) -> None:
        with self._lock:
            values = self._lists.setdefault(key, [])
            values.append(value)
            del values[:max(0, len(values) - keep)]

    # --- workers -------------------------------------------------------------------------------------------

    def _holds(self, worker: str, name: str = "lease") -> bool:
        held = self._leases.get(name)
        return held is not None and held[0] == worker and held[1] > time.monotonic()

    def lease(self, worker: str, ttl_ms: int, name: str = "lease") -> bool:
        with self._lock:
            held = self._leases.get(name)
            if held is not None and held[0] != worker and held[1] > time.monotonic():
                return False
            self._leases[name] = (worker, time.monotonic() + ttl_ms / 1000)
            return True

    def lease_holder(self, name: str = "lease") -> str | None:
        with self._lock:
            held = self._leases.get(name)
            return held[0] if held is not None and held[1] > time.monotonic() else None

    def release(self, worker: str, name: str = "lease") -> None:
        with self._lock:
            held = self._leases.get(name)
            if held is not None and held[0] == worker:
                del self._leases[name]

    def save_snapshot(self, worker: str, seq: int, data: bytes) -> bool:
        with self._lock:
            if not self._holds(worker):
                return False
            self._snapshot = (seq, bytes(data))
            return True

    def load_snapshot(self) -> tuple[int, bytes] | None:
        with self._lock:
            return self._snapshot

    def claim(self, key: str, value: str) -> str:
        with self._lock:
            return self._values.setdefault(key, value)

    # --- keys and health -----------------------------------------------------------------------------------

    def put_key(self, key_id: str, record: Mapping[str, str]) -> None:
        with self._lock:
            self._keys[key_id] = dict(record)

    def get_key(self, key_id: str) -> dict[str, str] | None:
        with self._lock:
            record = self._keys.get(key_id)
            return None if record is None else dict(record)

    def delete_key(self, key_id: str) -> bool:
        with self._lock:
            return self._keys.pop(key_id, None) is not None

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass

