"""What a dispatcher sees at one moment: open orders, couriers, travel matrices; and what it decides (trips).

Pure data and arithmetic, no I/O and no wall clock: times are integer seconds on the caller's clock (simulated
or real), travel is looked up in per-profile matrices over one *location index space*.

Location index space: `TravelMatrices` holds, per courier profile, an n×n matrix of durations (s) and one of
distances (m). Every place the dispatcher talks about — the dark store, customer doors, courier positions — is
an index 0..n-1 into those matrices. Build them once per map (e.g. `TravelMatrices.from_engines` over the snapped
road nodes of the store and the customers, or over synthetic points with `HaversineEngine`) and share them across
ticks; a new customer address needs a new index (rebuild or extend the matrices).

Courier statuses, with what `position` and `available_at` mean in each:

- `idle`: free, at `position` from `available_at` (a store courier normally waits at its store).
- `assigned`: a committed trip (`carrying`) waits at the store; the courier is at `position` (heading to the
  store if not there yet) and leaves the store at `available_at` (the planned departure) or when it gets there.
- `en_route`: `carrying` is on board; the courier was at `position` at `available_at` and delivers them in
  order, then a store courier rides back to its store (a free-floating one stays at its last stop).
- `returning`: nothing on board; was at `position` at `available_at`, riding back to its store.
- `off`: not working; ignored by every policy.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from dispatch.errors import DispatchError, InvalidDispatchError, InvalidOrderError
from routing.matrix import UNREACHABLE, TravelTimes

CourierStatus = Literal["idle", "assigned", "en_route", "returning", "off"]
COURIER_STATUSES: tuple[CourierStatus, ...] = get_args(CourierStatus)

FIFO = operator.attrgetter("placed_at", "ready_at", "id")
"""First come, first served: the order in which policies and the store load take open orders."""

DEFAULT_CO2_G_PER_KM: Mapping[str, float] = MappingProxyType(
    {"car": 180.0, "scooter": 70.0, "ebike": 5.0, "bike": 0.0, "foot": 0.0}
)
"""Grams of CO2 per kilometre per vehicle profile (tailpipe and, for e-bikes, grid electricity)."""


def _int(error: type[DispatchError], name: str, value: object, minimum: int | None = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise error(name, f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise error(name, f"must be at least {minimum}, got {value}")
    return int(value)


def _amounts(error: type[DispatchError], name: str, value: object, minimum: int) -> tuple[int, ...]:
    """An int (one dimension) or a non-empty sequence of ints, each >= `minimum`, as a tuple."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return (_int(error, name, value, minimum),)
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise error(name, f"must be an integer or a tuple of integers, got {value!r}")
    amounts = tuple(_int(error, f"{name}[{k}]", v, minimum) for k, v in enumerate(value))
    if not amounts:
        raise error(name, "needs at least one dimension")
    return amounts


def _id(error: type[DispatchError], name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise error(name, f"must be a non-empty string, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TravelMatrices:
    """Per-profile travel durations (s) and distances (m) over one location index space (see the module doc).

    Matrices are validated once, copied to int64 and made read-only (read-only int64 arrays are shared, not
    copied, so matrices for several hours of the day can share the arrays that do not change); `UNREACHABLE`
    marks pairs no road joins.
    Several profiles may share the same arrays (e.g. `ebike` and `bike`) to get their own CO2 figure.
    """

    durations: Mapping[str, np.ndarray]
    distances: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        if not self.durations:
            raise InvalidDispatchError("travel.durations", "at least one profile is needed")
        if set(self.durations) != set(self.distances):
            raise InvalidDispatchError("travel.distances", "must cover the same profiles as durations, "
                                       f"got {sorted(self.distances)} vs {sorted(self.durations)}")
        size: int | None = None
        out: dict[str, dict[str, np.ndarray]] = {"durations": {}, "distances": {}}
        for name, matrices in (("durations", self.durations), ("distances", self.distances)):
            for profile, matrix in matrices.items():
                m = np.asarray(matrix)
                where = f"travel.{name}[{profile!r}]"
                if m.ndim != 2 or m.shape[0] != m.shape[1] or (size is not None and m.shape[0] != size):
                    raise InvalidDispatchError(where, f"must be a square matrix of one common size, got {m.shape}")
                if not np.issubdtype(m.dtype, np.integer):
                    raise InvalidDispatchError(where, f"must hold integers, got {m.dtype}")
                if m.size and (m.min() < 0 or m.max() > UNREACHABLE):
                    raise InvalidDispatchError(where, "values must lie in 0..UNREACHABLE")
                size = m.shape[0]
                if m.dtype != np.int64 or m.flags.writeable:
                    m = np.array(m, dtype=np.int64)
                    m.flags.writeable = False
                out[name][profile] = m
        object.__setattr__(self, "durations", MappingProxyType(out["durations"]))
        object.__setattr__(self, "distances", MappingProxyType(out["distances"]))

    @classmethod
    def from_engines(cls, engines: Mapping[str, TravelTimes], points: Sequence[int] | np.ndarray, *,
                     hour: int | None = None) -> TravelMatrices:
        """Matrices whose location index i is `points[i]` of every engine (road nodes, or haversine points)."""
        idx = np.asarray(points, dtype=np.int64)
        durations, distances = {}, {}
        for profile, engine in engines.items():
            m = engine.matrix(idx, idx, hour=hour)
            durations[profile], distances[profile] = m.durations, m.distances
        return cls(durations=durations, distances=distances)

    @property
    def n_locations(self) -> int:
        return int(next(iter(self.durations.values())).shape[0])

    @property
    def profiles(self) -> tuple[str, ...]:
        return tuple(sorted(self.durations))

    def duration(self, profile: str, a: int, b: int) -> int:
        return int(self.durations[profile][a, b])

    def distance(self, profile: str, a: int, b: int) -> int:
        return int(self.distances[profile][a, b])


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchOrder:
    """One parcel to take from the store to `location`, or (`is_return`) to collect there and bring back.

    Delivery: leaves the store once picked (`ready_at`) and should reach the door by `promise_by` (soft: lateness
    is penalised, never refused). Return: collected at the door within [`ready_at`, `promise_by`] (hard window),
    then brought back to the store. `load` is in the couriers' capacity units, one amount per dimension (e.g.
    boxes, grams, millilitres: `dispatch.packaging.order_load`); an int is one dimension (boxes) and is stored
    as a 1-tuple. `service_s` is the handover time. `quoted_by` is the ETA the customer was quoted at checkout
    (None: none); a policy may try to keep it.
    """

    id: str
    store: str
    location: int
    ready_at: int
    promise_by: int
    load: tuple[int, ...] | int = 1
    service_s: int = 0
    placed_at: int = 0
    is_return: bool = False
    quoted_by: int | None = None

    def __post_init__(self) -> None:
        _id(InvalidOrderError, "id", self.id)
        _id(InvalidOrderError, "store", self.store)
        if self.quoted_by is not None:
            _int(InvalidOrderError, "quoted_by", self.quoted_by)
        for name in ("location", "ready_at", "promise_by", "service_s", "placed_at"):
            _int(InvalidOrderError, name, getattr(self, name))
        object.__setattr__(self, "load", _amounts(InvalidOrderError, "load", self.load, 0))
        if not isinstance(self.is_return, bool):
            raise InvalidOrderError("is_return", f"must be a bool, got {self.is_return!r}")
        if self.ready_at < self.placed_at:
            raise InvalidOrderError("ready_at", f"picking cannot end ({self.ready_at}) before the order is placed "
                                    f"({self.placed_at})")
        if self.is_return and self.promise_by < self.ready_at:
            raise InvalidOrderError("promise_by", f"a return's collection window closes at {self.promise_by} "
                                    f"before it opens at {self.ready_at}")

    @property
    def load_vector(self) -> tuple[int, ...]:
        """`load` as a tuple (it always is one after construction; typed so for callers)."""
        return self.load if isinstance(self.load, tuple) else (self.load,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Courier:
    """A courier, its vehicle profile (matrix and CO2 key), capacity, shift and where it stands now.

    `home_store` None means free-floating (meal-delivery style): it rides to the store to collect each trip and
    stays at its last stop afterwards; a store courier starts and ends every trip at its store. `carrying` are
    the ids of the orders it holds or has been committed to, in delivery order (see the module doc for statuses).
    `capacity` has one amount per load dimension (see `DispatchOrder.load`), each at least 1; an int is one
    dimension and is stored as a 1-tuple.
    """

    id: str
    capacity: tuple[int, ...] | int
    shift_end: int
    position: int
    profile: str = "bike"
    shift_start: int = 0
    home_store: str | None = None
    status: CourierStatus = "idle"
    available_at: int = 0
    carrying: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _id(InvalidDispatchError, "courier.id", self.id)
        where = f"courier {self.id}"
        object.__setattr__(self, "capacity", _amounts(InvalidDispatchError, f"{where}: capacity", self.capacity, 1))
        for name in ("shift_start", "shift_end", "position", "available_at"):
            _int(InvalidDispatchError, f"{where}: {name}", getattr(self, name))
        if self.shift_end <= self.shift_start:
            raise InvalidDispatchError(f"{where}: shift_end", f"must be after shift_start ({self.shift_start}), "
                                       f"got {self.shift_end}")
        _id(InvalidDispatchError, f"{where}: profile", self.profile)
        if self.home_store is not None:
            _id(InvalidDispatchError, f"{where}: home_store", self.home_store)
        if self.status not in COURIER_STATUSES:
            raise InvalidDispatchError(f"{where}: status", f"must be one of {list(COURIER_STATUSES)}, "
                                       f"got {self.status!r}")
        carrying = tuple(self.carrying)
        if len(set(carrying)) != len(carrying):
            raise InvalidDispatchError(f"{where}: carrying", f"lists an order twice: {list(carrying)}")
        if carrying and self.status not in ("assigned", "en_route"):
            raise InvalidDispatchError(f"{where}: carrying", f"a courier that is {self.status} carries nothing")
        if not carrying and self.status == "assigned":
            raise InvalidDispatchError(f"{where}: carrying", "an assigned courier needs the orders of its trip")
        if self.status == "returning" and self.home_store is None:
            raise InvalidDispatchError(f"{where}: status", "a free-floating courier has no store to return to")
        object.__setattr__(self, "carrying", carrying)

    @property
    def capacity_vector(self) -> tuple[int, ...]:
        """`capacity` as a tuple (it always is one after construction; typed so for callers)."""
        return self.capacity if isinstance(self.capacity, tuple) else (self.capacity,)

    def fits(self, load: Sequence[int]) -> bool:
        """Whether `load` (one amount per dimension) fits within the capacity in every dimension."""
        return all(a <= c for a, c in zip(load, self.capacity_vector, strict=True))

    @property
    def free_floating(self) -> bool:
        return self.home_store is None


@dataclass(frozen=True, slots=True, kw_only=True)
class Trip:
    """One courier trip: `order_ids` in visiting order with their ETAs (service start at the door).

    `departure` is when it leaves the store with the parcels (for a trip already under way, when it was last
    seen at its position); `dispatch_at` when the courier must set off for it (earlier than `departure` by the
    ride to the store for a free-floating courier). `end_at` is back at the store for a store courier (the
    return parcels are dropped there), at the last door for a free-floating one. `distance_m` includes the ride
    to the store and back; `co2_g` is `distance_m` / 1000 × the profile's g CO2/km.
    """

    courier_id: str
    profile: str
    order_ids: tuple[str, ...]
    etas: tuple[int, ...]
    lateness_s: tuple[int, ...]
    dispatch_at: int
    departure: int
    end_at: int
    ends_at_store: bool
    distance_m: int
    co2_g: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "order_ids", tuple(self.order_ids))
        object.__setattr__(self, "etas", tuple(self.etas))
        object.__setattr__(self, "lateness_s", tuple(self.lateness_s))
        if not self.order_ids:
            raise InvalidDispatchError(f"trip of {self.courier_id}: order_ids", "a trip serves at least one order")
        if len(set(self.order_ids)) != len(self.order_ids):
            raise InvalidDispatchError(f"trip of {self.courier_id}: order_ids", "lists an order twice")
        if not len(self.etas) == len(self.lateness_s) == len(self.order_ids):
            raise InvalidDispatchError(f"trip of {self.courier_id}: etas", "need one ETA and lateness per order")
        if self.distance_m < 0 or self.co2_g < 0 or not math.isfinite(self.co2_g):
            raise InvalidDispatchError(f"trip of {self.courier_id}: distance_m", "must not be negative")

    @property
    def km(self) -> float:
        return self.distance_m / 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class UnassignedOrder:
    """An open order no trip serves yet, and why (it stays open: the next decision tries again)."""

    order_id: str
    reason: str


@functools.lru_cache(maxsize=1 << 16)
def unassigned(order_id: str, reason: str) -> UnassignedOrder:
    """`UnassignedOrder(order_id=..., reason=...)`, shared while it is asked for again (a busy store lists the
    same waiting orders with the same reasons decision after decision; the objects are immutable)."""
    return UnassignedOrder(order_id=order_id, reason=reason)


_ORDER_ID = operator.attrgetter("order_id")
_ORDER_IDS = operator.attrgetter("order_ids")

NOT_READY = "not_ready"
"""Picking will not be done before the next tick (greedy and batch wait for it)."""
HELD_FOR_BATCHING = "held_for_batching"
NO_IDLE_COURIER = "no_idle_courier"
NO_COURIER = "no_courier"
"""No courier is on shift (or every one is off) to plan with."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Decisions:
    """What a policy decided at `now`: trips that start now, a tentative plan, and what is left open.

    `trips` are committed (the dispatcher hands them to their couriers); `tentative` is the rest of the plan,
    which the next decision may change; `carried` restates the remaining part of trips already under way (ETAs
    of the orders couriers hold). Every open order is in exactly one trip or in `unassigned` with a reason.
    Distance and CO2 cover all three kinds of trip: the whole remaining plan.
    """

    now: int
    policy: str
    trips: tuple[Trip, ...] = ()
    tentative: tuple[Trip, ...] = ()
    carried: tuple[Trip, ...] = ()
    unassigned: tuple[UnassignedOrder, ...] = ()
    backend: str | None = None

    def __post_init__(self) -> None:
        for name in ("trips", "tentative", "carried", "unassigned"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        # a busy store has dozens of trips under way and thousands of orders waiting: checked in one pass at C
        # speed, the culprit looked for only when the count shows one
        planned = self._planned()
        seen = set(planned)
        seen.update(map(_ORDER_ID, self.unassigned))
        if len(seen) != len(planned) + len(self.unassigned):
            self._duplicate(planned)
        self._check_couriers()

    @classmethod
    def trusted(cls, *, now: int, policy: str, trips: tuple[Trip, ...] = (), tentative: tuple[Trip, ...] = (),
                carried: tuple[Trip, ...] = (), unassigned: tuple[UnassignedOrder, ...] = (),
                backend: str | None = None) -> Decisions:
        """Decisions whose `unassigned` its maker drew from one `OpenQueue` (distinct ids, none of them planned:
        what greedy and batch build): the trips are checked as the constructor checks them, the unassigned are
        not (one pass over a busy store's thousands of waiting orders, at every decision)."""
        decisions = object.__new__(cls)
        for name, value in (("now", now), ("policy", policy), ("trips", tuple(trips)),
                            ("tentative", tuple(tentative)), ("carried", tuple(carried)),
                            ("unassigned", tuple(unassigned)), ("backend", backend)):
            object.__setattr__(decisions, name, value)
        planned = decisions._planned()
        if len(set(planned)) != len(planned):
            decisions._duplicate(planned)
        decisions._check_couriers()
        return decisions

    def _planned(self) -> list[str]:
        """The ids of the orders in any of the trips, trip by trip."""
        return list(itertools.chain.from_iterable(map(_ORDER_IDS, self.all_trips)))

    def _check_couriers(self) -> None:
        committed = [t.courier_id for t in self.trips]
        if len(set(committed)) != len(committed):
            raise InvalidDispatchError("decisions.trips", "a courier starts at most one trip at a time")

    def _duplicate(self, planned: list[str]) -> None:
        """Raise for the first order id that appears twice (planned twice, or planned and unassigned, or
        unassigned twice)."""
        seen: set[str] = set()
        for oid in planned:
            if oid in seen:
                raise InvalidDispatchError("decisions", f"order {oid!r} is planned twice")
            seen.add(oid)
        trips = set(planned)
        for oid in map(_ORDER_ID, self.unassigned):
            if oid in trips:
                raise InvalidDispatchError("decisions", f"order {oid!r} is both planned and unassigned")
            if oid in seen:
                raise InvalidDispatchError("decisions.unassigned", f"order {oid!r} is listed twice")
            seen.add(oid)

    @property
    def all_trips(self) -> tuple[Trip, ...]:
        return self.carried + self.trips + self.tentative

    @property
    def distance_m(self) -> int:
        return sum(t.distance_m for t in self.all_trips)

    @property
    def km(self) -> float:
        return self.distance_m / 1000.0

    @property
    def co2_g(self) -> float:
        return sum(t.co2_g for t in self.all_trips)

    @property
    def lateness_s(self) -> int:
        """Seconds late summed over every delivery of the plan."""
        return sum(sum(t.lateness_s) for t in self.all_trips)

    @property
    def unassigned_reasons(self) -> dict[str, str]:
        return {u.order_id: u.reason for u in self.unassigned}

    def trip_of(self, order_id: str) -> Trip | None:
        return next((t for t in self.all_trips if order_id in t.order_ids), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class FreePoint:
    """Where and when a courier is done with what it carries: the start of any new work."""

    location: int
    time: int
    carried: Trip | None


@dataclass(frozen=True, slots=True)
class QueueArrays:
    """The open orders first come, first served (`orders`, sorted by `FIFO`) and, aligned with them, what the
    policies and the store load read of each: when it is ready, where its door is, its hand-over time, and the
    `unassigned(id, NOT_READY)` entry greedy and batch give an order not ready by the next tick."""

    orders: tuple[DispatchOrder, ...]
    ready_at: npt.NDArray[np.int64]
    locations: npt.NDArray[np.int64]
    service_s: npt.NDArray[np.int64]
    not_ready: npt.NDArray[np.object_]


_COLUMNS = operator.attrgetter("ready_at", "location", "service_s")
"""What `OpenQueue` keeps in columns of each order (with its id)."""


def array_inserted(column: npt.NDArray[Any], i: int, value: Any) -> npt.NDArray[Any]:
    """A copy of `column` with `value` at `i` (what `np.insert` gives, without its general-purpose overhead)."""
    out = np.empty(len(column) + 1, dtype=column.dtype)
    out[:i], out[i], out[i + 1:] = column[:i], value, column[i:]
    return out


def array_deleted(column: npt.NDArray[Any], i: int) -> npt.NDArray[Any]:
    """A copy of `column` without item `i`."""
    out = np.empty(len(column) - 1, dtype=column.dtype)
    out[:i], out[i:] = column[:i], column[i + 1:]
    return out


class OpenQueue:
    """Open orders kept sorted by `FIFO` as they come and go, with the columns of `QueueArrays` kept aligned: a
    change moves a few items of each column (at C speed) instead of sorting and converting a busy store's
    hundreds of waiting orders again. The columns are replaced, never changed in place, so the `QueueArrays`
    handed out stay as they were."""

    def __init__(self, orders: Iterable[DispatchOrder] = ()) -> None:
        ordered = sorted(orders, key=FIFO)
        self._orders = ordered
        self._by_id = {o.id: o for o in ordered}
        not_ready = np.empty(len(ordered), dtype=object)
        not_ready[:] = [unassigned(o.id, NOT_READY) for o in ordered]
        self._columns = (np.array([o.ready_at for o in ordered], dtype=np.int64),
                         np.array([o.location for o in ordered], dtype=np.int64),
                         np.array([o.service_s for o in ordered], dtype=np.int64), not_ready)
        self._arrays: QueueArrays | None = None

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._by_id

    def add(self, order: DispatchOrder) -> None:
        """Put `order` in its place (replacing an order of the same id)."""
        old = self._by_id.get(order.id)
        if old is not None and FIFO(old) == FIFO(order) and _COLUMNS(old) == _COLUMNS(order):
            # the same place and the same columns (a quote recorded, say): only the order object changes
            self._orders[bisect.bisect_left(self._orders, FIFO(old), key=FIFO)] = order
            self._by_id[order.id] = order
            self._arrays = None
            return
        self.discard(order.id)
        i = bisect.bisect_left(self._orders, FIFO(order), key=FIFO)
        self._orders.insert(i, order)
        self._by_id[order.id] = order
        ready_at, locations, service_s, not_ready = self._columns
        self._columns = (array_inserted(ready_at, i, order.ready_at), array_inserted(locations, i, order.location),
                         array_inserted(service_s, i, order.service_s),
                         array_inserted(not_ready, i, unassigned(order.id, NOT_READY)))
        self._arrays = None

    def discard(self, order_id: str) -> None:
        """Take the order out if it is in."""
        order = self._by_id.pop(order_id, None)
        if order is None:
            return
        i = bisect.bisect_left(self._orders, FIFO(order), key=FIFO)
        del self._orders[i]
        self._columns = tuple(array_deleted(column, i) for column in self._columns)  # type: ignore[assignment]
        self._arrays = None

    def arrays(self) -> QueueArrays:
        if self._arrays is None:
            ready_at, locations, service_s, not_ready = self._columns
            self._arrays = QueueArrays(orders=tuple(self._orders), ready_at=ready_at, locations=locations,
                                       service_s=service_s, not_ready=not_ready)
        return self._arrays


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchState:
    """Everything one decision needs for one dark store at time `now`.

    `orders` are every order the dispatcher still tracks for this store: the open ones and those couriers carry
    (`open_orders` are those no courier carries). `tick_s` is the time to the next decision: a trip whose courier
    must set off by `now + tick_s` starts now, later ones stay tentative. `co2_g_per_km` must cover every profile
    of the couriers. `plan` is the previous decision's tentative plan (courier id -> order ids in visiting order):
    a hint a policy may start from and repair; ids no longer open or on shift are ignored.
    """

    now: int
    store_id: str
    store_location: int
    orders: tuple[DispatchOrder, ...]
    couriers: tuple[Courier, ...]
    travel: TravelMatrices
    tick_s: int = 60
    co2_g_per_km: Mapping[str, float] = field(default_factory=lambda: DEFAULT_CO2_G_PER_KM)
    plan: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    _by_id: dict[str, DispatchOrder] = field(init=False, repr=False, compare=False)
    _carried_by: dict[str, str] | None = field(init=False, repr=False, compare=False)
    """Order id -> the courier carrying it (None in a `trusted` state until `open_orders` needs it)."""
    _queue: QueueArrays | None = field(init=False, repr=False, compare=False)
    _trips: dict[str, tuple[Courier, Trip]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _int(InvalidDispatchError, "now", self.now)
        _int(InvalidDispatchError, "tick_s", self.tick_s)
        _id(InvalidDispatchError, "store_id", self.store_id)
        n = self.travel.n_locations
        if not 0 <= _int(InvalidDispatchError, "store_location", self.store_location) < n:
            raise InvalidDispatchError("store_location", f"{self.store_location} is outside the {n} locations")
        object.__setattr__(self, "orders", tuple(self.orders))
        object.__setattr__(self, "couriers", tuple(self.couriers))
        object.__setattr__(self, "co2_g_per_km", MappingProxyType(dict(self.co2_g_per_km)))
        if not isinstance(self.plan, Mapping):
            raise InvalidDispatchError("plan", f"must be a mapping of courier id to order ids, got {self.plan!r}")
        object.__setattr__(self, "plan", MappingProxyType({str(k): tuple(v) for k, v in self.plan.items()}))
        by_id: dict[str, DispatchOrder] = {}
        for i, o in enumerate(self.orders):
            if not isinstance(o, DispatchOrder):
                raise InvalidDispatchError(f"orders[{i}]", f"must be a DispatchOrder, got {type(o).__name__}")
            if o.id in by_id:
                raise InvalidDispatchError(f"orders[{i}].id", f"duplicate order id {o.id!r}")
            if o.store != self.store_id:
                raise InvalidDispatchError(f"orders[{i}].store", f"{o.store!r} is not this store {self.store_id!r}")
            if o.location >= n:
                raise InvalidDispatchError(f"orders[{i}].location", f"{o.location} is outside the {n} locations")
            by_id[o.id] = o
        dims: int | None = None
        for name, amounts in [*((f"couriers[{i}].capacity", c.capacity_vector) for i, c in enumerate(self.couriers)),
                              *((f"orders[{i}].load", o.load_vector) for i, o in enumerate(self.orders))]:
            if dims is None:
                dims = len(amounts)
            elif len(amounts) != dims:
                raise InvalidDispatchError(name, f"has {len(amounts)} dimensions, expected {dims} like the first "
                                           "courier's capacity (or order's load)")
        carried_by: dict[str, str] = {}
        ids: set[str] = set()
        for i, c in enumerate(self.couriers):
            if c.id in ids:
                raise InvalidDispatchError(f"couriers[{i}].id", f"duplicate courier id {c.id!r}")
            ids.add(c.id)
            if c.home_store not in (None, self.store_id):
                raise InvalidDispatchError(f"couriers[{i}].home_store", f"{c.home_store!r} is not this store")
            if c.position >= n:
                raise InvalidDispatchError(f"couriers[{i}].position", f"{c.position} is outside the {n} locations")
            if c.profile not in self.travel.durations:
                raise InvalidDispatchError(f"couriers[{i}].profile", f"no travel matrices for {c.profile!r}")
            g = self.co2_g_per_km.get(c.profile)
            if g is None or not math.isfinite(g) or g < 0:
                raise InvalidDispatchError("co2_g_per_km", f"needs a figure >= 0 for profile {c.profile!r}")
            for oid in c.carrying:
                if oid not in by_id:
                    raise InvalidDispatchError(f"couriers[{i}].carrying", f"unknown order {oid!r}")
                if oid in carried_by:
                    raise InvalidDispatchError(f"couriers[{i}].carrying", f"order {oid!r} is on {carried_by[oid]} too")
                carried_by[oid] = c.id
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_carried_by", carried_by)
        object.__setattr__(self, "_queue", None)
        object.__setattr__(self, "_trips", {})

    @classmethod
    def trusted(cls, *, now: int, store_id: str, store_location: int, orders: tuple[DispatchOrder, ...],
                couriers: tuple[Courier, ...], travel: TravelMatrices, tick_s: int,
                co2_g_per_km: Mapping[str, float], by_id: dict[str, DispatchOrder] | None = None,
                plan: Mapping[str, tuple[str, ...]] | None = None, queue: QueueArrays | None = None,
                trips: dict[str, tuple[Courier, Trip]] | None = None) -> DispatchState:
        """A state from parts a `Dispatcher` checked as they came in: skips the per-order and per-courier checks
        of the constructor (which cost as much as a greedy decision on a busy store). `by_id`: the orders by id,
        if the caller has them (the state keeps that dict); `queue`: the open orders sorted by `FIFO`
        (`QueueArrays`), if the caller keeps them; `trips`: where to keep the rest of each en-route courier's
        trip between states (the caller's dict, valid while the travel stays the same: a trip is kept with its
        courier object and used only for that very object)."""
        state = object.__new__(cls)
        by_id = {o.id: o for o in orders} if by_id is None else by_id
        for name, value in (("now", now), ("store_id", store_id), ("store_location", store_location),
                            ("orders", orders), ("couriers", couriers), ("travel", travel), ("tick_s", tick_s),
                            ("co2_g_per_km", co2_g_per_km), ("_by_id", by_id),
                            ("plan", MappingProxyType({}) if plan is None else plan),
                            ("_carried_by", None),
                            ("_queue", queue), ("_trips", {} if trips is None else trips)):
            object.__setattr__(state, name, value)
        return state

    def order(self, order_id: str) -> DispatchOrder:
        return self._by_id[order_id]

    @property
    def open_orders(self) -> tuple[DispatchOrder, ...]:
        carried = self._carried_by
        if carried is None:
            carried = {oid: c.id for c in self.couriers for oid in c.carrying}
            object.__setattr__(self, "_carried_by", carried)
        return tuple(o for o in self.orders if o.id not in carried)

    @property
    def fifo(self) -> tuple[DispatchOrder, ...]:
        """The open orders first come, first served (sorted by `FIFO`)."""
        return self.queue.orders

    @property
    def queue(self) -> QueueArrays:
        """`fifo` with its columns as arrays."""
        if self._queue is None:
            object.__setattr__(self, "_queue", OpenQueue(self.open_orders).arrays())
        assert self._queue is not None
        return self._queue

    @property
    def active_couriers(self) -> tuple[Courier, ...]:
        return tuple(c for c in self.couriers if c.status != "off")

    def co2_g(self, profile: str, distance_m: int) -> float:
        return distance_m / 1000.0 * self.co2_g_per_km[profile]

    def walk(self, courier: Courier, start: int, departure: int, order_ids: Iterable[str]) -> tuple[
            list[int], list[int], int, int, int]:
        """Ride `order_ids` in order from `start` at `departure`: ETAs, lateness, end time, end location, metres.

        A return's collection waits for its window to open; a store courier rides back to the store at the end.
        """
        dur = self.travel.durations[courier.profile]
        dist = self.travel.distances[courier.profile]
        t, here, metres = departure, start, 0
        etas: list[int] = []
        late: list[int] = []
        for oid in order_ids:
            o = self._by_id[oid]
            arrival = t + int(dur[here, o.location])
            eta = max(arrival, o.ready_at) if o.is_return else arrival
            etas.append(eta)
            late.append(0 if o.is_return else max(0, eta - o.promise_by))
            metres += int(dist[here, o.location])
            t, here = eta + o.service_s, o.location
        if not courier.free_floating:
            metres += int(dist[here, self.store_location])
            t += int(dur[here, self.store_location])
            here = self.store_location
        return etas, late, t, here, metres

    def make_trip(self, courier: Courier, order_ids: Sequence[str], departure: int, *,
                  start: int | None = None, approach_from: int | None = None) -> Trip:
        """The trip of `courier` serving `order_ids` in order, leaving `start` (default: the store) at `departure`.

        `approach_from`: where a free-floating courier rides to the store from (its ride is counted in the
        distance and makes `dispatch_at` earlier than `departure`).
        """
        origin = self.store_location if start is None else start
        etas, late, end, _, metres = self.walk(courier, origin, departure, order_ids)
        approach_s = 0
        if approach_from is not None:
            approach_s = self.travel.duration(courier.profile, approach_from, self.store_location)
            metres += self.travel.distance(courier.profile, approach_from, self.store_location)
        return Trip(courier_id=courier.id, profile=courier.profile, order_ids=tuple(order_ids), etas=tuple(etas),
                    lateness_s=tuple(late), dispatch_at=departure - approach_s, departure=departure, end_at=end,
                    ends_at_store=not courier.free_floating, distance_m=metres,
                    co2_g=self.co2_g(courier.profile, metres))

    def free_point(self, courier: Courier, *, trip: bool = True) -> FreePoint:
        """When and where `courier` can start new work, and the rest of the trip it is on (if it carries any;
        `trip=False` skips building that trip, for callers that need only where and when).

        Store couriers are free at their store (after riding back); free-floating ones where they stand.
        """
        if trip and courier.status in ("assigned", "en_route"):
            carried = self.carried_trip(courier)
            assert carried is not None
            return FreePoint(location=self._trip_end(courier), time=max(carried.end_at, self.now, courier.shift_start),
                             carried=carried)
        location, time = self.free_at(courier)
        return FreePoint(location=location, time=time, carried=None)

    def carried_trip(self, courier: Courier) -> Trip | None:
        """The rest of the trip `courier` is on (assigned or en route: `free_point(courier).carried`), else None."""
        if courier.status not in ("assigned", "en_route"):
            return None
        kept = self._trips.get(courier.id)
        if kept is not None and kept[0] is courier:
            return kept[1]
        start, departure, approach = self._setting_off(courier)
        carried = self.make_trip(courier, courier.carrying, departure, start=start, approach_from=approach)
        if courier.status == "en_route":  # set off at a known time: the same trip at any later time
            self._trips[courier.id] = (courier, carried)
        return carried

    def free_at(self, courier: Courier) -> tuple[int, int]:
        """(location, time) of `free_point(courier)`, without building the rest of its trip."""
        shape = self.free_shape(courier)
        if shape is not None:
            location, lag, floor = shape
            return location, max(self.now + lag, floor)
        start, departure, _ = self._setting_off(courier)  # an assigned trip with a return to collect
        time = self.walk(courier, start, departure, courier.carrying)[2]
        return self._trip_end(courier), max(time, self.now, courier.shift_start)

    def free_shape(self, courier: Courier) -> tuple[int, int, int] | None:
        """(location, lag, floor) such that `free_at(courier)` is (location, max(now + lag, floor)) at any time
        `now` while the courier and the travel stay as they are (callers keep it between decisions), or None
        for the one case without that form: an assigned trip with a return, whose collection waits for its
        window (the ride is not a fixed time after the departure).

        Store couriers are free at the store after riding back, free-floating ones where they stand. An idle
        store courier rides back from where it is (lag: that ride); an assigned one rides to the store, sets off
        at `available_at` at the earliest and rides its trip (lag: both rides); en route or returning, the time
        is fixed by where it is and since when.
        """
        store, shift = self.store_location, courier.shift_start
        dur = self.travel.durations[courier.profile]
        status = courier.status
        if status == "en_route":
            end = self.walk(courier, courier.position, courier.available_at, courier.carrying)[2]
            return self._trip_end(courier), 0, max(end, shift)
        if status == "assigned":
            if any(self._by_id[oid].is_return for oid in courier.carrying):
                return None
            to_store = int(dur[courier.position, store])
            ride = self.walk(courier, store, 0, courier.carrying)[2]  # departure + ride: no waits without returns
            return self._trip_end(courier), to_store + ride, max(courier.available_at + ride, shift)
        if status == "returning":
            return store, 0, max(courier.available_at + int(dur[courier.position, store]), shift)
        if courier.free_floating:
            return courier.position, 0, max(courier.available_at, shift)
        back = int(dur[courier.position, store])
        return store, back, max(courier.available_at + back, shift)

    def _trip_end(self, courier: Courier) -> int:
        """Where a courier with a trip is free after it: its store, or a free-floating one's last door."""
        return self.store_location if not courier.free_floating else self.order(courier.carrying[-1]).location

    def _setting_off(self, courier: Courier) -> tuple[int, int, int | None]:
        """Where and when a courier with a trip sets off with it, and where it rides to the store from first."""
        if courier.status == "assigned":
            store = self.store_location
            departure = max(self.now + int(self.travel.durations[courier.profile][courier.position, store]),
                            courier.available_at)
            return store, departure, None if courier.position == store else courier.position
        return courier.position, courier.available_at, None
