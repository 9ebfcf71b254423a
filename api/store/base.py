"""The live state of a deployment: its command stream, the views the dispatch worker publishes, keys and leases.

One `Store` protocol, two implementations run by one contract test suite: `MemoryStore` (the embedded default:
one process) and `RedisStore` (production: any number of API processes and workers over one Redis).

- **Commands** are JSON objects (`{"op": ..., ...}`, the shape `dispatch.operations.Operations.apply` takes)
  appended to one stream per deployment. `append` stamps each with a sequence number and a service time that
  never goes back (`now` is the later of the caller's clock and the last command's), and does it atomically with
  the idempotency check and, for a new order, the creation of its record: a caller that got a sequence number
  back holds a durable command.
- **Views** are what the worker derives from the stream: order records (a hash of fields), order timelines (a
  list of events) and courier routes (a JSON value). The worker writes them with `publish`, one transaction per
  command that also moves `applied` forward and stores the command's reply, and only while it holds the lease:
  a worker that lost its lease writes nothing, and a command published once is never published again.
- **Leases** give one worker at a time the deployment; **snapshots** let a new worker start from the last saved
  state and replay the stream after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

AppendStatus = Literal["accepted", "duplicate", "conflict", "exists", "short"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Appended:
    """What `append` did: `accepted` (a new command at `seq`), `duplicate` (the idempotency key was used before
    with the same body: `seq` of that command), `conflict` (the key was used with another body), `exists` (the
    new order's id is taken by another order) or `short` (a counter it claims holds less: `short` names it as
    `name|field`; nothing was written)."""

    status: AppendStatus
    seq: int = 0
    now: int = 0
    short: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Op:
    """One write of a publish: `hset` fields of a hash, `hdel` fields (a list) of a hash, `hincrby` counters of a
    hash (a mapping of amounts), `rpush` a value on a list, `set` or `delete` a value, `xadd` an entry `[id, json]`
    to a stream (`id` as `"{seq}-{k}"`, increasing; the stream keeps about `STREAM_KEEP` entries)."""

    kind: Literal["hset", "hdel", "hincrby", "rpush", "set", "delete", "xadd"]
    key: str
    value: Any = None

    def wire(self) -> list[Any]:
        return [self.kind, self.key, self.value]


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """What applying command `seq` changed (`ops` on the views) and its `reply` to the waiting request (empty: no
    request waits for it, and none is kept)."""

    seq: int
    ops: Sequence[Op]
    reply: Mapping[str, Any]


EVENTS_STREAM = "events"
"""The stream of domain events the workers publish, in order (webhooks read it)."""

STREAM_KEEP = 100_000
"""Entries an event stream keeps (Redis trims approximately)."""


def stream_id(entry_id: str) -> tuple[int, int]:
    """`"12-3"` as (12, 3), for ordering stream entry ids."""
    seq, _, k = entry_id.partition("-")
    return int(seq), int(k or 0)


COUNTER_PREFIX = "count:"
"""Counters (stock, pickup-point places, locker compartments: `dispatch.inventory.Counter`) are hashes under this
prefix, e.g. `count:stock:s1` with a field per SKU."""

Claim = tuple[str, str, int]
"""(counter name, field, units) an appended command takes from a counter (see `Store.append`)."""


def order_key(order_id: str) -> str:
    """The key of an order's record (a hash); its timeline is `order_key(id) + ":events"`."""
    return f"order:{order_id}"


def route_key(courier_id: str) -> str:
    """The key of a courier's published route (a JSON value)."""
    return f"route:{courier_id}"


def planned_key(courier_id: str) -> str:
    """The key of what the dispatcher plans for a courier after its committed trip (a JSON list of trips)."""
    return f"route:{courier_id}:planned"


def courier_key(courier_id: str) -> str:
    """The key of what is known of a courier beside its route (a hash: `location`, `at` of its last report)."""
    return f"courier:{courier_id}"


def tracking_key(tracking_id: str) -> str:
    """The key that leads from an order's tracking id to the order's id (a string value)."""
    return f"track:{tracking_id}"


def body_hash(body: bytes | str | Mapping[str, Any]) -> str:
    """The fingerprint an idempotency key is bound to (SHA-256 of canonical JSON: keys sorted, no spaces, UTF-8)."""
    if isinstance(body, Mapping):
        body = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    if isinstance(body, str):
        body = body.encode()
    return hashlib.sha256(body).hexdigest()


def json_text(value: Any) -> str:
    """A value as the JSON text an order record's field holds (orjson: compact, UTF-8)."""
    return orjson.dumps(value).decode()


def key_id(key: str) -> str:
    """The id an API key is stored and revoked by: half its SHA-256 in hex (keys are 256-bit random tokens, so
    neither a salt nor a slow hash is needed, and the id does not lead back to the key)."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class Store(Protocol):
    """Live state of one deployment (see the module doc)."""

    # --- command stream ------------------------------------------------------------------------------------

    def append(self, command: Mapping[str, Any], *, now: int, idempotency: tuple[str, str] | None = None,
               order: tuple[str, Mapping[str, str]] | None = None, claims: Sequence[Claim] = (),
               count: Claim | None = None) -> Appended:
        """Append `command` with `seq` and `now` added. `idempotency` is (key, body hash); `order` is (id, fields
        of its new record): the command is appended only if no order has that id. `claims` are taken from their
        counters, all or nothing: if one holds less, nothing is written (`short`). `count` (name, field, value)
        sets a counter and adds to the command its `delta` from what the counter held. All in one step."""
        ...

    def read(self, after: int, *, count: int = 512, block_ms: int = 0) -> list[tuple[int, dict[str, Any]]]:
        """Commands with sequence numbers after `after`, in order (waiting up to `block_ms` for one)."""
        ...

    def last_seq(self) -> int:
        ...

    def trim(self, upto: int) -> None:
        """Drop commands up to `upto` (never past `applied`) from the stream: a snapshot holds their effect. Their
        sequence numbers stay taken; a read from before them starts at the first command kept."""
        ...

    # --- views ---------------------------------------------------------------------------------------------

    def publish(self, worker: str, batch: Sequence[Applied]) -> bool:
        """Write the views each command of `batch` (in stream order) changed and its reply, and set `applied` to
        the last one, in one transaction, if `worker` holds the lease; False if it does not. A command already
        applied writes nothing. Requests waiting for a reply wake up."""
        ...

    def applied(self) -> int:
        """The last command whose views are published."""
        ...

    def reply(self, seq: int) -> dict[str, Any] | None:
        ...

    def wait_reply(self, seq: int, timeout_s: float) -> dict[str, Any] | None:
        """The reply to command `seq` once published, or None after `timeout_s`."""
        ...

    def hgetall(self, key: str) -> dict[str, str]:
        ...

    def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, str]]:
        """`hgetall` of each key, in one round trip."""
        ...

    def lrange(self, key: str) -> list[str]:
        ...

    def get(self, key: str) -> str | None:
        ...

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """`get` of each key, in one round trip."""
        ...

    def read_stream(self, key: str, after: str, *, count: int = 256, block_ms: int = 0) -> list[tuple[str, str]]:
        """Entries `(id, json)` of stream `key` after entry `after` (`"0-0"`: from the first kept), in order,
        waiting up to `block_ms` for one."""
        ...

    # --- direct writes (outside the command stream: webhook subscriptions and their delivery state) -----------

    def hset(self, key: str, fields: Mapping[str, str]) -> None:
        ...

    def hdel(self, key: str, field: str) -> bool:
        ...

    def set(self, key: str, value: str) -> None:
        ...

    def log(self, key: str, value: str, keep: int) -> None:
        """Append `value` to list `key`, keeping its last `keep` values."""
        ...

    # --- workers -------------------------------------------------------------------------------------------

    def lease(self, worker: str, ttl_ms: int, name: str = "lease") -> bool:
        """Take the deployment's lease (or another lease by `name`, e.g. the webhook sender's), or renew it if
        `worker` holds it; False if another holds it."""
        ...

    def lease_holder(self, name: str = "lease") -> str | None:
        """The worker holding the lease now (None: nobody: no dispatch worker runs, or the last one died)."""
        ...

    def release(self, worker: str, name: str = "lease") -> None:
        ...

    def save_snapshot(self, worker: str, seq: int, data: bytes) -> bool:
        """Keep `data`, the state after command `seq`, if `worker` holds the lease."""
        ...

    def load_snapshot(self) -> tuple[int, bytes] | None:
        ...

    def counters(self, wanted: Sequence[tuple[str, Sequence[str]]]) -> list[list[int]]:
        """The values of each (counter name, fields) (0 for a field not set), in one round trip."""
        ...

    async def append_async(self, command: Mapping[str, Any], *, now: int,
                           idempotency: tuple[str, str] | None = None,
                           order: tuple[str, Mapping[str, str]] | None = None, claims: Sequence[Claim] = (),
                           count: Claim | None = None) -> Appended:
        """`append` for a request handler on the event loop (it does not block the loop)."""
        ...

    async def counters_async(self, wanted: Sequence[tuple[str, Sequence[str]]]) -> list[list[int]]:
        """`counters` for a request handler on the event loop."""
        ...

    async def hgetall_async(self, key: str) -> dict[str, str]:
        """`hgetall` for a request handler on the event loop."""
        ...

    async def get_many_async(self, keys: Sequence[str]) -> list[str | None]:
        """`get_many` for a request handler on the event loop."""
        ...

    async def close_async(self) -> None:
        """Close what the `*_async` calls opened on the running event loop."""
        ...

    def seed_counters(self, levels: Mapping[str, Mapping[str, int]]) -> None:
        """Set each counter field that is not set yet ({name: {field: value}})."""
        ...

    def claim(self, key: str, value: str) -> str:
        """Set `key` to `value` unless it is set; the value it holds either way (e.g. the service clock's epoch)."""
        ...

    # --- keys and health -----------------------------------------------------------------------------------

    def put_key(self, key_id: str, record: Mapping[str, str]) -> None:
        ...

    def get_key(self, key_id: str) -> dict[str, str] | None:
        ...

    def delete_key(self, key_id: str) -> bool:
        ...

    def ping(self) -> bool:
        ...

    def close(self) -> None:
        ...
