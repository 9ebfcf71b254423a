"""Admission where an order is posted: the API process allocates and quotes it, reserves its counts in the store
and appends it, all before answering, so that `201` needs no dispatch worker (setting `admission = "api"`).

The `Admitter` holds the deployment's allocator and quoter (`dispatch.operations.admit`: the same code the core
places orders with) over the store's counters (stock, pickup-point places, locker compartments) and the stores'
load as the worker last published it (`api.worker.LOAD_KEY`, at most `LOAD_CACHE_S` old). An order's admission
reads the counters it could take in one round trip, allocates, and appends the `place` command with its claims
in one atomic step (`Store.append(claims=...)`): if another process took a count first, the append writes
nothing (`short`) and the order is admitted again with fresh counts, up to `RETRIES` times. The worker then
places the order with its admission as made (`Operations.place(admission=...)`), so the API's answer and the
worker's books agree on where it went. Dispatch follows, as fast as the worker applies the stream.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from api.deployment import Deployment
from api.store import Store
from api.store.base import Appended
from api.worker import FACILITIES_KEY, LOAD_KEY
from dispatch.allocation import Allocator
from dispatch.load import PublishedLoad
from dispatch.model import COMPARTMENT_SIZES, Order
from dispatch.operations import Admission, admit
from dispatch.promise import Quoter

LOAD_CACHE_S = 0.1
"""How long an API process allocates by the stores' load it last read."""
CONFIG_CACHE_S = 1.0
"""How often an API process looks whether the facilities changed (`PUT /v1/facilities`)."""
RETRIES = 5
"""Admissions of one request when other processes keep taking the counts it read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Admitted:
    """An order admitted and appended (`appended.status` accepted), or found appended before (duplicate,
    conflict, exists): `admission` is None then."""

    appended: Appended
    admission: Admission | None


class _Allocation:
    """The allocator and quoter of one set of facilities."""

    def __init__(self, deployment: Deployment, load: PublishedLoad) -> None:
        opts = deployment.options
        self.facilities = deployment.facilities
        self.allocator = Allocator(deployment.network, self.facilities, profile=opts.allocation_profile,
                                   max_snap_m=opts.max_snap_m, load=load if opts.rank == "eta" else None,
                                   max_detour_s=opts.max_detour_s)
        self.quoter = Quoter(self.allocator, load, opts.promise)
        self.store_ids = tuple(s.id for s in self.allocator.stores)
        self.pickup_ids = tuple(p.id for p in self.allocator.pickup_points)
        self.locker_ids = tuple(lk.id for lk in self.allocator.lockers)

    def wanted(self, order: Order) -> list[tuple[str, list[str]]]:
        """The counters `order` could take: its SKUs at every store, the places of every pickup point (pickup
        and return orders), the compartments of every locker (locker orders)."""
        skus = sorted({i.sku for i in order.items})
        out = [(f"stock:{s}", skus) for s in self.store_ids] if skus else []
        if order.mode in ("pickup_point", "return_pickup_point"):
            out.extend((f"pickup:{p}", ["free"]) for p in self.pickup_ids)
        if order.mode == "locker":
            out.extend((f"locker:{lk}", list(COMPARTMENT_SIZES)) for lk in self.locker_ids)
        return out


class Admitter:
    """Admits orders in an API process (see the module doc); thread-safe."""

    def __init__(self, store: Store, deployment: Deployment) -> None:
        self.store = store
        self.base = deployment
        self.load = PublishedLoad()
        self._lock = threading.Lock()
        self._facilities_raw: str | None = None
        self._checked = 0.0
        self._loaded = 0.0
        self._alloc = _Allocation(deployment, self.load)

    def _current(self) -> _Allocation:
        """The allocation of the facilities in force (rebuilt after a `PUT /v1/facilities` took effect), its load
        refreshed (threads may race here: each reads a whole value and sets it whole)."""
        now = time.monotonic()
        if now - self._checked > CONFIG_CACHE_S:
            self._checked = now
            raw = self.store.get(FACILITIES_KEY)
            if raw != self._facilities_raw:
                self._facilities_raw = raw
                deployment = self.base if raw is None else self.base.configured({"facilities": json.loads(raw)})
                self._alloc = _Allocation(deployment, self.load)
        if now - self._loaded > LOAD_CACHE_S:
            self._loaded = now
            raw = self.store.get(LOAD_KEY)
            if raw is not None:
                self.load.update(json.loads(raw))
        return self._alloc

    def place(self, order: Order, command: Mapping[str, object], *, now: int, idempotency: tuple[str, str],
              record: Mapping[str, str]) -> Admitted:
        """Admit `order` (placed at `now`) and append `command` (the `place` command) with its admission and the
        order's record, its counts taken; retried while other processes take them first."""
        for _ in range(RETRIES):
            alloc = self._current()
            wanted = alloc.wanted(order)
            levels = self.store.counters(wanted)
            with self._lock:  # one allocator per process: its counts are this request's until it is done
                alloc.allocator.inventory.set_counters(
                    {name: dict(zip(fields, values, strict=True)) for (name, fields), values in zip(
                        wanted, levels, strict=True)})
                admission = admit(alloc.allocator, alloc.quoter, order, now)
            a = admission.allocation
            fields = {**record, "state": "allocated" if a.allocated else "rejected",
                      "updated": str(now), "quoted_eta": json.dumps(admission.quoted_eta)}
            if a.allocated:
                fields.update(store=json.dumps(a.store), facility=json.dumps(a.facility))
            else:
                fields["reason"] = json.dumps(a.reason)
            appended = self.store.append({**command, "admission": admission.to_json()}, now=now,
                                         idempotency=idempotency, order=(order.id, fields),
                                         claims=admission.claims())
            if appended.status != "short":
                return Admitted(appended=appended, admission=admission if appended.status == "accepted" else None)
        return Admitted(appended=appended, admission=None)
