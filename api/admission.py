"""Admission where an order is posted: the API process allocates and quotes it, reserves its counts in the store
and appends it, all before answering, so that `201` needs no dispatch worker (setting `admission = "api"`).

The `Admitter` holds the deployment's allocator and quoter (`dispatch.operations.admit`: the same code the core
places orders with) over the store's counters (stock, pickup-point places, locker compartments) and the stores'
load as the worker last published it (`api.worker.LOAD_KEY`, at most `LOAD_CACHE_S` old). An order's admission
allocates by the counts as the process last read them (see `Admitter.place`), and appends the `place` command
with its claims in one atomic step (`Store.append(claims=...)`): if another process took a count first, the
append writes nothing (`short`) and the order is admitted again with fresh counts, up to `RETRIES` times. The
worker then places the order with its admission as made (`Operations.place(admission=...)`), so the API's answer
and the worker's books agree on where it went (an order too large for its store's couriers is refused here as the
worker would refuse it, by the fleet the worker last published: `api.worker.MOST_BOXES_KEY`). Dispatch follows,
as fast as the worker applies the stream.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from api.deployment import Deployment
from api.store import Store, json_text
from api.store.base import Appended
from api.worker import FACILITIES_KEY, LOAD_KEY, MOST_BOXES_KEY
from dispatch.allocation import NO_FREE_COMPARTMENT, OUT_OF_STOCK, PICKUP_POINT_FULL, Allocator
from dispatch.inventory import PICKUP_FIELD, counter_name
from dispatch.load import PublishedLoad
from dispatch.model import COMPARTMENT_SIZES, Order, deadline
from dispatch.operations import Admission, admit, most_boxes
from dispatch.promise import Quoter

LOAD_CACHE_S = 0.1
"""How long an API process allocates by the stores' load it last read."""
COUNTS_CACHE_S = 1.0
"""How often an API process reads every counter afresh (between reads it counts its own admissions)."""
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
    record: Mapping[str, str]
    """The order's record as this admission wrote it (what an accepted order's answer shows)."""


class _Allocation:
    """The allocator and quoter of one set of facilities."""

    def __init__(self, deployment: Deployment, load: PublishedLoad, most: Mapping[str, int] | None = None) -> None:
        opts = deployment.options
        self.most = dict(most_boxes(deployment.couriers.values()) if most is None else most)
        """Per store, the most boxes one of its couriers carries (a larger order is refused as the core does)."""
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
        out = [(counter_name("stock", s), skus) for s in self.store_ids] if skus else []
        if order.mode in ("pickup_point", "return_pickup_point"):
            out.extend((counter_name("pickup", p), [PICKUP_FIELD]) for p in self.pickup_ids)
        if order.mode == "locker":
            out.extend((counter_name("locker", lk), list(COMPARTMENT_SIZES)) for lk in self.locker_ids)
        return out


class Admitter:
    """Admits orders in an API process (see the module doc); thread-safe."""

    def __init__(self, store: Store, deployment: Deployment) -> None:
        self.store = store
        self.base = deployment
        self.load = PublishedLoad()
        self._lock = threading.Lock()
        self._config_raw: tuple[str | None, str | None] = (None, None)
        self._checked = 0.0
        self._loaded = 0.0
        self._counted = 0.0
        self._alloc = _Allocation(deployment, self.load)

    async def _current(self) -> _Allocation:
        """The allocation of the facilities in force (rebuilt after a `PUT /v1/facilities` took effect), its load
        refreshed (requests may race here: each reads a whole value and sets it whole)."""
        now = time.monotonic()
        config_due, load_due = now - self._checked > CONFIG_CACHE_S, now - self._loaded > LOAD_CACHE_S
        if config_due or load_due:
            if config_due:
                self._checked = now
            if load_due:
                self._loaded = now
            facilities, most, load = await self.store.get_many_async([FACILITIES_KEY, MOST_BOXES_KEY, LOAD_KEY])
            if config_due and (facilities, most) != self._config_raw:
                self._config_raw = facilities, most
                deployment = self.base if facilities is None else self.base.configured(
                    {"facilities": json.loads(facilities)})
                self._alloc = _Allocation(deployment, self.load, None if most is None else json.loads(most))
                self._counted = 0.0
            if load_due and load is not None:
                self.load.update(json.loads(load))
        return self._alloc

    async def _count(self, alloc: _Allocation, wanted: list[tuple[str, list[str]]]) -> None:
        """Read counters from the store into the allocator's counts."""
        levels = await self.store.counters_async(wanted)
        with self._lock:
            alloc.allocator.inventory.set_counters(
                {name: dict(zip(fields, values, strict=True)) for (name, fields), values in zip(
                    wanted, levels, strict=True)})

    async def place(self, order: Order, command: Mapping[str, object], *, now: int,
                    idempotency: tuple[str, str], record: Mapping[str, str]) -> Admitted:
        """Admit `order` (placed at `now`) and append `command` (the `place` command) with its admission and the
        order's record, its counts taken. The store is called without blocking the event loop; allocating runs
        on it (a fraction of a millisecond).

        The allocator allocates by the counts as this process last knew them: all of them read every
        `COUNTS_CACHE_S`, less what its own admissions took since. The store's atomic check is what decides: an
        append that finds a count short, and a rejection for want of stock or room, read the order's counters
        afresh and admit it again (other processes and the worker's releases change the counts too)."""
        alloc = await self._current()
        if time.monotonic() - self._counted > COUNTS_CACHE_S:
            self._counted = time.monotonic()
            await self._count(alloc, [(name, sorted(fields)) for name, fields in
                                      alloc.allocator.inventory.counters().items() if fields])
        fresh = False
        for _ in range(RETRIES):
            with self._lock:  # one allocator per process: its counts are this request's until it is done
                admission = admit(alloc.allocator, alloc.quoter, order, now, most=alloc.most)
            a = admission.allocation
            if fresh or a.allocated or (a.reason or "").split(":")[0] not in _COUNTED:
                fields = {**record, "state": "allocated" if a.allocated else "rejected",
                          "updated": str(now), "quoted_eta": json_text(admission.quoted_eta)}
                if a.allocated:  # what the worker's `allocated` event will say, in the first answer too
                    fields.update(store=json_text(a.store), facility=json_text(a.facility),
                                  promise_by=json_text(deadline(self.base.options.promised(order))))
                else:
                    fields["reason"] = json_text(a.reason)
                claims = admission.claims()
                appended = await self.store.append_async(
                    {**command, "admission": admission.to_json(), "noreply": True}, now=now,
                    idempotency=idempotency, order=(order.id, fields), claims=claims)
                if appended.status != "short":
                    if appended.status == "accepted":
                        with self._lock:
                            alloc.allocator.inventory.add_counts((n, f, -units) for n, f, units in claims)
                    return Admitted(appended=appended, record=fields,
                                    admission=admission if appended.status == "accepted" else None)
            # a count was short, or a rejection for want of one may be out of date: read the order's counters
            fresh = True
            await self._count(alloc, alloc.wanted(order))
        return Admitted(appended=appended, admission=None, record=fields)


_COUNTED = frozenset({OUT_OF_STOCK, PICKUP_POINT_FULL, NO_FREE_COMPARTMENT})
"""Rejections that fresher counts could change."""
