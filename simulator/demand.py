"""Orders of a simulated day: generated from an hourly profile and a spatial density, or replayed from CSV; seeded."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from dispatch.errors import DispatchError
from dispatch.model import Item, Order, Promise
from routing.network import RoadNetwork
from routing.snap import EARTH_RADIUS_M
from simulator.errors import ScenarioError
from simulator.scenario import DELIVERY_MODES, Clock, Demand, Scenario, Sku, parse_time

COLUMNS = ("id", "placed_at", "lon", "lat", "mode", "items")
OPTIONAL_COLUMNS = ("promise_s",)
M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0
JITTER_M = 3.0
"""Standard deviation of the offset of a generated address from its road node (clipped at 3 sigma per axis)."""
MAX_QTY = 3

_Fail = Callable[[str, str], ScenarioError]


def orders_for(scenario: Scenario, network: RoadNetwork) -> tuple[Order, ...]:
    """The day's orders of `scenario`, sorted by (placed_at, id): generated with its seed, or read from its file."""
    demand = scenario.demand
    if demand.kind == "generate":
        try:
            orders = generate(demand, scenario.clock, network, seed=scenario.seed)
        except ScenarioError as exc:
            raise exc if scenario.path is None else exc.in_file(str(scenario.path)) from None
    elif demand.kind == "replay":
        if demand.file is None:
            raise ScenarioError("demand.file", "a replay demand needs a file", file=_name(scenario.path))
        orders = read_orders_csv(demand.file, demand, clock=scenario.clock)
    else:
        raise ScenarioError("demand.kind", f"must be 'generate' or 'replay', got {demand.kind!r}",
                            file=_name(scenario.path))
    return tuple(sorted(orders, key=lambda o: (o.placed_at, o.id)))


def generate(demand: Demand, clock: Clock, network: RoadNetwork, *, seed: int) -> tuple[Order, ...]:
    """`demand.orders` orders placed in [clock.start, clock.end), ids "o00001", ... in placement order.

    Times follow the hourly weights (uniform within an hour, an hour partly inside the window weighs the fraction
    inside); addresses are road nodes drawn with a Gaussian kernel density around the centres (uniform without
    centres) plus a few metres of jitter; modes follow `demand.modes`; baskets hold distinct SKUs, 1-3 units each.
    The same seed gives the same orders.
    """
    n = demand.orders
    if n < 0:
        raise ScenarioError("demand.orders", f"must be at least 0, got {n}")
    if n == 0:
        return ()
    rng = np.random.default_rng(seed)
    times = np.sort(_placement_times(demand.hourly, clock, n, rng))
    lon, lat = _locations(demand, network, n, rng)
    mode_names, mode_p = _mode_shares(demand)
    modes = rng.choice(len(mode_names), size=n, p=mode_p)
    skus = demand.skus
    if not skus:
        raise ScenarioError("demand.skus", "needs at least one SKU")
    low, high = demand.basket
    if not 1 <= low <= high:
        raise ScenarioError("demand.basket", f"must be (low, high) with 1 <= low <= high, got {demand.basket!r}")
    sizes = np.minimum(rng.integers(low, high + 1, size=n), len(skus))
    picks = np.argsort(rng.random((n, len(skus))), axis=1)
    qtys = rng.integers(1, MAX_QTY + 1, size=(n, len(skus)))
    table = [[Item(sku=s.id, qty=q, weight_g=s.weight_g, dims_mm=s.dims_mm) for q in range(1, MAX_QTY + 1)]
             for s in skus]
    promise = Promise.express(demand.express_s)
    width = max(5, len(str(n)))
    orders = []
    for i, (t, x, y, m, k, pick, qty) in enumerate(zip(times.tolist(), lon.tolist(), lat.tolist(), modes.tolist(),
                                                     sizes.tolist(), picks.tolist(), qtys.tolist(), strict=True)):
        items = tuple(table[pick[j]][qty[j] - 1] for j in range(k))
        orders.append(Order(id=f"o{i + 1:0{width}d}", location=(x, y), mode=mode_names[m], items=items,
                            placed_at=t, promise=promise))
    return tuple(orders)


def _placement_times(hourly: tuple[float, ...], clock: Clock, n: int,
                     rng: np.random.Generator) -> npt.NDArray[np.int64]:
    if len(hourly) != 24:
        raise ScenarioError("demand.hourly", f"must be 24 numbers, got {len(hourly)}")
    if clock.end <= clock.start:
        raise ScenarioError("clock.end", f"must be after start, got [{clock.start}, {clock.end})")
    hours = np.arange(clock.start // 3600, -(-clock.end // 3600), dtype=np.int64)
    lo = np.maximum(hours * 3600, clock.start)
    hi = np.minimum((hours + 1) * 3600, clock.end)
    weights = np.asarray(hourly, dtype=np.float64)[hours % 24] * (hi - lo)
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ScenarioError("demand.hourly", "every hour of the clock window has weight 0; no order can be placed")
    hour = rng.choice(len(hours), size=n, p=weights / weights.sum())
    return np.asarray(rng.integers(lo[hour], hi[hour]), dtype=np.int64)


CENTRE_REACH = 3
"""A demand centre must have a road node within this many `spread_m` of it (else its orders would all land on the
map's edge nearest to it)."""


def _locations(demand: Demand, network: RoadNetwork, n: int,
               rng: np.random.Generator) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    at = np.asarray(network.lonlat, dtype=np.float64)
    if len(at) == 0:
        raise ScenarioError("map", "the road network has no nodes to place orders at")
    if demand.centres:
        if len(demand.centre_weights) != len(demand.centres):
            raise ScenarioError("demand.centre_weights", f"must be {len(demand.centres)} numbers, one per centre")
        centres = np.asarray(demand.centres, dtype=np.float64)
        dx = (at[:, 0, None] - centres[None, :, 0]) * M_PER_DEG * np.cos(np.radians(centres[None, :, 1]))
        dy = (at[:, 1, None] - centres[None, :, 1]) * M_PER_DEG
        d2 = dx**2 + dy**2
        nearest = np.sqrt(d2.min(axis=0))
        for i, gap in enumerate(nearest.tolist()):
            if gap > CENTRE_REACH * demand.spread_m:  # it would only put orders on the map's edge nearest to it
                lon, lat = demand.centres[i]
                raise ScenarioError(f"demand.centres[{i}]", f"({lon:.6f}, {lat:.6f}) is {gap:.0f} m from the nearest "
                                    f"road node of the map, more than {CENTRE_REACH} x spread_m "
                                    f"({CENTRE_REACH * demand.spread_m:.0f} m): off the map?")
        kernel = np.exp(-d2 / (2.0 * demand.spread_m**2))
        density = kernel @ np.asarray(demand.centre_weights, dtype=np.float64)
        if not np.isfinite(density.sum()) or density.sum() <= 0:
            raise ScenarioError("demand.centres", f"no road node lies within reach (spread_m = {demand.spread_m}) "
                                "of the demand centres")
        nodes = rng.choice(len(at), size=n, p=density / density.sum())
    else:
        nodes = rng.integers(0, len(at), size=n)
    offset = np.clip(rng.normal(0.0, JITTER_M, size=(n, 2)), -3 * JITTER_M, 3 * JITTER_M)
    lat = at[nodes, 1] + offset[:, 1] / M_PER_DEG
    lon = at[nodes, 0] + offset[:, 0] / (M_PER_DEG * np.cos(np.radians(at[nodes, 1])))
    return np.round(lon, 7), np.round(lat, 7)


def _mode_shares(demand: Demand) -> tuple[list[str], npt.NDArray[np.float64]]:
    for mode in demand.modes:
        if mode not in DELIVERY_MODES:
            raise ScenarioError(f"demand.modes.{mode}", f"unknown mode; expected one of {list(DELIVERY_MODES)}")
    names = [m for m in DELIVERY_MODES if demand.modes.get(m, 0.0) > 0]
    shares = np.asarray([demand.modes[m] for m in names], dtype=np.float64)
    if not names or not np.isfinite(shares.sum()):
        raise ScenarioError("demand.modes", "needs a share > 0 for at least one mode")
    return names, shares / shares.sum()


def read_orders_csv(path: Path, demand: Demand, *, clock: Clock | None = None) -> tuple[Order, ...]:
    """Orders replayed from a CSV file, sorted by (placed_at, id).

    Header `id,placed_at,lon,lat,mode,items[,promise_s]`, columns in any order. `placed_at` is "HH:MM",
    "HH:MM:SS" or integer seconds, within the day of `clock` when given: from `clock.start` until before
    `clock.end`, as generated orders are (the day starts at `clock.start`, so an order placed before would be placed
    at the start with its promise counted from its earlier time, and one placed from `clock.end` on may find the
    stores done for the day). `items` is `sku:qty;sku:qty` with SKUs of `demand.skus`; `promise_s` (express
    promise, seconds) defaults to `demand.express_s`. Blank lines are skipped; cells are stripped. Errors raise
    ScenarioError(column, message, file=path, row=N) where N is the line number in the file (the header is line 1);
    header errors (missing, repeated or unknown column) have no row.
    """
    path = Path(path)
    file = str(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except FileNotFoundError:
        raise ScenarioError("", f"no such demand file: {path}", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError("", f"cannot read: {exc}", file=file) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ScenarioError("", f"empty file; expected a header {','.join(COLUMNS)}", file=file) from None
    except csv.Error as exc:
        raise ScenarioError("", f"not valid CSV: {exc}", file=file, row=reader.line_num) from None
    _check_header(header, file)
    skus = {s.id: s for s in demand.skus}
    lines: dict[tuple[str, int], Item] = {}
    seen: dict[str, int] = {}
    orders = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ScenarioError("", f"not valid CSV: {exc}", file=file, row=reader.line_num) from None
        if not any(c.strip() for c in cells):
            continue
        line = reader.line_num
        if len(cells) != len(header):
            raise ScenarioError("", f"has {len(cells)} fields, the header has {len(header)}", file=file, row=line)
        row = dict(zip(header, (c.strip() for c in cells), strict=True))
        if row["id"] in seen:
            raise ScenarioError("id", f"duplicate id {row['id']!r} (first on line {seen[row['id']]})",
                                file=file, row=line)
        order = _order(row, demand.express_s, skus, lines, file, line)
        if clock is not None and not clock.start <= order.placed_at < clock.end:
            raise ScenarioError("placed_at", f"must be within the scenario's day, from clock.start "
                                f"{_hhmm(clock.start)} until before clock.end {_hhmm(clock.end)}, got "
                                f"{row['placed_at']!r}", file=file, row=line)
        orders.append(order)
        seen[row["id"]] = line
    return tuple(sorted(orders, key=lambda o: (o.placed_at, o.id)))


def _check_header(header: list[str], file: str) -> None:
    for column in header:
        if header.count(column) > 1:
            raise ScenarioError(column, "column appears twice in the header", file=file)
    for column in COLUMNS:
        if column not in header:
            raise ScenarioError(column, f"missing column; the header needs {','.join(COLUMNS)}", file=file)
    for column in header:
        if column not in COLUMNS + OPTIONAL_COLUMNS:
            raise ScenarioError(column, f"unknown column; expected {list(COLUMNS + OPTIONAL_COLUMNS)}", file=file)


def _order(row: dict[str, str], express_s: int, skus: dict[str, Sku], lines: dict[tuple[str, int], Item],
           file: str, line: int) -> Order:
    def fail(column: str, message: str) -> ScenarioError:
        return ScenarioError(column, message, file=file, row=line)

    if not row["id"]:
        raise fail("id", "must not be empty")
    raw_time = row["placed_at"]
    try:
        placed_at = parse_time(int(raw_time) if raw_time.isascii() and raw_time.isdigit() else raw_time, "placed_at")
    except ScenarioError as exc:
        raise fail("placed_at", exc.message) from None
    lon = _coordinate(row, "lon", 180.0, fail)
    lat = _coordinate(row, "lat", 90.0, fail)
    if row["mode"] not in DELIVERY_MODES:
        raise fail("mode", f"must be one of {list(DELIVERY_MODES)}, got {row['mode']!r}")
    promise_s = _positive_int(row["promise_s"]) if row.get("promise_s") else express_s
    if promise_s is None:
        raise fail("promise_s", f"must be a positive integer number of seconds, got {row['promise_s']!r}")
    items = _items(row["items"], skus, lines, fail)
    try:
        return Order(id=row["id"], location=(lon, lat), mode=row["mode"],  # type: ignore[arg-type]
                     items=items, placed_at=placed_at, promise=Promise.express(promise_s))
    except DispatchError as exc:
        head = re.split(r"[.\[]", exc.field, maxsplit=1)[0]
        raise fail({"promise": "promise_s", "within_s": "promise_s"}.get(head, head) or "id", exc.message) from None


def _coordinate(row: dict[str, str], column: str, limit: float, fail: _Fail) -> float:
    try:
        value = float(row[column])
    except ValueError:
        raise fail(column, f"must be a number, got {row[column]!r}") from None
    if not (math.isfinite(value) and -limit <= value <= limit):
        raise fail(column, f"must be a number of degrees in [{-limit:g}, {limit:g}], got {row[column]!r}")
    return value


def _items(cell: str, skus: dict[str, Sku], lines: dict[tuple[str, int], Item], fail: _Fail) -> tuple[Item, ...]:
    if not cell:
        raise fail("items", "must list at least one sku:qty")
    items: list[Item] = []
    for part in cell.split(";"):
        sku_id, sep, raw_qty = (p.strip() for p in part.partition(":"))
        if not sep or not sku_id:
            raise fail("items", f"must be sku:qty;sku:qty, got {part.strip()!r}")
        sku = skus.get(sku_id)
        if sku is None:
            raise fail("items", f"unknown sku {sku_id!r}; the catalogue has {sorted(skus)}")
        if any(i.sku == sku_id for i in items):
            raise fail("items", f"sku {sku_id!r} is listed twice")
        qty = _positive_int(raw_qty)
        if qty is None:
            raise fail("items", f"qty of {sku_id!r} must be a positive integer, got {raw_qty!r}")
        item = lines.get((sku_id, qty))
        if item is None:
            try:
                item = Item(sku=sku.id, qty=qty, weight_g=sku.weight_g, dims_mm=sku.dims_mm)
            except DispatchError as exc:
                raise fail("items", f"{sku_id}: {exc}") from None
            lines[sku_id, qty] = item
        items.append(item)
    return tuple(items)


def _positive_int(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        return None
    return int(text)


def write_orders_csv(orders: Iterable[Order], path: Path) -> None:
    """Write `orders` in the format `read_orders_csv` reads (with `promise_s`); locations keep every digit."""
    path = Path(path)
    rows = []
    for order in orders:
        promise = order.promise
        if promise is None or promise.kind != "express" or promise.within_s is None:
            raise ScenarioError("promise_s", f"order {order.id!r}: a demand file holds express promises only",
                                file=str(path))
        if order.mode not in DELIVERY_MODES or order.returns:
            raise ScenarioError("mode", f"order {order.id!r}: a demand file holds {list(DELIVERY_MODES)} "
                                "deliveries without returns only", file=str(path))
        h, rest = divmod(order.placed_at, 3600)
        rows.append([order.id, f"{h:02d}:{rest // 60:02d}:{rest % 60:02d}", repr(float(order.location[0])),
                     repr(float(order.location[1])), order.mode,
                     ";".join(f"{i.sku}:{i.qty}" for i in order.items), str(promise.within_s)])
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*COLUMNS, *OPTIONAL_COLUMNS])
        writer.writerows(rows)


def _hhmm(t: int) -> str:
    """Seconds of the day as "HH:MM" ("HH:MM:SS" when the seconds are not 0)."""
    h, rest = divmod(t, 3600)
    return f"{h:02d}:{rest // 60:02d}" + (f":{rest % 60:02d}" if rest % 60 else "")


def _name(path: Path | None) -> str | None:
    return None if path is None else str(path)
