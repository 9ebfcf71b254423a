"""Allocation of orders to dark stores, pickup points and lockers by road travel time, reserving as it goes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from dispatch.errors import InvalidFacilityError, InvalidOrderError
from dispatch.inventory import Inventory, Reservation
from dispatch.model import CompartmentSize, DarkStore, Facility, Locker, Order, PickupPoint, open_at
from dispatch.packaging import DEFAULT_CATALOGUE, Box, BoxCatalogue, choose_boxes, compartments_for, first_unboxable
from routing.matrix import UNREACHABLE, ScipyEngine, TravelTimes
from routing.network import Profile, RoadNetwork
from routing.snap import snap

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


def out_of_stock(sku: str) -> str:
    return f"{OUT_OF_STOCK}: {sku}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    """Where one order goes, or why it cannot be served (`reason`; then facility, store and time are None).

    `facility` is where the parcel is handed over (the store itself for courier and store orders), `store`
    where it is picked, `travel_time_s` the road time of the leg from the store to the address (courier),
    to the pickup point or locker, or 0 when the customer collects at the store.
    """

    order: str
    facility: str | None
    store: str | None
    travel_time_s: int | None
    boxes: tuple[str, ...]
    reason: str | None
    compartments: tuple[CompartmentSize, ...] = ()

    def __post_init__(self) -> None:
        served = (self.facility is not None, self.store is not None, self.travel_time_s is not None)
        if self.reason is None and not all(served):
            raise InvalidOrderError("allocation", f"order {self.order!r}: facility, store and time are required")
        if self.reason is not None and (any(served) or self.boxes or self.compartments):
            raise InvalidOrderError("allocation", f"order {self.order!r}: a rejection holds no facility or boxes")

    @property
    def allocated(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class _Failure:
    stage: int
    reason: str


def _rejected(order: Order, reason: str) -> Allocation:
    return Allocation(order=order.id, facility=None, store=None, travel_time_s=None, boxes=(), reason=reason)


def _by_time(times: IntArray, candidates: BoolArray) -> IntArray:
    rows = np.flatnonzero(candidates)
    return rows[np.argsort(times[rows], kind="stable")]


class Allocator:
    """Allocates orders in the given sequence, reserving stock and pickup-point or locker room as it goes.

    Courier orders go to the open dark store whose zone covers the address, holding every item, that is
    nearest by road. Pickup-point and locker orders go to the nearest (by road from the facility to the
    address) one with room, fed by its own `store` or else by the open store holding the stock nearest to
    it. Store orders (click & collect) go to the nearest open store holding the stock, zones aside.

    Rejections checked first: unreachable (the address is more than `max_snap_m` from any road node),
    no_box_fits: SKU, no_dark_store / no_pickup_point / no_locker. Otherwise the reason is the check that
    stopped the candidate that got furthest, checks in this order: courier/store orders:
    outside_service_area (courier only), unreachable (no road from the store), store_closed,
    out_of_stock: SKU; pickup point/locker orders: unreachable, pickup_point_full / no_free_compartment,
    then for its store unreachable, store_closed, out_of_stock: SKU. out_of_stock names the first SKU
    missing at the nearest remaining store; an SKU that no store lists is simply out of stock.

    Travel times are one-to-all from every facility, computed once here (at `hour`, None = free flow).
    Facilities farther than `max_snap_m` from the road network are an error; such orders are unreachable.
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
    ) -> None:
        self.network = network
        self.facilities = tuple(facilities)
        self.catalogue = catalogue
        self.max_snap_m = max_snap_m
        self.inventory = Inventory(self.facilities)
        store_ids = {f.id for f in self.facilities if isinstance(f, DarkStore)}
        for i, f in enumerate(self.facilities):
            if isinstance(f, PickupPoint | Locker) and f.store is not None and f.store not in store_ids:
                raise InvalidFacilityError(f"facilities[{i}].store", f"unknown dark store {f.store!r}")
        points = np.array([f.location for f in self.facilities], dtype=np.float64).reshape(-1, 2)
        snapped = snap(network, points, max_distance_m=max_snap_m)
        far = np.flatnonzero(snapped.too_far)
        if far.size:
            i = int(far[0])
            lon, lat = points[i]
            raise InvalidFacilityError(
                f"facilities[{i}].location",
                f"{self.facilities[i].id!r} at (lon, lat) = ({lon:.6f}, {lat:.6f}) is {snapped.distance_m[i]:.0f} m "
                f"from the nearest road node (limit {max_snap_m:.0f} m)",
            )
        self._node = snapped.nodes
        self._row = {f.id: i for i, f in enumerate(self.facilities)}
        self.stores = tuple(f for f in self.facilities if isinstance(f, DarkStore))
        self.pickup_points = tuple(f for f in self.facilities if isinstance(f, PickupPoint))
        self.lockers = tuple(f for f in self.facilities if isinstance(f, Locker))
        self._store_rows = np.array([self._row[s.id] for s in self.stores], dtype=np.int64)
        engine = engine if engine is not None else ScipyEngine(network, profile)
        self._times = engine.matrix(self._node, np.arange(network.n_nodes), hour=hour).durations

    def travel_time(self, source: str, target: str) -> int:
        """Road time (s) from one facility to another (UNREACHABLE when no road leads there)."""
        return int(self._times[self._row[source], self._node[self._row[target]]])

    def allocate(self, orders: Sequence[Order]) -> tuple[Allocation, ...]:
        """One Allocation per order, in order; orders are served first come, first served.

        Raises InvalidOrderError only for a duplicate order id or one that already holds a reservation.
        """
        orders = tuple(orders)
        seen: set[str] = set()
        for i, order in enumerate(orders):
            if not isinstance(order, Order):
                raise InvalidOrderError(f"orders[{i}]", f"must be an Order, got {type(order).__name__}")
            if order.id in seen:
                raise InvalidOrderError(f"orders[{i}].id", f"duplicate id {order.id!r}")
            if self.inventory.reservation(order.id) is not None:
                raise InvalidOrderError(f"orders[{i}].id", f"{order.id!r} is already allocated; cancel it first")
            seen.add(order.id)
        if not orders:
            return ()
        points = np.array([o.location for o in orders], dtype=np.float64)
        snapped = snap(self.network, points, max_distance_m=self.max_snap_m)
        times = self._times[:, np.where(snapped.too_far, 0, snapped.nodes)]
        times[:, snapped.too_far] = UNREACHABLE
        placed = np.array([o.placed_at for o in orders], dtype=np.int64)
        covers = np.ones((len(self.stores), len(orders)), dtype=np.bool_)
        is_open = np.ones((len(self.stores), len(orders)), dtype=np.bool_)
        for r, store in enumerate(self.stores):
            if store.zone is not None:
                covers[r] = shapely.contains_xy(store.zone, points[:, 0], points[:, 1])
            is_open[r] = open_at(store.hours, placed)
        return tuple(
            self._allocate_one(order, bool(snapped.too_far[k]), times[:, k], covers[:, k], is_open[:, k])
            for k, order in enumerate(orders)
        )

    def cancel(self, order: str) -> Reservation:
        """Release what an allocated order holds; raises ReservationError for an order holding nothing."""
        return self.inventory.release(order)

    def _allocate_one(
        self, order: Order, too_far: bool, times: IntArray, covers: BoolArray, is_open: BoolArray
    ) -> Allocation:
        if too_far:
            return _rejected(order, UNREACHABLE_REASON)
        bad = first_unboxable(order.items, self.catalogue)
        if bad is not None:
            return _rejected(order, f"{NO_BOX_FITS}: {order.items[bad].sku}")
        boxes = choose_boxes(order.items, self.catalogue)
        with self.inventory.lock:
            if order.mode in ("courier", "store"):
                return self._from_store(order, boxes, times[self._store_rows], covers, is_open)
            return self._via_facility(order, boxes, times)

    def _from_store(
        self, order: Order, boxes: tuple[Box, ...], times: IntArray, covers: BoolArray, is_open: BoolArray
    ) -> Allocation:
        if not self.stores:
            return _rejected(order, NO_DARK_STORE)
        courier = order.mode == "courier"
        candidates = covers.copy() if courier else np.ones(len(self.stores), dtype=np.bool_)
        if not candidates.any():
            return _rejected(order, OUTSIDE_SERVICE_AREA)
        candidates &= times < UNREACHABLE
        if not candidates.any():
            return _rejected(order, UNREACHABLE_REASON)
        candidates &= is_open
        if not candidates.any():
            return _rejected(order, STORE_CLOSED)
        needed = order.quantities()
        misses: list[str] = []
        for r in _by_time(times, candidates):
            store = self.stores[r]
            missing = self.inventory.missing(store.id, needed)
            if missing is None:
                self.inventory.reserve(order.id, store=store.id, stock=needed)
                return Allocation(order=order.id, facility=store.id, store=store.id,
                                  travel_time_s=int(times[r]) if courier else 0,
                                  boxes=tuple(b.name for b in boxes), reason=None)
            misses.append(missing)
        return _rejected(order, out_of_stock(misses[0]))

    def _via_facility(self, order: Order, boxes: tuple[Box, ...], times: IntArray) -> Allocation:
        kind: tuple[PickupPoint, ...] | tuple[Locker, ...] = (
            self.pickup_points if order.mode == "pickup_point" else self.lockers
        )
        if not kind:
            return _rejected(order, NO_PICKUP_POINT if order.mode == "pickup_point" else NO_LOCKER)
        rows = np.array([self._row[f.id] for f in kind], dtype=np.int64)
        ranked = _by_time(times[rows], times[rows] < UNREACHABLE)
        if not ranked.size:
            return _rejected(order, UNREACHABLE_REASON)
        needed = order.quantities()
        worst = _Failure(0, UNREACHABLE_REASON)
        for r in ranked:
            facility = kind[r]
            compartments: tuple[CompartmentSize, ...] = ()
            if isinstance(facility, PickupPoint):
                if self.inventory.free_capacity(facility.id) < 1:
                    worst = max(worst, _Failure(1, PICKUP_POINT_FULL), key=lambda f: f.stage)
                    continue
            else:
                assigned = self.inventory.assign_compartments(facility.id, compartments_for(boxes))
                if assigned is None:
                    worst = max(worst, _Failure(1, NO_FREE_COMPARTMENT), key=lambda f: f.stage)
                    continue
                compartments = assigned
            store = self._feeding_store(facility, needed, order.placed_at)
            if isinstance(store, _Failure):
                worst = max(worst, store, key=lambda f: f.stage)
                continue
            self.inventory.reserve(
                order.id,
                store=store.id,
                stock=needed,
                pickup_point=facility.id if isinstance(facility, PickupPoint) else None,
                locker=facility.id if isinstance(facility, Locker) else None,
                compartments=compartments,
            )
            return Allocation(order=order.id, facility=facility.id, store=store.id,
                              travel_time_s=self.travel_time(store.id, facility.id),
                              boxes=tuple(b.name for b in boxes), reason=None, compartments=compartments)
        return _rejected(order, worst.reason)

    def _feeding_store(self, facility: PickupPoint | Locker, needed: dict[str, int], t: int) -> DarkStore | _Failure:
        stores = [s for s in self.stores if facility.store is None or s.id == facility.store]
        if not stores:
            return _Failure(2, NO_DARK_STORE)
        leg = np.array([self.travel_time(s.id, facility.id) for s in stores], dtype=np.int64)
        candidates = leg < UNREACHABLE
        if not candidates.any():
            return _Failure(2, UNREACHABLE_REASON)
        candidates &= np.array([s.is_open(t) for s in stores], dtype=np.bool_)
        if not candidates.any():
            return _Failure(3, STORE_CLOSED)
        misses: list[str] = []
        for r in _by_time(leg, candidates):
            missing = self.inventory.missing(stores[r].id, needed)
            if missing is None:
                return stores[r]
            misses.append(missing)
        return _Failure(4, out_of_stock(misses[0]))
