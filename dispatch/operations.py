"""The operations core of one deployment (a city): what the outside world says in, domain events out.

One object holds the facilities and their inventory (`Allocator`), the express `Quoter`, one `Dispatcher` per
dark store with its live places on the `routing.oracle.TravelOracle`, the stores' picking queues and the book
of open orders. It is pure logic: time is passed in (integer seconds, never going back), nothing is read or
written outside the object. The simulator drives it as the world around it (SimPy processes instead of HTTP);
the live API drives it from each store's command stream: the same calls, the same events.

Calls are what the world can say: a checkout asks for a quote; an order is placed or cancelled, picking is done,
the store counts its stock, a tick; a courier goes on or off shift, reports its position, picks up its trip,
delivers or fails at a door, is back at the store; a customer collects from a locker. Each returns an
`Outcome`: the events it caused, in the order they happened, and the trips it committed (to hand to their
couriers); `quote` returns the checkout's options and changes nothing.

Events (`Event.line()` is one line of `events.jsonl`: `{"t", "order", "event", ...fields}`):

| event | fields | when |
|---|---|---|
| `placed` | `mode`, `quoted_eta` (express ETA at checkout, or null), `quote_basis` (with an ETA) | every order, first |
| `rejected` | `reason` (`out_of_stock: SKU`, `outside_service_area`, ...) | cannot be served; final |
| `allocated` | `store`, `facility`, `boxes`, `promise_by` | served: stock and room reserved |
| `picked` | `store` | picking done: ready at the store |
| `assigned` | `courier`, `eta` | committed to a courier's trip |
| `unassigned` | `courier`, `reason` | its courier went off shift (`courier_off_shift`) before leaving with it |
| `picked_up` | `courier` | the courier left the store with it |
| `delivered` | `courier`, `on_time` | at the door, locker or pickup point; final for courier orders |
| `failed` | `courier`, `reason` | not handed over (the parcel rides back) |
| `redirected` | `locker` | a failed parcel goes on to a locker with room (`failed_to = "locker"`) |
| `returned` | `reason` | a failed parcel is back at the store; final |
| `cancelled` | | withdrawn before a courier took it; final |
| `collected` | | the customer emptied the locker compartment or pickup place |

`quote_basis` is what the express ETA is made of, seconds from placing: `picking_s`, `courier_wait_s`, `road_s`
(`dispatch.promise.QuoteBasis`; `lastmile calibrate-quotes` fits the quote model on it).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import orjson

from dispatch.allocation import Allocation, Allocator, rejected, snap_facilities
from dispatch.engine import CourierEvent, Dispatcher
from dispatch.errors import InvalidDispatchError, ReservationError
from dispatch.inventory import Reservation, claims_of
from dispatch.model import (
    CompartmentSize,
    DarkStore,
    Item,
    Locker,
    Order,
    PickupPoint,
    Promise,
    check_location,
    deadline,
    json_default,
    shallow_dict,
)
from dispatch.packaging import compartments_for
from dispatch.places import LivePlaces
from dispatch.policy import DispatchPolicy
from dispatch.promise import DispatcherLoad, PromiseOptions, Quote, QuoteOption, Quoter
from dispatch.state import Courier, Decisions, DispatchOrder, Trip
from routing.network import RoadNetwork
from routing.oracle import TravelOracle
from routing.snap import snap

EVENTS = ("placed", "rejected", "allocated", "picked", "assigned", "unassigned", "picked_up", "delivered", "failed",
          "redirected", "returned", "cancelled", "collected")
CUSTOMER_ABSENT = "customer_absent"
COURIER_OFF_SHIFT = "courier_off_shift"
BACK_AT_STORE = "back_at_store"
"""The reason of an `unassigned` order its courier brought back to the store with neither a delivery nor a
failure reported: it is open again there."""
TOO_LARGE = "too_large"
"""The reason of a rejected order needing more boxes than any courier of its store carries."""
SNAPSHOT_FORMAT = "lastmile.operations"
SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One domain event of one order at `t` (see the module doc for the kinds and their fields)."""

    t: int
    order: str
    event: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise InvalidDispatchError("event", f"must be one of {list(EVENTS)}, got {self.event!r}")

    def line(self) -> dict[str, Any]:
        return {"t": self.t, "order": self.order, "event": self.event, **self.fields}


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What one call caused: events in the order they happened, and trips committed to couriers."""

    events: tuple[Event, ...] = ()
    trips: tuple[Trip, ...] = ()

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(events=self.events + other.events, trips=self.trips + other.trips)


@dataclass(frozen=True, slots=True, kw_only=True)
class CourierSetup:
    """A courier of a store's fleet: vehicle profile, capacity (boxes) and shift."""

    id: str
    store: str
    profile: str
    capacity: int
    shift_start: int
    shift_end: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Admission:
    """What placing an order decides before dispatch: where it goes or why not (`allocation`), the counts it
    takes (`reservation`: None when rejected) and the checkout's express quote (`quoted_eta`, `quote_basis`).

    `admit` makes one without changing anything; `Operations.place(order, now, admission=...)` books it as
    made. A live API admits an order where it is posted (the counts reserved atomically in the live store) and
    answers at once; the dispatch worker places it later with the admission, so both agree on where it went."""

    allocation: Allocation
    reservation: Reservation | None = None
    quoted_eta: int | None = None
    quote_basis: Mapping[str, int] | None = None

    def __post_init__(self) -> None:
        if self.allocation.allocated != (self.reservation is not None):
            raise InvalidDispatchError("admission.reservation", "an allocated order holds a reservation, a "
                                                                "rejected one none")

    def claims(self) -> list[tuple[str, str, int]]:
        """The counts the order takes: (name, field, units) (see `dispatch.inventory.Counter`)."""
        return [] if self.reservation is None else claims_of(self.reservation)

    def to_json(self) -> dict[str, Any]:
        a, r = self.allocation, self.reservation
        return {"facility": a.facility, "store": a.store, "travel_time_s": a.travel_time_s, "boxes": list(a.boxes),
                "reason": a.reason, "compartments": list(a.compartments), "node": a.node,
                "reservation": None if r is None else {
                    "store": r.store, "stock": dict(r.stock), "pickup_point": r.pickup_point, "locker": r.locker,
                    "compartments": list(r.compartments)},
                "quoted_eta": self.quoted_eta, "quote_basis": None if self.quote_basis is None else dict(
                    self.quote_basis)}

    @classmethod
    def from_json(cls, order_id: str, data: Mapping[str, Any]) -> Admission:
        r = data["reservation"]
        compartments: tuple[CompartmentSize, ...] = tuple(data["compartments"])
        return cls(allocation=Allocation(order=order_id, facility=data["facility"], store=data["store"],
                                         travel_time_s=data["travel_time_s"], boxes=tuple(data["boxes"]),
                                         reason=data["reason"], compartments=compartments, node=data["node"]),
                   reservation=None if r is None else Reservation(
                       order=order_id, store=r["store"], stock=r["stock"], pickup_point=r["pickup_point"],
                       locker=r["locker"], compartments=tuple(r["compartments"])),
                   quoted_eta=data["quoted_eta"], quote_basis=data["quote_basis"])


def most_boxes(fleet: Iterable[CourierSetup]) -> dict[str, int]:
    """Per store with couriers: the most boxes one of them carries (an order needing more is `too_large`)."""
    out: dict[str, int] = {}
    for c in fleet:
        out[c.store] = max(out.get(c.store, 0), c.capacity)
    return out


def too_large(alloc: Allocation, mode: str, most: Mapping[str, int]) -> str | None:
    """Why no courier of the store `alloc` picks at could take the order (`too_large: ...`), or None: it needs
    more boxes than any of them carries (`most`, from `most_boxes`). Click-and-collect orders need no courier."""
    if alloc.store is None or mode == "store" or alloc.store not in most:
        return None
    boxes, carried = max(1, len(alloc.boxes)), most[alloc.store]
    return f"{TOO_LARGE}: {boxes} boxes, couriers carry at most {carried}" if boxes > carried else None


def admit(allocator: Allocator, quoter: Quoter, order: Order, now: int, *,
          most: Mapping[str, int] | None = None) -> Admission:
    """The admission `Operations.place` would make for `order` at `now` (allocation with the allocator's load,
    express quote without the dispatcher's dry run), leaving the allocator's counts as they were. With `most`
    (`most_boxes` of the fleet), an order too large for its store's couriers is refused as the core refuses it."""
    with allocator.inventory.unjournaled():  # reserved and released at once: no change to count
        alloc = allocator.allocate([order])[0]
        refused = too_large(alloc, order.mode, most or {})
        express = (quoter.express_for(alloc, now, plan=False)
                   if order.mode == "courier" and order.items and refused is None else None)
        reservation = allocator.cancel(order.id) if alloc.allocated else None
    if refused is not None:
        alloc, reservation = rejected(order.id, refused), None
    quoted_eta, basis = _quote(express)
    return Admission(allocation=alloc, reservation=reservation, quoted_eta=quoted_eta, quote_basis=basis)


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationsOptions:
    """Knobs of the core: tick, handover time, where failed parcels go, allocation ranking, quote margins."""

    tick_s: int = 60
    service_s: int = 0
    failed_to: Literal["store", "locker"] = "store"
    rank: Literal["eta", "nearest"] = "eta"
    max_detour_s: int = 600
    max_snap_m: float = 500.0
    traffic: bool = True
    allocation_profile: str = "bike"
    promise: PromiseOptions = field(default_factory=PromiseOptions)
    default_express_s: int = 45 * 60
    """An order placed without a promise is sold as express within this many seconds (a scenario's
    `demand.express_s`, as its replayed demand files default it)."""

    def __post_init__(self) -> None:
        if self.failed_to not in ("store", "locker"):
            raise InvalidDispatchError("failed_to", f"must be 'store' or 'locker', got {self.failed_to!r}")
        if self.rank not in ("eta", "nearest"):
            raise InvalidDispatchError("rank", f"must be 'eta' or 'nearest', got {self.rank!r}")
        for name in ("tick_s", "service_s", "max_detour_s", "default_express_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (
                    1 if name in ("tick_s", "default_express_s") else 0):
                raise InvalidDispatchError(name, f"must be a non-negative integer, got {value!r}")

    def promised(self, order: Order) -> Order:
        """`order` as it is sold: with its own promise, else express within `default_express_s`."""
        return order if order.promise is not None else replace(order, promise=Promise.express(self.default_express_s))


@dataclass(slots=True, kw_only=True)
class _Booked:
    """What the core keeps of an order it allocated, until it leaves the books (a snapshot's `orders` entry: orjson
    writes it as the object of its fields)."""

    id: str
    mode: str
    store: str
    facility: str
    boxes: tuple[str, ...]
    promise_by: int
    placed_at: int
    redirected_to: str | None = None
    picked: bool = False
    """The store finished picking it (its `picked` event came)."""
    on_board: bool = False
    """A courier left the store with it and has not handed it over (or brought it back) yet."""
    waiting: bool = False
    """Handed over at its locker, pickup point or store: waiting for its customer (`collected` closes it)."""
    fulfilled: bool = False
    """Its stock left the store (the first time a courier left with it)."""
    failure: str | None = None
    """Why its courier could not hand it over (the reason of its `failed` report), until it is back at the store."""


class Operations:
    """The live core of one deployment (see the module doc)."""

    def __init__(self, network: RoadNetwork, facilities: Sequence[DarkStore | Locker | PickupPoint],
                 couriers: Iterable[CourierSetup], policy: DispatchPolicy, *, pickers: Mapping[str, int],
                 options: OperationsOptions | None = None) -> None:
        self.network = network
        self.options = opts = options if options is not None else OperationsOptions()
        self.facilities = tuple(facilities)
        self.stores = {f.id: f for f in self.facilities if isinstance(f, DarkStore)}
        self.lockers = tuple(f for f in self.facilities if isinstance(f, Locker))
        self.facility = {f.id: f for f in self.facilities}
        fac_nodes = snap_facilities(network, self.facilities, opts.max_snap_m)
        self.node_of_facility = {f.id: int(fac_nodes[i]) for i, f in enumerate(self.facilities)}
        fleet = list(couriers)
        profiles = sorted({c.profile for c in fleet} or {opts.allocation_profile})
        self.oracle = TravelOracle(network, profiles, traffic=opts.traffic)
        self.places: dict[str, LivePlaces] = {}
        self.dispatchers: dict[str, Dispatcher] = {}
        self.pickers = {s: pickers.get(s, 1) for s in self.stores}
        self._picker_free = {s: [0] * n for s, n in self.pickers.items()}
        for sid in self.stores:
            store_profiles = sorted({c.profile for c in fleet if c.store == sid} or {profiles[0]})
            pool = self.oracle.pool(pinned=[self.node_of_facility[sid]], profiles=store_profiles)
            self.places[sid] = places = LivePlaces(pool)
            self.dispatchers[sid] = Dispatcher(policy, store_id=sid,
                                               store_location=places.place(self.node_of_facility[sid]),
                                               travel=places, tick_s=opts.tick_s)
        self.store_of: dict[str, str] = {}
        self.most_boxes = most_boxes(fleet)
        """Per store with couriers: the most boxes one of them carries (an order needing more is rejected)."""
        for c in fleet:
            if c.store not in self.dispatchers:
                raise InvalidDispatchError(f"couriers[{c.id}].store", f"unknown dark store {c.store!r}")
            d = self.dispatchers[c.store]
            d.add_courier(Courier(id=c.id, capacity=(c.capacity,), shift_start=c.shift_start,
                                  shift_end=c.shift_end, position=d.store_location, profile=c.profile,
                                  home_store=c.store, status="off"))
            self.store_of[c.id] = c.store
        self.load = DispatcherLoad(self.dispatchers, pickers=self.pickers, places=self.places,
                                   service_s=opts.service_s)
        self.allocator = Allocator(network, self.facilities, profile=opts.allocation_profile,
                                   max_snap_m=opts.max_snap_m, load=self.load if opts.rank == "eta" else None,
                                   max_detour_s=opts.max_detour_s)
        self.quoter = Quoter(self.allocator, self.load, opts.promise)
        self.orders: dict[str, _Booked] = {}
        self._failed: dict[str, list[str]] = {}
        self._now = 0
        self._travel_hour: int | None = None
        self.journal: list[dict[str, Any]] | None = None
        """When a list, every command carried out is appended to it (the shape `apply` takes)."""

    # --- time ----------------------------------------------------------------------------------------------

    @property
    def now(self) -> int:
        return self._now

    def _advance(self, now: int) -> int:
        """Move the clock to `now`; every store's travel follows the hour (a pure function of the clock)."""
        if isinstance(now, bool) or not isinstance(now, int | np.integer):
            raise InvalidDispatchError("now", f"must be integer seconds, got {now!r}")
        if now < self._now:
            raise InvalidDispatchError("now", f"time went back from {self._now} to {now}")
        self._now = int(now)
        hour = self._hour(self._now)
        if hour != self._travel_hour:
            self._travel_hour = hour
            for places in self.places.values():
                places.set_hour(hour)
        return self._now

    def _hour(self, t: int) -> int | None:
        return t // 3600 % 24 if self.options.traffic else None

    def _log(self, op: str, now: int, **fields: Any) -> None:
        if self.journal is not None:
            self.journal.append({"op": op, "now": int(now), **fields})

    def apply(self, command: Mapping[str, Any]) -> Outcome:
        """Carry out one command of a store's command stream (the journal's shape, see `COMMANDS`)."""
        if not isinstance(command, Mapping) or command.get("op") not in COMMANDS:
            raise InvalidDispatchError("command.op", f"must be one of {list(COMMANDS)}")
        try:
            return _HANDLERS[command["op"]](self, command)
        except KeyError as e:
            raise InvalidDispatchError(f"command.{e.args[0]}", "is missing") from None

    def _courier(self, courier_id: str) -> tuple[str, Dispatcher]:
        store = self.store_of.get(courier_id)
        if store is None:
            raise InvalidDispatchError("courier_id", f"unknown courier {courier_id!r}")
        return store, self.dispatchers[store]

    # --- orders --------------------------------------------------------------------------------------------

    def place(self, order: Order, now: int, *, admission: Admission | None = None) -> Outcome:
        """A new order: allocate (reserving stock and room), quote, queue its picking, dispatch. With an
        `admission` (see `Admission`), its allocation, reservation and quote stand: nothing is allocated again.
        An order without a promise is sold as express within `OperationsOptions.default_express_s`."""
        now = self._advance(now)
        order = self.options.promised(order)
        promise_by = deadline(order)  # before anything is reserved: an order it refuses takes nothing
        if self.journal is not None:
            self._log("place", now, order=order_to_json(order),
                      **({} if admission is None else {"admission": admission.to_json()}))
        if admission is None:
            alloc = self.allocator.allocate([order])[0]
            express = (self.quoter.express_for(alloc, now, plan=False) if order.mode == "courier" and order.items
                       else None)
            placed = _placed(order, now, *_quote(express))
        else:
            alloc, express = admission.allocation, None
            placed = _placed(order, now, admission.quoted_eta, admission.quote_basis)
            if admission.reservation is not None:
                try:
                    self.allocator.inventory.reserve_unjournaled(admission.reservation)
                except ReservationError as e:  # the live store's counts allowed it: the core's must too
                    alloc = rejected(order.id, f"reservation_failed: {e.message}")
        if not alloc.allocated:
            return Outcome(events=(placed, Event(t=now, order=order.id, event="rejected",
                                                 fields={"reason": alloc.reason})))
        assert alloc.store is not None and alloc.facility is not None
        refused = too_large(alloc, order.mode, self.most_boxes)
        if refused is not None:  # no courier of the store could take it
            self.allocator.cancel(order.id)
            return Outcome(events=(_placed(order, now, None, None), Event(t=now, order=order.id, event="rejected",
                                                                         fields={"reason": refused})))
        self.orders[order.id] = _Booked(id=order.id, mode=order.mode, store=alloc.store, facility=alloc.facility,
                                        boxes=alloc.boxes, promise_by=promise_by, placed_at=order.placed_at)
        allocated = Event(t=now, order=order.id, event="allocated", fields={
            "store": alloc.store, "facility": alloc.facility, "boxes": list(alloc.boxes), "promise_by": promise_by})
        is_return = order.mode == "return_pickup_point"  # nothing to pick: collected at its pickup point
        ready_at = now if is_return else self._queue_picking(alloc.store, now)
        if order.mode == "store":  # click and collect: no courier; once picked it waits at the store (`picked`)
            return Outcome(events=(placed, allocated))
        d, places = self.dispatchers[alloc.store], self.places[alloc.store]
        node = alloc.node if order.mode == "courier" else self.node_of_facility[alloc.facility]
        assert node is not None  # the Allocator snapped the address of an order it serves from a store
        dorder = DispatchOrder(id=order.id, store=alloc.store, location=places.place(node), ready_at=ready_at,
                               promise_by=max(promise_by, ready_at) if is_return else promise_by,
                               load=(max(1, len(alloc.boxes)),), service_s=self.options.service_s,
                               placed_at=order.placed_at, is_return=is_return)
        decisions = d.on_order(dorder, now)
        if express is not None:  # the checkout's quote, from the decision the order was just placed into
            trip = decisions.trip_of(order.id)
            express = self.quoter.with_plan(express, None if trip is None else
                                            trip.etas[trip.order_ids.index(order.id)], now)
            if express.eta is not None:
                d.set_quote(order.id, express.eta)
            placed = _placed(order, now, *_quote(express))
        elif admission is not None and admission.quoted_eta is not None:
            d.set_quote(order.id, admission.quoted_eta)
        return Outcome(events=(placed, allocated)) + self._decided(decisions)

    def load_estimates(self, now: int) -> dict[str, list[int | None]]:
        """Per store: when an order placed at `now` would be picked and when a courier would be free for it (None:
        no courier on shift), as allocation sees them (what a `dispatch.load.PublishedLoad` takes)."""
        out: dict[str, list[int | None]] = {}
        for sid, store in self.stores.items():
            out[sid] = [self.load.picking_done_at(store, now), self.load.courier_free_at(store, now)]
        return out

    def pickers_busy(self, store: str) -> int:
        """How many of the store's pickers are picking an order now (the core's time)."""
        return sum(1 for t in self._picker_free[store] if t > self._now)

    def _queue_picking(self, store: str, now: int) -> int:
        """When picking will be done: the store's pickers work first come first served, `picking_s` each."""
        free = self._picker_free[store]
        start = max(now, heapq.heappop(free))
        done = start + self.stores[store].picking_s
        heapq.heappush(free, done)
        return done

    def cancellable(self, order_id: str) -> bool:
        """Whether the order is open at its store and no courier has it yet (a click-and-collect order: not yet
        picked)."""
        booked = self.orders.get(order_id)
        if booked is None:
            return False
        return not booked.waiting if booked.mode == "store" else self.dispatchers[booked.store].is_open(order_id)

    def cancel(self, order_id: str, now: int) -> Outcome:
        """Withdraw an order no courier has yet, releasing its stock and room; nothing if it cannot be."""
        now = self._advance(now)
        self._log("cancel", now, order=order_id)
        if not self.cancellable(order_id):
            return Outcome()
        booked = self.orders.pop(order_id)
        if booked.mode != "store":
            self.dispatchers[booked.store].cancel(order_id, now)
        inventory = self.allocator.inventory
        for hold in (order_id, _locker_hold(order_id)):  # what it still holds: a parcel a courier brought back
            if inventory.reservation(hold) is not None:  # holds no stock (it left the store), a redirected one a
                self.allocator.cancel(hold)  # compartment of its locker
        return Outcome(events=(Event(t=now, order=order_id, event="cancelled"),))

    def picked(self, order_id: str, now: int) -> Outcome:
        """The store finished picking the order: it is ready to go (a click-and-collect order is then `delivered`
        at its store, with no courier, and waits for its customer). Nothing if it was picked before or a courier
        has already left with it (a retry, or a report that comes too late, changes nothing)."""
        now = self._advance(now)
        self._log("picked", now, order=order_id)
        booked = self.orders.get(order_id)
        if booked is None:
            raise InvalidDispatchError("order_id", f"unknown or closed order {order_id!r}")
        if booked.picked or booked.on_board or booked.waiting or booked.mode == "return_pickup_point":
            return Outcome()  # a return has nothing to pick
        booked.picked = True
        picked = Event(t=now, order=order_id, event="picked", fields={"store": booked.store})
        if booked.mode != "store":
            d = self.dispatchers[booked.store]
            if d.is_open(order_id):  # done before the picking queue's estimate: ready from now on at the next tick
                d.set_ready(order_id, now)
            return Outcome(events=(picked,))
        booked.waiting = True
        return Outcome(events=(picked, Event(t=now, order=order_id, event="delivered", fields={
            "courier": None, "on_time": now <= booked.promise_by})))

    def collected(self, order_id: str, now: int) -> Outcome:
        """The customer emptied the locker compartment or pickup place holding the order; nothing if the order is
        not waiting there (still at the store or on its way)."""
        now = self._advance(now)
        self._log("collected", now, order=order_id)
        booked = self.orders.get(order_id)
        if booked is None:
            raise InvalidDispatchError("order_id", f"order {order_id!r} is not waiting to be collected")
        if not booked.waiting:
            return Outcome()
        del self.orders[order_id]
        if booked.mode == "store":  # taken off the store's counter: its stock is gone for good
            self.allocator.fulfil(order_id)
        else:  # the compartment or place it held is free again
            self.allocator.cancel(_locker_hold(order_id) if booked.redirected_to is not None else order_id)
        return Outcome(events=(Event(t=now, order=order_id, event="collected"),))

    def quote(self, location: tuple[float, float], items: Iterable[Item], now: int) -> Quote:
        """Every delivery option the checkout can offer for `items` to `location` now (changes nothing)."""
        now = self._advance(now)
        return self.quoter.quote(location, items, now)

    def stock(self, store: str, sku: str, available: int, now: int, *, delta: int | None = None) -> Outcome:
        """The store counted `available` units of `sku` that orders can still take (deliveries, shrinkage). With
        `delta`, a live store set its own count and found it `delta` from what it held: the core adds that (it may
        hold more, by what it released and the store has not counted yet)."""
        now = self._advance(now)
        if store not in self.stores:
            raise InvalidDispatchError("store", f"unknown dark store {store!r}")
        if delta is None:
            self.allocator.inventory.set_stock(store, sku, available)
        else:
            self.allocator.inventory.adjust_stock(store, sku, delta)
        self._log("stock", now, store=store, sku=sku, available=available,
                  **({} if delta is None else {"delta": delta}))
        return Outcome()

    # --- dispatch ------------------------------------------------------------------------------------------

    def tick(self, store: str, now: int) -> Outcome:
        """Ask the store's policy again (trips whose couriers must set off now are committed)."""
        now = self._advance(now)
        self._log("tick", now, store=store)
        d = self.dispatchers[store]
        return self._decided(d.tick(now))

    def _decided(self, decisions: Decisions) -> Outcome:
        events = [Event(t=decisions.now, order=oid, event="assigned",
                        fields={"courier": trip.courier_id, "eta": trip.etas[k]})
                  for trip in decisions.trips for k, oid in enumerate(trip.order_ids)]
        return Outcome(events=tuple(events), trips=decisions.trips)

    def open_orders(self, store: str) -> int:
        """How many orders the store's dispatcher still tracks (open or on a courier)."""
        return len(self.dispatchers[store].orders)

    # --- couriers ------------------------------------------------------------------------------------------

    def courier_status(self, courier_id: str) -> str:
        _, d = self._courier(courier_id)
        return d.couriers[courier_id].status

    def shift(self, courier_id: str, on: bool, now: int) -> Outcome:
        """The courier starts (at its store) or ends its shift; starting it again while on changes nothing."""
        now = self._advance(now)
        _, d = self._courier(courier_id)
        if on and d.couriers[courier_id].status != "off":  # a retry
            return Outcome()
        self._log("shift", now, courier=courier_id, on=on)
        event: CourierEvent = "on" if on else "off"
        left = () if on else d.couriers[courier_id].carrying  # a committed trip it had not yet left with
        d.on_courier_event(courier_id, event, now, location=d.store_location if on else None)
        return Outcome(events=tuple(Event(t=now, order=oid, event="unassigned",
                                          fields={"courier": courier_id, "reason": COURIER_OFF_SHIFT})
                                    for oid in left))

    def position(self, courier_id: str, location: tuple[float, float], now: int) -> Outcome:
        """Where the courier's phone says it is (lon, lat): snapped to the road, a live place of its store."""
        now = self._advance(now)
        store, d = self._courier(courier_id)
        lonlat = check_location(InvalidDispatchError, "location", location)
        hit = snap(self.network, np.array([lonlat], dtype=np.float64), max_distance_m=self.options.max_snap_m)
        if hit.too_far[0]:
            raise InvalidDispatchError("location", f"{lonlat} is {hit.distance_m[0]:.0f} m from the nearest road "
                                       f"(limit {self.options.max_snap_m:.0f} m)")
        index = self.places[store].place(int(hit.nodes[0]))
        d.on_courier_event(courier_id, "position", now, location=index)
        self._log("position", now, courier=courier_id, location=list(lonlat))
        return Outcome()

    def picked_up(self, courier_id: str, now: int) -> Outcome:
        """The courier leaves the store with its committed trip."""
        now = self._advance(now)
        self._log("picked_up", now, courier=courier_id)
        _, d = self._courier(courier_id)
        carrying = d.couriers[courier_id].carrying
        d.on_courier_event(courier_id, "picked_up", now)
        events = []
        for oid in carrying:
            booked = self.orders[oid]
            if booked.mode == "return_pickup_point":  # the courier takes it at its pickup point (`delivered`)
                continue
            events.append(Event(t=now, order=oid, event="picked_up", fields={"courier": courier_id}))
            booked.on_board = True
            if booked.redirected_to is None and not booked.fulfilled:  # not again after it came back
                self.allocator.fulfil(oid)
                booked.fulfilled = True
        return Outcome(events=tuple(events))

    def delivered(self, courier_id: str, order_id: str, now: int, *, arrived_at: int | None = None) -> Outcome:
        """Handed over at the door (or locker, pickup point), or a return taken from its pickup point (final: the
        place it held is free, the courier brings it to the store); `arrived_at` when the courier got there."""
        now = self._advance(now)
        self._log("delivered", now, courier=courier_id, order=order_id, arrived_at=arrived_at)
        _, d = self._courier(courier_id)
        d.on_courier_event(courier_id, "delivered", now, order_id=order_id)
        booked = self.orders[order_id]
        at = now if arrived_at is None else arrived_at
        booked.on_board = False
        if booked.mode == "return_pickup_point":  # the courier took the return: its place at the point is free
            del self.orders[order_id]
            self.allocator.cancel(order_id)
        elif booked.mode == "courier" and booked.redirected_to is None:
            del self.orders[order_id]
        else:
            booked.waiting = True
        return Outcome(events=(Event(t=at, order=order_id, event="delivered",
                                     fields={"courier": courier_id, "on_time": at <= booked.promise_by}),))

    def failed(self, courier_id: str, order_id: str, now: int, *, reason: str = CUSTOMER_ABSENT) -> Outcome:
        """Not handed over: the parcel stays on board and rides back to the store."""
        now = self._advance(now)
        self._log("failed", now, courier=courier_id, order=order_id, reason=reason)
        _, d = self._courier(courier_id)
        if order_id not in d.couriers[courier_id].carrying:
            raise InvalidDispatchError("order_id", f"order {order_id!r} is not on courier {courier_id}")
        if self.orders[order_id].mode == "return_pickup_point":
            raise InvalidDispatchError("outcome", f"order {order_id!r} is a return waiting at its pickup point: "
                                       "not taken, it goes back to the dispatcher when the courier is back at "
                                       "the store")
        if order_id in self._failed.get(courier_id, ()):  # reported again: it is already riding back
            return Outcome()
        self._failed.setdefault(courier_id, []).append(order_id)
        if order_id in self.orders:
            self.orders[order_id].failure = reason
        return Outcome(events=(Event(t=now, order=order_id, event="failed",
                                     fields={"courier": courier_id, "reason": reason}),))

    def at_store(self, courier_id: str, now: int) -> Outcome:
        """The courier is back at its store: failed parcels are returned, or go on to a locker with room; a parcel
        brought back with neither a delivery nor a failure reported is open again (`unassigned`, `back_at_store`)."""
        now = self._advance(now)
        self._log("at_store", now, courier=courier_id)
        store, d = self._courier(courier_id)
        carried = d.couriers[courier_id].carrying
        d.on_courier_event(courier_id, "at_store", now)
        failed = self._failed.pop(courier_id, [])
        for oid in failed:
            d.cancel(oid, now)
        out = Outcome()
        for oid in carried:
            if oid not in failed and d.is_open(oid):
                self.orders[oid].on_board = False
                out += Outcome(events=(Event(t=now, order=oid, event="unassigned",
                                             fields={"courier": courier_id, "reason": BACK_AT_STORE}),))
        for oid in failed:
            booked = self.orders[oid]
            if booked.mode == "courier" and self.options.failed_to == "locker":
                redirected = self._redirect(oid, store, now)
                if redirected is not None:
                    out += redirected
                    continue
            del self.orders[oid]
            if booked.mode != "courier":
                self.allocator.cancel(oid)
            out += Outcome(events=(Event(t=now, order=oid, event="returned",
                                         fields={"reason": booked.failure or CUSTOMER_ABSENT}),))
        return out

    def _redirect(self, order_id: str, store: str, now: int) -> Outcome | None:
        """Send a parcel back at the store on to the locker nearest it with room for its boxes; None if none."""
        booked = self.orders[order_id]
        by_name = {b.name: b for b in self.allocator.catalogue.boxes}
        needed = compartments_for([by_name[b] for b in booked.boxes])
        inventory = self.allocator.inventory
        for lk in sorted(self.lockers, key=lambda lk: (self.allocator.travel_time(store, lk.id), lk.id)):
            assigned = inventory.assign_compartments(lk.id, needed)
            if assigned is None:
                continue
            inventory.reserve(_locker_hold(order_id), locker=lk.id, compartments=assigned)
            booked.redirected_to = lk.id
            booked.on_board = False
            booked.failure = None
            d, places = self.dispatchers[store], self.places[store]
            dorder = DispatchOrder(id=order_id, store=store, location=places.place(self.node_of_facility[lk.id]),
                                   ready_at=now, promise_by=booked.promise_by, load=(max(1, len(booked.boxes)),),
                                   service_s=self.options.service_s, placed_at=booked.placed_at)
            redirected = Outcome(events=(Event(t=now, order=order_id, event="redirected", fields={"locker": lk.id}),))
            return redirected + self._decided(d.on_order(dorder, now))
        return None

    # --- snapshot and restore ------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The core's whole state as UTF-8 JSON (format `lastmile.operations`, version 1; see docs/core.md).

        Configuration (map, facilities, fleet, policy, options) is not in it: `restore` takes it into a core made
        with the same configuration.
        """
        data = {
            "format": SNAPSHOT_FORMAT,
            "version": SNAPSHOT_VERSION,
            "now": self._now,
            "facilities": [f.id for f in self.facilities],
            "couriers": sorted(self.store_of),
            "inventory": self.allocator.inventory.snapshot(),
            "slot_bookings": [list(row) for row in self.quoter.bookings()],
            "pickers": {store: list(free) for store, free in self._picker_free.items()},
            "orders": list(self.orders.values()),
            "failed": {cid: list(oids) for cid, oids in self._failed.items()},
            "stores": {sid: {"dispatcher": d.snapshot(), "places": self.places[sid].pool.snapshot()}
                       for sid, d in self.dispatchers.items()},
        }
        # compact UTF-8 JSON, 7× faster than json.dumps; dataclasses written at C speed as objects of their fields
        return orjson.dumps(data, default=json_default, option=orjson.OPT_NON_STR_KEYS)

    def restore(self, snapshot: bytes) -> None:
        """Take the state of `snapshot()` from a core of the same configuration (made fresh, or any other)."""
        try:
            data = json.loads(snapshot)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InvalidDispatchError("snapshot", f"is not JSON: {e}") from None
        if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
            raise InvalidDispatchError("snapshot.format", f"must be {SNAPSHOT_FORMAT!r}")
        if data.get("version") != SNAPSHOT_VERSION:
            raise InvalidDispatchError("snapshot.version", f"must be {SNAPSHOT_VERSION}, got {data.get('version')!r}")
        for name, mine in (("facilities", [f.id for f in self.facilities]), ("couriers", sorted(self.store_of))):
            if data[name] != mine:
                raise InvalidDispatchError(f"snapshot.{name}", "differ from this core's configuration")
        self._now = int(data["now"])
        self.allocator.inventory.restore(data["inventory"])
        self.quoter.restore_bookings(data["slot_bookings"])
        self._picker_free = {store: [int(t) for t in free] for store, free in data["pickers"].items()}
        self.orders = {o["id"]: _Booked(**o | {"boxes": tuple(o["boxes"])})
                       for o in data["orders"]}
        self._failed = {cid: list(oids) for cid, oids in data["failed"].items()}
        for sid, store in data["stores"].items():
            self.places[sid].pool.restore(store["places"])
            self.dispatchers[sid].restore(store["dispatcher"])

    # --- travel as ridden ----------------------------------------------------------------------------------

    def leg(self, store: str, profile: str, a: int, b: int, now: int) -> tuple[int, int]:
        """Seconds and metres of the fastest path between two live places of `store`, setting off at `now` (the
        clock moves there: travel follows the hour)."""
        self._advance(now)
        travel = self.places[store].matrices()
        return travel.duration(profile, a, b), travel.distance(profile, a, b)

    def location(self, store: str, order_id: str) -> int:
        """The live location index of an order the store's dispatcher tracks."""
        return self.dispatchers[store].orders[order_id].location

    def node(self, store: str, index: int) -> int:
        """The road node of a live location index of `store`."""
        return self.places[store].node(index)


_HANDLERS: dict[str, Callable[[Operations, Mapping[str, Any]], Outcome]] = {
    "place": lambda core, c: core.place(order_from_json(c["order"]), c["now"], admission=None if c.get(
        "admission") is None else Admission.from_json(c["order"]["id"], c["admission"])),
    "cancel": lambda core, c: core.cancel(c["order"], c["now"]),
    "picked": lambda core, c: core.picked(c["order"], c["now"]),
    "collected": lambda core, c: core.collected(c["order"], c["now"]),
    "stock": lambda core, c: core.stock(c["store"], c["sku"], c["available"], c["now"], delta=c.get("delta")),
    "tick": lambda core, c: core.tick(c["store"], c["now"]),
    "shift": lambda core, c: core.shift(c["courier"], bool(c["on"]), c["now"]),
    "position": lambda core, c: core.position(c["courier"], tuple(c["location"]), c["now"]),
    "picked_up": lambda core, c: core.picked_up(c["courier"], c["now"]),
    "delivered": lambda core, c: core.delivered(c["courier"], c["order"], c["now"], arrived_at=c["arrived_at"]),
    "failed": lambda core, c: core.failed(c["courier"], c["order"], c["now"], reason=c["reason"]),
    "at_store": lambda core, c: core.at_store(c["courier"], c["now"]),
}
"""What `Operations.apply` calls for each command."""
COMMANDS = tuple(_HANDLERS)
"""The commands of a store's command stream (the journal's `op`)."""


def order_to_json(order: Order) -> dict[str, Any]:
    """An order as a JSON-ready dict (the `place` command's `order`): `dataclasses.asdict`'s shape, built
    directly (it is on the path of every posted order)."""
    return {"id": order.id, "location": order.location, "mode": order.mode,
            "items": [shallow_dict(i) for i in order.items], "placed_at": order.placed_at,
            "promise": None if order.promise is None else shallow_dict(order.promise),
            "returns": [shallow_dict(i) for i in order.returns]}


def order_from_json(data: Mapping[str, Any]) -> Order:
    """The order of `order_to_json`."""
    promise = data.get("promise")
    return Order(id=data["id"], location=tuple(data["location"]), mode=data["mode"],
                 items=items_from_json(data["items"]), placed_at=data["placed_at"],
                 promise=None if promise is None else Promise(
                     kind=promise["kind"], within_s=promise["within_s"],
                     window=None if promise["window"] is None else tuple(promise["window"])),
                 returns=items_from_json(data.get("returns", ())))


def items_from_json(rows: Iterable[Mapping[str, Any]]) -> tuple[Item, ...]:
    """Items from their `asdict` shape (as in `order_to_json`)."""
    return tuple(Item(**{**r, "dims_mm": tuple(r["dims_mm"])}) for r in rows)


def _quote(express: QuoteOption | None) -> tuple[int | None, dict[str, int] | None]:
    """The checkout's express ETA and what it was made of (None, None without an express option)."""
    if express is None:
        return None, None
    return express.eta, None if express.basis is None else asdict(express.basis)


def _placed(order: Order, now: int, quoted_eta: int | None, basis: Mapping[str, int] | None) -> Event:
    """The `placed` event: the mode and the checkout's express quote with what it was made of."""
    fields: dict[str, Any] = {"mode": order.mode, "quoted_eta": quoted_eta}
    if basis is not None:
        fields["quote_basis"] = dict(basis)
    return Event(t=now, order=order.id, event="placed", fields=fields)


def _locker_hold(order_id: str) -> str:
    """The reservation id of the compartments a redirected parcel takes (its own order keeps the stock taken)."""
    return order_id + "@locker"
