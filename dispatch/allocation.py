"""Allocation of orders to dark stores, pickup points and lockers by road travel time, reserving as it goes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import shapely

from dispatch.errors import InvalidFacilityError, InvalidOrderError
from dispatch.inventory import Inventory, Reservation
from dispatch.load import StoreLoad
from dispatch.model import CompartmentSize, DarkStore, Facility, Item, Locker, Order, PickupPoint, Zone, open_at
from dispatch.packaging import DEFAULT_CATALOGUE, BoxCatalogue, choose_boxes, compartments_for
from routing.matrix import UNREACHABLE, ScipyEngine, TravelTimes
from routing.network import Profile, RoadNetwork
from routing.snap import NO_NODE, snap, snap_point

UNREACHABLE_REASON = "unreachable"
OUTSIDE_SERVICE_AREA = "outside_service_area"
STORE_CLOSED = "store_closed"
PICKUP_POINT_FULL = "pickup_point_full"
NO_FREE_COMPARTMENT = "no_free_compartment"
NO_DARK_STORE = "no_dark_store"
NO_PICKUP_POINT = "no_pickup_point"
NO_LOCKER = "no_locker"
OUT_OF_STOCK = "out_of_stock"
NO_BOX_FITS = "no_box_fits"

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_NOT_A_CANDIDATE = int(np.iinfo(np.int64).max)
_STORE_CHECKS = ("", OUTSIDE_SERVICE_AREA, UNREACHABLE_REASON, STORE_CLOSED)
_VIA_MODES = ("pickup_point", "locker", "return_pickup_point")
"""Modes served through a pickup point or locker (planned by their facilities' rows, not the stores')."""


def out_of_stock(sku: str) -> str:
    return f"{OUT_OF_STOCK}: {sku}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    """Where one order goes, or why it cannot be served (`reason`; then facility, store and time are None).

    `facility` is where the parcel is handed over (the store itself for courier and store orders), `store`
    where it is picked, `travel_time_s` the road time of the leg from the store to the address (courier),
    to the pickup point or locker, or 0 when the customer collects at the store. For a `return_pickup_point`
    order, `facility` is the pickup point the customer drops the return at, `store` the store that collects
    it from there, `travel_time_s` the road time from that store to the pickup point and `boxes` those the
    returned items pack into. `node` is the road node the address of an order served from a store snapped to
    (None for the other kinds).
    """

    order: str
    facility: str | None
    store: str | None
    travel_time_s: int | None
    boxes: tuple[str, ...]
    reason: str | None
    compartments: tuple[CompartmentSize, ...] = ()
    node: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        served = (self.facility is not None, self.store is not None, self.travel_time_s is not None)
        if self.reason is None and not all(served):
            raise InvalidOrderError("allocation", f"order {self.order!r}: facility, store and time are required")
        if self.reason is not None and (any(served) or self.boxes or self.compartments):
            raise InvalidOrderError("allocation", f"order {self.order!r}: a rejection holds no facility or boxes")

    @property
    def allocated(self) -> bool:
        return self.reason is None


def snap_facilities(network: RoadNetwork, facilities: Sequence[Facility], max_snap_m: float) -> IntArray:
    """The road node of each facility; InvalidFacilityError naming `facilities[i].location` for the first one
    farther than `max_snap_m` from the road network."""
    points = np.array([f.location for f in facilities], dtype=np.float64).reshape(-1, 2)
    snapped = snap(network, points, max_distance_m=max_snap_m)
    far = np.flatnonzero(snapped.too_far)
    if far.size:
        i = int(far[0])
        lon, lat = points[i]
        raise InvalidFacilityError(
            f"facilities[{i}].location",
            f"{facilities[i].id!r} at (lon, lat) = ({lon:.6f}, {lat:.6f}) is {snapped.distance_m[i]:.0f} m "
            f"from the nearest road node (limit {max_snap_m:.0f} m)",
        )
    return snapped.nodes


def _contains(zone: Zone, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> BoolArray:
    """shapely.contains_xy, testing only the points within the zone's bounding box."""
    min_x, min_y, max_x, max_y = zone.bounds
    near = np.flatnonzero((x >= min_x) & (x <= max_x) & (y >= min_y) & (y <= max_y))
    inside = np.zeros(len(x), dtype=np.bool_)
    inside[near] = shapely.contains_xy(zone, x[near], y[near])
    return inside


def _contains_point(zone: Zone, x: float, y: float) -> bool:
    """`_contains` of one point."""
    min_x, min_y, max_x, max_y = zone.bounds
    return min_x <= x <= max_x and min_y <= y <= max_y and bool(shapely.contains_xy(zone, x, y))


def rejected(order: str, reason: str) -> Allocation:
    """The allocation of an order that cannot be served, and why."""
    return Allocation(order=order, facility=None, store=None, travel_time_s=None, boxes=(), reason=reason)


@dataclass(frozen=True, slots=True)
class _Packed:
    """An order's boxes (names) and the locker compartments they need, or the first item fitting no box."""

    unboxable: int | None
    boxes: tuple[str, ...] = ()
    compartments: tuple[CompartmentSize, ...] = ()


class _Packer:
    """first_unboxable and choose_boxes for one catalogue, with what each distinct item fits cached.

    An order that fits one box (the common case) is decided from per-item box masks and totals, exactly as
    choose_boxes decides it (the smallest box holding every unit); any other order is left to choose_boxes.
    """

    MAX_ITEMS = 100_000

    def __init__(self, catalogue: BoxCatalogue) -> None:
        self.catalogue = catalogue
        self._boxes = catalogue.boxes
        self._single = [_Packed(None, (box.name,), (box.compartment,)) for box in catalogue.boxes]
        self._max_weight = [box.max_weight_g for box in catalogue.boxes]
        self._max_volume = [catalogue.fill_factor * box.volume_mm3 for box in catalogue.boxes]
        self._items: dict[tuple[int, tuple[int, int, int]], tuple[int, bool, int, int]] = {}  # by weight, dims

    def _item(self, item: Item) -> tuple[int, bool, int, int]:
        """Mask of the boxes the unit's dimensions fit, whether one unit fits some box, its weight and volume."""
        dims = sorted(item.dims_mm)
        weight = int(item.weight_g)
        mask, fits_alone = 0, False
        for j, box in enumerate(self._boxes):
            if all(u <= b for u, b in zip(dims, box.sorted_dims, strict=True)):
                mask |= 1 << j
                fits_alone = fits_alone or weight <= box.max_weight_g
        if len(self._items) >= self.MAX_ITEMS:
            self._items.clear()
        info = self._items[item.weight_g, item.dims_mm] = (mask, fits_alone, weight, item.volume_mm3)
        return info

    def pack(self, items: tuple[Item, ...]) -> _Packed:
        cached = self._items
        mask = -1
        weight = volume = units = 0
        for i, item in enumerate(items):
            info = cached.get((item.weight_g, item.dims_mm)) or self._item(item)
            if not info[1]:
                return _Packed(i)
            qty = item.qty
            mask &= info[0]
            weight += info[2] * qty
            volume += info[3] * qty
            units += qty
        for j, single in enumerate(self._single):
            if mask >> j & 1 and weight <= self._max_weight[j] and (units <= 1 or volume <= self._max_volume[j]):
                return single
        boxes = choose_boxes(items, self.catalogue)
        return _Packed(None, tuple(b.name for b in boxes), compartments_for(boxes))


@dataclass(frozen=True, slots=True)
class _Feeders:
    """The stores that may feed one pickup point or locker, reachable ones nearest first (stable by time)."""

    failure: str | None  # no_dark_store / unreachable when no store can feed it
    rows: tuple[int, ...]
    ids: tuple[str, ...]
    legs: tuple[int, ...]


class Allocator:
    """Allocates orders in the given sequence, reserving stock and pickup-point or locker room as it goes.

    Courier orders go to the open dark store whose zone covers the address, holding every item, that is
    nearest by road. Pickup-point and locker orders go to the nearest (by road from the facility to the
    address) one with room, fed by its own `store` or else by the open store holding the stock nearest to
    it. Store orders (click & collect) go to the nearest open store holding the stock, zones aside.
    Return_pickup_point orders (returns only) take one place at the nearest pickup point with room (ranked as
    for pickup-point orders) and are collected from it by its `store`, or else by the store nearest to it by
    road (opening hours and stock aside: collection is planned later); nothing is reserved at the store.

    Rejections checked first: unreachable (the address is more than `max_snap_m` from any road node),
    no_box_fits: SKU, no_dark_store / no_pickup_point / no_locker. Otherwise the reason is the check that
    stopped the candidate that got furthest, checks in this order: courier/store orders:
    outside_service_area (courier only), unreachable (no road from the store), store_closed,
    out_of_stock: SKU; pickup point/locker orders: unreachable, pickup_point_full / no_free_compartment,
    then for its store unreachable, store_closed, out_of_stock: SKU; return_pickup_point orders: unreachable,
    pickup_point_full, then no_dark_store / unreachable (no store can reach the pickup point). out_of_stock names
    the first SKU missing at the nearest remaining store; an SKU that no store lists is simply out of stock.

    With a `load` (a `dispatch.load.StoreLoad`: picking queues and couriers of the stores), a courier order goes
    to the candidate store with the earliest arrival at the door (departure: picked and a courier free, plus the
    road time) among those holding the stock within `max_detour_s` of the nearest one's road time: a busy store
    spills over to the next. Without one (or when no candidate has a courier), nearest by road, as above.

    Travel times are one-to-all from every facility, computed once here (at `hour`, None = free flow).
    Facilities farther than `max_snap_m` from the road network are an error; such orders are unreachable.
    A batch is planned with whole-array operations (snapping, the slice of the travel-time table, zones,
    opening hours and the ranking of candidates); only stock and room are checked order by order.
    """

    def __init__(
        self,
        network: RoadNetwork,
        facilities: Sequence[Facility],
        *,
        profile: str | Profile = "car",
        hour: int | None = None,
        engine: TravelTimes | None = None,
        catalogue: BoxCatalogue = DEFAULT_CATALOGUE,
        max_snap_m: float = 500.0,
        load: StoreLoad | None = None,
        max_detour_s: int = 600,
    ) -> None:
        if isinstance(max_detour_s, bool) or not isinstance(max_detour_s, int) or max_detour_s < 0:
            raise InvalidFacilityError("max_detour_s", f"must be an integer >= 0, got {max_detour_s!r}")
        self.network = network
        self.load = load
        self.max_detour_s = max_detour_s
        self.facilities = tuple(facilities)
        self.catalogue = catalogue
        self.max_snap_m = max_snap_m
        self.inventory = Inventory(self.facilities)
        store_ids = {f.id for f in self.facilities if isinstance(f, DarkStore)}
        for i, f in enumerate(self.facilities):
            if isinstance(f, PickupPoint | Locker) and f.store is not None and f.store not in store_ids:
                raise InvalidFacilityError(f"facilities[{i}].store", f"unknown dark store {f.store!r}")
        self._node = snap_facilities(network, self.facilities, max_snap_m)
        self._row = {f.id: i for i, f in enumerate(self.facilities)}
        self.stores = tuple(f for f in self.facilities if isinstance(f, DarkStore))
        self.pickup_points = tuple(f for f in self.facilities if isinstance(f, PickupPoint))
        self.lockers = tuple(f for f in self.facilities if isinstance(f, Locker))
        engine = engine if engine is not None else ScipyEngine(network, profile)
        times = engine.matrix(self._node, np.arange(network.n_nodes), hour=hour).durations
        # One table per kind of facility, a row per road node: a batch takes the rows of its orders' nodes.
        self._times_to: dict[str, IntArray] = {
            kind: np.ascontiguousarray(times[[self._row[f.id] for f in group]].T)
            for kind, group in (("store", self.stores), ("pickup_point", self.pickup_points),
                                ("locker", self.lockers))
        }
        self._legs = times[:, self._node]  # facility to facility
        self._store_ids = tuple(s.id for s in self.stores)
        fed: tuple[PickupPoint | Locker, ...] = (*self.pickup_points, *self.lockers)
        self._feeders = {f.id: self._feeders_of(f) for f in fed}
        self._packer: _Packer | None = None  # for self.catalogue, made by allocate()

    def travel_time(self, source: str, target: str) -> int:
        """Road time (s) from one facility to another (UNREACHABLE when no road leads there)."""
        return int(self._legs[self._row[source], self._row[target]])

    def _feeders_of(self, facility: PickupPoint | Locker) -> _Feeders:
        rows = [r for r, s in enumerate(self.stores) if facility.store is None or s.id == facility.store]
        if not rows:
            return _Feeders(NO_DARK_STORE, (), (), ())
        legs = [self.travel_time(self._store_ids[r], facility.id) for r in rows]
        ranked = sorted((k for k in range(len(rows)) if legs[k] < UNREACHABLE), key=legs.__getitem__)
        if not ranked:
            return _Feeders(UNREACHABLE_REASON, (), (), ())
        return _Feeders(None, tuple(rows[k] for k in ranked), tuple(self._store_ids[rows[k]] for k in ranked),
                        tuple(legs[k] for k in ranked))

    def allocate(self, orders: Sequence[Order]) -> tuple[Allocation, ...]:
        """One Allocation per order, in order; orders are served first come, first served.

        Raises InvalidOrderError only for a duplicate order id or one that already holds a reservation.
        """
        orders = tuple(orders)
        inventory = self.inventory
        held = inventory.holding(o.id for o in orders if isinstance(o, Order))
        seen: set[str] = set()
        for i, order in enumerate(orders):
            if not isinstance(order, Order):
                raise InvalidOrderError(f"orders[{i}]", f"must be an Order, got {type(order).__name__}")
            if order.id in seen:
                raise InvalidOrderError(f"orders[{i}].id", f"duplicate id {order.id!r}")
            if order.id in held:
                raise InvalidOrderError(f"orders[{i}].id", f"{order.id!r} is already allocated; cancel it first")
            seen.add(order.id)
        if not orders:
            return ()
        if self._packer is None or self._packer.catalogue is not self.catalogue:
            self._packer = _Packer(self.catalogue)
        return tuple(_Batch(self, inventory, orders, self._packer).run())

    def cancel(self, order: str) -> Reservation:
        """Release what an allocated order holds; raises ReservationError for an order holding nothing."""
        return self.inventory.release(order)

    def fulfil(self, order: str) -> Reservation:
        """The order left its store: keep its stock taken, hold its pickup-point place or compartments until
        `cancel` (the customer collected it); see Inventory.fulfil."""
        return self.inventory.fulfil(order)


class _Batch:
    """One allocate() call: per-order plans first (whole-batch arrays; plain scalars for a single order, as an API
    process admits them), then a thin loop reserving order by order. Plans are lists indexed by the order's slot
    among the orders of its kind, so the loop reads both the same way."""

    store_check: list[int]
    store_count: list[int]
    store_ranked: list[list[int]]
    store_times: list[list[int]]
    store_first: list[int]
    store_first_time: list[int]
    courier: list[bool]

    def __init__(self, allocator: Allocator, inventory: Inventory, orders: tuple[Order, ...], packer: _Packer) -> None:
        self.allocator = allocator
        self.inventory = inventory
        self.packer = packer
        self.orders = orders
        self.via: dict[str, tuple[list[list[int]], list[int], list[list[bool]]]] = {}
        if len(orders) == 1:
            self._plan_one(orders[0])
            return
        points = np.array([o.location for o in orders], dtype=np.float64)
        snapped = snap(allocator.network, points, max_distance_m=allocator.max_snap_m)
        self.too_far = snapped.too_far.tolist()
        self.nodes = snapped.nodes.tolist()
        placed = np.array([o.placed_at for o in orders], dtype=np.int64)
        modes = np.array([o.mode for o in orders])
        reachable = ~snapped.too_far
        by_store = reachable & ((modes == "courier") | (modes == "store"))
        slot = np.zeros(len(orders), dtype=np.int64)
        slot[by_store] = np.arange(int(by_store.sum()))
        self._plan_stores(np.flatnonzero(by_store), snapped.nodes, points, placed, modes == "courier")
        for kind in _VIA_MODES:
            ks = np.flatnonzero(reachable & (modes == kind))
            slot[ks] = np.arange(len(ks))
            self._plan_via(kind, ks, snapped.nodes, placed)
        self.slots = slot.tolist()

    def _plan_one(self, order: Order) -> None:
        """The plan of a batch of one order, in scalars (what the array path gives for it)."""
        allocator = self.allocator
        lon, lat = order.location
        node, _ = snap_point(allocator.network, lon, lat, max_distance_m=allocator.max_snap_m)
        self.too_far = [node == NO_NODE]
        self.nodes = [node]
        self.slots = [0]
        if node == NO_NODE:
            return
        stores = allocator.stores
        placed = order.placed_at
        if order.mode == "courier" or order.mode == "store":
            if not stores:
                return
            courier = order.mode == "courier"
            times: list[int] = allocator._times_to["store"][node].tolist()
            covers = [not courier or s.zone is None or _contains_point(s.zone, lon, lat) for s in stores]
            candidates = [c and t < UNREACHABLE for c, t in zip(covers, times, strict=True)]
            in_service, reached = any(covers), any(candidates)
            candidates = [c and s.is_open(placed) for c, s in zip(candidates, stores, strict=True)]
            count = sum(candidates)
            ranked = sorted(range(len(stores)), key=lambda r: times[r] if candidates[r] else _NOT_A_CANDIDATE)
            self.store_check = [0 if count else 3 if reached else 2 if in_service else 1]
            self.store_count = [count]
            self.store_ranked = [ranked]
            self.store_times = [times]
            self.store_first = [ranked[0]]
            self.store_first_time = [times[ranked[0]]]
            self.courier = [courier]
        elif order.mode in _VIA_MODES:
            table = "pickup_point" if order.mode == "return_pickup_point" else order.mode
            times = allocator._times_to[table][node].tolist()
            ranked = sorted(range(len(times)), key=lambda r: times[r] if times[r] < UNREACHABLE else _NOT_A_CANDIDATE)
            self.via[order.mode] = ([ranked], [sum(t < UNREACHABLE for t in times)],
                                    [[s.is_open(placed) for s in stores]])

    def _store_open(self, placed: IntArray) -> BoolArray:
        """Whether each store is open at each time: (times, stores)."""
        stores = self.allocator.stores
        is_open = np.ones((len(placed), len(stores)), dtype=np.bool_)
        by_hours: dict[object, BoolArray] = {}
        for r, store in enumerate(stores):
            if store.hours is not None:
                if store.hours not in by_hours:
                    by_hours[store.hours] = open_at(store.hours, placed)
                is_open[:, r] = by_hours[store.hours]
        return is_open

    def _plan_stores(self, ks: IntArray, nodes: IntArray, points: npt.NDArray[np.float64], placed: IntArray,
                     courier: BoolArray) -> None:
        """For courier and store orders `ks` (reachable): which check fails (0 if none), the candidate stores
        ranked nearest first (stable: ties go to the earlier store), their count, the first one and its time."""
        stores = self.allocator.stores
        if not stores or not len(ks):  # no order gets as far as _from_store
            return
        times = self.allocator._times_to["store"][nodes[ks]]
        covers = np.ones(times.shape, dtype=np.bool_)
        couriers = np.flatnonzero(courier[ks])
        x, y = points[ks[couriers], 0], points[ks[couriers], 1]
        for r, store in enumerate(stores):
            if store.zone is not None and len(couriers):
                covers[couriers, r] = _contains(store.zone, x, y)
        candidates = covers & (times < UNREACHABLE)
        in_service = covers.any(axis=1)
        reached = candidates.any(axis=1)
        candidates &= self._store_open(placed[ks])
        served = candidates.any(axis=1)
        check = np.where(served, 0, np.where(reached, 3, np.where(in_service, 2, 1)))
        ranked = np.argsort(np.where(candidates, times, _NOT_A_CANDIDATE), axis=1, kind="stable")
        first = ranked[:, 0]
        self.store_check = check.tolist()
        self.store_count = candidates.sum(axis=1).tolist()
        self.store_ranked = ranked.tolist()
        self.store_times = times.tolist()
        self.store_first = first.tolist()
        self.store_first_time = times[np.arange(len(ks)), first].tolist()
        self.courier = courier[ks].tolist()

    def _plan_via(self, kind: str, ks: IntArray, nodes: IntArray, placed: IntArray) -> None:
        """For pickup-point or locker orders `ks` (reachable): facilities of that kind ranked nearest first
        (reachable ones: their count), and whether each store is open when the order is placed."""
        if not len(ks):
            return
        times = self.allocator._times_to["pickup_point" if kind == "return_pickup_point" else kind][nodes[ks]]
        reached = times < UNREACHABLE
        ranked = np.argsort(np.where(reached, times, _NOT_A_CANDIDATE), axis=1, kind="stable")
        self.via[kind] = (ranked.tolist(), reached.sum(axis=1).tolist(), self._store_open(placed[ks]).tolist())

    def run(self) -> list[Allocation]:
        packer = self.packer
        too_far = self.too_far
        slots = self.slots
        lock = self.inventory.lock
        have_stores = bool(self.allocator.stores)
        results: list[Allocation] = []
        append = results.append
        for k, order in enumerate(self.orders):
            if too_far[k]:
                append(rejected(order.id, UNREACHABLE_REASON))
                continue
            lines = order.returns if order.mode == "return_pickup_point" else order.items
            packed = packer.pack(lines)
            if packed.unboxable is not None:
                append(rejected(order.id, f"{NO_BOX_FITS}: {lines[packed.unboxable].sku}"))
                continue
            mode = order.mode
            if mode == "return_pickup_point":
                with lock:
                    append(self._return_drop(order, packed, slots[k]))
            elif mode == "courier" or mode == "store":
                if not have_stores:
                    append(rejected(order.id, NO_DARK_STORE))
                    continue
                with lock:
                    append(self._from_store(order, packed, slots[k], self.nodes[k]))
            else:
                with lock:
                    append(self._via_facility(order, packed, slots[k]))
        return results

    def _from_store(self, order: Order, packed: _Packed, j: int, node: int) -> Allocation:
        check = self.store_check[j]
        if check:
            return rejected(order.id, _STORE_CHECKS[check])
        needed = order.quantities()
        store_ids = self.allocator._store_ids
        r = self.store_first[j]
        spill = self._earliest_door(order, needed, j) if self.courier[j] and self.allocator.load is not None else None
        if spill is not None:
            r = spill
            time = self.store_times[j][r]
        elif (missing := self.inventory.missing(store_ids[r], needed)) is None:
            time = self.store_first_time[j]
        else:
            rest = self.store_ranked[j][1:self.store_count[j]]
            found, _ = self.inventory.first_holding([store_ids[s] for s in rest], needed)
            if found < 0:
                return rejected(order.id, out_of_stock(missing))
            r = rest[found]
            time = self.store_times[j][r]
        store = store_ids[r]
        self.inventory.reserve(order.id, store=store, stock=needed)
        return Allocation(order=order.id, facility=store, store=store,
                          travel_time_s=time if self.courier[j] else 0, boxes=packed.boxes, reason=None, node=node)

    def _earliest_door(self, order: Order, needed: dict[str, int], j: int) -> int | None:
        """The candidate store (row) holding the stock, within the detour of the nearest, with the earliest door
        arrival under the allocator's load (ties: nearer first); None when none within it has a courier."""
        allocator = self.allocator
        load = allocator.load
        assert load is not None
        limit = self.store_first_time[j] + allocator.max_detour_s
        placed = order.placed_at
        best: tuple[int, int, int] | None = None  # (door arrival, road time, row)
        for r in self.store_ranked[j][:self.store_count[j]]:
            time = self.store_times[j][r]
            if time > limit:
                break
            store = allocator.stores[r]
            if self.inventory.missing(store.id, needed) is not None:
                continue
            # it leaves once picked (not before it is placed) and a courier is free; the picking part bounds it
            # from below, so a store that cannot beat the best door arrival even so is not asked for its couriers
            # (later rows never win a tie: they are no nearer and, as near, come after in the stable ranking)
            picked = max(load.picking_done_at(store, placed), placed)
            if best is not None and picked + time >= best[0]:
                continue
            free = load.courier_free_at(store, placed)
            if free is None:
                continue
            leaves = max(picked, free)
            if best is None or (leaves + time, time, r) < best:
                best = (leaves + time, time, r)
        return None if best is None else best[2]

    def _via_facility(self, order: Order, packed: _Packed, j: int) -> Allocation:
        pickup = order.mode == "pickup_point"
        kind: tuple[PickupPoint, ...] | tuple[Locker, ...] = (
            self.allocator.pickup_points if pickup else self.allocator.lockers
        )
        if not kind:
            return rejected(order.id, NO_PICKUP_POINT if pickup else NO_LOCKER)
        ranked, count, store_open = self.via[order.mode]
        n = count[j]
        if not n:
            return rejected(order.id, UNREACHABLE_REASON)
        inventory = self.inventory
        needed = order.quantities()
        stage, reason = 0, UNREACHABLE_REASON
        is_open: list[bool] | None = None
        for r in ranked[j][:n]:
            facility = kind[r]
            compartments: tuple[CompartmentSize, ...] = ()
            if pickup:
                if inventory.free_capacity(facility.id) < 1:
                    if stage < 1:
                        stage, reason = 1, PICKUP_POINT_FULL
                    continue
            else:
                assigned = inventory.assign_compartments(facility.id, packed.compartments)
                if assigned is None:
                    if stage < 1:
                        stage, reason = 1, NO_FREE_COMPARTMENT
                    continue
                compartments = assigned
            feeders = self.allocator._feeders[facility.id]
            if feeders.failure is not None:
                if stage < 2:
                    stage, reason = 2, feeders.failure
                continue
            if is_open is None:
                is_open = store_open[j]
            open_feeders = [f for f, row in enumerate(feeders.rows) if is_open[row]]
            if not open_feeders:
                if stage < 3:
                    stage, reason = 3, STORE_CLOSED
                continue
            found, missing = inventory.first_holding([feeders.ids[f] for f in open_feeders], needed)
            if found < 0:
                if stage < 4:
                    stage, reason = 4, out_of_stock(missing or "")
                continue
            leg = open_feeders[found]
            store = feeders.ids[leg]
            inventory.reserve(
                order.id,
                store=store,
                stock=needed,
                pickup_point=facility.id if pickup else None,
                locker=None if pickup else facility.id,
                compartments=compartments,
            )
            return Allocation(order=order.id, facility=facility.id, store=store,
                              travel_time_s=feeders.legs[leg],
                              boxes=packed.boxes, reason=None, compartments=compartments)
        return rejected(order.id, reason)

    def _return_drop(self, order: Order, packed: _Packed, j: int) -> Allocation:
        """A return dropped at the nearest pickup point with room, collected by its `store` or the nearest store."""
        pickup_points = self.allocator.pickup_points
        if not pickup_points:
            return rejected(order.id, NO_PICKUP_POINT)
        ranked, count, _ = self.via[order.mode]
        stage, reason = 0, UNREACHABLE_REASON
        for r in ranked[j][:count[j]]:
            point = pickup_points[r]
            if self.inventory.free_capacity(point.id) < 1:
                if stage < 1:
                    stage, reason = 1, PICKUP_POINT_FULL
                continue
            feeders = self.allocator._feeders[point.id]
            if feeders.failure is not None:
                if stage < 2:
                    stage, reason = 2, feeders.failure
                continue
            self.inventory.reserve(order.id, pickup_point=point.id)
            return Allocation(order=order.id, facility=point.id, store=feeders.ids[0],
                              travel_time_s=feeders.legs[0], boxes=packed.boxes, reason=None)
        return rejected(order.id, reason)
