"""Scenario files (TOML): map, facilities, fleet per shift and profile, policy and its knobs, demand; validated.

Every error names the file and the key path (`fleet[2].count`), so `lastmile simulate` can exit 2 with one line.
Times of day are "HH:MM" (or "HH:MM:SS") strings or integer seconds; coordinates are `[lon, lat]`.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

from dispatch.errors import DispatchError
from dispatch.model import DAY_S, parse_clock
from dispatch.promise import PromiseOptions
from simulator.errors import ScenarioError

PolicyName = Literal["greedy", "batch", "reoptimize"]
POLICIES: tuple[PolicyName, ...] = get_args(PolicyName)
DemandKind = Literal["generate", "replay"]
Rank = Literal["eta", "nearest"]
RANKS: tuple[Rank, ...] = get_args(Rank)
Profile = Literal["bike", "ebike", "foot", "car"]
PROFILES: tuple[Profile, ...] = get_args(Profile)
DeliveryMode = Literal["courier", "locker", "pickup_point"]
DELIVERY_MODES: tuple[str, ...] = get_args(DeliveryMode)
FailedTo = Literal["store", "locker"]
FAILED_TO: tuple[FailedTo, ...] = get_args(FailedTo)
MAX_COUNT = 1_000_000
"""The most couriers, pickers, orders, boxes, compartments, iterations or basket lines a scenario may ask for."""
MAX_SECONDS = 2 * 86_400
"""The longest duration (tick, picking, hold, detour, service, promise, ...) a scenario may give: two days."""
MAX_INT = 2**31 - 1
"""The largest other integer (seed, stock, grams, millimetres) a scenario may give."""
MAX_METRES = 20_000_000.0
"""The largest distance (zone radius, spread, snap limit) a scenario may give: half way round the Earth."""
MAX_NUMBER = 1e9
"""The largest weight, share or cost a scenario may give."""
DEFAULT_HOURLY = (0, 0, 0, 0, 0, 0, 0, 1, 3, 4, 5, 6, 8, 7, 5, 4, 5, 6, 9, 10, 8, 5, 3, 1)
"""Orders placed per hour of the day, relative weights (a grocery day: lunch and evening peaks)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Clock:
    """The simulated day: orders are placed in [`start`, `end`), couriers finish what they hold after `end`."""

    start: int = 8 * 3600
    end: int = 23 * 3600
    tick_s: int = 60
    decision_latency_s: int = 0
    traffic: bool = True
    """Car travel times follow the hour of day (congestion); bike and foot do not."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The dispatch policy and its knobs (`batch`: max_orders, hold_s, radius_s; `reoptimize`: iterations)."""

    name: PolicyName = "batch"
    max_orders: int = 3
    hold_s: int = 300
    radius_s: int = 600
    iterations: int = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    """How courier orders pick their store: `eta` (earliest door arrival under the stores' live picking queues
    and couriers, among stores within `max_detour_s` of the nearest's road time) or `nearest` (by road)."""

    rank: Rank = "eta"
    max_detour_s: int = 600


@dataclass(frozen=True, slots=True, kw_only=True)
class Store:
    """A dark store: `pickers` work orders one at a time, `picking_s` each; `zone_radius_m` (0: any address)."""

    id: str
    location: tuple[float, float]
    pickers: int = 2
    picking_s: int = 240
    hours: tuple[int, int] | None = None
    zone_radius_m: int = 0
    stock: int = 100_000
    """Units of every catalogue SKU at the start of the day."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Locker:
    id: str
    location: tuple[float, float]
    compartments: Mapping[str, int]
    store: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PickupPoint:
    id: str
    location: tuple[float, float]
    capacity: int
    store: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetGroup:
    """`count` couriers of one profile based at `store`, working the shift [start, end)."""

    store: str
    profile: str
    count: int
    shift: tuple[int, int]
    capacity: int = 4
    """Boxes the courier can carry."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sku:
    id: str
    weight_g: int
    dims_mm: tuple[int, int, int]


DEFAULT_SKUS = (
    Sku(id="milk-1l", weight_g=1050, dims_mm=(70, 70, 200)),
    Sku(id="bread", weight_g=400, dims_mm=(250, 120, 100)),
    Sku(id="eggs-12", weight_g=750, dims_mm=(300, 110, 70)),
    Sku(id="apples-1kg", weight_g=1000, dims_mm=(200, 150, 100)),
    Sku(id="water-6x1.5l", weight_g=9200, dims_mm=(270, 180, 330)),
    Sku(id="coffee", weight_g=250, dims_mm=(90, 60, 160)),
    Sku(id="pasta", weight_g=500, dims_mm=(200, 80, 40)),
    Sku(id="chocolate", weight_g=100, dims_mm=(160, 80, 10)),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Demand:
    """Orders of the day: generated (`orders` over `hourly` weights, around `centres`) or replayed from `file`.

    Generated addresses are road nodes drawn with a Gaussian kernel of `spread_m` around each centre (weighted
    by `centre_weights`); the street grid's own density does the rest (dense old town, sparse outskirts).
    """

    kind: DemandKind = "generate"
    orders: int = 1000
    hourly: tuple[float, ...] = tuple(float(w) for w in DEFAULT_HOURLY)
    centres: tuple[tuple[float, float], ...] = ()
    centre_weights: tuple[float, ...] = ()
    spread_m: float = 2000.0
    modes: Mapping[str, float] = field(default_factory=lambda: {"courier": 1.0})
    basket: tuple[int, int] = (1, 6)
    """Lines per order, drawn uniformly in [low, high]."""
    express_s: int = 45 * 60
    """The promise: delivered within this many seconds of placing the order."""
    file: Path | None = None
    skus: tuple[Sku, ...] = DEFAULT_SKUS


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """What happens at the door: service time, customers absent (failed), cancellations, locker pickups."""

    service_s: int = 120
    failure_rate: float = 0.0
    cancel_rate: float = 0.0
    cancel_after_s: int = 600
    """A cancelling customer does so this long after placing the order (if it has not left the store)."""
    collect_after_s: int = 3 * 3600
    """Customers empty their locker compartment or pickup-point place this long after delivery."""
    failed_to: FailedTo = "store"
    """Where a courier parcel goes when the customer is absent: back to the `store` (the order fails), or back to
    the store and then out again to the `locker` nearest the store with a free compartment for its boxes (the
    order is delivered there; failed when every locker is full)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Costs:
    """Cost per courier-hour on shift and per km driven, by profile (currency units)."""

    courier_hour: Mapping[str, float] = field(default_factory=lambda: {"bike": 11.0, "ebike": 12.0,
                                                                        "foot": 10.0, "car": 15.0})
    per_km: Mapping[str, float] = field(default_factory=lambda: {"bike": 0.0, "ebike": 0.02, "foot": 0.0,
                                                                  "car": 0.25})


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A whole what-if: everything `simulator.model.simulate` needs, with paths resolved."""

    name: str
    path: Path | None
    map_file: Path
    max_snap_m: float = 300.0
    seed: int = 0
    clock: Clock = field(default_factory=Clock)
    policy: Policy = field(default_factory=Policy)
    allocation: Allocation = field(default_factory=Allocation)
    promise: PromiseOptions = field(default_factory=PromiseOptions)
    """How the checkout quotes express ETAs (margins); the day measures how often they are met."""
    stores: tuple[Store, ...] = ()
    lockers: tuple[Locker, ...] = ()
    pickup_points: tuple[PickupPoint, ...] = ()
    fleet: tuple[FleetGroup, ...] = ()
    demand: Demand = field(default_factory=Demand)
    delivery: Delivery = field(default_factory=Delivery)
    costs: Costs = field(default_factory=Costs)

    @property
    def couriers(self) -> int:
        return sum(g.count for g in self.fleet)

    def with_setting(self, key: str, value: str) -> Scenario:
        """This scenario with one knob changed, as `lastmile sweep --set` names them (see `SETTINGS`)."""
        return apply_setting(self, key, value)


def parse_time(value: object, where: str) -> int:
    """Seconds of the day from "HH:MM[:SS]" or an integer number of seconds, up to 48:00 (a simulated day may run
    past midnight): `dispatch.model.parse_clock`, its error named after `where`."""
    try:
        return parse_clock(value, latest=2 * DAY_S)
    except ValueError as e:
        raise ScenarioError(where, str(e)) from None


class _Table:
    """One TOML table being read: typed getters that name the key path, and a check for unknown keys."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, dict):
            raise ScenarioError(path, f"must be a table, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.path = path
        self.used: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: object = None) -> Any:
        self.used.add(key)
        return self.data.get(key, default)

    def table(self, key: str) -> _Table:
        return _Table(self.raw(key, {}), self.where(key))

    def tables(self, key: str) -> list[_Table]:
        value = self.raw(key, [])
        if not isinstance(value, list):
            raise ScenarioError(self.where(key), "must be an array of tables ([[...]])")
        return [_Table(v, f"{self.where(key)}[{i}]") for i, v in enumerate(value)]

    def integer(self, key: str, default: int | None = None, *, minimum: int = 0, maximum: int = MAX_INT) -> int:
        value = self.raw(key, default)
        if value is None:
            raise ScenarioError(self.where(key), "is required")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(self.where(key), f"must be an integer, got {value!r}")
        if value < minimum:
            raise ScenarioError(self.where(key), f"must be at least {minimum}, got {value}")
        if value > maximum:
            raise ScenarioError(self.where(key), f"must be at most {maximum}, got {value}")
        return value

    def count(self, key: str, default: int | None = None, *, minimum: int = 0) -> int:
        return self.integer(key, default, minimum=minimum, maximum=MAX_COUNT)

    def seconds(self, key: str, default: int | None = None, *, minimum: int = 0) -> int:
        return self.integer(key, default, minimum=minimum, maximum=MAX_SECONDS)

    def number(self, key: str, default: float | None = None, *, minimum: float = 0.0,
              maximum: float = MAX_NUMBER) -> float:
        value = self.raw(key, default)
        if value is None:
            raise ScenarioError(self.where(key), "is required")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ScenarioError(self.where(key), f"must be a number, got {value!r}")
        if not minimum <= value <= maximum:
            raise ScenarioError(self.where(key), f"must lie in [{minimum}, {maximum}], got {value}")
        return float(value)

    def text(self, key: str, default: str | None = None, *, choices: tuple[str, ...] | None = None) -> str:
        value = self.raw(key, default)
        if value is None:
            raise ScenarioError(self.where(key), "is required")
        if not isinstance(value, str) or not value:
            raise ScenarioError(self.where(key), f"must be a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            raise ScenarioError(self.where(key), f"must be one of {list(choices)}, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise ScenarioError(self.where(key), f"must be true or false, got {value!r}")
        return value

    def time(self, key: str, default: int | None = None) -> int:
        value = self.raw(key, default)
        if value is None:
            raise ScenarioError(self.where(key), "is required")
        return parse_time(value, self.where(key))

    def span(self, key: str, default: tuple[int, int] | None = None) -> tuple[int, int]:
        value = self.raw(key, default)
        where = self.where(key)
        if value is None:
            raise ScenarioError(where, "is required")
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ScenarioError(where, f"must be [start, end], got {value!r}")
        start, end = parse_time(value[0], f"{where}[0]"), parse_time(value[1], f"{where}[1]")
        if end <= start:
            raise ScenarioError(where, f"must end after it starts, got {value!r}")
        return start, end

    def lonlat(self, key: str) -> tuple[float, float]:
        return _lonlat(self.raw(key), self.where(key))

    def counts(self, key: str, default: Mapping[str, float], *, keys: tuple[str, ...],
               maximum: float = MAX_NUMBER) -> dict[str, float]:
        value = self.raw(key, dict(default))
        where = self.where(key)
        if not isinstance(value, dict):
            raise ScenarioError(where, f"must be a table of numbers, got {value!r}")
        out: dict[str, float] = {}
        for k, v in value.items():
            if k not in keys:
                raise ScenarioError(f"{where}.{k}", f"unknown key; expected one of {list(keys)}")
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not 0 <= v <= maximum:
                raise ScenarioError(f"{where}.{k}", f"must be a number in [0, {maximum:g}], got {v!r}")
            out[k] = float(v)
        return out

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ScenarioError(self.where(unknown[0]), "unknown key")


def _weight(value: object) -> bool:
    """A finite number (not a bool) of at most MAX_NUMBER in size."""
    return (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            and abs(value) <= MAX_NUMBER)


def _lonlat(value: object, where: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ScenarioError(where, f"must be [lon, lat], got {value!r}")
    lon, lat = float(value[0]), float(value[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ScenarioError(where, f"must be [lon, lat] in degrees, got {value!r}")
    return lon, lat


def _unique(ids: list[str], where: str) -> None:
    seen: set[str] = set()
    for i, x in enumerate(ids):
        if x in seen:
            raise ScenarioError(f"{where}[{i}].id", f"duplicate id {x!r}")
        seen.add(x)


def _clock(t: _Table) -> Clock:
    start, end = t.time("start", 8 * 3600), t.time("end", 23 * 3600)
    if end <= start:
        raise ScenarioError(t.where("end"), f"must be after start, got {t.raw('end')!r}")
    clock = Clock(start=start, end=end, tick_s=t.seconds("tick_s", 60, minimum=1),
                  decision_latency_s=t.seconds("decision_latency_s", 0), traffic=t.flag("traffic", True))
    t.done()
    return clock


def _policy(t: _Table) -> Policy:
    p = Policy(name=t.text("name", "batch", choices=POLICIES),  # type: ignore[arg-type]
               max_orders=t.count("max_orders", 3, minimum=1), hold_s=t.seconds("hold_s", 300),
               radius_s=t.seconds("radius_s", 600), iterations=t.count("iterations", 200, minimum=1))
    t.done()
    return p


def _allocation(t: _Table) -> Allocation:
    a = Allocation(rank=t.text("rank", "eta", choices=RANKS),  # type: ignore[arg-type]
                   max_detour_s=t.seconds("max_detour_s", 600))
    t.done()
    return a


def _promise(data: object) -> PromiseOptions:
    try:
        return PromiseOptions.from_mapping(data)  # type: ignore[arg-type]
    except DispatchError as exc:
        raise ScenarioError(exc.field, exc.message) from None


def _demand(t: _Table, base: Path) -> Demand:
    kind = t.text("kind", "generate", choices=get_args(DemandKind))
    hourly = t.raw("hourly", list(DEFAULT_HOURLY))
    if (not isinstance(hourly, list) or len(hourly) != 24
            or not all(_weight(w) and w >= 0 for w in hourly) or sum(hourly) <= 0):
        raise ScenarioError(t.where("hourly"), f"must be 24 numbers in [0, {MAX_NUMBER:g}], not all zero")
    centres_raw = t.raw("centres", [])
    if not isinstance(centres_raw, list):
        raise ScenarioError(t.where("centres"), "must be a list of [lon, lat]")
    centres = tuple(_lonlat(c, f"{t.where('centres')}[{i}]") for i, c in enumerate(centres_raw))
    weights_raw = t.raw("centre_weights", [1.0] * len(centres))
    if (not isinstance(weights_raw, list) or len(weights_raw) != len(centres)
            or not all(_weight(w) and w > 0 for w in weights_raw)):
        raise ScenarioError(t.where("centre_weights"),
                            f"must be {len(centres)} numbers in (0, {MAX_NUMBER:g}], one per centre")
    modes = t.counts("modes", {"courier": 1.0}, keys=DELIVERY_MODES)
    if sum(modes.values()) <= 0:
        raise ScenarioError(t.where("modes"), "needs a share > 0 for at least one mode")
    basket_raw = t.raw("basket", [1, 6])
    if (not isinstance(basket_raw, list) or len(basket_raw) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in basket_raw)
            or not 1 <= basket_raw[0] <= basket_raw[1] <= MAX_COUNT):
        raise ScenarioError(t.where("basket"),
                            f"must be [low, high] with 1 <= low <= high <= {MAX_COUNT}, got {basket_raw!r}")
    skus = []
    for s in t.tables("skus"):
        dims = s.raw("dims_mm")
        if (not isinstance(dims, list) or len(dims) != 3
                or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_INT for d in dims)):
            raise ScenarioError(s.where("dims_mm"), f"must be three integers in [1, {MAX_INT}], got {dims!r}")
        skus.append(Sku(id=s.text("id"), weight_g=s.integer("weight_g", minimum=1),
                        dims_mm=(dims[0], dims[1], dims[2])))
        s.done()
    _unique([s.id for s in skus], t.where("skus"))
    file: Path | None = None
    if kind == "replay":
        file = base / t.text("file")
        if not file.is_file():
            raise ScenarioError(t.where("file"), f"no such file: {file}")
    elif t.has("file"):
        raise ScenarioError(t.where("file"), "only a replay demand reads a file (set kind = \"replay\")")
    demand = Demand(kind=kind, orders=t.count("orders", 1000), hourly=tuple(float(w) for w in hourly),  # type: ignore[arg-type]
                    centres=centres, centre_weights=tuple(float(w) for w in weights_raw),
                    spread_m=t.number("spread_m", 2000.0, minimum=1.0, maximum=MAX_METRES), modes=modes,
                    basket=(basket_raw[0], basket_raw[1]), express_s=t.seconds("express_s", 45 * 60, minimum=1),
                    file=file, skus=tuple(skus) or DEFAULT_SKUS)
    t.done()
    return demand


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raises ScenarioError naming the file and the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError("", f"no such scenario file: {path}", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError("", f"cannot read: {exc}", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError("", f"not valid TOML: {exc}", file=str(path)) from None
    try:
        return scenario_from_dict(data, base=path.parent, name=path.stem, path=path)
    except ScenarioError as exc:
        raise exc.in_file(str(path)) from None


def scenario_from_dict(data: Mapping[str, Any], *, base: Path, name: str = "scenario",
                       path: Path | None = None) -> Scenario:
    """A validated Scenario from parsed TOML (relative files are resolved against `base`)."""
    top = _Table(dict(data), "")
    m = top.table("map")
    map_file = base / m.text("file")
    if not map_file.is_file():
        raise ScenarioError(m.where("file"), f"no such map file: {map_file}")
    max_snap_m = m.number("max_snap_m", 300.0, minimum=1.0, maximum=MAX_METRES)
    m.done()

    stores = []
    for s in top.tables("stores"):
        hours = s.span("hours") if s.has("hours") else None
        stores.append(Store(id=s.text("id"), location=s.lonlat("location"), pickers=s.count("pickers", 2, minimum=1),
                            picking_s=s.seconds("picking_s", 240), hours=hours,
                            zone_radius_m=s.integer("zone_radius_m", 0, maximum=int(MAX_METRES)),
                            stock=s.integer("stock", 100_000)))
        s.done()
    if not stores:
        raise ScenarioError("stores", "a scenario needs at least one dark store ([[stores]])")
    store_ids = [s.id for s in stores]
    lockers = []
    for t in top.tables("lockers"):
        comp = t.counts("compartments", {}, keys=("S", "M", "L"), maximum=MAX_COUNT)
        if not any(comp.values()) or any(v != int(v) for v in comp.values()):
            raise ScenarioError(t.where("compartments"), "must give whole numbers of S, M, L compartments, not all 0")
        lockers.append(Locker(id=t.text("id"), location=t.lonlat("location"),
                              compartments={k: int(v) for k, v in comp.items()},
                              store=t.text("store", choices=tuple(store_ids)) if t.has("store") else None))
        t.done()
    points = []
    for t in top.tables("pickup_points"):
        points.append(PickupPoint(id=t.text("id"), location=t.lonlat("location"),
                                  capacity=t.count("capacity", minimum=1),
                                  store=t.text("store", choices=tuple(store_ids)) if t.has("store") else None))
        t.done()
    facility_ids = store_ids + [x.id for x in lockers] + [x.id for x in points]
    seen: set[str] = set()
    for fid in facility_ids:
        if fid in seen:
            raise ScenarioError("stores", f"facility id {fid!r} is used twice (stores, lockers and pickup points "
                                "share one id space)")
        seen.add(fid)

    fleet = []
    for g in top.tables("fleet"):
        fleet.append(FleetGroup(store=g.text("store", choices=tuple(store_ids)),
                                profile=g.text("profile", choices=PROFILES), count=g.count("count"),
                                shift=g.span("shift"), capacity=g.count("capacity", 4, minimum=1)))
        g.done()

    clock = _clock(top.table("clock"))
    scenario = Scenario(
        name=top.text("name", name), path=path, map_file=map_file, max_snap_m=max_snap_m,
        seed=top.integer("seed", 0), clock=clock, policy=_policy(top.table("policy")),
        allocation=_allocation(top.table("allocation")), promise=_promise(top.raw("promise", {})),
        stores=tuple(stores),
        lockers=tuple(lockers), pickup_points=tuple(points), fleet=tuple(fleet),
        demand=_demand(top.table("demand"), base), delivery=_delivery(top.table("delivery")),
        costs=_costs(top.table("costs")),
    )
    top.done()
    return scenario


def _delivery(t: _Table) -> Delivery:
    d = Delivery(service_s=t.seconds("service_s", 120), failure_rate=t.number("failure_rate", 0.0, maximum=1.0),
                 cancel_rate=t.number("cancel_rate", 0.0, maximum=1.0), cancel_after_s=t.seconds("cancel_after_s", 600),
                 collect_after_s=t.seconds("collect_after_s", 3 * 3600),
                 failed_to=t.text("failed_to", "store", choices=FAILED_TO))  # type: ignore[arg-type]
    t.done()
    return d


def _costs(t: _Table) -> Costs:
    base = Costs()
    c = Costs(courier_hour={**base.courier_hour, **t.counts("courier_hour", base.courier_hour, keys=PROFILES)},
              per_km={**base.per_km, **t.counts("per_km", base.per_km, keys=PROFILES)})
    t.done()
    return c


SETTINGS = ("fleet.<profile>", "fleet.scale", "policy", "policy.<knob>", "allocation.rank",
            "allocation.max_detour_s", "demand.orders", "seed", "clock.decision_latency_s")


def apply_setting(scenario: Scenario, key: str, value: str) -> Scenario:
    """One `--set KEY=VALUE` of a sweep: `fleet.bike=20` sets the bike couriers of the day to 20 in all, spread
    over the scenario's bike groups in proportion to their counts (`fleet.scale=1.5` scales every group);
    `policy=greedy`, `policy.hold_s=120`, `allocation.rank=nearest`, `demand.orders=3000`, `seed=3`,
    `clock.decision_latency_s=30`.
    """
    where = f"--set {key}"
    if key == "policy":
        if value not in POLICIES:
            raise ScenarioError(where, f"must be one of {list(POLICIES)}, got {value!r}")
        return replace(scenario, policy=replace(scenario.policy, name=value))
    if key.startswith("policy."):
        knob = key.removeprefix("policy.")
        if knob not in {f.name for f in fields(Policy)} - {"name"}:
            raise ScenarioError(where, f"unknown policy knob {knob!r}")
        knobs: dict[str, Any] = {knob: _int_value(where, value, key)}
        return replace(scenario, policy=replace(scenario.policy, **knobs))
    if key == "allocation.rank":
        if value not in RANKS:
            raise ScenarioError(where, f"must be one of {list(RANKS)}, got {value!r}")
        return replace(scenario, allocation=replace(scenario.allocation, rank=value))
    if key == "allocation.max_detour_s":
        detour = _int_value(where, value, key)
        return replace(scenario, allocation=replace(scenario.allocation, max_detour_s=detour))
    if key == "demand.orders":
        return replace(scenario, demand=replace(scenario.demand, orders=_int_value(where, value, key)))
    if key == "seed":
        return replace(scenario, seed=_int_value(where, value, key))
    if key == "clock.decision_latency_s":
        latency = _int_value(where, value, key)
        return replace(scenario, clock=replace(scenario.clock, decision_latency_s=latency))
    if key == "fleet.scale":
        try:
            factor = float(value)
        except ValueError:
            factor = -1.0
        if not math.isfinite(factor) or factor < 0:
            raise ScenarioError(where, f"must be a number >= 0, got {value!r}")
        if any(round(g.count * factor) > MAX_COUNT for g in scenario.fleet):
            raise ScenarioError(where, f"would make a fleet group larger than {MAX_COUNT} couriers")
        return replace(scenario, fleet=tuple(replace(g, count=round(g.count * factor)) for g in scenario.fleet))
    if key.startswith("fleet."):
        profile = key.removeprefix("fleet.")
        groups = [i for i, g in enumerate(scenario.fleet) if g.profile == profile]
        if not groups:
            raise ScenarioError(where, f"the scenario has no {profile!r} couriers to set")
        total = _int_value(where, value, "fleet.<profile>")
        return replace(scenario, fleet=set_profile_count(scenario.fleet, profile, total))
    raise ScenarioError(where, f"unknown setting; expected one of {list(SETTINGS)}")


def set_profile_count(fleet: tuple[FleetGroup, ...], profile: str, total: int) -> tuple[FleetGroup, ...]:
    """`fleet` with `total` couriers of `profile` in all, shared among its groups (see `spread_count`)."""
    return spread_count(fleet, [i for i, g in enumerate(fleet) if g.profile == profile], total)


def spread_count(fleet: tuple[FleetGroup, ...], groups: list[int], total: int) -> tuple[FleetGroup, ...]:
    """`fleet` with `total` couriers over the groups at the indices `groups`, in proportion to their counts
    (largest remainder; equal shares when every one is empty); the other groups unchanged."""
    weights = [fleet[i].count for i in groups]
    if sum(weights) == 0:
        weights = [1] * len(groups)
    quotas = [total * w / sum(weights) for w in weights]
    counts = [math.floor(q) for q in quotas]
    for k in sorted(range(len(groups)), key=lambda k: (counts[k] - quotas[k], k))[: total - sum(counts)]:
        counts[k] += 1
    out = list(fleet)
    for i, n in zip(groups, counts, strict=True):
        out[i] = replace(fleet[i], count=n)
    return tuple(out)


INT_SETTINGS: dict[str, tuple[int, int]] = {
    "policy.max_orders": (1, MAX_COUNT), "policy.hold_s": (0, MAX_SECONDS), "policy.radius_s": (0, MAX_SECONDS),
    "policy.iterations": (1, MAX_COUNT), "allocation.max_detour_s": (0, MAX_SECONDS), "demand.orders": (0, MAX_COUNT),
    "seed": (0, MAX_INT), "clock.decision_latency_s": (0, MAX_SECONDS), "fleet.<profile>": (0, MAX_COUNT),
}
"""The integer settings of `--set` and their [minimum, maximum]: those of the scenario file's keys they change
(tests/api/test_scenario_file.py checks them against the file's models)."""


def _int_value(where: str, value: str, setting: str) -> int:
    minimum, maximum = INT_SETTINGS[setting]
    try:
        n = int(value)
    except ValueError:
        raise ScenarioError(where, f"must be an integer, got {value!r}") from None
    if n < minimum:
        raise ScenarioError(where, f"must be at least {minimum}, got {n}")
    if n > maximum:
        raise ScenarioError(where, f"must be at most {maximum}, got {n}")
    return n
