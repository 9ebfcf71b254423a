"""Live state stores: the `Store` protocol, the embedded `MemoryStore` and the production `RedisStore`."""

from __future__ import annotations

from api.errors import StoreSpecError
from api.store.base import (
    Appended,
    Op,
    Store,
    body_hash,
    courier_key,
    json_text,
    key_id,
    order_key,
    planned_key,
    route_key,
    tracking_key,
)
from api.store.memory import MemoryStore

__all__ = ["Appended", "MemoryStore", "Op", "Store", "body_hash", "courier_key", "json_text", "key_id", "open_store",
           "order_key", "planned_key", "route_key", "tracking_key"]


def open_store(spec: str, *, prefix: str = "lastmile:") -> Store:
    """`memory` or a `redis://HOST:PORT/DB` URL (also `rediss://`, `unix://`)."""
    if spec == "memory":
        return MemoryStore()
    if spec.startswith(("redis://", "rediss://", "unix://")):
        from api.store.redis import RedisStore

        return RedisStore(spec, prefix=prefix)
    raise StoreSpecError(f"store: must be 'memory' or a redis:// URL, got {spec!r}")
