"""The per-store dispatcher: keeps open orders and courier states, asks its policy on each tick and new order.

Pure logic: time is passed in (integer seconds, never going back) and nothing is read or written outside the
object; the simulator and the live API drive it with the same calls.

Order life: open -> committed to a courier (`assigned`, in `carrying`) -> on board (`picked_up`) -> done
(`delivered`; a return is done once its courier is back at the store). An order is never dropped: an open
order is in a trip of the latest decisions or listed in their `unassigned` with a reason, and orders a courier
did not deliver (it came back to the store with them, or went off shift before leaving) are open again.

Courier events (`on_courier_event`):

- `picked_up`: an `assigned` courier leaves the store with its trip (-> `en_route`).
- `delivered` (`order_id`): handed over (or, for a return, collected at the door: on board until the store).
  With nothing left, a store courier is `returning`, a free-floating one `idle` where it is.
- `at_store`: arrived at the store. Returning or en-route couriers become `idle` there (undelivered orders
  reopen, collected returns are done); an `assigned` courier stays assigned until `picked_up`.
- `position` (`location`): where the courier is now.
- `off` / `on`: shift break or end / back on (optionally at `location`). Going off reopens a committed trip not
  yet picked up; a courier with parcels on board must deliver or bring them back first.

Each decision sees the previous one's tentative plan (`DispatchState.plan`), so a policy can repair its plan on
events instead of building it from nothing; the plan is part of the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from dispatch.errors import InvalidDispatchError
from dispatch.places import LivePlaces
from dispatch.policy import DispatchPolicy
from dispatch.state import (
    DEFAULT_CO2_G_PER_KM,
    Courier,
    CourierStatus,
    Decisions,
    DispatchOrder,
    DispatchState,
    OpenQueue,
    QueueArrays,
    TravelMatrices,
    Trip,
    array_deleted,
    array_inserted,
)
from routing.matrix import IntArray

CourierEvent = Literal["picked_up", "delivered", "at_store", "position", "off", "on"]
COURIER_EVENTS: tuple[CourierEvent, ...] = get_args(CourierEvent)


@dataclass(frozen=True, slots=True, kw_only=True)
class FreeTable:
    """Each active courier of a store (`couriers`, in the dispatcher's order) with, aligned: where (`location`)
    and when (`time`) it can start new work, the seconds from there to the store by its profile (`to_store`),
    whether it is idle, its shift end, its profile (a row of `profiles`, sorted) and its rank by id."""

    couriers: tuple[Courier, ...]
    profiles: tuple[str, ...]
    profile: IntArray
    location: IntArray
    time: IntArray
    to_store: IntArray
    idle: npt.NDArray[np.bool_]
    shift_end: IntArray
    rank: IntArray


@dataclass(slots=True, kw_only=True)
class _FreeColumns:
    """One row per courier of the dispatcher (in its order, off ones too) with what `FreeTable` holds that does
    not depend on the time, and each courier's shape (`lag`, `floor`: see `DispatchState.free_shape`; `odd`:
    none). `couriers[i]` is the object row i was computed for (None: not yet)."""

    couriers: list[Courier | None]
    profiles: tuple[str, ...]
    profile: IntArray
    rank: IntArray
    active: npt.NDArray[np.bool_]
    idle: npt.NDArray[np.bool_]
    odd: npt.NDArray[np.bool_]
    location: IntArray
    to_store: IntArray
    lag: IntArray
    floor: IntArray
    shift_end: IntArray

    @classmethod
    def of(cls, couriers: tuple[Courier, ...]) -> _FreeColumns:
        """Rows still to fill for `couriers` (profile and rank, which a courier keeps, are set)."""
        n = len(couriers)
        profiles = tuple(sorted({c.profile for c in couriers}))
        row = {p: k for k, p in enumerate(profiles)}
        rank = np.empty(n, dtype=np.int64)
        rank[sorted(range(n), key=lambda i: couriers[i].id)] = np.arange(n, dtype=np.int64)
        return cls(couriers=[None] * n, profiles=profiles,
                   profile=np.array([row[c.profile] for c in couriers], dtype=np.int64).reshape(n), rank=rank,
                   active=np.zeros(n, dtype=np.bool_), idle=np.zeros(n, dtype=np.bool_),
                   odd=np.zeros(n, dtype=np.bool_), location=np.zeros(n, dtype=np.int64),
                   to_store=np.zeros(n, dtype=np.int64), lag=np.zeros(n, dtype=np.int64),
                   floor=np.zeros(n, dtype=np.int64), shift_end=np.zeros(n, dtype=np.int64))


class Dispatcher:
    """Rolling-horizon dispatch of one dark store with a pluggable `DispatchPolicy`.

    `tick_s` is how often the caller calls `tick` (a trip whose courier must set off before the next tick
    starts now). Couriers may be store couriers (`home_store == store_id`) or free-floating (`None`).
    """

    def __init__(self, policy: DispatchPolicy, *, store_id: str, store_location: int,
                 travel: TravelMatrices | LivePlaces,
                 tick_s: int = 60, couriers: Iterable[Courier] = (),
                 co2_g_per_km: Mapping[str, float] = DEFAULT_CO2_G_PER_KM) -> None:
        if isinstance(tick_s, bool) or not isinstance(tick_s, int) or tick_s < 1:
            raise InvalidDispatchError("tick_s", f"must be a positive integer, got {tick_s!r}")
        self.policy = policy
        self.store_id = store_id
        self.store_location = store_location
        self.places: LivePlaces | None = None
        self._travel: TravelMatrices | None = None
        self.version = 0
        """Changes whenever anything the dispatcher knows may have changed (callers cache by it)."""
        self.queue_version = 0
        """Changes when the open orders may have changed (new, committed, reopened, cancelled, restored, quoted),
        not when only time passes or couriers move: callers keep what they read of the queue by it."""
        self._open = OpenQueue()
        """The open orders (none on a courier), kept in `FIFO` order as they change."""
        self._picking: IntArray = np.empty(0, dtype=np.int64)
        """`ready_at` of every tracked order that is not a return, ascending (what the pickers have to do);
        replaced on each change, never changed in place."""
        self._free: dict[str, tuple[Courier, tuple[int, int, int] | None]] = {}
        self._free_epoch: tuple[int, int, int | None] | None = None
        self._columns: _FreeColumns | None = None
        self._trips: dict[str, tuple[Courier, Trip]] = {}
        self.travel = travel
        self.tick_s = tick_s
        self.co2_g_per_km = MappingProxyType(dict(co2_g_per_km))
        self._orders: dict[str, DispatchOrder] = {}
        self._couriers: dict[str, Courier] = {}
        self._collected: dict[str, list[str]] = {}
        self._completed: dict[str, int] = {}
        self._now = 0
        self._plan: dict[str, tuple[str, ...]] = {}
        """The last decision's tentative plan (courier id -> order ids): the next decision starts from it."""
        self.last: Decisions | None = None
        for c in couriers:
            self.add_courier(c)
        self._checked_state()  # validates store, couriers and CO2 figures up front

    # --- what the dispatcher knows -------------------------------------------------------------------------

    @property
    def now(self) -> int:
        return self._now

    @property
    def travel(self) -> TravelMatrices:
        """The matrices decisions read: fixed ones, or those over the store's live places."""
        if self.places is not None:
            return self.places.matrices()
        assert self._travel is not None
        return self._travel

    @travel.setter
    def travel(self, travel: TravelMatrices | LivePlaces) -> None:
        self._changed()
        self._free_epoch = None  # what free_table keeps is of the old travel
        if isinstance(travel, LivePlaces):
            self.places, self._travel = travel, None
            travel.bind(self.referenced_locations)
        else:
            self.places, self._travel = None, travel

    def referenced_locations(self) -> set[int]:
        """Every location index an order or courier of this store refers to (the store's own included)."""
        out = {self.store_location}
        out.update(o.location for o in self._orders.values())
        out.update(c.position for c in self._couriers.values())
        return out

    @property
    def couriers(self) -> dict[str, Courier]:
        return dict(self._couriers)

    @property
    def orders(self) -> dict[str, DispatchOrder]:
        """Every order not done yet: open or on a courier."""
        return dict(self._orders)

    @property
    def open_orders(self) -> tuple[DispatchOrder, ...]:
        carried = {oid for c in self._couriers.values() for oid in c.carrying}
        return tuple(o for o in self._orders.values() if o.id not in carried)

    def orders_view(self) -> Iterable[DispatchOrder]:
        """Every order not done yet, without a copy (read it at once: it changes with the dispatcher)."""
        return self._orders.values()

    def is_open(self, order_id: str) -> bool:
        """Whether the order is open: tracked here and on no courier."""
        return order_id in self._open

    def queue(self) -> tuple[DispatchOrder, ...]:
        """The open orders first come, first served (`FIFO`)."""
        return self._open.arrays().orders

    def queue_arrays(self) -> QueueArrays:
        """`queue()` with its columns as arrays (kept until the open orders change: `queue_version`)."""
        return self._open.arrays()

    def picking(self) -> IntArray:
        """When each tracked order that is not a return is (or was) ready, ascending (do not change it)."""
        return self._picking

    @property
    def travel_epoch(self) -> tuple[int, int, int | None]:
        """Changes when the travel matrices' values may have changed for the places already in them (a new
        place changes none): new matrices, a pool that grew or was restored, a new hour."""
        if self.places is None:
            return (id(self._travel), 0, None)
        return (id(self.places), self.places.pool.version, self.places.pool.hour)

    def free_table(self, now: int) -> FreeTable:
        """Each active courier with where and when it can start new work (`DispatchState.free_at` at `now`), as
        arrays (`FreeTable`).

        What does not depend on the time (each courier's `DispatchState.free_shape`, its ride to the store, its
        shift end ...) is kept in one row per courier while the courier (the object: a change replaces it) and
        the travel stay the same, so a busy store answers without riding every courier's trip again.
        """
        self._keep_for_travel()
        cols = self._columns
        if cols is None or len(cols.couriers) != len(self._couriers):
            cols = self._columns = _FreeColumns.of(tuple(self._couriers.values()))
        couriers = list(self._couriers.values())  # what the rows are of, once they are filled
        for i, c in enumerate(couriers):
            if cols.couriers[i] is not c:
                self._free_row(cols, i, c, now)
        rows = np.flatnonzero(cols.active)
        location, to_store = cols.location[rows], cols.to_store[rows]
        time = np.maximum(now + cols.lag[rows], cols.floor[rows])
        odd = np.flatnonzero(cols.odd[rows])
        if len(odd):  # no shape: ride the trip at this time
            view = self._view(now)
            dur = self.travel.durations
            for k in odd.tolist():
                c = couriers[rows[k]]
                location[k], time[k] = view.free_at(c)
                to_store[k] = dur[c.profile][location[k], self.store_location]
        return FreeTable(couriers=tuple(couriers[i] for i in rows.tolist()), profiles=cols.profiles,
                         profile=cols.profile[rows], location=location, time=time, to_store=to_store,
                         idle=cols.idle[rows], shift_end=cols.shift_end[rows], rank=cols.rank[rows])

    def _free_row(self, cols: _FreeColumns, i: int, c: Courier, now: int) -> None:
        """Row `i` of the kept columns for courier `c` (its shape is kept too, as long as `c` is)."""
        got = self._free.get(c.id)
        if got is None or got[0] is not c:
            got = self._free[c.id] = (c, self._view(now).free_shape(c) if c.status != "off" else None)
        shape = got[1]
        cols.couriers[i] = c
        cols.active[i] = c.status != "off"
        cols.idle[i] = c.status == "idle"
        cols.odd[i] = shape is None and c.status != "off"
        cols.shift_end[i] = c.shift_end
        location, cols.lag[i], cols.floor[i] = shape if shape is not None else (self.store_location, 0, 0)
        cols.location[i] = location
        cols.to_store[i] = self.travel.durations[c.profile][location, self.store_location]

    @property
    def completed(self) -> dict[str, int]:
        """Order id -> when it was delivered (a return: when it reached the store)."""
        return dict(self._completed)

    def state(self, now: int | None = None, *, extra: DispatchOrder | None = None,
              copy: bool = True) -> DispatchState:
        """What a decision sees now (orders and couriers were checked as they came in), with `extra` added if
        given (a dry run: `preview`). `copy=False` shares the dispatcher's orders by id instead of copying them:
        for a state read at once (`tick`), never kept."""
        orders = (dict(self._orders) if copy else self._orders) if extra is None else {**self._orders,
                                                                                        extra.id: extra}
        self._keep_for_travel()
        return DispatchState.trusted(now=self._now if now is None else now, store_id=self.store_id,
                                     store_location=self.store_location, orders=tuple(orders.values()),
                                     couriers=tuple(self._couriers.values()), travel=self.travel,
                                     tick_s=self.tick_s, co2_g_per_km=self.co2_g_per_km, by_id=orders,
                                     plan=MappingProxyType(self._plan),
                                     queue=self._open.arrays() if extra is None else None, trips=self._trips)

    def _checked_state(self) -> DispatchState:
        """The state through every check of `DispatchState` (on set-up, new couriers and orders, restore)."""
        return DispatchState(now=self._now, store_id=self.store_id, store_location=self.store_location,
                             orders=tuple(self._orders.values()), couriers=tuple(self._couriers.values()),
                             travel=self.travel, tick_s=self.tick_s, co2_g_per_km=self.co2_g_per_km)

    # --- inputs --------------------------------------------------------------------------------------------

    def _view(self, now: int) -> DispatchState:
        """A state at `now` that copies nothing (for reading couriers at once: it changes with the dispatcher)."""
        return DispatchState.trusted(now=now, store_id=self.store_id, store_location=self.store_location, orders=(),
                                     couriers=tuple(self._couriers.values()), travel=self.travel, tick_s=self.tick_s,
                                     co2_g_per_km=self.co2_g_per_km, by_id=self._orders)

    def _keep_for_travel(self) -> None:
        """Forget the free shapes and trips kept for couriers when the travel changed since they were made."""
        epoch = self.travel_epoch
        if epoch != self._free_epoch:
            self._free.clear()
            self._trips.clear()
            self._columns = None
            self._free_epoch = epoch

    def _track_picking(self, order: DispatchOrder, *, add: bool) -> None:
        if order.is_return:
            return
        i = int(np.searchsorted(self._picking, order.ready_at))
        self._picking = array_inserted(self._picking, i, order.ready_at) if add else array_deleted(self._picking, i)

    def _changed(self, *, queue: bool = True) -> None:
        """Something but the time changed (`queue`: the open orders may have)."""
        self.version += 1
        if queue:
            self.queue_version += 1

    def _advance(self, now: int) -> None:
        if isinstance(now, bool) or not isinstance(now, int):
            raise InvalidDispatchError("now", f"must be integer seconds, got {now!r}")
        if now < self._now:
            raise InvalidDispatchError("now", f"time went back from {self._now} to {now}")
        self._now = now
        self.version += 1

    def add_courier(self, courier: Courier) -> None:
        if courier.id in self._couriers:
            raise InvalidDispatchError("courier.id", f"duplicate courier id {courier.id!r}")
        if courier.carrying:
            raise InvalidDispatchError(f"courier {courier.id}: carrying", "a new courier carries nothing")
        self._couriers[courier.id] = courier
        self._changed(queue=False)
        try:
            self._checked_state()
        except Exception:
            del self._couriers[courier.id]
            raise

    def on_order(self, order: DispatchOrder, now: int) -> Decisions:
        """Take a new order and decide at once (the policy may hold it)."""
        self._check_new(order)
        self._advance(now)
        self._orders[order.id] = order
        self._open.add(order)
        self._track_picking(order, add=True)
        self._changed()
        try:
            return self.tick(now)
        except Exception:
            del self._orders[order.id]
            self._open.discard(order.id)
            self._track_picking(order, add=False)
            self._changed()
            raise

    def preview(self, order: DispatchOrder, now: int) -> Decisions:
        """What the policy would decide at `now` (>= the dispatcher's time) with `order` added: a dry run for
        quotes, which changes nothing (the order is not kept, no trip is committed)."""
        self._check_new(order)
        if isinstance(now, bool) or not isinstance(now, int) or now < self._now:
            raise InvalidDispatchError("now", f"must be integer seconds >= {self._now}, got {now!r}")
        return self.policy.decide(self.state(now, extra=order))

    def _check_new(self, order: DispatchOrder) -> None:
        """A new order of this store: not seen before, and what `DispatchState` would check of it."""
        if order.id in self._orders or order.id in self._completed:
            raise InvalidDispatchError("order.id", f"duplicate order id {order.id!r}")
        if order.store != self.store_id:
            raise InvalidDispatchError("order.store", f"{order.store!r} is not this store {self.store_id!r}")
        self._check_order(order)

    def _check_order(self, order: DispatchOrder) -> None:
        """What `DispatchState` would check of one more order: a known location, the couriers' load dimensions."""
        if not isinstance(order, DispatchOrder):
            raise InvalidDispatchError("order", f"must be a DispatchOrder, got {type(order).__name__}")
        n = self.travel.n_locations
        if order.location >= n:
            raise InvalidDispatchError("order.location", f"{order.location} is outside the {n} locations")
        first = next(iter(self._couriers.values()), None)
        dims = len(first.capacity_vector) if first is not None else next(
            (len(o.load_vector) for o in self._orders.values()), None)
        if dims is not None and len(order.load_vector) != dims:
            raise InvalidDispatchError("order.load", f"has {len(order.load_vector)} dimensions, expected {dims} "
                                       "like the couriers' capacity")

    def set_quote(self, order_id: str, quoted_by: int | None) -> None:
        """Record the ETA the customer was quoted for an order the dispatcher tracks (policies may keep it)."""
        order = self._orders.get(order_id)
        if order is None:
            raise InvalidDispatchError("order_id", f"unknown order {order_id!r}")
        self._orders[order_id] = replace(order, quoted_by=quoted_by)
        if order_id in self._open:
            self._open.add(self._orders[order_id])
        self._changed()

    def set_ready(self, order_id: str, ready_at: int) -> bool:
        """The store finished picking a tracked order at `ready_at` (not before it was placed): policies see it
        ready from then on if that is earlier than counted. A report at or after it changes nothing (the order
        counted as ready then, and deciding again would cost a solve). Returns whether it changed anything."""
        order = self._orders.get(order_id)
        if order is None:
            raise InvalidDispatchError("order_id", f"unknown order {order_id!r}")
        ready_at = max(int(ready_at), order.placed_at)
        if ready_at >= order.ready_at:
            return False
        self._track_picking(order, add=False)
        self._orders[order_id] = ready = replace(order, ready_at=ready_at)
        self._track_picking(ready, add=True)
        if order_id in self._open:
            self._open.add(ready)
        self._changed()
        return True

    def cancel(self, order_id: str, now: int) -> None:
        """Withdraw an open order (one on a courier cannot be cancelled here)."""
        self._advance(now)
        if order_id not in self._orders:
            raise InvalidDispatchError("order_id", f"unknown order {order_id!r}")
        if not self.is_open(order_id):
            raise InvalidDispatchError("order_id", f"order {order_id!r} is already on a courier")
        self._track_picking(self._orders.pop(order_id), add=False)
        self._open.discard(order_id)
        self._changed()

    def on_courier_event(self, courier_id: str, event: CourierEvent, now: int, *, order_id: str | None = None,
                         location: int | None = None) -> None:
        """Record what a courier did (see the module doc); decisions follow at the next tick."""
        if courier_id not in self._couriers:
            raise InvalidDispatchError("courier_id", f"unknown courier {courier_id!r}")
        if event not in COURIER_EVENTS:
            raise InvalidDispatchError("event", f"must be one of {list(COURIER_EVENTS)}, got {event!r}")
        if location is not None and not 0 <= location < self.travel.n_locations:
            raise InvalidDispatchError("location", f"{location} is outside the {self.travel.n_locations} locations")
        self._advance(now)
        c = self._couriers[courier_id]
        delivered: DispatchOrder | None = None
        where = f"courier {courier_id}: {event}"
        if event == "picked_up":
            if c.status != "assigned":
                raise InvalidDispatchError(where, f"the courier is {c.status}, not assigned a trip")
            c = replace(c, status="en_route", position=self.store_location, available_at=now)
        elif event == "delivered":
            delivered = self._orders.get(order_id) if order_id is not None else None
            c = self._delivered(c, order_id, now, where)
        elif event == "at_store":
            c = self._at_store(c, now)
        elif event == "position":
            if location is None:
                raise InvalidDispatchError(where, "needs a location")
            c = replace(c, position=location, available_at=c.available_at if c.status == "assigned" else now)
        elif event == "off":
            if c.status == "en_route" or self._collected.get(c.id):
                raise InvalidDispatchError(where, "the courier still has parcels on board: report delivered or "
                                           "at_store first")
            c = replace(c, status="off", carrying=())
        else:
            if c.status != "off":
                raise InvalidDispatchError(where, f"the courier is {c.status}, not off")
            c = replace(c, status="idle", available_at=now, position=c.position if location is None else location)
        before = self._couriers[courier_id]
        # the queue changes when orders on a courier reopen; a delivered order leaves the orders (the picking
        # queue counts it only while it is still to pick: never, once delivered, unless it was early)
        reopened = event in ("off", "at_store") and bool(before.carrying)
        early = delivered is not None and delivered.ready_at > now
        self._couriers[courier_id] = c
        for oid in before.carrying:
            if oid not in c.carrying and oid in self._orders:
                self._open.add(self._orders[oid])
        self._changed(queue=reopened or early)

    def _delivered(self, c: Courier, order_id: str | None, now: int, where: str) -> Courier:
        if c.status == "assigned" and order_id in c.carrying:
            raise InvalidDispatchError(where, f"order {order_id!r} is not picked up yet: the courier has not left the "
                                       "store with its trip (picked_up first)")
        if c.status != "en_route" or order_id not in c.carrying:
            raise InvalidDispatchError(where, f"order {order_id!r} is not on board (carrying {list(c.carrying)})")
        order = self._orders.pop(order_id)
        self._track_picking(order, add=False)
        if order.is_return and not c.free_floating:
            self._collected.setdefault(c.id, []).append(order_id)
        else:
            self._completed[order_id] = now
        left = tuple(x for x in c.carrying if x != order_id)
        status: CourierStatus = "en_route" if left else ("idle" if c.free_floating else "returning")
        return replace(c, status=status, carrying=left, position=order.location, available_at=now)

    def _at_store(self, c: Courier, now: int) -> Courier:
        for oid in self._collected.pop(c.id, []):
            self._completed[oid] = now
        if c.status == "assigned":
            return replace(c, position=self.store_location)
        status: CourierStatus = "off" if c.status == "off" else "idle"
        return replace(c, status=status, carrying=(), position=self.store_location, available_at=now)

    # --- snapshot ------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Orders, couriers and what is done (the policy and travel are configuration): ready for orjson, which
        writes each `DispatchOrder` and `Courier` as the object of its fields; `restore` takes it as it is or as
        parsed back from that JSON."""
        return {
            "now": self._now,
            "orders": list(self._orders.values()),  # immutable: shared, not copied
            "couriers": list(self._couriers.values()),
            "collected": {cid: list(oids) for cid, oids in self._collected.items()},
            "completed": dict(self._completed),
            "plan": {cid: list(oids) for cid, oids in self._plan.items()},
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Take the state of `snapshot()`, replacing this dispatcher's orders and couriers."""
        self._now = int(data["now"])
        self._orders = {o.id: o for o in map(_order_of, data["orders"])}
        self._couriers = {c.id: c for c in map(_courier_of, data["couriers"])}
        self._collected = {cid: list(oids) for cid, oids in data["collected"].items()}
        self._completed = {oid: int(t) for oid, t in data["completed"].items()}
        self._plan = {cid: tuple(oids) for cid, oids in data.get("plan", {}).items()}
        self.last = None
        self._columns = None
        self._open = OpenQueue(self.open_orders)
        self._picking = np.sort(np.array([o.ready_at for o in self._orders.values() if not o.is_return],
                                         dtype=np.int64))
        self._changed()
        self._checked_state()

    # --- decisions -----------------------------------------------------------------------------------------

    def tick(self, now: int) -> Decisions:
        """Ask the policy, commit the trips that start now (their couriers become `assigned`)."""
        self._advance(now)
        decisions = self.policy.decide(self.state(now, copy=False))
        for trip in decisions.trips:
            c = self._couriers.get(trip.courier_id)
            if c is None or c.carrying or c.status not in ("idle", "returning"):
                raise InvalidDispatchError("decisions.trips", f"courier {trip.courier_id!r} cannot start a trip")
            missing = [oid for oid in trip.order_ids if not self.is_open(oid)]
            if missing:
                raise InvalidDispatchError("decisions.trips", f"orders {missing} are not open")
        for trip in decisions.trips:
            c = self._couriers[trip.courier_id]
            self._couriers[c.id] = replace(c, status="assigned", carrying=trip.order_ids,
                                           available_at=trip.departure)
            for oid in trip.order_ids:
                self._open.discard(oid)
        if decisions.trips:
            self._changed()
        self._plan = {t.courier_id: t.order_ids for t in decisions.tentative}
        self.last = decisions
        return decisions


def _order_of(entry: DispatchOrder | Mapping[str, Any]) -> DispatchOrder:
    """An order of a dispatcher's snapshot: as it is, or from its JSON object."""
    if isinstance(entry, DispatchOrder):
        return entry
    return DispatchOrder(**{**entry, "load": tuple(entry["load"])})


def _courier_of(entry: Courier | Mapping[str, Any]) -> Courier:
    """A courier of a dispatcher's snapshot: as it is, or from its JSON object."""
    if isinstance(entry, Courier):
        return entry
    return Courier(**{**entry, "capacity": tuple(entry["capacity"]), "carrying": tuple(entry["carrying"])})
