"""A scenario as frozen dataclasses: map, facilities, fleet per shift and profile, policy and its knobs, demand;
the bounds of its values, and the `--set KEY=VALUE` knobs of a run or sweep.

Scenario files (TOML) are read and validated at the edge, by the pydantic models of `api.scenario_file`, which
convert them into these dataclasses; a sweep ships the loaded `Scenario` to its Dask workers, and each worker
applies its settings with `apply_setting` here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from dispatch.errors import DispatchError
from dispatch.model import DAY_S, parse_clock
from dispatch.policy import BatchPolicy
from dispatch.promise import PromiseOptions
from dispatch.reoptimize import (
    DEFAULT_CO2_COST_M_PER_KG,
    DEFAULT_MINUTE_COST_M,
    DEFAULT_QUOTE_MINUTE_COST_M,
    DEFAULT_ROOM_FACTOR,
    OBJECTIVES,
    Objective,
    ReoptimizeOptions,
)
from simulator.errors import ScenarioError

PolicyName = Literal["greedy", "batch", "reoptimize"]
POLICIES: tuple[PolicyName, ...] = get_args(PolicyName)
DispatchBackend = Literal["sisr", "hybrid", "ortools", "auto"]
"""The routing backends that model soft deadlines and release times (what `reoptimize` needs)."""
DISPATCH_BACKENDS: tuple[DispatchBackend, ...] = get_args(DispatchBackend)
DemandKind = Literal["generate", "replay"]
Rank = Literal["eta", "nearest"]
RANKS: tuple[Rank, ...] = get_args(Rank)
Profile = Literal["bike", "ebike", "foot", "car"]
PROFILES: tuple[Profile, ...] = get_args(Profile)
DeliveryMode = Literal["courier", "locker", "pickup_point", "store"]
DELIVERY_MODES: tuple[str, ...] = get_args(DeliveryMode)
FailedTo = Literal["store", "locker"]
LATEST_S = 2 * DAY_S
"""The latest time of day a scenario may give: 48:00 (a simulated day may run past midnight)."""
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
    """The dispatch policy and its knobs (`batch`: max_orders, hold_s, radius_s; `reoptimize`: iterations,
    objective, minute_cost_m, quote_minute_cost_m, backend, warm_start, room_factor, co2_cost_m_per_kg: see
    `dispatch.reoptimize.ReoptimizeOptions`)."""

    name: PolicyName = "batch"
    max_orders: int = 3
    hold_s: int = 300
    radius_s: int = 600
    iterations: int = 200
    objective: Objective = "click_to_door"
    minute_cost_m: int = DEFAULT_MINUTE_COST_M
    quote_minute_cost_m: int = DEFAULT_QUOTE_MINUTE_COST_M
    backend: DispatchBackend = "sisr"
    warm_start: bool = True
    room_factor: int = DEFAULT_ROOM_FACTOR
    co2_cost_m_per_kg: int = DEFAULT_CO2_COST_M_PER_KG


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
        return parse_clock(value, latest=LATEST_S)
    except ValueError as e:
        raise ScenarioError(where, str(e)) from None


SETTINGS = ("fleet.<profile>", "fleet.scale", "policy", "policy.<knob>", "allocation.rank",
            "allocation.max_detour_s", "demand.orders", "seed", "clock.decision_latency_s", "stores.pickers",
            "stores.pickers_scale", "stores.picking_s", "stores.<id>.pickers", "stores.<id>.picking_s",
            "lockers.compartments_scale", "pickup_points.capacity_scale")
STORE_KNOBS = ("pickers", "picking_s")
"""The dark-store keys `--set` can change, at every store (`stores.pickers=4`) or at one (`stores.<id>.pickers`)."""


def apply_setting(scenario: Scenario, key: str, value: str) -> Scenario:
    """One `--set KEY=VALUE` of a sweep: `fleet.bike=20` sets the bike couriers of the day to 20 in all, spread
    over the scenario's bike groups in proportion to their counts (`fleet.scale=1.5` scales every group);
    `policy=greedy`, `policy.hold_s=120`, `allocation.rank=nearest`, `demand.orders=3000`, `seed=3`,
    `clock.decision_latency_s=30`; `stores.pickers=4` gives every dark store four pickers, `stores.aliados.pickers=4`
    that store only (so does `picking_s`, seconds to pick an order), `stores.pickers_scale=2` twice its own (at least
    one); `lockers.compartments_scale=2` each locker twice its compartments of each size (at least one in all, of
    the size it has most of), `pickup_points.capacity_scale=2` each pickup point twice its places.
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
        choices = {"objective": OBJECTIVES, "backend": DISPATCH_BACKENDS, "warm_start": ("true", "false")}.get(knob)
        if choices is not None and value not in choices:
            raise ScenarioError(where, f"must be one of {list(choices)}, got {value!r}")
        knobs: dict[str, Any] = {knob: (value == "true" if knob == "warm_start" else value) if choices is not None
                                 else _int_value(where, value, key)}
        return replace(scenario, policy=replace(scenario.policy, **knobs))
    if key == "allocation.rank":
        if value not in RANKS:
            raise ScenarioError(where, f"must be one of {list(RANKS)}, got {value!r}")
        return replace(scenario, allocation=replace(scenario.allocation, rank=value))
    if key == "allocation.max_detour_s":
        detour = _int_value(where, value, key)
        return replace(scenario, allocation=replace(scenario.allocation, max_detour_s=detour))
    if key == "demand.orders":
        if scenario.demand.kind == "replay":
            replayed = "a file" if scenario.demand.file is None else scenario.demand.file.name
            raise ScenarioError(where, f"the demand is replayed from {replayed}: its orders are the file's rows "
                                       "(demand.orders is for generated demand)")
        return replace(scenario, demand=replace(scenario.demand, orders=_int_value(where, value, key)))
    if key == "seed":
        return replace(scenario, seed=_int_value(where, value, key))
    if key == "clock.decision_latency_s":
        latency = _int_value(where, value, key)
        return replace(scenario, clock=replace(scenario.clock, decision_latency_s=latency))
    if key == "stores.pickers_scale":
        return replace(scenario, stores=_scaled(scenario.stores, "pickers", _factor(where, value), least=1, where=where,
                                                too_many=f"would give a store more than {MAX_COUNT} pickers"))
    if key == "pickup_points.capacity_scale":
        return replace(scenario, pickup_points=_scaled(
            scenario.pickup_points, "capacity", _factor(where, value), least=0, where=where,
            too_many=f"would give a pickup point more than {MAX_COUNT} places"))
    if key == "lockers.compartments_scale":
        factor = _factor(where, value)
        return replace(scenario, lockers=tuple(_scaled_locker(where, factor, lk) for lk in scenario.lockers))
    if key == "fleet.scale":
        return replace(scenario, fleet=_scaled(scenario.fleet, "count", _factor(where, value), least=0, where=where,
                                               too_many=f"would make a fleet group larger than {MAX_COUNT} couriers"))
    store, _, knob = key.removeprefix("stores.").rpartition(".")
    if key.startswith("stores.") and knob in STORE_KNOBS:  # stores.<knob> (every store) or stores.<id>.<knob>
        if key != f"stores.{knob}" and store not in {st.id for st in scenario.stores}:
            raise ScenarioError(where, f"the scenario has no store {store!r}; its stores are "
                                       f"{[st.id for st in scenario.stores]}")
        changed: dict[str, Any] = {knob: _int_value(where, value, f"stores.{knob}")}
        return replace(scenario, stores=tuple(replace(st, **changed) if store in ("", st.id) else st
                                              for st in scenario.stores))
    if key.startswith("fleet."):
        profile = key.removeprefix("fleet.")
        groups = [i for i, g in enumerate(scenario.fleet) if g.profile == profile]
        if not groups:
            raise ScenarioError(where, f"the scenario has no {profile!r} couriers to set")
        total = _int_value(where, value, "fleet.<profile>")
        return replace(scenario, fleet=set_profile_count(scenario.fleet, profile, total))
    raise ScenarioError(where, f"unknown setting; expected one of {list(SETTINGS)}")


def reoptimize_options(policy: Policy, *, seed: int) -> ReoptimizeOptions:
    """The `dispatch.reoptimize.ReoptimizeOptions` a `reoptimize` policy runs with: its knobs, `seed`, an iteration
    limit and no clock (so the same day gives the same decisions). Raises InvalidDispatchError for a combination
    of knobs the optimizer refuses (e.g. backend ortools with quotes kept)."""
    return ReoptimizeOptions(
        time_limit_s=None, iterations=policy.iterations, seed=seed, objective=policy.objective,
        minute_cost_m=policy.minute_cost_m, quote_minute_cost_m=policy.quote_minute_cost_m, backend=policy.backend,
        warm_start=policy.warm_start, room_factor=policy.room_factor, co2_cost_m_per_kg=policy.co2_cost_m_per_kg)


def check_policy(scenario: Scenario, given: Sequence[str] | Mapping[str, str] = ()) -> Scenario:
    """`scenario` when the dispatch policy it names can be built (what the run builds first: a batch policy's
    knobs, a reoptimize policy's `ReoptimizeOptions`), else a ScenarioError; without simulating anything, so that
    a sweep or a queued job is refused before it starts rather than when its run fails.

    Each knob is valid alone (`apply_setting` and the scenario file bound it); what fails here is a combination,
    e.g. `policy.backend = "ortools"` under `reoptimize` with quotes kept. The error names the knob the policy
    names (`policy.backend`) as `--set policy.backend` when it is among the settings `given` (the keys applied,
    or a mapping of them to the names to show them by, e.g. `{"policy": "--policy"}`), else as the setting given
    last that changed the policy (the knob quoted in the message), else as the scenario's own key.
    """
    policy = scenario.policy
    try:
        if policy.name == "batch":
            BatchPolicy(max_orders=policy.max_orders, hold_s=policy.hold_s, radius_s=policy.radius_s)
        elif policy.name == "reoptimize":
            reoptimize_options(policy, seed=scenario.seed)
    except DispatchError as exc:
        key = f"policy.{exc.field}" if exc.field else "policy"
        names = dict(given) if isinstance(given, Mapping) else {k: f"--set {k}" for k in given}
        if key in names:
            raise ScenarioError(names[key], exc.message) from None
        changed = [k for k in names if k == "policy" or k.startswith("policy.")]
        if changed:
            raise ScenarioError(names[changed[-1]], f"{key} = {getattr(policy, exc.field, '?')!r}: {exc.message}"
                                ) from None
        raise ScenarioError(key, exc.message) from None
    return scenario


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
    "policy.iterations": (1, MAX_COUNT), "policy.minute_cost_m": (0, int(MAX_METRES)),
    "policy.quote_minute_cost_m": (0, int(MAX_METRES)), "policy.room_factor": (0, MAX_COUNT),
    "policy.co2_cost_m_per_kg": (0, int(MAX_METRES)),
    "allocation.max_detour_s": (0, MAX_SECONDS), "demand.orders": (0, MAX_COUNT),
    "seed": (0, MAX_INT), "clock.decision_latency_s": (0, MAX_SECONDS), "fleet.<profile>": (0, MAX_COUNT),
    "stores.pickers": (1, MAX_COUNT), "stores.picking_s": (0, MAX_SECONDS),
}
"""The integer settings of `--set` and their [minimum, maximum]: those of the scenario file's keys they change
(tests/api/test_scenario_file.py checks them against the file's models)."""


_Item = TypeVar("_Item", "Store", "PickupPoint", "FleetGroup")


def _factor(where: str, value: str) -> float:
    """The scaling factor `value` of a `*_scale` setting: a number >= 0."""
    try:
        factor = float(value)
    except ValueError:
        factor = -1.0
    if not math.isfinite(factor) or factor < 0:
        raise ScenarioError(where, f"must be a number >= 0, got {value!r}")
    return factor


def _count(n: int, factor: float, *, least: int, where: str, too_many: str) -> int:
    """`n` times `factor`, rounded, at least `least`; more than MAX_COUNT is refused (so is a product too large
    for a float: 1e308 times 2 is infinite, and rounding it would raise OverflowError)."""
    product = n * factor
    if not product < MAX_COUNT + 1:  # inf (and nan) fail this too
        raise ScenarioError(where, too_many)
    scaled = max(least, round(product))
    if scaled > MAX_COUNT:
        raise ScenarioError(where, too_many)
    return scaled


def _scaled(items: tuple[_Item, ...], attr: str, factor: float, *, least: int, where: str,
            too_many: str) -> tuple[_Item, ...]:
    """`items` with the integer field `attr` of each times `factor` (see `_count`)."""
    out = []
    for item in items:
        changed: dict[str, Any] = {attr: _count(getattr(item, attr), factor, least=least, where=where,
                                                too_many=too_many)}
        out.append(replace(item, **changed))
    return tuple(out)


def _scaled_locker(where: str, factor: float, locker: Locker) -> Locker:
    """`locker` with its compartments of each size times `factor`, at least one in all (of the size it has most
    of)."""
    counts = {size: _count(n, factor, least=0, where=where,
                           too_many=f"would give a locker more than {MAX_COUNT} compartments of a size")
              for size, n in locker.compartments.items()}
    if counts and not any(counts.values()):
        counts[max(locker.compartments, key=locker.compartments.__getitem__)] = 1
    return replace(locker, compartments=counts)


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
