"""The map console (`/console`) and the `/v1` reads it polls (docs/api.md, "Map console").

The console is static files (`api/static/console/`, Leaflet under `api/static/vendor/leaflet/`) that call only
public `/v1` endpoints with the key the dispatcher or planner types once (kept in the tab's `sessionStorage`):

- `GET /v1/map`: the loaded road network as simplified GeoJSON, major and minor roads (computed once per
  tolerance, then served from memory): the base layer, as no tile server is assumed.
- `GET /v1/facilities`: dark stores (with their zones), pickup points and lockers; with a dispatch worker in this
  process also a store's open orders, a locker's free compartments by size and a pickup point's free places.
- `GET /v1/couriers`: every courier's status (from its shift and its published route), last reported position
  (its store's until it reports one) and route, optionally with the road path of each leg.
- `GET /v1/orders?state=open`: the open orders (the worker's index `api.worker.OPEN_ORDERS_KEY`).
- `GET /v1/stats`: order events so far, the on-time rate (open orders past their promise count as late, as in the
  simulator's KPIs), couriers by status per store, when the dispatcher last committed a trip and how long its
  decisions take.
- `POST /v1/replay`: the places of a simulated day (order addresses, facilities, couriers), regenerated from its
  scenario and seed, so that the console can play `events.jsonl` (which names places only by id) on the map.

Reads from the store work with workers in this process or elsewhere; the live facility counters and the decision
times come from the workers of this process only (as `/metrics`' open orders), and are null without one.
"""

import functools
import gzip
import json
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import shapely
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api import schemas
from api.errors import ApiError
from api.jobs import ScenarioField, field_of, load_requested
from api.metrics import STATS_KEY
from api.service import Service
from api.store import courier_key, order_key, route_key
from api.worker import FACILITIES_KEY, FINAL, ON_TIME_KEY, OPEN_ORDERS_KEY, SHIFTS_KEY
from dispatch.errors import DispatchError
from dispatch.model import DarkStore, Facility, Locker, PickupPoint
from dispatch.operations import Operations
from routing.errors import RoutingError
from routing.network import HIGHWAY_CODE, RoadNetwork
from routing.paths import StopLines
from routing.snap import EARTH_RADIUS_M
from simulator.demand import orders_for
from simulator.errors import ScenarioError
from simulator.model import facilities as scenario_facilities
from simulator.model import fleet_of
from simulator.scenario import MAX_INT, Scenario, apply_setting
from simulator.sweep import network_for

STATIC = Path(__file__).parent / "static"
PAGE = STATIC / "console" / "index.html"
_MEDIA = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".png": "image/png", "": "text/plain; charset=utf-8"}
SERVED = {p.relative_to(STATIC).as_posix(): p for folder in ("console", "vendor")
          for p in sorted((STATIC / folder).rglob("*")) if p.is_file() and p.suffix in _MEDIA}
"""The files `/static/{path}` serves: the console's and the vendored Leaflet's, nothing else."""
PAGE_HEADERS = {"Cache-Control": "no-cache", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' "
                                           "'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"}

M_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180
MAJOR_ROADS = HIGHWAY_CODE["tertiary_link"]
"""Highway classes up to tertiary roads (and their links) are the map's major roads; the rest are minor."""
MAX_NEW_PATHS = 10
"""Road paths of routes not yet cached that one `GET /v1/couriers?geometry=true` computes (the rest come with the
following polls): a first poll of a large fleet stays short."""
MAX_REPLAY_ORDERS = 200_000
READ_CHUNK = 500
"""Open orders read from the store in one round trip (`GET /v1/orders`, `GET /v1/stats`)."""
ACTIVE = ("assigned", "en_route")
"""A published route's statuses while its courier is out (`done` once back)."""
CourierState = Literal["off", "idle", "assigned", "en_route", "returning"]


LOW_STOCK = 3
"""A store's SKU with this many units or fewer left is a stock alert on the console."""

# --- response and request bodies ---------------------------------------------------------------------------------

class FacilityView(BaseModel):
    """A facility and, with a dispatch worker in this API process, its live counters (null otherwise)."""

    id: str
    kind: Literal["store", "locker", "pickup_point"]
    location: list[float] = Field(description="[lon, lat]")
    store: str | None = Field(None, description="the store that feeds a locker or pickup point, if one always does")
    hours: list[int] | None = Field(None, description="open from, to (seconds of the day)")
    zone: dict[str, Any] | None = Field(None, description="a store's delivery zone (GeoJSON geometry)")
    compartments: dict[str, int] | None = Field(None, description="a locker's compartments by size S, M, L")
    capacity: int | None = Field(None, description="a pickup point's places")
    open_orders: int | None = Field(None, description="orders the store's dispatcher tracks")
    pickers: int | None = Field(None, description="a store's pickers")
    pickers_busy: int | None = Field(None, description="a store's pickers picking an order now")
    stock_alerts: dict[str, int] | None = Field(
        None, description=f"a store's SKUs with at most {LOW_STOCK} units orders can still take, by SKU")
    free_compartments: dict[str, int] | None = Field(None, description="a locker's free compartments by size")
    free_capacity: int | None = Field(None, description="a pickup point's free places")


class FacilitiesView(BaseModel):
    facilities: list[FacilityView]
    live: bool = Field(description="whether the live counters are given (a dispatch worker runs in this process)")


class CourierView(BaseModel):
    id: str
    store: str
    profile: str
    status: CourierState = Field(description="off, idle (on shift, no trip), assigned (trip committed, not left), "
                                             "en_route (doors to serve) or returning (every door served)")
    location: list[float] | None = Field(None, description="last reported [lon, lat], else its store's")
    at: int | None = Field(None, description="when the location was reported (null: never; `location` is the "
                                             "store's)")
    route: dict[str, Any] | None = Field(
        None, description="the published route while the courier is out (as `GET /v1/couriers/{id}/route`), with "
                          "`geometry` (one road line per leg) when asked for and computed")


class CouriersView(BaseModel):
    now: int = Field(description="the service time (seconds of the day)")
    couriers: list[CourierView]


class OpenOrdersView(BaseModel):
    now: int
    orders: list[dict[str, Any]] = Field(description="open orders as `GET /v1/orders/{id}` without the timeline, "
                                                     "in placement order, with `mode`")
    truncated: bool = Field(description="more open orders than `limit`")


class StoreStats(BaseModel):
    couriers: dict[str, int] = Field(description="couriers by status")


class Decisions(BaseModel):
    count: int
    mean_ms: float


class StatsView(BaseModel):
    now: int
    events: dict[str, int] = Field(description="orders that reached each event (as `lastmile_order_events_total`)")
    on_time: int = Field(description="deliveries by their promise")
    late: int = Field(description="deliveries after their promise")
    overdue: int = Field(description="open orders not delivered yet whose promise has passed")
    on_time_rate: float | None = Field(
        None, description="on_time / (on_time + late + overdue): an order still open past its promise counts as late "
                          "(as in the simulator's KPIs); null while that sum is 0")
    stores: dict[str, StoreStats]
    last_decision_at: int | None = Field(None, description="when the dispatcher last committed a trip (latest "
                                                           "`dispatch_at` of the published routes)")
    decisions: Decisions | None = Field(None, description="time to apply a command that decided something, from "
                                                          "the workers of this process (null without one)")
    lag: int = Field(description="commands the dispatch worker has not applied yet")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: ScenarioField
    set: dict[str, str | int | float] = Field(
        default_factory=dict, max_length=50, description="overrides as `lastmile simulate --set KEY=VALUE`")
    seed: int | None = Field(None, ge=0, le=MAX_INT, description="override the scenario's seed")


class ReplayOrder(BaseModel):
    id: str
    placed_at: int
    mode: str
    location: list[float]


class ReplayCourier(BaseModel):
    id: str
    store: str
    profile: str
    shift_start: int
    shift_end: int


class ReplayPlaces(BaseModel):
    """Where the day of a scenario happens: `events.jsonl` names orders, facilities and couriers by id only."""

    scenario: str
    seed: int
    map: str = Field(description="the file name of the scenario's map (the console warns if it is not the served "
                                 "one)")
    start: int
    end: int
    facilities: list[FacilityView]
    couriers: list[ReplayCourier]
    orders: list[ReplayOrder]


# --- the road map ------------------------------------------------------------------------------------------------

def road_map(network: RoadNetwork, tolerance_m: float, name: str = "",
             around: tuple[float, float, float] | None = None) -> dict[str, Any]:
    """The network as a GeoJSON FeatureCollection of two MultiLineStrings (major and minor roads): each road
    segment once whatever its directions, merged into lines through nodes of degree two, simplified
    (Douglas-Peucker within `tolerance_m`) and rounded to 5 decimals (about a metre). With `around` = (lon, lat,
    metres), only the segments with both ends within that distance (the customer's tracking page)."""
    tail, head = network.tail.astype(np.int64), network.head.astype(np.int64)
    a, b = np.minimum(tail, head), np.maximum(tail, head)
    keep = a != b
    if around is not None:
        lon0, lat0, radius = around
        dx = (network.lon - lon0) * M_PER_DEGREE * math.cos(math.radians(lat0))
        dy = (network.lat - lat0) * M_PER_DEGREE
        near = dx * dx + dy * dy <= radius * radius
        keep &= near[tail] & near[head]
    pairs, first = np.unique(np.stack([a[keep], b[keep]], axis=1), axis=0, return_index=True)
    highway = network.highway[keep][first]
    lonlat = network.lonlat
    features: list[dict[str, Any]] = []
    for roads, mask in (("major", highway <= MAJOR_ROADS), ("minor", highway > MAJOR_ROADS)):
        if not mask.any():
            continue
        merged = shapely.line_merge(shapely.multilinestrings(shapely.linestrings(lonlat[pairs[mask]])))
        if tolerance_m > 0:
            merged = shapely.simplify(merged, tolerance_m / M_PER_DEGREE, preserve_topology=False)
        lines = [np.round(shapely.get_coordinates(part), 5).tolist() for part in shapely.get_parts(merged)]
        features.append({"type": "Feature", "properties": {"roads": roads, "segments": int(mask.sum())},
                         "geometry": {"type": "MultiLineString", "coordinates": lines}})
    used = np.unique(pairs) if len(pairs) else np.arange(len(network.lon))
    bbox = [round(float(network.lon[used].min()), 5), round(float(network.lat[used].min()), 5),
            round(float(network.lon[used].max()), 5), round(float(network.lat[used].max()), 5)]
    return {"type": "FeatureCollection", "name": name, "source": Path(network.source).name, "bbox": bbox,
            "tolerance_m": tolerance_m, "features": features}


# --- views ---------------------------------------------------------------------------------------------------------

def facility_view(f: Facility, core: Operations | None = None) -> dict[str, Any]:
    """A facility as `FacilityView` (live counters from `core` when given and it knows the facility)."""
    view: dict[str, Any] = {"id": f.id, "location": [float(f.location[0]), float(f.location[1])]}
    live = core if core is not None and f.id in core.facility else None
    if isinstance(f, DarkStore):
        zone = None
        if f.zone is not None:
            simple = shapely.simplify(f.zone, 5 / M_PER_DEGREE)
            zone = shapely.geometry.mapping(shapely.transform(simple, lambda xy: np.round(xy, 6)))
        view |= {"kind": "store", "hours": list(f.hours) if f.hours else None, "zone": zone,
                 "open_orders": live.open_orders(f.id) if live is not None else None,
                 "pickers": live.pickers[f.id] if live is not None else None,
                 "pickers_busy": live.pickers_busy(f.id) if live is not None else None,
                 "stock_alerts": live.allocator.inventory.low_stock(f.id, LOW_STOCK) if live is not None else None}
    elif isinstance(f, Locker):
        free = live.allocator.inventory.free_compartments(f.id) if live is not None else None
        view |= {"kind": "locker", "store": f.store, "compartments": dict(f.compartments),
                 "free_compartments": None if free is None else dict(free)}
    elif isinstance(f, PickupPoint):
        view |= {"kind": "pickup_point", "store": f.store, "hours": list(f.hours) if f.hours else None,
                 "capacity": f.capacity,
                 "free_capacity": live.allocator.inventory.free_capacity(f.id) if live is not None else None}
    return view


def is_overdue(state: str | None, promise_by: object, now: int) -> bool:
    """Whether an order in `state` is open past its promise at `now`: not final, not delivered yet (a locker or
    pickup point order stays open, delivered, until collected) and its `promise_by` (what its delivery's `on_time`
    is judged by) earlier. An order without a promise is never overdue."""
    return state not in FINAL and state != "delivered" and isinstance(promise_by, int) and promise_by < now


def overdue(record: Mapping[str, str], now: int) -> bool:
    """`is_overdue` of an order's stored record."""
    return "promise_by" in record and is_overdue(record.get("state"), json.loads(record["promise_by"]), now)


def courier_status(shift: str | None, route: Mapping[str, Any] | None) -> CourierState:
    """A courier's status from its published shift and route (the core's own statuses, as the views show them)."""
    if route is None or route.get("status") not in ACTIVE:
        return "idle" if shift == "on" else "off"
    if route["status"] == "assigned":
        return "assigned"
    doors = [s for s in route["stops"] if s["kind"] == "dropoff"]
    return "returning" if all(s.get("status") == "completed" for s in doors) else "en_route"


def replay_places(scenario: Scenario) -> dict[str, Any]:
    """`ReplayPlaces` of a scenario: its orders regenerated (or read) as `lastmile simulate` does."""
    if scenario.demand.kind == "generate" and scenario.demand.orders > MAX_REPLAY_ORDERS:
        raise ApiError(422, "invalid", f"the day has {scenario.demand.orders} orders; a replay takes at most "
                                       f"{MAX_REPLAY_ORDERS}", "scenario.demand.orders")
    try:
        network = network_for(scenario)
        orders = orders_for(scenario, network)
        facs = scenario_facilities(scenario, [s.id for s in scenario.demand.skus])
        fleet = fleet_of(scenario)
    except ScenarioError as exc:
        raise ApiError(422, "invalid", exc.message, field_of(exc.key)) from None
    except (RoutingError, DispatchError, OSError, ValueError) as exc:
        raise ApiError(422, "invalid", f"{type(exc).__name__}: {exc}", "scenario") from None
    return {"scenario": scenario.name, "seed": scenario.seed, "map": Path(scenario.map_file).name,
            "start": scenario.clock.start, "end": scenario.clock.end,
            "facilities": [facility_view(f) for f in facs],
            "couriers": [{"id": c.id, "store": c.store, "profile": c.profile, "shift_start": c.shift_start,
                          "shift_end": c.shift_end} for c in fleet],
            "orders": [{"id": o.id, "placed_at": o.placed_at, "mode": o.mode,
                        "location": [round(float(o.location[0]), 6), round(float(o.location[1]), 6)]}
                       for o in orders]}


# --- the routes ----------------------------------------------------------------------------------------------------

def make_router(service: Service, *, lines: StopLines, planner: Callable[..., Any], reader: Callable[..., Any],
                order_view: Callable[[str, Mapping[str, str]], dict[str, Any]]) -> APIRouter:
    """The console's page, files and reads. `lines` is the app's cache of route geometry (the courier apps' too),
    `planner` the app's role check for planner and admin keys, `reader` the one that also lets order-system keys
    read orders; `order_view` shows an order record as the API does."""
    store = service.store
    network = service.deployment.network
    traffic = service.deployment.options.traffic
    scenarios = service.settings.scenarios_dir.resolve()
    router = APIRouter()
    Planner = Annotated[dict[str, str], Depends(planner)]
    Reader = Annotated[dict[str, str], Depends(reader)]

    def core() -> Operations | None:
        for w in service.workers:
            c = w.core
            if c is not None:
                return c
        return None

    @functools.lru_cache(maxsize=8)
    def published_facilities(raw: str | None) -> tuple[Facility, ...]:
        if raw is None:
            return service.deployment.facilities
        return schemas.facilities_and_pickers_from_json(json.loads(raw))[0]

    def current_facilities() -> tuple[Facility, ...]:
        return published_facilities(store.get(FACILITIES_KEY))

    @functools.lru_cache(maxsize=8)
    def map_body(tolerance_m: float, zipped: bool) -> bytes:
        if zipped:
            return gzip.compress(map_body(tolerance_m, False), compresslevel=6, mtime=0)
        return json.dumps(road_map(network, tolerance_m, service.deployment.name), separators=(",", ":")).encode()

    def routes() -> list[tuple[str, Mapping[str, str], CourierState, dict[str, Any] | None]]:
        """(id, configuration, status, published route) of every courier configured, in id order."""
        shifts = store.hgetall(SHIFTS_KEY)
        rows: list[tuple[str, Mapping[str, str], CourierState, dict[str, Any] | None]] = []
        for cid, c in sorted(service.couriers().items()):
            raw = store.get(route_key(cid))
            route = json.loads(raw) if raw else None
            rows.append((cid, c, courier_status(shifts.get(cid), route), route))
        return rows

    def open_records() -> Iterator[tuple[str, dict[str, str]]]:
        """(id, record) of each open order (the worker's index `OPEN_ORDERS_KEY`), in placement order; a record
        gone or in a final state is skipped."""
        index = store.hgetall(OPEN_ORDERS_KEY)
        ids = sorted(index, key=lambda o: int(index[o]))
        for k in range(0, len(ids), READ_CHUNK):
            chunk = ids[k:k + READ_CHUNK]
            for oid, record in zip(chunk, store.hgetall_many([order_key(o) for o in chunk]), strict=True):
                if record and record.get("state") not in FINAL:
                    yield oid, record

    def couriers(geometry: bool) -> list[dict[str, Any]]:
        """`CourierView` of every courier configured."""
        where = {f.id: [float(f.location[0]), float(f.location[1])] for f in current_facilities()}
        rows: list[dict[str, Any]] = []
        new_paths = 0
        for cid, c, status, route in routes():
            if status in ("off", "idle"):
                route = None
            if route is not None and geometry:
                points = tuple(tuple(s["location"]) for s in route["stops"] if s.get("location") is not None)
                key = (c["profile"], route["departure"] // 3600 % 24 if traffic else None, points)
                drawn = lines.cached(*key)
                if drawn is None and len(points) >= 2 and new_paths < MAX_NEW_PATHS:
                    new_paths += 1
                    drawn = lines(*key)
                if drawn is not None:
                    route["geometry"] = {"type": "MultiLineString", "coordinates": drawn}
            seen = store.hgetall(courier_key(cid))
            reported = "location" in seen
            rows.append({"id": cid, "store": c["store"], "profile": c["profile"], "status": status,
                         "location": json.loads(seen["location"]) if reported else where.get(c["store"]),
                         "at": int(seen["at"]) if reported else None, "route": route})
        return rows

    # --- the page and its files -----------------------------------------------------------------------------

    @router.get("/console", tags=["console"], response_class=FileResponse)
    async def console_page() -> FileResponse:
        """The map console for dispatchers and planners (`/console?key=KEY` keeps the key for the tab)."""
        return FileResponse(PAGE, media_type=_MEDIA[".html"], headers=PAGE_HEADERS)

    @router.get("/static/{path:path}", include_in_schema=False)
    async def static_file(path: str) -> FileResponse:
        found = SERVED.get(path)
        if found is None:
            raise ApiError(404, "not_found", f"no file {path!r}", "path")
        cache = "public, max-age=86400" if path.startswith("vendor/") else "no-cache"
        return FileResponse(found, media_type=_MEDIA[found.suffix],
                            headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})

    # --- reads -----------------------------------------------------------------------------------------------

    @router.get("/v1/map", tags=["console"], response_model=None,
                responses={200: {"description": "GeoJSON FeatureCollection", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["type", "bbox", "features"]}}}}})
    def road_map_route(_who: Planner, tolerance_m: Annotated[float, Query(ge=0, le=100)] = 5.0,
                       accept_encoding: Annotated[str | None, Header(include_in_schema=False)] = None) -> Response:
        """The loaded road network as GeoJSON: a FeatureCollection with a MultiLineString of the major roads
        (motorway to tertiary) and one of the minor roads, simplified within `tolerance_m` metres, and its
        `bbox`. Computed once per tolerance; gzip-compressed for a client that accepts it."""
        zipped = "gzip" in (accept_encoding or "").lower()
        headers = {"Cache-Control": "private, max-age=3600", "Vary": "Accept-Encoding"}
        if zipped:
            headers["Content-Encoding"] = "gzip"
        return Response(map_body(round(tolerance_m, 1), zipped), media_type="application/json", headers=headers)

    @router.get("/v1/facilities", tags=["console"], response_model=FacilitiesView)
    def facilities_route(_who: Planner) -> dict[str, Any]:
        """Dark stores (with opening hours and zone), pickup points and lockers as configured now; with a
        dispatch worker in this API process, a store's open orders, pickers busy and stock alerts (SKUs with a
        few units left), a locker's free compartments by size and a pickup point's free places (null
        otherwise)."""
        live = core()
        return {"facilities": [facility_view(f, live) for f in current_facilities()], "live": live is not None}

    @router.get("/v1/couriers", tags=["console"], response_model=CouriersView)
    def couriers_route(_who: Planner, geometry: bool = False) -> dict[str, Any]:
        """Every courier: status, last reported position (its store's until it reports one) and, while it is
        out, its route (stops in order with ETAs); with `geometry=true` each route's road path, one line per leg
        (computed for at most 10 new routes per request; the others come with later requests)."""
        return {"now": service.clock(), "couriers": couriers(geometry)}

    @router.get("/v1/orders", tags=["orders"], response_model=OpenOrdersView)
    def open_orders_route(_who: Reader, state: Literal["open"] = "open",
                          limit: Annotated[int, Query(ge=1, le=10_000)] = 2000) -> dict[str, Any]:
        """The open orders (placed and not yet delivered to a door, collected, cancelled, returned or rejected),
        in placement order, at most `limit`."""
        rows: list[dict[str, Any]] = []
        truncated = False
        for oid, record in open_records():
            if len(rows) == limit:
                truncated = True
                break
            rows.append({**order_view(oid, record), "mode": record.get("mode")})
        return {"now": service.clock(), "orders": rows, "truncated": truncated}

    @router.get("/v1/stats", tags=["console"], response_model=StatsView)
    def stats_route(_who: Planner) -> dict[str, Any]:
        """The console's side panel: order events so far, deliveries on time and late, open orders overdue (past
        their promise; they count as late in `on_time_rate`), couriers by status per store, when the dispatcher
        last committed a trip, decision times and the command lag."""
        now = service.clock()
        events = {k: int(v) for k, v in sorted(store.hgetall(STATS_KEY).items())}
        counted = store.hgetall(ON_TIME_KEY)
        on_time, late = int(counted.get("on_time", 0)), int(counted.get("late", 0))
        late_open = sum(overdue(record, now) for _, record in open_records())
        judged = on_time + late + late_open
        by_store: dict[str, Counter[str]] = {s: Counter() for s in service.config()["stores"]}
        dispatched: list[int] = []
        for _, c, status, route in routes():
            by_store.setdefault(c["store"], Counter())[status] += 1
            if route is not None and route.get("dispatch_at") is not None:
                dispatched.append(route["dispatch_at"])
        count, total = _histogram(service)
        return {"now": now, "events": events, "on_time": on_time, "late": late, "overdue": late_open,
                "on_time_rate": round(on_time / judged, 4) if judged else None,
                "stores": {s: {"couriers": dict(n)} for s, n in by_store.items()},
                "last_decision_at": max(dispatched, default=None),
                "decisions": {"count": count, "mean_ms": round(1000 * total / count, 3)} if count else None,
                "lag": store.last_seq() - store.applied()}

    @functools.lru_cache(maxsize=4)
    def places(request: str) -> dict[str, Any]:
        body = ReplayRequest.model_validate_json(request)
        scenario = load_requested(body.scenario, scenarios)
        for key, value in [*body.set.items(), *([("seed", body.seed)] if body.seed is not None else [])]:
            if isinstance(value, bool):
                raise ApiError(422, "invalid", f"must be a string or a number, got {value!r}", f"set.{key}")
            try:
                scenario = apply_setting(scenario, key, str(value))
            except ScenarioError as exc:
                raise ApiError(422, "invalid", exc.message, field_of(exc.key)) from None
        return replay_places(scenario)

    @router.post("/v1/replay", tags=["console"], response_model=ReplayPlaces)
    def replay_route(body: ReplayRequest, _who: Planner) -> dict[str, Any]:
        """The places of a simulated day, for replaying its `events.jsonl`: the orders' addresses (regenerated
        from the scenario and seed as `lastmile simulate` does, or read from its demand file), facilities and
        couriers. The scenario is given as to `POST /v1/simulations`."""
        return places(body.model_dump_json())

    return router


def _histogram(service: Service) -> tuple[int, float]:
    """(count, sum) of the decision-time histogram of this process."""
    count, total = 0, 0.0
    for metric in service.metrics.decisions.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                count = int(sample.value)
            elif sample.name.endswith("_sum"):
                total = float(sample.value)
    return count, total


__all__ = ["make_router", "road_map"]
