"""Live stock, pickup-point capacity and free locker compartments, reserved per order and released on cancel."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from dispatch.errors import InvalidFacilityError, ReservationError
from dispatch.model import (
    COMPARTMENT_SIZES,
    MAX_INT,
    CompartmentSize,
    DarkStore,
    Facility,
    Locker,
    PickupPoint,
    check_int,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reservation:
    """What one order holds: units per SKU at a store, one place at a pickup point or compartments of a locker."""

    order: str
    store: str | None = None
    stock: Mapping[str, int] = field(default_factory=dict)
    pickup_point: str | None = None
    locker: str | None = None
    compartments: tuple[CompartmentSize, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "stock", MappingProxyType(dict(self.stock)))
        object.__setattr__(self, "compartments", tuple(self.compartments))
        for i, size in enumerate(self.compartments):
            if size not in COMPARTMENT_SIZES:
                raise ReservationError(f"compartments[{i}]", f"must be one of {list(COMPARTMENT_SIZES)}, got {size!r}")


Counter = tuple[str, str]
"""One count orders consume, as (name, field): (`stock:STORE`, SKU), (`pickup:POINT`, `free`) or
(`locker:LOCKER`, SIZE). A live store keeps these counts beside the core (see `api/store`)."""
CounterKind = Literal["stock", "pickup", "locker"]
PICKUP_FIELD = "free"
"""The one field of a pickup point's counter: its free places."""


def counter_name(kind: CounterKind, facility: str) -> str:
    """The name of a facility's counter (see `Counter`)."""
    return f"{kind}:{facility}"


def stock_counter(store: str, sku: str) -> Counter:
    return (counter_name("stock", store), sku)


def claims_of(reservation: Reservation) -> list[tuple[str, str, int]]:
    """The counts a reservation takes: (name, field, units) per counter (see `Counter`)."""
    out = [(*stock_counter(reservation.store, sku), qty) for sku, qty in reservation.stock.items()
           if reservation.store is not None]
    if reservation.pickup_point is not None:
        out.append((counter_name("pickup", reservation.pickup_point), PICKUP_FIELD, 1))
    for size in COMPARTMENT_SIZES:
        wanted = reservation.compartments.count(size)
        if wanted and reservation.locker is not None:
            out.append((counter_name("locker", reservation.locker), size, wanted))
    return out


class Inventory:
    """Counts that orders consume: never negative, changed only by reserve/release (thread-safe, all or nothing).

    With `journal` a list, every change of a count is appended to it as (name, field, delta) (see `Counter`),
    but for reservations made `unjournaled` (what a live store has counted already)."""

    def __init__(self, facilities: Sequence[Facility]) -> None:
        self._stock: dict[str, dict[str, int]] = {}
        self._capacity: dict[str, int] = {}
        self._compartments: dict[str, dict[CompartmentSize, int]] = {}
        self._reservations: dict[str, Reservation] = {}
        self.lock = threading.RLock()
        self.journal: list[tuple[str, str, int]] | None = None
        for i, facility in enumerate(facilities):
            if facility.id in self._stock or facility.id in self._capacity or facility.id in self._compartments:
                raise InvalidFacilityError(f"facilities[{i}].id", f"duplicate id {facility.id!r}")
            if isinstance(facility, DarkStore):
                self._stock[facility.id] = dict(facility.stock)
            elif isinstance(facility, PickupPoint):
                self._capacity[facility.id] = facility.capacity
            elif isinstance(facility, Locker):
                self._compartments[facility.id] = dict(facility.compartments)
            else:
                raise InvalidFacilityError(
                    f"facilities[{i}]", f"must be a DarkStore, PickupPoint or Locker, got {type(facility).__name__}"
                )

    def available(self, store: str, sku: str) -> int:
        with self.lock:
            return self._store(store).get(sku, 0)

    def low_stock(self, store: str, at_most: int) -> dict[str, int]:
        """The store's SKUs with at most `at_most` units orders can still take, by SKU."""
        with self.lock:
            return {sku: n for sku, n in sorted(self._store(store).items()) if n <= at_most}

    def missing(self, store: str, needed: Mapping[str, int]) -> str | None:
        """The first SKU (in `needed` order) the store cannot supply in full, or None when it has everything."""
        with self.lock:
            stock = self._store(store)
            for sku, qty in needed.items():
                if stock.get(sku, 0) < qty:
                    return sku
            return None

    def first_holding(self, stores: Sequence[str], needed: Mapping[str, int]) -> tuple[int, str | None]:
        """The index of the first of `stores` holding every needed unit (-1 if none), and the first SKU missing at
        `stores[0]` (as `missing` gives it; None when it has everything or `stores` is empty)."""
        with self.lock:
            first_missing: str | None = None
            wanted = tuple(needed.items())
            shelves = self._stock
            for i, store in enumerate(stores):
                stock = shelves[store] if store in shelves else self._store(store)
                for sku, qty in wanted:
                    if stock.get(sku, 0) < qty:
                        if i == 0:
                            first_missing = sku
                        break
                else:
                    return i, first_missing
            return -1, first_missing

    def holding(self, orders: Iterable[str]) -> set[str]:
        """Those of `orders` that hold a reservation."""
        with self.lock:
            reserved = self._reservations
            return {order for order in orders if order in reserved}

    def free_capacity(self, pickup_point: str) -> int:
        with self.lock:
            return self._pickup_point(pickup_point)

    def free_compartments(self, locker: str) -> dict[CompartmentSize, int]:
        with self.lock:
            return dict(self._locker(locker))

    def assign_compartments(
        self, locker: str, needed: Sequence[CompartmentSize]
    ) -> tuple[CompartmentSize, ...] | None:
        """One free compartment per needed size, the same size or the next larger when it is full; None if none."""
        free = self.free_compartments(locker)
        used: list[CompartmentSize] = []
        for size in sorted(needed, key=COMPARTMENT_SIZES.index, reverse=True):
            fit = next((s for s in COMPARTMENT_SIZES[COMPARTMENT_SIZES.index(size):] if free[s] > 0), None)
            if fit is None:
                return None
            free[fit] -= 1
            used.append(fit)
        return tuple(used)

    def reservation(self, order: str) -> Reservation | None:
        with self.lock:
            return self._reservations.get(order)

    def reserve(
        self,
        order: str,
        *,
        store: str | None = None,
        stock: Mapping[str, int] | None = None,
        pickup_point: str | None = None,
        locker: str | None = None,
        compartments: Sequence[CompartmentSize] = (),
    ) -> Reservation:
        """Take stock, a pickup-point place and/or locker compartments for `order`, all or nothing."""
        reservation = Reservation(order=order, store=store, stock=stock or {}, pickup_point=pickup_point,
                                  locker=locker, compartments=tuple(compartments))
        with self.lock:
            if order in self._reservations:
                raise ReservationError("order", f"{order!r} already holds a reservation")
            if store is None and reservation.stock:
                raise ReservationError("store", "stock is reserved at a store; none given")
            if locker is None and reservation.compartments:
                raise ReservationError("locker", "compartments are reserved at a locker; none given")
            if store is not None:
                shelf = self._store(store)
                for sku, qty in reservation.stock.items():
                    if type(qty) is not int or qty < 1:
                        check_int(ReservationError, f"stock[{sku!r}]", qty, minimum=1)
                    if shelf.get(sku, 0) < qty:
                        raise ReservationError(
                            f"stock[{sku!r}]", f"store {store!r} has {shelf.get(sku, 0)}, {qty} wanted"
                        )
            if pickup_point is not None and self._pickup_point(pickup_point) < 1:
                raise ReservationError("pickup_point", f"{pickup_point!r} is full")
            if locker is not None:
                free = self._locker(locker)
                for size in COMPARTMENT_SIZES:
                    wanted = reservation.compartments.count(size)
                    if free[size] < wanted:
                        raise ReservationError(
                            f"compartments[{size!r}]", f"locker {locker!r} has {free[size]} free, {wanted} wanted"
                        )
            if store is not None:
                shelf = self._store(store)
                for sku, qty in reservation.stock.items():
                    shelf[sku] -= qty
            if pickup_point is not None:
                self._capacity[pickup_point] -= 1
            if locker is not None:
                free = self._locker(locker)
                for size in reservation.compartments:
                    free[size] -= 1
            self._reservations[order] = reservation
            self._note(claims_of(reservation), -1)
        return reservation

    @contextmanager
    def unjournaled(self) -> Iterator[None]:
        """Changes made inside are not journaled (a live store counted them already, or they are undone)."""
        with self.lock:
            journal, self.journal = self.journal, None
            try:
                yield
            finally:
                self.journal = journal

    def reserve_unjournaled(self, reservation: Reservation) -> Reservation:
        """`reserve` what `reservation` holds without journaling it (a live store took its counts already)."""
        with self.unjournaled():
            return self.reserve(reservation.order, store=reservation.store, stock=reservation.stock,
                                pickup_point=reservation.pickup_point, locker=reservation.locker,
                                compartments=reservation.compartments)

    def _note(self, claims: Iterable[tuple[str, str, int]], sign: int) -> None:
        if self.journal is not None:
            self.journal.extend((name, field_, sign * units) for name, field_, units in claims)

    def release(self, order: str) -> Reservation:
        """Give back everything `order` holds (on cancel); raises ReservationError for an order holding nothing."""
        with self.lock:
            reservation = self._reservations.pop(order, None)
            if reservation is None:
                raise ReservationError("order", f"{order!r} holds no reservation")
            if reservation.store is not None:
                shelf = self._stock[reservation.store]
                for sku, qty in reservation.stock.items():
                    shelf[sku] += qty
            if reservation.pickup_point is not None:
                self._capacity[reservation.pickup_point] += 1
            if reservation.locker is not None:
                free = self._compartments[reservation.locker]
                for size in reservation.compartments:
                    free[size] += 1
            self._note(claims_of(reservation), 1)
        return reservation

    def fulfil(self, order: str) -> Reservation:
        """The order left its store: its stock is gone for good; a pickup-point place or locker compartments stay
        held (until `release` when the customer collects). Returns what is still held; raises ReservationError
        for an order holding nothing."""
        with self.lock:
            reservation = self._reservations.get(order)
            if reservation is None:
                raise ReservationError("order", f"{order!r} holds no reservation")
            rest = Reservation(order=order, pickup_point=reservation.pickup_point, locker=reservation.locker,
                               compartments=reservation.compartments)
            if rest.pickup_point is None and rest.locker is None:
                del self._reservations[order]
            else:
                self._reservations[order] = rest
        return rest

    def set_stock(self, store: str, sku: str, available: int) -> int:
        """Set the units of `sku` on `store`'s shelf that orders can still take (a delivery came in, a count found
        less); reservations already made keep theirs. Returns the level before."""
        check_int(ReservationError, f"stock[{sku!r}]", available, minimum=0)
        if not isinstance(sku, str) or not sku:
            raise ReservationError("sku", f"must be a non-empty string, got {sku!r}")
        with self.lock:
            shelf = self._store(store)
            before = shelf.get(sku, 0)
            shelf[sku] = int(available)
            if available != before:
                self._note([(*stock_counter(store, sku), available - before)], 1)
            return before

    def adjust_stock(self, store: str, sku: str, delta: int) -> int:
        """Add `delta` units of `sku` to `store`'s shelf (never below 0), unjournaled: a live store that set its own
        count turned a `set_stock` into this delta. Returns the level after."""
        check_int(ReservationError, "delta", delta, minimum=-MAX_INT)
        with self.lock:
            shelf = self._store(store)
            shelf[sku] = max(0, shelf.get(sku, 0) + int(delta))
            return shelf[sku]

    def counters(self) -> dict[str, dict[str, int]]:
        """Every count (see `Counter`) as {name: {field: units}}."""
        with self.lock:
            out = {counter_name("stock", store): dict(shelf) for store, shelf in self._stock.items()}
            out.update({counter_name("pickup", p): {PICKUP_FIELD: n} for p, n in self._capacity.items()})
            out.update({counter_name("locker", lk): {str(k): v for k, v in free.items()}
                        for lk, free in self._compartments.items()})
            return out

    def add_counts(self, deltas: Iterable[tuple[str, str, int]]) -> None:
        """Add (name, field, delta) to counts (see `Counter`), unjournaled: a copy of a live store's counts that
        follows what it took there."""
        self._change_counts(deltas, add=True)

    def set_counters(self, levels: Mapping[str, Mapping[str, int]]) -> None:
        """Overwrite the given counts (names and fields of `counters`; unknown names are an error)."""
        self._change_counts(((name, f, v) for name, fields in levels.items() for f, v in fields.items()), add=False)

    def _change_counts(self, cells: Iterable[tuple[str, str, int]], *, add: bool) -> None:
        """Set (or, with `add`, add to) each (counter name, field, value); a locker size it does not know is left
        alone, a name it does not know is an error."""
        with self.lock:
            for name, field_, value in cells:
                kind, _, facility = name.partition(":")
                if kind == "stock":
                    counts: dict[str, int] = self._store(facility)
                elif kind == "locker":
                    counts = self._locker(facility)  # type: ignore[assignment]
                    if field_ not in counts:
                        continue
                elif kind == "pickup" and field_ == PICKUP_FIELD:
                    self._pickup_point(facility)
                    counts, field_ = self._capacity, facility
                else:
                    raise ReservationError("counter", f"unknown counter {name!r}")
                counts[field_] = (counts.get(field_, 0) if add else 0) + int(value)

    def snapshot(self) -> dict[str, Any]:
        """The counts left and every reservation (see `dispatch.operations` for the format): ready for orjson with
        `default=dispatch.model.json_default`, which writes each `Reservation` as the object of its fields."""
        with self.lock:
            return {
                "stock": {store: dict(shelf) for store, shelf in self._stock.items()},
                "pickup_points": dict(self._capacity),
                "lockers": {locker: dict(free) for locker, free in self._compartments.items()},
                "reservations": list(self._reservations.values()),  # immutable: shared, not copied
            }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Take the counts and reservations of `snapshot()` (of an inventory with the same facilities)."""
        with self.lock:
            for name, mine, theirs in (("stock", self._stock, data["stock"]),
                                       ("pickup_points", self._capacity, data["pickup_points"]),
                                       ("lockers", self._compartments, data["lockers"])):
                if set(mine) != set(theirs):
                    raise ReservationError(f"snapshot.{name}", f"facilities {sorted(theirs)} differ from "
                                           f"{sorted(mine)}")
            self._stock = {store: {str(k): int(v) for k, v in shelf.items()} for store, shelf in data["stock"].items()}
            self._capacity = {k: int(v) for k, v in data["pickup_points"].items()}
            self._compartments = {k: {size: int(free[size]) for size in COMPARTMENT_SIZES}
                                  for k, free in data["lockers"].items()}
            self._reservations = {r["order"]: Reservation(order=r["order"], store=r["store"], stock=r["stock"],
                                                          pickup_point=r["pickup_point"], locker=r["locker"],
                                                          compartments=tuple(r["compartments"]))
                                  for r in data["reservations"]}

    def _store(self, store: str) -> dict[str, int]:
        try:
            return self._stock[store]
        except KeyError:
            raise ReservationError("store", f"unknown dark store {store!r}") from None

    def _pickup_point(self, pickup_point: str) -> int:
        try:
            return self._capacity[pickup_point]
        except KeyError:
            raise ReservationError("pickup_point", f"unknown pickup point {pickup_point!r}") from None

    def _locker(self, locker: str) -> dict[CompartmentSize, int]:
        try:
            return self._compartments[locker]
        except KeyError:
            raise ReservationError("locker", f"unknown locker {locker!r}") from None
