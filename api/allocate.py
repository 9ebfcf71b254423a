"""`lastmile allocate`: read facilities and orders JSON, allocate the orders on an OSM road network, print them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from api.schemas import facilities_from_json, orders_from_json
from dispatch.allocation import Allocation, Allocator
from dispatch.errors import DispatchError, InvalidFacilityError
from dispatch.model import Facility, Order
from routing.network import RoadNetwork

T = TypeVar("T")


class InputFileError(ValueError):
    """A facilities or orders file that cannot be used: `file: field: message`."""


def _load(path: Path) -> Any:
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, not a JSON file")
    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: not UTF-8 text: {exc.reason}") from None
    except RecursionError:
        raise InputFileError(f"{path}: not valid JSON: nested too deeply") from None


def _read(path: Path, convert: Callable[[Any], T]) -> T:
    """Decode, validate (api.schemas) and convert one file; every problem is one line naming the file and field."""
    data = _load(path)
    try:
        return convert(data)
    except DispatchError as exc:
        raise InputFileError(f"{path}: {exc}") from None


def read_facilities(path: str | Path) -> tuple[Facility, ...]:
    return _read(Path(path), facilities_from_json)


def read_orders(path: str | Path) -> tuple[Order, ...]:
    return _read(Path(path), orders_from_json)


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
