"""Delivery promise: the options a checkout page shows for an address and a basket, with honest times.

`Quoter(allocator, load).quote(location, items, now)` returns a `Quote`: an express ETA from the store the
`Allocator` would choose, delivery slots over that store's opening hours, the pickup point and the locker the
Allocator would choose with the time the order is ready there, and click & collect at a store. Every kind is
always listed: an unavailable one carries the reason (the Allocator's, e.g. `out_of_stock: SKU`,
`outside_service_area`, `no_free_compartment`, or `no_courier`, `slot_full`, `no_slot`).

Pure logic: time is integer seconds passed in (the caller's clock, days starting at multiples of 86 400 s), no
I/O. The live side comes through the `StoreLoad` protocol: when an order placed now at a store would be picked,
and when a courier would be free at the store for it. Two implementations: `QueueLoad` (plain numbers the caller
fills in per store) and `DispatcherLoad` (read from the per-store `dispatch.engine.Dispatcher`s).

Times are conservative on purpose (honest quotes): every promised time is the estimate plus a safety buffer
(`PromiseOptions.margin_s` + `margin_rate` × the lead time), rounded up to `round_to_s`.

A quote reserves nothing: the facility choice is the Allocator's own (`allocate` then `cancel` under the
inventory lock, so no other thread sees the stock move), against live stock and room.
"""

from __future__ import annotations

import heapq
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from dispatch.allocation import STORE_CLOSED, Allocation, Allocator
from dispatch.errors import InvalidDispatchError, InvalidOrderError, ReservationError
from dispatch.load import StoreLoad
from dispatch.model import (
    DAY_S,
    CompartmentSize,
    DarkStore,
    DeliveryMode,
    Hours,
    Item,
    LonLat,
    Order,
    check_location,
    check_units,
    open_at,
)
from dispatch.state import NO_COURIER, DispatchOrder, QueueArrays
from routing.matrix import UNREACHABLE, IntArray

if TYPE_CHECKING:
    from dispatch.engine import Dispatcher
    from dispatch.places import LivePlaces

__all__ = [
    "NO_COURIER",
    "NO_SLOT",
    "SLOT_FULL",
    "DispatcherLoad",
    "ExpressModel",
    "OptionKind",
    "PromiseOptions",
    "QueueLoad",
    "Quote",
    "QuoteBasis",
    "QuoteOption",
    "Quoter",
    "StoreLoad",
    "StoreQueue",
    "fit_express_model",
    "next_open",
    "session",
    "tighten",
]

OptionKind = Literal["express", "slot", "pickup_point", "locker", "store"]
OPTION_KINDS: tuple[OptionKind, ...] = get_args(OptionKind)

MAX_FACTOR = 100.0
"""The largest `margin_rate` or `travel_factor` of the promise options (larger ones overflow the times)."""
SLOT_FULL = "slot_full"
"""The slot has as many orders promised as `PromiseOptions.slot_capacity`."""
NO_SLOT = "no_slot"
"""No slot of the store's opening hours today or tomorrow starts after the earliest feasible delivery."""

Slot = tuple[int, int]


# --- options ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QuoteBasis:
    """What an express quote is made of, in seconds from now: picking done (`picking_s`), then waiting for a
    courier at the store (`courier_wait_s`, from the live load), then the road to the door (`road_s`); and
    `planned_s`, when the store's dispatcher would hand the order over by its own plan (None when its policy
    makes no plan for an order not yet picked: greedy and batch)."""

    picking_s: int
    courier_wait_s: int
    road_s: int
    planned_s: int | None = None

    @property
    def lead_s(self) -> int:
        """The plain estimate: the three one after the other."""
        return self.picking_s + self.courier_wait_s + self.road_s

    @property
    def plan_s(self) -> int:
        """The dispatcher's planned lead, or the plain estimate where there is no plan."""
        return self.lead_s if self.planned_s is None else self.planned_s


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpressModel:
    """A quantile model of express click-to-door from a quote's basis, fitted on simulated days
    (`fit_express_model`, `lastmile calibrate-quotes`): the lead promised is

        constant_s + picking × picking_s + courier_wait × courier_wait_s + road × road_s + plan × plan_s

    (never less than picking plus road, nor than the dispatcher's own planned lead where it has one: a quote
    earlier than the plan is one the dispatcher already expects to break), so that about `quantile` of the
    orders arrive by it. The weights say how the live estimate's parts turn into what happens: with a dispatcher
    that plans every order (reoptimize) the plan carries most of the weight; a courier wait weight below 1 is the
    bundling and re-planning the estimate's one-order-per-courier queue does not see. The floor at the plan keeps
    quotes honest where the fitted weights do not reach: on a day busier than those the model was fitted on, the
    plan runs far ahead of the weighted sum.
    """

    constant_s: float
    picking: float
    courier_wait: float
    road: float
    plan: float = 0.0
    quantile: float = 0.95

    def __post_init__(self) -> None:
        for name in ("constant_s", "picking", "courier_wait", "road", "plan", "quantile"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InvalidDispatchError(f"express_model.{name}", f"must be a finite number, got {value!r}")
            if not -DAY_S <= value <= DAY_S:
                raise InvalidDispatchError(f"express_model.{name}", f"must be within ±{DAY_S}, got {value!r}")
        for name in ("picking", "courier_wait", "road", "plan"):
            if getattr(self, name) < 0:
                raise InvalidDispatchError(f"express_model.{name}", f"must not be negative, got {getattr(self, name)}")
        if not 0 < self.quantile < 1:
            raise InvalidDispatchError("express_model.quantile", f"must be in (0, 1), got {self.quantile}")

    def lead_s(self, basis: QuoteBasis) -> int:
        raw = (self.constant_s + self.picking * basis.picking_s + self.courier_wait * basis.courier_wait_s
               + self.road * basis.road_s + self.plan * basis.plan_s)
        return max(math.ceil(raw), _floor_s(basis))


def _floor_s(basis: QuoteBasis) -> int:
    """The least lead an express quote may promise: picking plus the road, and the dispatcher's planned lead."""
    floor = basis.picking_s + basis.road_s
    return floor if basis.planned_s is None else max(floor, basis.planned_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class PromiseOptions:
    """How conservative quotes are and how slots are cut (all times in seconds).

    - `margin_s`, `margin_rate`: the safety buffer added to every estimate: `margin_s` + `margin_rate` × the
      lead time (estimate − now), rounded up. This is what makes quotes honest (≥ 95 % met); calibrate it in
      the simulator.
    - `round_to_s`: promised times are rounded up to a multiple of this (60: whole minutes).
    - `travel_factor`: road times (the Allocator's, per its profile and hour) are multiplied by this, e.g. for
      couriers slower than the Allocator's profile.
    - `slot_s`: slot length; slots tile each opening session of the store from its opening time.
    - `slot_capacity`: orders per slot and store (None: unlimited), counted by `Quoter.book_slot`.
    - `express_model`: a fitted `ExpressModel` for express ETAs in place of the margins (slots and collection
      keep the margins); None: the margins.
    """

    margin_s: int = 300
    margin_rate: float = 0.2
    round_to_s: int = 60
    travel_factor: float = 1.0
    slot_s: int = 3600
    slot_capacity: int | None = None
    express_model: ExpressModel | None = None

    def __post_init__(self) -> None:
        if isinstance(self.express_model, Mapping):
            try:
                object.__setattr__(self, "express_model", ExpressModel(**self.express_model))
            except TypeError as e:
                raise InvalidDispatchError("express_model", str(e)) from None
        if self.express_model is not None and not isinstance(self.express_model, ExpressModel):
            raise InvalidDispatchError("express_model", f"must be an ExpressModel, got {self.express_model!r}")
        for name, minimum in (("margin_s", 0), ("round_to_s", 1), ("slot_s", 60)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InvalidDispatchError(name, f"must be an integer >= {minimum}, got {value!r}")
            if value > DAY_S:
                raise InvalidDispatchError(name, f"must be at most one day ({DAY_S} s), got {value}")
        for name, low in (("margin_rate", 0.0), ("travel_factor", 1e-9)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < low:
                wanted = "a finite number >= 0" if low == 0.0 else "a finite number > 0"
                raise InvalidDispatchError(name, f"must be {wanted}, got {value!r}")
            if value > MAX_FACTOR:
                raise InvalidDispatchError(name, f"must be at most {MAX_FACTOR:g}, got {value!r}")
        capacity = self.slot_capacity
        if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1):
            raise InvalidDispatchError("slot_capacity", f"must be a positive integer or None, got {capacity!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PromiseOptions:
        """From a scenario's `promise` section: the field names above; unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise InvalidDispatchError("promise", f"must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise InvalidDispatchError(f"promise.{key}", f"unknown option; expected one of {sorted(known)}")
        try:
            return cls(**data)
        except InvalidDispatchError as error:
            raise error.within("promise") from None

    def buffer_s(self, lead_s: int) -> int:
        """The safety buffer for an estimate `lead_s` seconds ahead of now."""
        return self.margin_s + math.ceil(self.margin_rate * max(lead_s, 0))

    def express_eta(self, basis: QuoteBasis, now: int) -> int:
        """The express ETA promised at `now`: the model's lead if there is one, else the estimate plus the buffer;
        rounded up to `round_to_s`."""
        if self.express_model is None:
            return self.promise(now + basis.lead_s, now)
        return self._round_up(now + self.express_model.lead_s(basis))

    def promise(self, estimate: int, start: int) -> int:
        """The promised time for an estimate of work starting at `start` (now, or the store's opening): plus the
        buffer for the lead time `estimate - start`, rounded up to `round_to_s`."""
        return self._round_up(estimate + self.buffer_s(estimate - start))

    def _round_up(self, t: int) -> int:
        return -(-t // self.round_to_s) * self.round_to_s


# --- the live side ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreQueue:
    """One store's load as plain numbers: its picking queue and couriers.

    - `picking_queue`: orders waiting to be picked or being picked; `pickers` pick in parallel, one order each
      in the store's `picking_s` (an order being picked is counted as if just started: conservative).
    - `couriers_free_at`: when each courier on shift is next free at the store (a time <= now: free now; the
      default is one idle courier); empty = no courier. `awaiting_courier`: picked orders still waiting for a
      courier. Every order ahead (waiting for a courier, or in the picking queue once picked) takes the next
      free courier for `trip_s` (a round trip).
    """

    picking_queue: int = 0
    pickers: int = 1
    couriers_free_at: tuple[int, ...] = (0,)
    awaiting_courier: int = 0
    trip_s: int = 1200

    def __post_init__(self) -> None:
        for name, minimum in (("picking_queue", 0), ("pickers", 1), ("awaiting_courier", 0), ("trip_s", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InvalidDispatchError(name, f"must be an integer >= {minimum}, got {value!r}")
        free = tuple(self.couriers_free_at)
        for i, t in enumerate(free):
            if isinstance(t, bool) or not isinstance(t, int):
                raise InvalidDispatchError(f"couriers_free_at[{i}]", f"must be integer seconds, got {t!r}")
        object.__setattr__(self, "couriers_free_at", free)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueLoad:
    """A `StoreLoad` from plain numbers per store id; a store not listed has the `default` load."""

    stores: Mapping[str, StoreQueue] = field(default_factory=dict)
    default: StoreQueue = field(default_factory=StoreQueue)

    def __post_init__(self) -> None:
        for name, queue in (*((f"stores[{k!r}]", v) for k, v in self.stores.items()), ("default", self.default)):
            if not isinstance(queue, StoreQueue):
                raise InvalidDispatchError(name, f"must be a StoreQueue, got {type(queue).__name__}")

    def _queue(self, store: DarkStore) -> StoreQueue:
        return self.stores.get(store.id, self.default)

    def picking_done_at(self, store: DarkStore, now: int) -> int:
        q = self._queue(store)
        return now + (q.picking_queue // q.pickers + 1) * store.picking_s

    def courier_free_at(self, store: DarkStore, now: int) -> int | None:
        q = self._queue(store)
        if not q.couriers_free_at:
            return None
        free = [max(now, t) for t in q.couriers_free_at]
        heapq.heapify(free)
        ahead = [now] * q.awaiting_courier + [now + (k // q.pickers + 1) * store.picking_s
                                              for k in range(q.picking_queue)]
        for ready in ahead:  # each order ahead leaves once picked and a courier is free, and is back after trip_s
            heapq.heappush(free, max(heapq.heappop(free), ready) + q.trip_s)
        return free[0]

    def planned_at(self, store: DarkStore, node: int, ready_at: int, boxes: int, now: int) -> int | None:
        """Plain numbers hold no dispatcher: no plan."""
        return None


class DispatcherLoad:
    """A `StoreLoad` read from the live per-store Dispatchers (store id -> Dispatcher).

    Picking: the orders the dispatcher tracks whose `ready_at` is still ahead are in picking; with `pickers` in
    parallel the first picker is free at the `pickers`-th latest of those times, and the new order takes
    `picking_s` more. Couriers: each active courier is free where `DispatchState.free_point` says (a
    free-floating one then rides to the store); the open orders take them first come first served (placed_at,
    ready_at, id), one order per round trip, as the greedy policy does (batching only makes it earlier). A
    courier that is not idle now is counted free one `tick_s` after it is back (the dispatcher sees it at its
    next tick), and again after each round trip. A courier whose shift ends before it is free counts no more.
    A store without a dispatcher has no courier.

    Plans (`planned_at`): a dry run of the store dispatcher's policy with the order added (`Dispatcher.preview`),
    its door a live place of the store (`places`), handed over in `service_s`; the probe's promise is a day away,
    so a policy that prices lateness sees it as never late.
    """

    def __init__(self, dispatchers: Mapping[str, Dispatcher], *, pickers: int | Mapping[str, int] = 1,
                 places: Mapping[str, LivePlaces] | None = None, service_s: int = 0) -> None:
        self.dispatchers = dict(dispatchers)
        self.places = dict(places or {})
        self.service_s = service_s
        self.pickers = pickers if isinstance(pickers, Mapping) else {}
        self.default_pickers = pickers if isinstance(pickers, int) else 1
        self._free_at: dict[tuple[str, int, int], int | None] = {}
        self._queues: dict[str, tuple[Any, _Queue]] = {}
        for name, count in (("pickers", self.default_pickers), *self.pickers.items()):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise InvalidDispatchError(f"pickers[{name!r}]" if name != "pickers" else name,
                                           f"must be a positive integer, got {count!r}")

    def picking_done_at(self, store: DarkStore, now: int) -> int:
        d = self.dispatchers.get(store.id)
        pickers = self.pickers.get(store.id, self.default_pickers)
        start = now
        if d is not None:
            picking = d.picking()  # when each order still to pick will be ready, ascending
            waiting = len(picking) - int(np.searchsorted(picking, now, side="right"))
            if waiting >= pickers:
                start = int(picking[-pickers])
        return max(now, start) + store.picking_s

    def _queue(self, d: Dispatcher) -> _Queue:
        """The store's FIFO queue as arrays, kept until its open orders or its travel change."""
        key = (d.queue_version, d.travel_epoch)
        cached = self._queues.get(d.store_id)
        if cached is None or cached[0] != key:
            cached = (key, _Queue.of(d))
            self._queues[d.store_id] = cached
        return cached[1]

    def planned_at(self, store: DarkStore, node: int, ready_at: int, boxes: int, now: int) -> int | None:
        d, places = self.dispatchers.get(store.id), self.places.get(store.id)
        if d is None or places is None:
            return None
        probe_id = _PREVIEW_ID
        while probe_id in d.orders:
            probe_id += "_"
        probe = DispatchOrder(id=probe_id, store=store.id, location=places.place(node), ready_at=max(ready_at, now),
                              promise_by=max(ready_at, now) + DAY_S, load=(max(1, boxes),), service_s=self.service_s,
                              placed_at=now)
        trip = d.preview(probe, max(now, d.now)).trip_of(probe_id)
        return None if trip is None else trip.etas[trip.order_ids.index(probe_id)]

    def courier_free_at(self, store: DarkStore, now: int) -> int | None:
        d = self.dispatchers.get(store.id)
        if d is None:
            return None
        key = (store.id, now, d.version)
        if key not in self._free_at:
            if len(self._free_at) > 256:
                self._free_at.clear()
            self._free_at[key] = self._courier_free_at(d, now)
        return self._free_at[key]

    def _courier_free_at(self, d: Dispatcher, now: int) -> int | None:
        from dispatch import _load_kernel

        table = d.free_table(now)
        at_store = table.time + table.to_store + np.where(table.idle, 0, d.tick_s)
        keep = at_store < table.shift_end
        if not keep.any():
            return None
        queue = self._queue(d)
        first = _load_kernel.first_free(at_store[keep], table.rank[keep], table.shift_end[keep],
                                        table.profile[keep], queue.round_trips(d, table.profiles),
                                        queue.arrays.ready_at, queue.arrays.service_s, d.tick_s)
        return None if first == _load_kernel.NONE else int(first)


@dataclass(slots=True)
class _Queue:
    """A store's open orders first come, first served (the dispatcher's `QueueArrays`) and the round trips to
    their doors, computed once per tuple of profiles."""

    arrays: QueueArrays
    trips: dict[tuple[str, ...], IntArray]

    @classmethod
    def of(cls, d: Dispatcher) -> _Queue:
        return cls(arrays=d.queue_arrays(), trips={})

    def round_trips(self, d: Dispatcher, profiles: tuple[str, ...]) -> IntArray:
        """Store -> door -> store seconds of each queued order (columns) by each of `profiles` (rows; -1: a way
        is unreachable)."""
        got = self.trips.get(profiles)
        if got is None:
            home, doors = d.store_location, self.arrays.locations
            rows = []
            for p in profiles:
                dur = d.travel.durations[p]
                out, back = dur[home, doors], dur[doors, home]
                rows.append(np.where((out >= UNREACHABLE) | (back >= UNREACHABLE), -1, out + back))
            got = self.trips[profiles] = np.stack(rows)
        return got


# --- the quote ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QuoteOption:
    """One option of a checkout page, or why that kind is unavailable (`reason`; then no times).

    - `facility`: where the parcel is handed over (the store for express, slot and store; the pickup point or
      locker); `store`: where it is picked.
    - `eta`: express: promised arrival at the door; slot: the end of `slot` (delivered within it).
    - `ready_at`: pickup_point, locker, store: when the customer may collect (within the facility's hours).
    - `allocate_at`: the `placed_at` under which the Allocator makes this choice: `now`, or the next opening
      when every candidate store is closed now (slots and collection kinds wait for it; express does not).
    - `compartments`: the locker compartments the boxes would take.
    - `basis`: express: what the ETA is made of (`QuoteBasis`).
    """

    kind: OptionKind
    facility: str | None = None
    store: str | None = None
    eta: int | None = None
    ready_at: int | None = None
    slot: Slot | None = None
    allocate_at: int | None = None
    compartments: tuple[CompartmentSize, ...] = ()
    reason: str | None = None
    basis: QuoteBasis | None = None

    def __post_init__(self) -> None:
        if self.kind not in OPTION_KINDS:
            raise InvalidDispatchError("kind", f"must be one of {list(OPTION_KINDS)}, got {self.kind!r}")
        timed = self.eta is not None or self.ready_at is not None
        if self.reason is None and not (timed and self.store is not None):
            raise InvalidDispatchError("option", f"{self.kind}: an available option needs a store and a time")
        if self.reason is not None and timed and self.reason != SLOT_FULL:
            raise InvalidDispatchError("option", f"{self.kind}: an unavailable option promises no time")

    @property
    def available(self) -> bool:
        return self.reason is None

    @property
    def promised_at(self) -> int | None:
        """The time promised to the customer: `eta` for deliveries, `ready_at` for collections."""
        return self.eta if self.eta is not None else self.ready_at


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    """Every option for one address and basket at `now`: express, the slots, pickup point, locker, store.

    Each kind appears at least once (unavailable with a reason when it cannot be offered); slots are in time
    order, full ones listed with reason `slot_full`.
    """

    now: int
    location: LonLat
    options: tuple[QuoteOption, ...]

    def of(self, kind: OptionKind) -> tuple[QuoteOption, ...]:
        return tuple(o for o in self.options if o.kind == kind)

    def first(self, kind: OptionKind) -> QuoteOption:
        """The first option of `kind` (for slots: the earliest)."""
        return self.of(kind)[0]

    @property
    def express(self) -> QuoteOption:
        return self.first("express")

    @property
    def slots(self) -> tuple[QuoteOption, ...]:
        """The slots that can be booked (available ones only)."""
        return tuple(o for o in self.of("slot") if o.available)

    @property
    def available(self) -> tuple[QuoteOption, ...]:
        return tuple(o for o in self.options if o.available)


# --- opening hours ------------------------------------------------------------------------------------------


def session(hours: Hours | None, day: int) -> Slot:
    """The opening session that starts on `day` (a multiple of DAY_S): [opens, closes) in absolute seconds.

    A session over midnight ends the next day; without hours the session is the whole day.
    """
    if hours is None:
        return day, day + DAY_S
    opens, closes = hours
    return day + opens, day + (closes if closes > opens else closes + DAY_S)


def next_open(hours: Hours | None, t: int) -> int:
    """The first time >= t at which a facility with these hours is open."""
    if bool(open_at(hours, t)):
        return t
    day = t // DAY_S * DAY_S
    opens = session(hours, day)[0]
    return opens if opens >= t else session(hours, day + DAY_S)[0]


# --- the quoter ---------------------------------------------------------------------------------------------


_PREVIEW_ID = "__quote__"


def _preview(allocator: Allocator, order: Order) -> Allocation:
    """What the Allocator would decide for `order` now, reserving nothing.

    Allocates and cancels while holding the inventory's (re-entrant) lock, so no other allocation sees it.
    """
    with allocator.inventory.lock:
        (result,) = allocator.allocate([order])
        if result.allocated:
            allocator.cancel(order.id)
    return result


@dataclass(frozen=True, slots=True)
class _Preview:
    """The Allocator's decision for a preview order of one mode and the `placed_at` it was made for."""

    allocation: Allocation
    at: int
    mode: DeliveryMode

    @property
    def kind(self) -> OptionKind:
        return "express" if self.mode == "courier" else self.mode


@dataclass(frozen=True, slots=True)
class _Chain:
    """An estimate for one store: picked at `picked`, a courier can leave at `departure` (None: no courier)."""

    picked: int
    departure: int | None


class Quoter:
    """Quotes delivery options from an Allocator's facilities and live store load (see the module doc).

    The Allocator decides every facility (express and slots: its courier choice; pickup point, locker, store:
    its choice for that mode), so a quote names the facility an order placed at `allocate_at` is allocated to.
    Express ETA = max(picking done, courier free at the store) + road time store -> door (× travel_factor),
    plus the buffer. Pickup point and locker: the same chain to the facility, ready then (a pickup point: from
    its next opening). Store (click & collect): picking done plus the buffer, from the store's next opening.

    The quoter keeps one thing: how many orders were booked per slot (`book_slot` / `release_slot`), used when
    `options.slot_capacity` is set. Otherwise a quote depends only on its inputs and the live state, so the same
    inputs give the same quote.
    """

    def __init__(self, allocator: Allocator, load: StoreLoad, options: PromiseOptions | None = None) -> None:
        self.allocator = allocator
        self.load = load
        self.options = options if options is not None else PromiseOptions()
        if not isinstance(self.options, PromiseOptions):
            raise InvalidDispatchError("options", f"must be PromiseOptions, got {type(self.options).__name__}")
        self._stores = {s.id: s for s in allocator.stores}
        self._hours = {f.id: f.hours for f in allocator.pickup_points}
        self._booked: dict[tuple[str, Slot], int] = {}
        self._lock = threading.Lock()

    # --- slot bookings ------------------------------------------------------------------------------------

    def booked(self, store: str, slot: Slot) -> int:
        with self._lock:
            return self._booked.get((store, slot), 0)

    def bookings(self) -> list[tuple[str, int, int, int]]:
        """Every (store, slot start, slot end, orders booked), for a snapshot."""
        with self._lock:
            return [(store, slot[0], slot[1], n) for (store, slot), n in self._booked.items()]

    def restore_bookings(self, rows: Iterable[Sequence[Any]]) -> None:
        """Take the bookings of `bookings()`, replacing the current ones."""
        with self._lock:
            self._booked = {(str(store), (int(start), int(end))): int(n) for store, start, end, n in rows}

    def book_slot(self, option: QuoteOption) -> None:
        """Count one order against a slot option; raises ReservationError when it is full or not a slot."""
        key = self._slot_key(option)
        capacity = self.options.slot_capacity
        with self._lock:
            count = self._booked.get(key, 0)
            if capacity is not None and count >= capacity:
                raise ReservationError("slot", f"{key[0]} {key[1]} is full ({capacity} orders)")
            self._booked[key] = count + 1

    def release_slot(self, option: QuoteOption) -> None:
        """Give back one booking of a slot (a cancelled order); raises ReservationError when none is booked."""
        key = self._slot_key(option)
        with self._lock:
            count = self._booked.get(key, 0)
            if count < 1:
                raise ReservationError("slot", f"{key[0]} {key[1]} has no booking")
            if count == 1:
                del self._booked[key]
            else:
                self._booked[key] = count - 1

    @staticmethod
    def _slot_key(option: QuoteOption) -> tuple[str, Slot]:
        if not isinstance(option, QuoteOption) or option.kind != "slot" or option.slot is None or not option.store:
            raise ReservationError("option", f"must be a slot option with a store, got {option!r}")
        return option.store, option.slot

    # --- quotes -------------------------------------------------------------------------------------------

    def quote(self, location: LonLat, items: Iterable[Item], now: int) -> Quote:
        """Every option for delivering `items` to `location` (lon, lat) or collecting them, as of `now`.

        Never raises for an address that cannot be served (each kind then carries a reason). Raises
        InvalidOrderError naming `location` or `items[i]` for bad input, InvalidDispatchError for a bad `now`.
        """
        where, basket = self._inputs(location, items, now)
        options: list[QuoteOption] = []
        courier = self._preview(where, basket, "courier", now)
        options.append(self._express(courier, now))
        options.extend(self._slots(courier if courier.allocation.reason != STORE_CLOSED else
                                   self._when_open(where, basket, "courier", now), now))
        for mode in ("pickup_point", "locker", "store"):
            options.append(self._collect(self._when_open(where, basket, mode, now), now))
        return Quote(now=now, location=where, options=tuple(options))

    def express(self, location: LonLat, items: Iterable[Item], now: int) -> QuoteOption:
        """The express option of `quote` alone (what a checkout with one delivery speed shows)."""
        where, basket = self._inputs(location, items, now)
        return self._express(self._preview(where, basket, "courier", now), now)

    def express_for(self, allocation: Allocation, now: int, *, plan: bool = True) -> QuoteOption:
        """The express option for a courier order the Allocator has just allocated (or rejected) at `now`: what
        `express` would have quoted for it a moment before, without allocating it a second time. `plan=False`
        skips the dispatcher's dry run (the caller has the real decision: `with_plan`)."""
        return self._express(_Preview(allocation, now, "courier"), now, plan=plan)

    def with_plan(self, option: QuoteOption, planned_at: int | None, now: int) -> QuoteOption:
        """The express `option` with the dispatcher's planned hand-over (None: no plan) in its basis and ETA."""
        if option.basis is None:
            return option
        basis = replace(option.basis, planned_s=None if planned_at is None else planned_at - now)
        return replace(option, basis=basis, eta=self.options.express_eta(basis, now))

    def _inputs(self, location: LonLat, items: Iterable[Item], now: int) -> tuple[LonLat, tuple[Item, ...]]:
        where = check_location(InvalidOrderError, "location", location)
        basket = self._items(items)
        if isinstance(now, bool) or not isinstance(now, int) or now < 0:
            raise InvalidDispatchError("now", f"must be integer seconds >= 0, got {now!r}")
        return where, basket

    @staticmethod
    def _items(items: Iterable[Item]) -> tuple[Item, ...]:
        if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
            raise InvalidOrderError("items", f"must be a sequence of Item, got {type(items).__name__}")
        basket = tuple(items)
        if not basket:
            raise InvalidOrderError("items", "a quote needs at least one item")
        for i, item in enumerate(basket):
            if not isinstance(item, Item):
                raise InvalidOrderError(f"items[{i}]", f"must be an Item, got {type(item).__name__}")
        check_units("items", basket)
        return basket

    def _preview(self, where: LonLat, basket: tuple[Item, ...], mode: DeliveryMode, at: int) -> _Preview:
        order_id = _PREVIEW_ID
        while self.allocator.inventory.holding([order_id]):
            order_id += "_"
        order = Order(id=order_id, location=where, mode=mode, items=basket, placed_at=at)
        return _Preview(_preview(self.allocator, order), at, mode)

    def _when_open(self, where: LonLat, basket: tuple[Item, ...], mode: DeliveryMode, now: int) -> _Preview:
        """The Allocator's choice now; if every candidate store is closed, its choice at the next opening of a
        store within a day (the earliest that serves the order)."""
        first = self._preview(where, basket, mode, now)
        if first.allocation.reason != STORE_CLOSED:
            return first
        openings = sorted({next_open(s.hours, now) for s in self._stores.values() if not s.is_open(now)})
        for t in openings:
            later = self._preview(where, basket, mode, t)
            if later.allocation.allocated:
                return later
        return first

    def _chain(self, store: DarkStore, now: int, at: int) -> _Chain:
        """Picking done and courier departure for an order placed now and worked from `at` (>= now)."""
        picked = max(self.load.picking_done_at(store, now), at + store.picking_s)
        free = self.load.courier_free_at(store, now)
        if free is None:
            return _Chain(picked, None)
        return _Chain(picked, max(picked, free, at))

    def _road(self, seconds: int) -> int:
        return math.ceil(seconds * self.options.travel_factor)

    def _express(self, preview: _Preview, now: int, *, plan: bool = True) -> QuoteOption:
        a = preview.allocation
        if a.reason is not None or a.store is None or a.travel_time_s is None:
            return QuoteOption(kind="express", reason=a.reason)
        store = self._stores[a.store]
        chain = self._chain(store, now, now)
        if chain.departure is None:
            return QuoteOption(kind="express", facility=a.store, store=a.store, reason=NO_COURIER)
        planned = self.load.planned_at(store, a.node, chain.picked, len(a.boxes), now) if (
            plan and a.node is not None) else None
        basis = QuoteBasis(picking_s=chain.picked - now, courier_wait_s=chain.departure - chain.picked,
                           road_s=self._road(a.travel_time_s), planned_s=None if planned is None else planned - now)
        return QuoteOption(kind="express", facility=a.store, store=a.store, eta=self.options.express_eta(basis, now),
                           allocate_at=now, basis=basis)

    def _slots(self, preview: _Preview, now: int) -> list[QuoteOption]:
        a = preview.allocation
        if a.reason is not None or a.store is None or a.travel_time_s is None:
            return [QuoteOption(kind="slot", reason=a.reason)]
        store = self._stores[a.store]
        chain = self._chain(store, now, preview.at)
        # Slots are far enough ahead that couriers coming on shift later may take them: without a courier now,
        # the order leaves once picked.
        departure = chain.departure if chain.departure is not None else chain.picked
        earliest = self.options.promise(departure + self._road(a.travel_time_s), preview.at)
        day = now // DAY_S * DAY_S
        capacity = self.options.slot_capacity
        for days in ((day - DAY_S, day), (day + DAY_S,)):
            slots = [s for d in days for s in self._tiles(session(store.hours, d)) if s[0] >= earliest]
            listed = []
            for slot in slots:
                full = capacity is not None and self.booked(store.id, slot) >= capacity
                listed.append(QuoteOption(kind="slot", facility=store.id, store=store.id, eta=slot[1], slot=slot,
                                          allocate_at=preview.at, reason=SLOT_FULL if full else None))
            if any(o.available for o in listed):
                return listed
        return [QuoteOption(kind="slot", facility=store.id, store=store.id, reason=NO_SLOT)]

    def _tiles(self, opening: Slot) -> list[Slot]:
        length = self.options.slot_s
        opens, closes = opening
        return [(t, t + length) for t in range(opens, closes - length + 1, length)]

    def _collect(self, preview: _Preview, now: int) -> QuoteOption:
        a = preview.allocation
        kind = preview.kind
        if a.reason is not None or a.store is None or a.facility is None or a.travel_time_s is None:
            return QuoteOption(kind=kind, reason=a.reason)
        store = self._stores[a.store]
        chain = self._chain(store, now, preview.at)
        if kind == "store":
            ready = next_open(store.hours, self.options.promise(chain.picked, preview.at))
        elif chain.departure is None:
            return QuoteOption(kind=kind, facility=a.facility, store=a.store, reason=NO_COURIER)
        else:
            arrived = self.options.promise(chain.departure + self._road(a.travel_time_s), preview.at)
            ready = next_open(self._hours.get(a.facility), arrived)
        return QuoteOption(kind=kind, facility=a.facility, store=a.store, ready_at=ready, allocate_at=preview.at,
                           compartments=a.compartments)


# --- fitting the express model ------------------------------------------------------------------------------


def fit_express_model(samples: Sequence[tuple[QuoteBasis, int]], quantile: float = 0.95) -> ExpressModel:
    """The `ExpressModel` whose lead is the `quantile` of the actual click-to-door given the quote's basis: a
    linear quantile regression (least pinball loss, solved as a linear programme) of the actual lead on the
    basis' parts (`ExpressModel`) and a constant, the parts' weights kept >= 0. The lead never goes below its
    floor (picking plus road, and the planned lead), which meets some orders the regression alone would miss;
    the constant is then lowered as far as the samples still arrive by their lead in `quantile` of the cases, so
    the floor makes the other quotes tighter rather than the whole model more cautious.

    `samples`: (the basis an express quote was made of, the seconds from placing to the door) of delivered
    orders, from simulated days (`simulator.calibrate`) or the live service's history.
    """
    from scipy import sparse
    from scipy.optimize import linprog

    if not 0 < quantile < 1:
        raise InvalidDispatchError("quantile", f"must be in (0, 1), got {quantile}")
    if len(samples) < 20:
        raise InvalidDispatchError("samples", f"need at least 20 delivered express orders, got {len(samples)}")
    x = np.array([[1.0, b.picking_s, b.courier_wait_s, b.road_s, b.plan_s] for b, _ in samples])
    k = x.shape[1]
    y = np.array([float(actual) for _, actual in samples])
    n = len(y)
    scale = np.maximum(np.abs(x).max(axis=0), 1.0)  # columns to about 1, for the solver's tolerances
    xs = x / scale
    # variables: beta (k), over (n), under (n); xs @ beta + over - under = y
    cost = np.concatenate([np.zeros(k), np.full(n, quantile), np.full(n, 1.0 - quantile)])
    eye = sparse.identity(n, format="csr")
    result = linprog(cost, A_eq=sparse.hstack([sparse.csr_matrix(xs), eye, -eye], format="csr"), b_eq=y,
                     bounds=[(None, None)] + [(0, None)] * (k - 1) + [(0, None)] * (2 * n), method="highs")
    if not result.success:  # pragma: no cover - a feasible, bounded LP (beta = 0 with slacks is feasible)
        raise InvalidDispatchError("samples", f"the quantile fit failed: {result.message}")
    beta = result.x[:k] / scale
    return tighten(ExpressModel(constant_s=round(float(beta[0]), 1), picking=round(float(beta[1]), 4),
                                courier_wait=round(float(beta[2]), 4), road=round(float(beta[3]), 4),
                                plan=round(float(beta[4]), 4), quantile=quantile), samples)


def tighten(model: ExpressModel, samples: Sequence[tuple[QuoteBasis, int]]) -> ExpressModel:
    """`model` with its constant lowered (to a tenth of a second) as far as the samples still arrive by their
    lead in `model.quantile` of the cases, never raised: the orders met by the floor alone need no constant."""
    if not samples:
        return model
    y = np.array([float(actual) for _, actual in samples])
    rest = np.array([[b.picking_s, b.courier_wait_s, b.road_s, b.plan_s] for b, _ in samples], dtype=float) @ \
        np.array([model.picking, model.courier_wait, model.road, model.plan])
    # a sample above its floor is met once ceil(constant + rest) reaches it: constant > actual - 1 - rest
    need = np.sort((y - 1 - rest)[y > np.array([_floor_s(b) for b, _ in samples])])
    wanted = math.ceil(model.quantile * len(y)) - (len(y) - len(need))  # the samples the constant must meet
    if wanted <= 0:
        return model
    constant = math.floor(float(need[wanted - 1]) * 10 + 1) / 10  # the next tenth above
    return replace(model, constant_s=constant) if constant < model.constant_s else model
