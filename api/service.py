"""The live service behind the HTTP API: a deployment (map, scenario), its store, its clock and its workers.

`Service` is what the routes call: `submit` appends a command to the store (durable when it returns) and waits,
up to `reply_timeout_s`, for the dispatch worker's reply. Workers run as threads of this process (`workers`
setting) or as processes of their own (`lastmile worker`) against the same Redis; either way exactly one holds
the deployment's lease.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.admission import Admitter
from api.deployment import Deployment
from api.errors import ApiError
from api.metrics import Metrics
from api.settings import Settings
from api.store import Store, key_id, open_store
from api.store.base import Appended
from api.webhooks import Sender
from api.worker import Worker
from dispatch.inventory import Inventory

CACHE_S = 1.0
"""How long an API process reuses the published configuration before reading it again."""
KEY_CACHE_S = 5.0
"""How long an API process trusts a key it found (revocation through another process takes this long there)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceClock:
    """Service time in integer seconds from the day's midnight: `origin` at the Unix time `epoch`, then `speed`
    times real time. Every process of a deployment reads one clock from the store (the first one started sets
    it), so API processes and workers agree, and a restarted process goes on where the day is."""

    origin: int
    speed: float = 1.0
    epoch: float = field(default_factory=time.time)

    @classmethod
    def wall(cls) -> ServiceClock:
        """The wall clock: seconds since local midnight of the day the service started (past 86,400 after it)."""
        now = datetime.now().astimezone()
        return cls(origin=now.hour * 3600 + now.minute * 60 + now.second, epoch=now.timestamp())

    def __call__(self) -> int:
        return self.origin + int((time.time() - self.epoch) * self.speed)

    def to_json(self) -> str:
        return json.dumps({"origin": self.origin, "speed": self.speed, "epoch": self.epoch})


class Service:
    """A deployment, its store, clock and workers (see the module doc)."""

    def __init__(self, settings: Settings, deployment: Deployment, *, store: Store | None = None,
                 clock: Callable[[], int] | None = None) -> None:
        self.settings = settings
        self.deployment = deployment
        self._view = deployment.view()
        self.store = store if store is not None else open_store(settings.store, prefix=settings.redis_prefix)
        if clock is None:
            speed = settings.speed
            mine = ServiceClock.wall() if speed is None else ServiceClock(origin=deployment.day_start, speed=speed)
            clock = ServiceClock(**json.loads(self.store.claim("service-clock", mine.to_json())))
        self.clock = clock
        self.metrics = Metrics(self.store, self.open_orders)
        self.workers = [Worker(self.store, deployment, self.clock, lease_ms=settings.lease_ms,
                               snapshot_every=settings.snapshot_every, observe=self.metrics.decisions.observe)
                        for _ in range(settings.workers)]
        self.sender = Sender(self.store) if settings.webhooks else None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._keys: dict[str, tuple[float, dict[str, str]]] = {}
        self._config: tuple[float, dict[str, Any]] | None = None
        if settings.admin_key is not None:
            self.store.put_key(key_id(settings.admin_key.get_secret_value()), {"role": "admin", "courier": ""})
        self.store.seed_counters(Inventory(deployment.facilities).counters())  # what the first worker seeds too
        self.admitter = Admitter(self.store, deployment) if settings.admission == "api" else None

    def open_orders(self) -> dict[str, int]:
        """Orders each store's dispatcher tracks, from the worker of this process holding the lease (if any)."""
        for w in self.workers:
            core = w.core
            if core is not None:
                return {store: core.open_orders(store) for store in core.stores}
        return {}

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads and the webhook sender (idempotent)."""
        if self._threads:
            return
        self._stop.clear()
        loops: list[tuple[str, Callable[[threading.Event], None]]] = [(w.name, w.run) for w in self.workers]
        if self.sender is not None:
            loops.append((self.sender.name, self.sender.run))
        for name, loop in loops:
            t = threading.Thread(target=loop, args=(self._stop,), name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()

    # --- commands ------------------------------------------------------------------------------------------

    def submit(self, command: Mapping[str, Any], *, idempotency: tuple[str, str] | None = None,
               order: tuple[str, Mapping[str, str]] | None = None,
               count: tuple[str, str, int] | None = None) -> dict[str, Any] | None:
        """Append `command` (durable on return) and wait for the worker's reply (None: not applied in time).
        `count` sets a counter as the command is appended (see `Store.append`)."""
        appended = self.store.append(command, now=self.clock(), idempotency=idempotency, order=order, count=count)
        self.check_appended(appended)
        return self.store.wait_reply(appended.seq, self.settings.reply_timeout_s)

    @staticmethod
    def check_appended(appended: Appended) -> None:
        """ApiError for an idempotency key used with another body (422) or an order id taken (409)."""
        if appended.status == "conflict":
            raise ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used with another request body",
                           "Idempotency-Key")
        if appended.status == "exists":
            raise ApiError(409, "order_exists", "an order with this id exists (placed with another "
                                                "Idempotency-Key)", "id")

    # --- keys ----------------------------------------------------------------------------------------------

    def mint_key(self, role: str, courier: str | None) -> tuple[str, str]:
        """A new API key for `role` (a courier key is bound to its courier): (key, id)."""
        if (role == "courier") != (courier is not None):
            raise ApiError(422, "invalid", "a courier key needs courier_id, other roles take none", "courier_id")
        if courier is not None and courier not in self.couriers():
            raise ApiError(422, "invalid", f"unknown courier {courier!r}", "courier_id")
        key = "lm_" + secrets.token_urlsafe(32)
        kid = key_id(key)
        self.store.put_key(kid, {"role": role, "courier": courier or ""})
        return key, kid

    def couriers(self) -> Mapping[str, Mapping[str, str]]:
        """The couriers of the deployment as configured now: {id: {"store", "profile"}}."""
        return self.config()["couriers"]

    def config(self, *, fresh: bool = False) -> dict[str, Any]:
        """The configuration the worker last published, or the deployment's own before any `PUT` (read from the
        store at most every CACHE_S, unless `fresh`)."""
        now = time.monotonic()
        if fresh or self._config is None or now - self._config[0] > CACHE_S:
            raw = self.store.get("config")
            self._config = (now, self._view if raw is None else dict(json.loads(raw)))
        return self._config[1]

    def authenticate(self, key: str) -> dict[str, str] | None:
        """The key's record (role, courier); a key found is trusted for KEY_CACHE_S in this process, so a key
        revoked through another API process is refused there within that time (here at once)."""
        kid, now = key_id(key), time.monotonic()
        cached = self._keys.get(kid)
        if cached is not None and now - cached[0] < KEY_CACHE_S:
            return cached[1]
        record = self.store.get_key(kid)
        admin = self.settings.admin_key
        if record is None and admin is not None and hmac.compare_digest(kid, key_id(admin.get_secret_value())):
            record = {"role": "admin", "courier": ""}  # the configured admin key, lost with the store's data: again
            self.store.put_key(kid, record)
        if record is None:
            self._keys.pop(kid, None)
            return None
        if len(self._keys) > 100_000:
            self._keys.clear()
        record = {**record, "id": kid}
        self._keys[kid] = (now, record)
        return record

    def revoke(self, kid: str) -> bool:
        self._keys.pop(kid, None)
        return self.store.delete_key(kid)
