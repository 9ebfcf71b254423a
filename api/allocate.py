"""`lastmile allocate`: read facilities and orders JSON, allocate the orders on an OSM road network, print them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import shapely.geometry
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, Polygon

from dispatch.allocation import Allocation, Allocator
from dispatch.errors import DispatchError, InvalidFacilityError, InvalidOrderError
from dispatch.model import DarkStore, Facility, Item, Locker, Order, PickupPoint
from routing.network import RoadNetwork

FACILITY_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "dark_store": (frozenset({"id", "kind", "location", "stock"}), frozenset({"zone", "hours", "picking_s"})),
    "pickup_point": (frozenset({"id", "kind", "location", "capacity"}), frozenset({"hours", "store"})),
    "locker": (frozenset({"id", "kind", "location", "compartments"}), frozenset({"store"})),
}
ORDER_FIELDS = (frozenset({"id", "location", "mode", "items"}), frozenset({"placed_at"}))
ITEM_FIELDS = (frozenset({"sku", "qty", "weight_g", "dims_mm"}), frozenset[str]())
CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


class InputFileError(ValueError):
    """A facilities or orders file that cannot be used: `file: field: message`."""


def parse_clock(error: type[DispatchError], field: str, value: Any) -> int:
    """Seconds from midnight of "HH:MM" or "HH:MM:SS" (up to "24:00"), or a number of seconds as is."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise error(field, f"must not be negative, got {value}")
        return value
    match = CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise error(field, f"must be a time \"HH:MM\" or seconds, got {value!r}")
    h, m, s = int(match[1]), int(match[2]), int(match[3] or 0)
    if m >= 60 or s >= 60 or h > 24 or (h == 24 and m + s > 0):
        raise error(field, f"not a time of day: {value!r}")
    return h * 3600 + m * 60 + s


def _load(path: Path, key: str) -> list[Any]:
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: not UTF-8 text: {exc.reason}") from None
    if not isinstance(data, dict) or key not in data:
        raise InputFileError(f"{path}: expected an object with a list under {key!r}")
    if not isinstance(data[key], list):
        raise InputFileError(f"{path}: {key}: must be a list, got {type(data[key]).__name__}")
    return data[key]


def _fields(
    error: type[DispatchError], where: str, raw: Any, fields: tuple[frozenset[str], frozenset[str]], what: str
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise error(where, f"must be an object, got {type(raw).__name__}")
    required, optional = fields
    for key in raw:
        if key not in required | optional:
            raise error(f"{where}.{key}", f"not a field of {what}; expected {sorted(required | optional)}")
    for key in sorted(required):
        if key not in raw:
            raise error(f"{where}.{key}", "missing")
    return raw


def _zone(value: Any) -> Polygon | MultiPolygon:
    if not isinstance(value, dict) or value.get("type") not in ("Polygon", "MultiPolygon"):
        raise InvalidFacilityError("zone", "must be a GeoJSON Polygon or MultiPolygon object")
    try:
        zone = shapely.geometry.shape(value)
    except (GEOSException, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise InvalidFacilityError("zone", f"not a GeoJSON {value['type']}: {exc}") from None
    if not isinstance(zone, Polygon | MultiPolygon):
        raise InvalidFacilityError("zone", f"must be a Polygon or MultiPolygon, got {zone.geom_type}")
    return zone


def _hours(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise InvalidFacilityError("hours", f"must be [\"HH:MM\", \"HH:MM\"], got {value!r}")
    return (parse_clock(InvalidFacilityError, "hours[0]", value[0]),
            parse_clock(InvalidFacilityError, "hours[1]", value[1]))


def _facility(raw: dict[str, Any]) -> Facility:
    if raw["kind"] == "dark_store":
        return DarkStore(id=raw["id"], location=raw["location"], stock=raw["stock"],
                         zone=_zone(raw["zone"]) if raw.get("zone") is not None else None,
                         hours=_hours(raw.get("hours")), picking_s=raw.get("picking_s", 0))
    if raw["kind"] == "pickup_point":
        return PickupPoint(id=raw["id"], location=raw["location"], capacity=raw["capacity"],
                           hours=_hours(raw.get("hours")), store=raw.get("store"))
    return Locker(id=raw["id"], location=raw["location"], compartments=raw["compartments"], store=raw.get("store"))


def parse_facilities(entries: Sequence[Any]) -> tuple[Facility, ...]:
    """Facilities from the decoded `facilities` list; errors name `facilities[i].field`."""
    facilities: list[Facility] = []
    seen: set[str] = set()
    for i, raw in enumerate(entries):
        where = f"facilities[{i}]"
        if not isinstance(raw, dict):
            raise InvalidFacilityError(where, f"must be an object, got {type(raw).__name__}")
        kind = raw.get("kind")
        if kind not in FACILITY_FIELDS:
            raise InvalidFacilityError(
                f"{where}.kind", f"unknown kind {kind!r}; expected one of {list(FACILITY_FIELDS)}"
            )
        _fields(InvalidFacilityError, where, raw, FACILITY_FIELDS[kind], f"a {kind}")
        try:
            facility = _facility(raw)
        except DispatchError as exc:
            raise exc.within(where) from None
        if facility.id in seen:
            raise InvalidFacilityError(f"{where}.id", f"duplicate id {facility.id!r}")
        seen.add(facility.id)
        facilities.append(facility)
    return tuple(facilities)


def _order(raw: dict[str, Any]) -> Order:
    if not isinstance(raw["items"], list):
        raise InvalidOrderError("items", f"must be a list, got {type(raw['items']).__name__}")
    items = []
    for j, item in enumerate(raw["items"]):
        _fields(InvalidOrderError, f"items[{j}]", item, ITEM_FIELDS, "an item")
        try:
            items.append(Item(sku=item["sku"], qty=item["qty"], weight_g=item["weight_g"], dims_mm=item["dims_mm"]))
        except DispatchError as exc:
            raise exc.within(f"items[{j}]") from None
    placed_at = parse_clock(InvalidOrderError, "placed_at", raw.get("placed_at", 0))
    return Order(id=raw["id"], location=raw["location"], mode=raw["mode"], items=tuple(items), placed_at=placed_at)


def parse_orders(entries: Sequence[Any]) -> tuple[Order, ...]:
    """Orders from the decoded `orders` list; errors name `orders[i].field`."""
    orders: list[Order] = []
    seen: set[str] = set()
    for i, raw in enumerate(entries):
        where = f"orders[{i}]"
        _fields(InvalidOrderError, where, raw, ORDER_FIELDS, "an order")
        try:
            order = _order(raw)
        except DispatchError as exc:
            raise exc.within(where) from None
        if order.id in seen:
            raise InvalidOrderError(f"{where}.id", f"duplicate id {order.id!r}")
        seen.add(order.id)
        orders.append(order)
    return tuple(orders)


def _read(path: Path, key: str, parse: Callable[[Sequence[Any]], Any]) -> Any:
    entries = _load(path, key)
    try:
        return parse(entries)
    except DispatchError as exc:
        raise InputFileError(f"{path}: {exc}") from None


def read_facilities(path: str | Path) -> tuple[Facility, ...]:
    result: tuple[Facility, ...] = _read(Path(path), "facilities", parse_facilities)
    return result


def read_orders(path: str | Path) -> tuple[Order, ...]:
    result: tuple[Order, ...] = _read(Path(path), "orders", parse_orders)
    return result


def run_allocate(network: str | Path, facilities: str | Path, orders: str | Path) -> tuple[Allocation, ...]:
    """Read both files (all input errors first), load the network and allocate the orders in file order."""
    facility_list = read_facilities(facilities)
    order_list = read_orders(orders)
    road_network = RoadNetwork.from_osm(network)
    try:
        allocator = Allocator(road_network, facility_list)
    except InvalidFacilityError as exc:
        raise InputFileError(f"{facilities}: {exc}") from None
    return allocator.allocate(order_list)


def allocations_json(allocations: Sequence[Allocation]) -> dict[str, Any]:
    """The `allocate --json` object."""
    return {
        "allocations": [
            {
                "order": a.order,
                "facility": a.facility,
                "store": a.store,
                "travel_time_s": a.travel_time_s,
                "boxes": list(a.boxes),
                "compartments": list(a.compartments),
                "reason": a.reason,
            }
            for a in allocations
        ]
    }


def allocations_table(allocations: Sequence[Allocation]) -> str:
    """A readable table, one row per order, and a summary line."""
    header = ("order", "facility", "store", "travel", "boxes", "result")
    rows = [
        (
            a.order,
            a.facility or "-",
            a.store or "-",
            "-" if a.travel_time_s is None else f"{a.travel_time_s // 60}:{a.travel_time_s % 60:02d}",
            " ".join(a.boxes) + (f" [{' '.join(a.compartments)}]" if a.compartments else "") or "-",
            a.reason or "allocated",
        )
        for a in allocations
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    served = sum(a.allocated for a in allocations)
    lines.append(f"{len(allocations)} orders: {served} allocated, {len(allocations) - served} rejected")
    return "\n".join(lines)
