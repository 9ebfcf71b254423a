"""Orders, items and facilities (dark stores, pickup points, lockers): frozen, validated, (lon, lat), integers."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, get_args

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon

from dispatch.errors import DispatchError, InvalidFacilityError, InvalidOrderError

DAY_S = 86_400
MAX_INT = 2**31 - 1
"""The largest count, time (seconds), weight (grams) or size (millimetres) of the domain types, so that their sums
stay far inside the 64-bit integer arrays of the dispatch kernels."""

DeliveryMode = Literal["courier", "pickup_point", "locker", "store"]
Mode = Literal["courier", "pickup_point", "locker", "store", "return_pickup_point"]
MODES: tuple[Mode, ...] = get_args(Mode)
RETURN_MODES: tuple[Mode, ...] = ("courier", "store", "return_pickup_point")
"""Modes whose orders may carry `returns`: collected at the door, brought to the store, dropped at a pickup point."""
PromiseKind = Literal["express", "slot", "next_day"]
PROMISE_KINDS: tuple[PromiseKind, ...] = get_args(PromiseKind)
CompartmentSize = Literal["S", "M", "L"]
COMPARTMENT_SIZES: tuple[CompartmentSize, ...] = get_args(CompartmentSize)

LonLat = tuple[float, float]
Hours = tuple[int, int]
Zone: TypeAlias = Polygon | MultiPolygon


_CLOCK_SHAPE = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")


def parse_clock(value: Any, *, latest: int = DAY_S) -> int:
    """Seconds from midnight of "H:MM", "HH:MM" or "HH:MM:SS", or whole seconds as an integer, from 0 up to
    `latest` (a day by default; a simulated day's clock may run to 48:00 past midnight). The one time parser of
    every file and request; raises ValueError saying what is wrong."""
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        match = _CLOCK_SHAPE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"must be a time \"HH:MM\" or seconds, got {value!r}")
        h, m, s = int(match[1]), int(match[2]), int(match[3] or 0)
        if m >= 60 or s >= 60:
            raise ValueError(f"must be a time \"HH:MM\" with minutes and seconds below 60, got {value!r}")
        seconds = h * 3600 + m * 60 + s
    if seconds < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    if seconds > latest:
        raise ValueError(f"must be at most {latest // 3600:02d}:{latest % 3600 // 60:02d}, got {value!r}")
    return seconds


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def shallow_dict(obj: Any) -> dict[str, Any]:
    """A dataclass instance as {field: value}: what `dataclasses.asdict` gives for one whose fields hold no
    dataclass, without its deep copies (snapshots of thousands of orders)."""
    cls = type(obj)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return {name: getattr(obj, name) for name in names}


def json_default(value: Any) -> Any:
    """orjson's `default` for the core's snapshots: a read-only mapping (`MappingProxyType`) as its dict (orjson
    writes dataclasses, lists and dicts itself)."""
    if isinstance(value, MappingProxyType):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def check_int(error: type[DispatchError], field: str, value: Any, *, minimum: int, maximum: int = MAX_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise error(field, f"must be an integer, got {value!r}")
    if value < minimum:
        wanted = {0: "must not be negative", 1: "must be positive"}.get(minimum, f"must be at least {minimum}")
        raise error(field, f"{wanted}, got {value}")
    if value > maximum:
        raise error(field, f"must be at most {maximum}, got {value}")
    return int(value)


def check_id(error: type[DispatchError], field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise error(field, f"must be a non-empty string, got {value!r}")
    return value


def check_location(error: type[DispatchError], field: str, value: Any) -> LonLat:
    try:
        lon, lat = (float(v) for v in value)
    except (TypeError, ValueError):
        raise error(field, f"must be a (lon, lat) pair, got {value!r}") from None
    if not (math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
        raise error(field, f"invalid (lon, lat) = ({lon!r}, {lat!r})")
    return lon, lat


MAX_UNITS = 200
"""Units an order (or a quote's basket) may hold, items and returns each: packing is quadratic in units, so a
bigger basket would stall the dispatch worker; no dark-store basket comes near it."""


def check_units(field: str, lines: Sequence[Item]) -> None:
    """InvalidOrderError naming `field` when `lines` hold more than MAX_UNITS units in all."""
    units = sum(item.qty for item in lines)
    if units > MAX_UNITS:
        raise InvalidOrderError(field, f"at most {MAX_UNITS} units in one order, got {units}")


def check_hours(error: type[DispatchError], field: str, value: Any) -> Hours | None:
    if value is None:
        return None
    try:
        opens, closes = value
    except (TypeError, ValueError):
        raise error(field, f"must be an (opens, closes) pair of seconds from midnight, got {value!r}") from None
    opens = check_int(error, f"{field}[0]", opens, minimum=0)
    closes = check_int(error, f"{field}[1]", closes, minimum=0)
    if opens >= DAY_S or closes > DAY_S:
        raise error(field, f"must lie within one day (0..{DAY_S} s), got ({opens}, {closes})")
    if opens == closes:
        raise error(field, f"opens and closes at the same time ({opens} s); use (0, {DAY_S}) for all day")
    return opens, closes


def open_at(hours: Hours | None, t: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether a facility with these hours is open at times `t` (seconds; taken modulo one day).

    Hours are [opens, closes); when closes < opens the facility is open over midnight.
    """
    times = np.asarray(t, dtype=np.int64) % DAY_S
    if hours is None:
        return np.ones(times.shape, dtype=np.bool_)
    opens, closes = hours
    if opens < closes:
        return np.asarray((times >= opens) & (times < closes), dtype=np.bool_)
    return np.asarray((times >= opens) | (times < closes), dtype=np.bool_)


def _frozen_counts(
    error: type[DispatchError], field: str, value: Any, allowed: tuple[str, ...] | None = None
) -> Mapping[str, int]:
    if not isinstance(value, Mapping):
        raise error(field, f"must be a mapping, got {type(value).__name__}")
    counts: dict[str, int] = {}
    for key, count in value.items():
        check_id(error, f"{field} key", key)
        if allowed is not None and key not in allowed:
            raise error(f"{field}[{key!r}]", f"unknown key; expected one of {list(allowed)}")
        counts[key] = check_int(error, f"{field}[{key!r}]", count, minimum=0)
    return MappingProxyType(counts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One order line: `qty` identical units of `weight_g` grams and `dims_mm` outer dimensions each."""

    sku: str
    qty: int
    weight_g: int
    dims_mm: tuple[int, int, int]

    def __post_init__(self) -> None:
        check_id(InvalidOrderError, "sku", self.sku)
        check_int(InvalidOrderError, "qty", self.qty, minimum=1)
        check_int(InvalidOrderError, "weight_g", self.weight_g, minimum=1)
        try:
            dims = tuple(self.dims_mm)
        except TypeError:
            raise InvalidOrderError("dims_mm", f"must be three integers, got {self.dims_mm!r}") from None
        if len(dims) != 3:
            raise InvalidOrderError("dims_mm", f"must be three integers, got {list(dims)}")
        checked = tuple(check_int(InvalidOrderError, f"dims_mm[{i}]", d, minimum=1) for i, d in enumerate(dims))
        object.__setattr__(self, "dims_mm", checked)

    @property
    def volume_mm3(self) -> int:
        a, b, c = self.dims_mm
        return a * b * c


@dataclass(frozen=True, slots=True, kw_only=True)
class Promise:
    """The delivery promise an order was sold with: `express` (within `within_s` of placing it), a `slot`
    (`window` = (start, end), seconds of the day, 0 <= start < end <= 86 400) or `next_day` (by the end of the
    day after the one it was placed on). Build with `Promise.express(s)`, `Promise.slot(a, b)`, `Promise.next_day()`.
    """

    kind: PromiseKind
    within_s: int | None = None
    window: Hours | None = None

    def __post_init__(self) -> None:
        if self.kind not in PROMISE_KINDS:
            raise InvalidOrderError("kind", f"must be one of {list(PROMISE_KINDS)}, got {self.kind!r}")
        if self.kind == "express":
            check_int(InvalidOrderError, "within_s", self.within_s, minimum=1)
        elif self.within_s is not None:
            raise InvalidOrderError("within_s", f"only an express promise has one, not {self.kind}")
        if self.kind != "slot":
            if self.window is not None:
                raise InvalidOrderError("window", f"only a slot promise has one, not {self.kind}")
            return
        window: Any = self.window
        try:
            start, end = window
        except (TypeError, ValueError):
            raise InvalidOrderError("window", f"must be a (start, end) pair of seconds of the day, "
                                    f"got {self.window!r}") from None
        start = check_int(InvalidOrderError, "window[0]", start, minimum=0)
        end = check_int(InvalidOrderError, "window[1]", end, minimum=0)
        if not start < end <= DAY_S:
            raise InvalidOrderError("window", f"must satisfy 0 <= start < end <= {DAY_S}, got ({start}, {end})")
        object.__setattr__(self, "window", (start, end))

    @classmethod
    def express(cls, within_s: int) -> Promise:
        return cls(kind="express", within_s=within_s)

    @classmethod
    def slot(cls, start: int, end: int) -> Promise:
        return cls(kind="slot", window=(start, end))

    @classmethod
    def next_day(cls) -> Promise:
        return cls(kind="next_day")


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """A customer order: delivered to `location` (courier) or collected at a pickup point, locker or store.

    `placed_at` is in seconds (of the day, or of any clock whose day starts at a multiple of 86 400 s).
    `promise` is what the customer was promised (None: unknown; `deadline` needs one). `returns` are items to
    take back from the customer: collected at the door (`courier`), handed in at the store (`store`) or, for a
    `return_pickup_point` order (returns only, no `items`), dropped at a pickup point and collected from there.
    """

    id: str
    location: LonLat
    mode: Mode
    items: tuple[Item, ...]
    placed_at: int = 0
    promise: Promise | None = None
    returns: tuple[Item, ...] = ()

    def __post_init__(self) -> None:
        check_id(InvalidOrderError, "id", self.id)
        object.__setattr__(self, "location", check_location(InvalidOrderError, "location", self.location))
        if self.mode not in MODES:
            raise InvalidOrderError("mode", f"must be one of {list(MODES)}, got {self.mode!r}")
        for name in ("items", "returns"):
            lines = getattr(self, name)
            if isinstance(lines, Item | str | bytes | Mapping):
                raise InvalidOrderError(name, f"must be a sequence of Item, got {type(lines).__name__}")
            try:
                lines = tuple(lines)
            except TypeError:
                raise InvalidOrderError(name, f"must be a sequence of Item, got {type(lines).__name__}") from None
            for i, item in enumerate(lines):
                if not isinstance(item, Item):
                    raise InvalidOrderError(f"{name}[{i}]", f"must be an Item, got {type(item).__name__}")
            check_units(name, lines)
            object.__setattr__(self, name, lines)
        if self.mode == "return_pickup_point":
            if self.items:
                raise InvalidOrderError("items", "a return_pickup_point order delivers nothing; list the items "
                                        "it returns in `returns`")
            if not self.returns:
                raise InvalidOrderError("returns", "a return_pickup_point order needs at least one item to return")
        elif not self.items:
            raise InvalidOrderError("items", "an order needs at least one item")
        if self.returns and self.mode not in RETURN_MODES:
            raise InvalidOrderError("returns", f"a {self.mode} order cannot take returns (only "
                                    f"{', '.join(RETURN_MODES)}); place a return_pickup_point order")
        check_int(InvalidOrderError, "placed_at", self.placed_at, minimum=0)
        if self.promise is not None and not isinstance(self.promise, Promise):
            raise InvalidOrderError("promise", f"must be a Promise or None, got {type(self.promise).__name__}")

    @property
    def is_return(self) -> bool:
        """Whether the order only takes items back (a return dropped at a pickup point)."""
        return self.mode == "return_pickup_point"

    def quantities(self) -> dict[str, int]:
        """Units needed per SKU, in the order the SKUs first appear."""
        needed: dict[str, int] = {}
        for item in self.items:
            needed[item.sku] = needed.get(item.sku, 0) + item.qty
        return needed


@dataclass(frozen=True, slots=True, kw_only=True)
class DarkStore:
    """A dark store: stock per SKU, an optional delivery zone and opening hours, a picking time per order.

    A store without a zone delivers to any address its couriers can reach; without hours it never closes.
    """

    id: str
    location: LonLat
    stock: Mapping[str, int]
    zone: Zone | None = None
    hours: Hours | None = None
    picking_s: int = 0

    def __post_init__(self) -> None:
        check_id(InvalidFacilityError, "id", self.id)
        object.__setattr__(self, "location", check_location(InvalidFacilityError, "location", self.location))
        object.__setattr__(self, "stock", _frozen_counts(InvalidFacilityError, "stock", self.stock))
        if self.zone is not None:
            if not isinstance(self.zone, Polygon | MultiPolygon):
                raise InvalidFacilityError("zone", f"must be a shapely Polygon, got {type(self.zone).__name__}")
            if self.zone.is_empty:
                raise InvalidFacilityError("zone", "must not be empty")
            if not self.zone.is_valid:
                raise InvalidFacilityError("zone", f"invalid polygon: {shapely.is_valid_reason(self.zone)}")
            shapely.prepare(self.zone)
        object.__setattr__(self, "hours", check_hours(InvalidFacilityError, "hours", self.hours))
        check_int(InvalidFacilityError, "picking_s", self.picking_s, minimum=0)

    def is_open(self, t: int) -> bool:
        """`open_at` of one time, in scalars."""
        if self.hours is None:
            return True
        opens, closes = self.hours
        t %= DAY_S
        return opens <= t < closes if opens < closes else (t >= opens or t < closes)


@dataclass(frozen=True, slots=True, kw_only=True)
class PickupPoint:
    """A staffed pickup point holding up to `capacity` orders, optionally always fed by one store.

    `hours` are when customers may collect; allocation does not depend on them.
    """

    id: str
    location: LonLat
    capacity: int
    hours: Hours | None = None
    store: str | None = None

    def __post_init__(self) -> None:
        check_id(InvalidFacilityError, "id", self.id)
        object.__setattr__(self, "location", check_location(InvalidFacilityError, "location", self.location))
        check_int(InvalidFacilityError, "capacity", self.capacity, minimum=0)
        object.__setattr__(self, "hours", check_hours(InvalidFacilityError, "hours", self.hours))
        if self.store is not None:
            check_id(InvalidFacilityError, "store", self.store)


@dataclass(frozen=True, slots=True, kw_only=True)
class Locker:
    """A parcel locker: how many compartments of each size S, M, L; optionally always fed by one store."""

    id: str
    location: LonLat
    compartments: Mapping[CompartmentSize, int]
    store: str | None = None

    def __post_init__(self) -> None:
        check_id(InvalidFacilityError, "id", self.id)
        object.__setattr__(self, "location", check_location(InvalidFacilityError, "location", self.location))
        counts = _frozen_counts(InvalidFacilityError, "compartments", self.compartments, COMPARTMENT_SIZES)
        if sum(counts.values()) == 0:
            raise InvalidFacilityError("compartments", "a locker needs at least one compartment")
        full = {size: counts.get(size, 0) for size in COMPARTMENT_SIZES}
        object.__setattr__(self, "compartments", MappingProxyType(full))
        if self.store is not None:
            check_id(InvalidFacilityError, "store", self.store)


Facility = DarkStore | PickupPoint | Locker


def deadline(order: Order, placed_at: int | None = None, *, promise: Promise | None = None) -> int:
    """The `promise_by` of the order's DispatchOrder: when its promise (or `promise`) says it must be delivered.

    Times are on the order's clock (`placed_at`, default `order.placed_at`; days start at multiples of 86 400 s).
    express: placed_at + within_s. slot: the end of the first slot on that day or later that has not ended by
    placed_at (a slot already over is tomorrow's). next_day: the end of the day after the one it was placed on.
    Raises InvalidOrderError naming `promise` when the order has none, `placed_at` when it is invalid.
    """
    chosen = promise if promise is not None else order.promise
    if not isinstance(chosen, Promise):
        raise InvalidOrderError("promise", f"order {order.id!r} has no promise to derive a deadline from")
    at = check_int(InvalidOrderError, "placed_at", order.placed_at if placed_at is None else placed_at, minimum=0)
    day = at - at % DAY_S
    if chosen.within_s is not None:  # express
        return at + chosen.within_s
    if chosen.window is not None:  # slot
        end = day + chosen.window[1]
        return end if end > at else end + DAY_S
    return day + 2 * DAY_S


def circle_zone(centre: LonLat, radius_m: float, *, segments: int = 64) -> Polygon:
    """A delivery zone: the disc of `radius_m` metres around `centre` (lon, lat), as a polygon in degrees."""
    lon, lat = check_location(InvalidFacilityError, "centre", centre)
    if not (math.isfinite(radius_m) and radius_m > 0):
        raise InvalidFacilityError("radius_m", f"must be a positive number of metres, got {radius_m!r}")
    angles = np.linspace(0.0, 2 * math.pi, segments, endpoint=False)
    dlat = radius_m / 111_320.0
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    return Polygon(np.column_stack([lon + dlon * np.cos(angles), lat + dlat * np.sin(angles)]))
