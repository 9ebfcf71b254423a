"""Scenario files (TOML) as pydantic models, their JSON Schema and readable errors; `load_scenario` reads them.

The models only describe and validate the document: its tables and keys, their types, bounds and defaults.
`ScenarioFile.to_domain()` converts it at the edge into the frozen dataclasses of `simulator.scenario`, after the
checks that need the whole document or the disk (store references, unique ids, the map and demand files). Every
error, from pydantic or from those checks, is a `ScenarioError` naming the key path, e.g. `fleet[2].count`, and
`load_scenario` puts the file in front of it, so `lastmile simulate` exits 2 with one line.
`docs/schemas/scenario.schema.json` is generated from these models: `lastmile schema scenario`.
Times of day are "HH:MM" (or "HH:MM:SS") strings or integer seconds, up to 48:00; coordinates are `[lon, lat]`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    ValidationError,
    WithJsonSchema,
)

from api.schemas import (
    JSON_SCHEMA_DIALECT,
    LOCATION_DOC,
    DaySpan,
    Id,
    LonLat,
    UrlId,
    clock_text,
    describe,
    ordered_span,
)
from dispatch.errors import DispatchError
from dispatch.model import DAY_S, CompartmentSize, parse_clock
from dispatch.promise import MAX_FACTOR, PromiseOptions
from dispatch.reoptimize import (
    DEFAULT_CO2_COST_M_PER_KG,
    DEFAULT_MINUTE_COST_M,
    DEFAULT_QUOTE_MINUTE_COST_M,
    DEFAULT_ROOM_FACTOR,
    Objective,
)
from simulator import scenario as domain
from simulator.errors import ScenarioError
from simulator.scenario import (
    DEFAULT_HOURLY,
    LATEST_S,
    MAX_COUNT,
    MAX_INT,
    MAX_METRES,
    MAX_NUMBER,
    MAX_SECONDS,
    PROFILES,
    DeliveryMode,
    DemandKind,
    DispatchBackend,
    FailedTo,
    PolicyName,
    Profile,
    Rank,
)

# A scenario time: "H:MM", "HH:MM" or "HH:MM:SS" up to "48:00", or whole seconds from midnight.
TIME_PATTERN = r"^(?:[0-3]?[0-9]|4[0-7]):[0-5][0-9](?::[0-5][0-9])?$|^48:00(?::00)?$"


def day_time(value: Any) -> int:
    """Seconds from midnight of "HH:MM" or "HH:MM:SS", or whole seconds, up to 48:00 (`dispatch.model.parse_clock`,
    the one time parser)."""
    return parse_clock(value, latest=LATEST_S)


def _whole(value: Any) -> Any:
    """A float with no fraction (2.0) as the integer it is: JSON Schema's `integer` admits it."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53 else value


Time = Annotated[
    int,
    PlainValidator(day_time),
    WithJsonSchema({
        "anyOf": [
            {"type": "string", "pattern": TIME_PATTERN, "description": "\"HH:MM\" or \"HH:MM:SS\", 00:00 to 48:00"},
            {"type": "integer", "minimum": 0, "maximum": LATEST_S, "description": "seconds from midnight"},
        ],
        "examples": ["08:00", "23:30"],
    }),
]
Span = Annotated[tuple[Time, Time], AfterValidator(ordered_span)]
_NUMBER = Field(allow_inf_nan=False)
Count = Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT), BeforeValidator(_whole)]
PositiveCount = Annotated[int, Strict(), Field(ge=1, le=MAX_COUNT), BeforeValidator(_whole)]
Seconds = Annotated[int, Strict(), Field(ge=0, le=MAX_SECONDS), BeforeValidator(_whole)]
PositiveSeconds = Annotated[int, Strict(), Field(ge=1, le=MAX_SECONDS), BeforeValidator(_whole)]
DaySeconds = Annotated[int, Strict(), Field(ge=0, le=DAY_S), BeforeValidator(_whole)]
PositiveDaySeconds = Annotated[int, Strict(), Field(ge=1, le=DAY_S), BeforeValidator(_whole)]
SlotSeconds = Annotated[int, Strict(), Field(ge=60, le=DAY_S), BeforeValidator(_whole)]
Integer = Annotated[int, Strict(), Field(ge=0, le=MAX_INT), BeforeValidator(_whole)]
PositiveInteger = Annotated[int, Strict(), Field(ge=1, le=MAX_INT), BeforeValidator(_whole)]
WholeMetres = Annotated[int, Strict(), Field(ge=0, le=int(MAX_METRES)), BeforeValidator(_whole)]
Metres = Annotated[float, Strict(), Field(ge=1.0, le=MAX_METRES), _NUMBER]
Share = Annotated[float, Strict(), Field(ge=0.0, le=1.0), _NUMBER]
Factor = Annotated[float, Strict(), Field(ge=0.0, le=MAX_FACTOR), _NUMBER]
PositiveFactor = Annotated[float, Strict(), Field(gt=0.0, le=MAX_FACTOR), _NUMBER]
Weight = Annotated[float, Strict(), Field(ge=0.0, le=MAX_NUMBER), _NUMBER]
PositiveWeight = Annotated[float, Strict(), Field(gt=0.0, le=MAX_NUMBER), _NUMBER]


def _some_compartment(compartments: dict[str, int]) -> dict[str, int]:
    if not any(compartments.values()):
        raise ValueError("must hold at least one compartment, got none")
    return compartments


def _some_share(shares: dict[str, float]) -> dict[str, float]:
    if sum(shares.values()) <= 0:
        raise ValueError("needs a share > 0 for at least one mode")
    return shares


def _some_weight(weights: list[float]) -> list[float]:
    if sum(weights) <= 0:
        raise ValueError("must not be all zero")
    return weights


def _courier_only() -> dict[DeliveryMode, float]:
    return {"courier": 1.0}


def _low_high(basket: tuple[int, int]) -> tuple[int, int]:
    if basket[1] < basket[0]:
        raise ValueError(f"must be [low, high] with low <= high, got {list(basket)}")
    return basket


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", field_title_generator=lambda name, _info: name)


T = TypeVar("T", bound=_Table)


def _defaults(table: type[T]) -> Callable[[], T]:
    """The default of an optional table: the table with every key at its default."""
    return lambda: table.model_validate({})


class Map(_Table):
    """`[map]`: the road map, an OpenStreetMap extract read offline."""

    file: Id = Field(description="the OSM extract (.osm, .osm.bz2, .osm.pbf), relative to the scenario file",
                     examples=["maps/porto_centre_drive.osm.bz2"])
    max_snap_m: Metres = Field(300.0, description="farthest a facility or an order address may lie from the "
                                                  "nearest road node, metres")


class Clock(_Table):
    """`[clock]`: the simulated day; orders are placed in [start, end), couriers finish what they hold after end."""

    start: Time = Field("08:00", validate_default=True, description="first time of day an order may be placed")
    end: Time = Field("23:00", validate_default=True, description="no order is placed from this time on; after "
                                                                  "`start`")
    tick_s: PositiveSeconds = Field(60, description="seconds between two dispatch ticks of every store")
    decision_latency_s: Seconds = Field(0, description="seconds a dispatch decision takes to reach the couriers")
    traffic: Annotated[bool, Strict()] = Field(True, description="car travel times follow the hour of day "
                                                                 "(congestion); bike and foot do not")


class Policy(_Table):
    """`[policy]`: the dispatch policy and its knobs."""

    name: PolicyName = Field("batch", description="how orders are given to couriers")
    max_orders: PositiveCount = Field(3, description="`batch`: most orders in one trip")
    hold_s: Seconds = Field(300, description="`batch`: longest an order waits for others to join its trip, seconds")
    radius_s: Seconds = Field(600, description="`batch`: farthest apart (road seconds) orders of one trip may be")
    iterations: PositiveCount = Field(200, description="`reoptimize`: search iterations per decision")
    objective: Objective = Field("click_to_door", description="`reoptimize`: what a minute costs: `click_to_door`"
                                 " (every minute from placement to the door) or `lateness` (every minute past "
                                 "the promise)")
    minute_cost_m: WholeMetres = Field(DEFAULT_MINUTE_COST_M, description="`reoptimize`: metres of riding one "
                                       "minute of the objective is worth (0: minimise metres alone)")
    quote_minute_cost_m: WholeMetres = Field(DEFAULT_QUOTE_MINUTE_COST_M, description="`reoptimize`, objective "
                                             "`click_to_door`: metres of riding one minute past a customer's quoted "
                                             "ETA is worth (0: quotes are not kept; more than 0 needs backend sisr "
                                             "or auto)")
    backend: DispatchBackend = Field("sisr", description="`reoptimize`: the routing backend of each decision "
                                     "(`sisr`: the compiled string-removal search; `hybrid`: OR-Tools first)")
    warm_start: Annotated[bool, Strict()] = Field(True, description="`reoptimize`: each decision starts from the "
                                                  "previous one's plan with the new orders inserted")
    room_factor: Count = Field(DEFAULT_ROOM_FACTOR, description="`reoptimize`: a decision considers at most "
                               "this many times the deliveries the couriers' next trips could hold, the most "
                               "urgent (0, the default: every open order)")
    co2_cost_m_per_kg: WholeMetres = Field(DEFAULT_CO2_COST_M_PER_KG, description="`reoptimize`: metres of riding "
                                           "a kilogram of CO2 is worth, so a metre on a car counts more than on a "
                                           "bike (0: a metre is a metre on every vehicle)")


class Allocation(_Table):
    """`[allocation]`: how a courier order picks its store."""

    rank: Rank = Field("eta", description="`eta`: earliest door arrival under the stores' live picking queues "
                                          "and couriers, among stores within `max_detour_s` of the nearest's road "
                                          "time; `nearest`: by road alone")
    max_detour_s: Seconds = Field(600, description="`eta`: most road seconds a store may lie beyond the nearest")


class ExpressModel(_Table):
    """`[promise.express_model]`: a fitted quantile model of express click-to-door (`lastmile calibrate-quotes`
    prints one): lead = constant_s + picking × picking + courier_wait × courier wait + road × road time + plan ×
    the dispatcher's planned lead."""

    constant_s: Annotated[float, Strict(), Field(ge=-DAY_S, le=DAY_S), _NUMBER] = Field(
        description="seconds added to every lead")
    picking: Annotated[float, Strict(), Field(ge=0.0, le=MAX_FACTOR), _NUMBER] = Field(
        description="weight of the estimated time until picking is done")
    courier_wait: Annotated[float, Strict(), Field(ge=0.0, le=MAX_FACTOR), _NUMBER] = Field(
        description="weight of the estimated wait for a courier at the store")
    road: Annotated[float, Strict(), Field(ge=0.0, le=MAX_FACTOR), _NUMBER] = Field(
        description="weight of the road time from the store to the door")
    plan: Annotated[float, Strict(), Field(ge=0.0, le=MAX_FACTOR), _NUMBER] = Field(
        0.0, description="weight of the store dispatcher's planned hand-over (the plain estimate where its policy "
                         "makes no plan)")
    quantile: Annotated[float, Strict(), Field(gt=0.0, lt=1.0), _NUMBER] = Field(
        0.95, description="the share of orders the model was fitted to deliver by their quote")


class Promise(_Table):
    """`[promise]`: how the checkout quotes express ETAs (`dispatch.promise.PromiseOptions`)."""

    margin_s: DaySeconds = Field(300, description="safety buffer added to every estimate, seconds")
    margin_rate: Factor = Field(0.2, description="safety buffer per second of lead time "
                                                                   "(estimate - now)")
    round_to_s: PositiveDaySeconds = Field(60, description="promised times are rounded up to a multiple of this")
    travel_factor: PositiveFactor = Field(1.0, description="road times are multiplied by this")
    slot_s: SlotSeconds = Field(3600, description="slot length, seconds (at least a minute)")
    slot_capacity: PositiveCount | None = Field(None, description="orders per slot and store (default unlimited)")
    express_model: ExpressModel | None = Field(None, description="express ETAs from this fitted model instead of "
                                                                 "the margins (slots and collection keep them)")


class Store(_Table):
    """`[[stores]]`: a dark store; its pickers work orders one at a time."""

    id: UrlId = Field(description="unique among stores, lockers and pickup points", examples=["aliados"])
    location: LonLat = Field(description=LOCATION_DOC, examples=[[-8.6110, 41.1486]])
    pickers: PositiveCount = Field(2, description="pickers working at once")
    picking_s: Seconds = Field(240, description="seconds to pick an order")
    hours: DaySpan | None = Field(None, description="[opens, closes] within one day; without hours it never closes",
                               examples=[["09:00", "22:00"]])
    zone_radius_m: WholeMetres = Field(0, description="delivers only within this many metres (0: any address it "
                                                      "can reach)")
    stock: Integer = Field(100_000, description="units of every catalogue SKU at the start of the day")


class Locker(_Table):
    """`[[lockers]]`: a parcel locker: compartments of sizes S, M and L, one box per compartment."""

    id: UrlId = Field(description="unique among stores, lockers and pickup points", examples=["locker-trindade"])
    location: LonLat = Field(description=LOCATION_DOC, examples=[[-8.6105, 41.1525]])
    compartments: Annotated[dict[CompartmentSize, Count], AfterValidator(_some_compartment)] = Field(
        description="compartments per size (S, M, L); at least one in all", examples=[{"S": 30, "M": 20, "L": 8}])
    store: UrlId | None = Field(None, description="id of the dark store that always feeds it; otherwise the nearest "
                                               "open store holding the stock")


class PickupPoint(_Table):
    """`[[pickup_points]]`: a staffed pickup point holding up to `capacity` orders at a time."""

    id: UrlId = Field(description="unique among stores, lockers and pickup points", examples=["pickup-bolhao"])
    location: LonLat = Field(description=LOCATION_DOC, examples=[[-8.6060, 41.1495]])
    capacity: PositiveCount = Field(description="orders it can hold", examples=[60])
    store: UrlId | None = Field(None, description="id of the dark store that always feeds it; otherwise the nearest "
                                               "open store holding the stock")


class FleetGroup(_Table):
    """`[[fleet]]`: `count` couriers of one profile based at `store`, working the shift [start, end)."""

    store: Id = Field(description="id of their dark store", examples=["aliados"])
    profile: Profile = Field(description="vehicle profile (road speeds, costs, CO2)")
    count: Count = Field(description="couriers in the group", examples=[10])
    shift: Span = Field(description="[start, end] of the shift", examples=[["08:00", "15:30"]])
    capacity: PositiveCount = Field(4, description="boxes a courier carries at once")


class Sku(_Table):
    """`[[demand.skus]]`: a catalogue item orders are drawn from."""

    id: Id = Field(description="unique in the catalogue", examples=["milk-1l"])
    weight_g: PositiveInteger = Field(description="weight of one unit, grams", examples=[1050])
    dims_mm: tuple[PositiveInteger, PositiveInteger, PositiveInteger] = Field(
        description="outer dimensions of one unit, millimetres", examples=[[70, 70, 200]])


class Demand(_Table):
    """`[demand]`: the orders of the day, generated (`orders` over `hourly` weights, around `centres`) or
    replayed from a CSV `file`."""

    kind: DemandKind = Field("generate", description="`generate` orders, or `replay` them from `file`")
    orders: Count = Field(1000, description="`generate`: orders placed in the day")
    hourly: Annotated[list[Weight], Field(min_length=24, max_length=24), AfterValidator(_some_weight)] = Field(
        default_factory=lambda: [float(w) for w in DEFAULT_HOURLY],
        description="`generate`: relative weights of the orders placed in each hour of the day (24, not all 0; "
                    "default: a grocery day with lunch and evening peaks)")
    centres: list[LonLat] = Field(default_factory=list, description="`generate`: [lon, lat] points around which "
                                                                    "addresses are drawn (default: the stores)")
    centre_weights: list[PositiveWeight] | None = Field(None, description="`generate`: one weight per centre "
                                                                          "(default: all equal)")
    spread_m: Metres = Field(2000.0, description="`generate`: standard deviation of the Gaussian kernel around each "
                                                 "centre, metres")
    modes: Annotated[dict[DeliveryMode, Weight], AfterValidator(_some_share)] = Field(
        default_factory=_courier_only,
        description="`generate`: share of orders per delivery mode (relative; not all 0)")
    basket: Annotated[tuple[PositiveCount, PositiveCount], AfterValidator(_low_high)] = Field(
        (1, 6), description="`generate`: [low, high] order lines per order, drawn uniformly")
    express_s: PositiveSeconds = Field(45 * 60, description="the express promise: delivered within this many "
                                                            "seconds of placing the order")
    file: Id | None = Field(None, description="`replay`: the demand CSV, relative to the scenario file (required "
                                              "with `replay`, refused otherwise)")
    skus: list[Sku] = Field(default_factory=list, description="the catalogue; ids unique (default: eight "
                                                              "grocery items)")

    def to_domain(self, base: Path) -> domain.Demand:
        centres = tuple(self.centres)
        weights = [1.0] * len(centres) if self.centre_weights is None else self.centre_weights
        if len(weights) != len(centres):
            raise ScenarioError("demand.centre_weights", f"must be {len(centres)} numbers, one per centre, "
                                                         f"got {len(weights)}")
        seen: set[str] = set()
        for i, sku in enumerate(self.skus):
            if sku.id in seen:
                raise ScenarioError(f"demand.skus[{i}].id", f"duplicate id {sku.id!r}")
            seen.add(sku.id)
        file: Path | None = None
        if self.kind == "replay":
            if self.file is None:
                raise ScenarioError("demand.file", "missing (a replay demand reads a file)")
            file = base / self.file
            if file.is_dir():
                raise ScenarioError("demand.file", f"{file} is a folder, not a CSV file")
            if not file.is_file():
                raise ScenarioError("demand.file", f"no such file: {file}")
        elif self.file is not None:
            raise ScenarioError("demand.file", "only a replay demand reads a file (set kind = \"replay\")")
        modes = {str(m): share for m, share in self.modes.items()}
        return domain.Demand(kind=self.kind, orders=self.orders, hourly=tuple(self.hourly), centres=centres,
                             centre_weights=tuple(weights), spread_m=self.spread_m, modes=modes,
                             basket=self.basket, express_s=self.express_s, file=file,
                             skus=tuple(domain.Sku(id=s.id, weight_g=s.weight_g, dims_mm=s.dims_mm)
                                        for s in self.skus) or domain.DEFAULT_SKUS)


class Delivery(_Table):
    """`[delivery]`: what happens at the door: service time, absent customers, cancellations, collection."""

    service_s: Seconds = Field(120, description="seconds at the door")
    failure_rate: Share = Field(0.0, description="share of courier deliveries where the customer is absent")
    cancel_rate: Share = Field(0.0, description="share of orders the customer cancels before pickup")
    cancel_after_s: Seconds = Field(600, description="a cancelling customer does so this long after placing the "
                                                     "order (if it has not left the store)")
    collect_after_s: Seconds = Field(3 * 3600, description="customers empty their locker compartment or pickup-point "
                                                           "place this long after delivery")
    failed_to: FailedTo = Field("store", description="where a parcel goes when the customer is absent: back to the "
                                                     "`store` (the order fails), or back to the store and out again "
                                                     "to the `locker` nearest it with room")


_COSTS = domain.Costs()


def _by_profile(rates: Mapping[str, float]) -> dict[Profile, float]:
    return {p: rates[p] for p in PROFILES if p in rates}


class CostTable(_Table):
    """`[costs]`: cost per courier-hour on shift and per km driven, by profile (currency units); a profile not
    given keeps its default."""

    courier_hour: dict[Profile, Weight] = Field(default_factory=lambda: _by_profile(_COSTS.courier_hour),
                                                description="cost of a courier-hour on shift, by profile")
    per_km: dict[Profile, Weight] = Field(default_factory=lambda: _by_profile(_COSTS.per_km),
                                          description="cost of a km driven, by profile")


EXAMPLE: dict[str, Any] = {
    "name": "tiny", "seed": 1, "map": {"file": "maps/moscow_ostankino_drive.osm.bz2"},
    "clock": {"start": "10:00", "end": "14:00"}, "policy": {"name": "batch", "hold_s": 240},
    "stores": [{"id": "ostankino", "location": [37.6020, 55.8177], "pickers": 2, "hours": ["08:00", "23:00"]}],
    "lockers": [{"id": "locker-a", "location": [37.5942, 55.8132], "compartments": {"S": 4, "M": 4, "L": 2}}],
    "fleet": [{"store": "ostankino", "profile": "bike", "count": 3, "shift": ["10:00", "14:30"]}],
    "demand": {"orders": 120, "centres": [[37.6020, 55.8177]], "modes": {"courier": 0.9, "locker": 0.1}},
    "delivery": {"failure_rate": 0.02},
}


class ScenarioFile(_Table):
    """A scenario (TOML) of `lastmile simulate`, `sweep`, `fleet-size` and `serve`; files relative to its folder."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    name: Id | None = Field(None, description="the scenario's name in reports (default: the file name without "
                                              ".toml)")
    seed: Integer = Field(0, description="seed of the generated demand and of every random draw of the day")
    map: Map = Field(description="the road map")
    clock: Clock = Field(default_factory=_defaults(Clock), description="the simulated day")
    policy: Policy = Field(default_factory=_defaults(Policy), description="the dispatch policy and its knobs")
    allocation: Allocation = Field(default_factory=_defaults(Allocation),
                                   description="how courier orders pick their store")
    promise: Promise = Field(default_factory=_defaults(Promise), description="how the checkout quotes express ETAs")
    stores: list[Store] = Field(min_length=1, description="the dark stores (at least one)")
    lockers: list[Locker] = Field(default_factory=list, description="parcel lockers")
    pickup_points: list[PickupPoint] = Field(default_factory=list, description="staffed pickup points")
    fleet: list[FleetGroup] = Field(default_factory=list, description="the couriers, in groups of one store, "
                                                                      "profile and shift")
    demand: Demand = Field(default_factory=_defaults(Demand), description="the orders of the day")
    delivery: Delivery = Field(default_factory=_defaults(Delivery), description="what happens at the door")
    costs: CostTable = Field(default_factory=_defaults(CostTable), description="courier costs by profile")

    def to_domain(self, *, base: Path, name: str = "scenario", path: Path | None = None) -> domain.Scenario:
        """The scenario as `simulator.scenario` objects, with files resolved against `base`; raises
        `ScenarioError` naming the key (a store that does not exist, an id used twice, a missing file, policy knobs
        the dispatch policy refuses together: `simulator.scenario.check_policy`)."""
        map_file = base / self.map.file
        if map_file.is_dir():
            raise ScenarioError("map.file", f"{map_file} is a folder, not an OSM file (.osm, .osm.bz2 or .osm.gz)")
        if not map_file.is_file():
            raise ScenarioError("map.file", f"no such map file: {map_file}")
        store_ids = [s.id for s in self.stores]
        ids = [*((f"stores[{i}]", x.id) for i, x in enumerate(self.stores)),
               *((f"lockers[{i}]", x.id) for i, x in enumerate(self.lockers)),
               *((f"pickup_points[{i}]", x.id) for i, x in enumerate(self.pickup_points))]
        seen: set[str] = set()
        for where, fid in ids:
            if fid in seen:
                raise ScenarioError(f"{where}.id", f"facility id {fid!r} is used twice (stores, lockers and pickup "
                                                   "points share one id space)")
            seen.add(fid)
        refs = [*((f"lockers[{i}]", x.store) for i, x in enumerate(self.lockers)),
                *((f"pickup_points[{i}]", x.store) for i, x in enumerate(self.pickup_points)),
                *((f"fleet[{i}]", x.store) for i, x in enumerate(self.fleet))]
        for where, store in refs:
            if store is not None and store not in store_ids:
                raise ScenarioError(f"{where}.store", f"must be one of {store_ids}, got {store!r}")
        if self.clock.end <= self.clock.start:
            raise ScenarioError("clock.end", f"must be after start ({clock_text(self.clock.start)}), "
                                             f"got {clock_text(self.clock.end)}")
        try:
            promise = PromiseOptions(**self.promise.model_dump())
        except DispatchError as exc:
            raise ScenarioError(f"promise.{exc.field}", exc.message) from None
        scenario = domain.Scenario(
            name=self.name or name, path=path, map_file=map_file, max_snap_m=self.map.max_snap_m, seed=self.seed,
            clock=domain.Clock(**self.clock.model_dump()), policy=domain.Policy(**self.policy.model_dump()),
            allocation=domain.Allocation(**self.allocation.model_dump()), promise=promise,
            stores=tuple(domain.Store(**s.model_dump()) for s in self.stores),
            lockers=tuple(domain.Locker(**x.model_dump()) for x in self.lockers),
            pickup_points=tuple(domain.PickupPoint(**x.model_dump()) for x in self.pickup_points),
            fleet=tuple(domain.FleetGroup(**g.model_dump()) for g in self.fleet),
            demand=self.demand.to_domain(base), delivery=domain.Delivery(**self.delivery.model_dump()),
            costs=domain.Costs(courier_hour=_merged(_COSTS.courier_hour, self.costs.courier_hour),
                               per_km=_merged(_COSTS.per_km, self.costs.per_km)),
        )
        return domain.check_policy(scenario)  # a combination of knobs the policy refuses (policy.backend, ...)


def _merged(defaults: Mapping[str, float], given: Mapping[Profile, float]) -> dict[str, float]:
    """`defaults` with the rates `given` in their place (a profile not given keeps its default)."""
    return {**defaults, **{str(p): rate for p, rate in given.items()}}


# --- reading a file ------------------------------------------------------------------------------------------------

def load_scenario(path: str | Path) -> domain.Scenario:
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
                       path: Path | None = None) -> domain.Scenario:
    """A validated Scenario from a parsed document (TOML, or the JSON of a request); relative files are resolved
    against `base`. Raises ScenarioError naming the key of the first problem."""
    try:
        model = ScenarioFile.model_validate(data)
    except ValidationError as exc:
        # keys as TOML writes them (`costs.per_km.car`), bounds named by their value (`must be at least 0, got -3`)
        key, message = describe(exc.errors()[0], ScenarioFile, dotted_keys=True, bounds_by_value=True)
        raise ScenarioError(key, message) from None
    return model.to_domain(base=base, name=name, path=path)


# --- the JSON Schema -------------------------------------------------------------------------------------------------

def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario document (TOML parsed), generated from the models."""
    return {"$schema": JSON_SCHEMA_DIALECT, **ScenarioFile.model_json_schema()}


def json_schema_text() -> str:
    """`json_schema()` as the text of `docs/schemas/scenario.schema.json`."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
