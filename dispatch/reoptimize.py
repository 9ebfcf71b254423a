"""The rolling-horizon re-optimisation: a dispatch state becomes a routing problem, its solution becomes decisions.

Model (one dark store, one decision):

- Every open order is a job at its door. A delivery carries its `load` (one amount per capacity dimension, the
  vehicle's `capacity` being the courier's over the same dimensions) out of the store, may leave once picked
  (`release = ready_at`) and has a soft deadline `promise_by` (`lateness_cost` per second late: lateness is
  priced, never refused). A return is collected within the hard window [`ready_at`, `promise_by`].
- Every courier on shift is one single-trip vehicle that *starts at the store* at the time it can be there:
  after riding out what it carries and back (store courier), or after riding from where it is free to the store
  (free-floating courier). What a courier already carries is therefore not in the problem: its remaining trip is
  fixed (delivered in order, first) and restated in `Decisions.carried`; the new trip can only follow it. This is
  exact for store couriers (parcels are loaded at the store, so new work needs a store visit anyway) and simpler
  than `locked` jobs plus a forced reload (`max_trips`), which OR-Tools does not support.
- A store courier's trip ends at the store; a free-floating courier's trip ends at its last door (a dummy "end
  anywhere" location: free to reach, unreachable from); its ride to the store is the vehicle's fixed cost.
- Returns: a return parcel is brought back to the store, so only store couriers (skill `store_return`) take
  returns; their trips end at the store. Its load is counted as if it left the store with the deliveries
  (a `delivery` amount): the load on board never exceeds the sum of all a trip's parcels, so this is a safe
  (slightly pessimistic) capacity check, and it keeps one kind of load per job. The routing layer's pickup
  loads would be exact but need PyVRP, which has no soft deadlines; OR-Tools has soft deadlines but refuses to
  mix delivery and pickup jobs. Hence: soft deadlines on deliveries (the objective's minutes), hard windows on
  returns, and a backend that models soft deadlines and release times (`sisr`, the default: the compiled
  string-removal search; `hybrid`, `ortools`, `auto`).
- Objective (`ReoptimizeOptions.objective`): metres ridden (×60) plus `minute_cost_m` metres for each minute
  of either
  - `click_to_door` (the default): every minute from an order's placement to its door, so an order waiting at
    the store costs from the start and bundling must pay for itself in minutes saved for the others; plus
    `quote_minute_cost_m` metres for each minute past the ETA the customer was quoted (`quoted_by`), so that a
    later order does not push an earlier one past its quote (two time costs on one job: the compiled search
    models them, OR-Tools does not); or
  - `lateness`: every minute past an order's promise (`promise_by`), so the plan rides as few metres as it
    can while the promises hold (bundling holds orders back as long as promises allow).
  With `minute_cost_m=0` time is free: the plan minimises metres alone. `co2_cost_m_per_kg` adds what a
  kilogram of CO2 costs, in metres of riding: a metre ridden by a profile emitting g grams per km then counts as
  1 + g × price / 10^6 metres (a car at 180 g/km and a price of 10,000: 2.8), so a faster car only takes an
  order when the minutes it saves pay for its emissions (0: a metre is a metre on every vehicle).
- An order the plan leaves out (the couriers' next trips are full) costs a penalty above any route's cost plus
  what its minutes would cost if it waited one more trip: served after a round trip (twice the mean ride from
  the store to the problem's doors) and a direct ride. Without that second part the search kept out the orders
  whose minutes cost most, the oldest and those already past their quote (a served order pays for its minutes,
  a left-out one did not), so under overload the newest went first and the oldest waited to the end of the day.
- `room_factor` (off by default): only the most urgent deliveries, up to that many times what the couriers' next
  trips could hold, are in the problem (the others are unassigned for want of room): faster decisions on a
  backlog, at the cost of the search's choice of which orders to bundle.

A trip starts now (is committed) when its courier carries nothing and must set off by `now + tick_s`; every
other trip is tentative and re-planned at the next decision. With an iteration limit alone (and a seed) the
same state gives the same decisions; with a time limit (the default, 0.3 s) the search is wall-clock bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal, get_args

import numpy as np

from dispatch.errors import InvalidDispatchError
from dispatch.state import (
    NO_COURIER,
    Courier,
    Decisions,
    DispatchOrder,
    DispatchState,
    FreePoint,
    Trip,
    UnassignedOrder,
)
from routing.errors import InvalidProblemError
from routing.problem import UNREACHABLE, Job, Plan, Problem, Route, Stop, TimeWindow, Vehicle, Visit
from routing.solvers.auto import BACKEND_NAMES, get_backend
from routing.solvers.base import (
    BIG_PENALTY,
    NO_FEASIBLE_ROUTE,
    SolveParams,
    SolveResult,
    run_backend,
)
from routing.solvers.ortools import OrToolsBackend

RETURNS_SKILL = "store_return"
COST_PER_METRE = 60
"""Objective units per metre ridden; a second of the objective then costs `minute_cost_m` units (an integer)."""
Objective = Literal["click_to_door", "lateness"]
OBJECTIVES: tuple[Objective, ...] = get_args(Objective)
DEFAULT_QUOTE_MINUTE_COST_M = 1000
"""Metres of riding one minute past a customer's quoted ETA is worth by default (click_to_door): of 0, 300 and
1000, the one whose fitted quotes left the least slack on the Ostankino day's seeds 11-30 (not scored)."""
DEFAULT_MINUTE_COST_M = 100
"""Metres of riding one minute of click-to-door is worth by default (tuned on the Ostankino day, seeds 11-15)."""
DEFAULT_ROOM_FACTOR = 0
"""Deliveries a decision considers per place on the couriers' next trips (0: all; see `ReoptimizeOptions`)."""
DEFAULT_CO2_COST_M_PER_KG = 1000
"""Metres of riding a kilogram of CO2 is worth by default: of 0, 1,000, 2,000, 5,000 and 10,000, the smallest whose CO2
per order is at least 5 % below the better of batch and greedy on the Ostankino day's seeds 11-15 (not scored)."""
_ORDER = "o:"
_COURIER = "c:"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReoptimizeOptions:
    """How to re-optimise: a wall-clock budget and/or an iteration limit (deterministic alone), seed, backend.

    `objective` is what a minute costs (see the module doc: `click_to_door` or `lateness`) and `minute_cost_m`
    how many metres of riding one such minute is worth (0: minutes are free, the plan minimises metres).
    `warm_start`: the search starts from the previous decision's tentative plan (`DispatchState.plan`) with the
    new orders inserted, instead of from nothing.
    `room_factor`: the search sees at most this many times the deliveries the couriers' next trips could hold
    (the most urgent, see `build_problem`; 0, the default: every open order). A store whose orders pile up far
    past its couriers then costs each decision a bounded search instead of one growing with the backlog, but the
    search no longer picks which orders to bundle from the whole backlog (fewer orders delivered).
    `co2_cost_m_per_kg`: metres of riding a kilogram of CO2 is worth (the state's `co2_g_per_km` per profile),
    so a metre on a car costs more than on a bike (0: a metre is a metre on every vehicle).
    `ortools_gls_share` is the share of the time budget the `hybrid` backend spends in OR-Tools' guided local
    search before the compiled string-removal search takes over (1.0: guided local search alone).
    """

    time_limit_s: float | None = 0.3
    iterations: int | None = None
    seed: int = 0
    objective: Objective = "click_to_door"
    minute_cost_m: int = DEFAULT_MINUTE_COST_M
    quote_minute_cost_m: int = DEFAULT_QUOTE_MINUTE_COST_M
    backend: str = "sisr"
    warm_start: bool = True
    room_factor: int = DEFAULT_ROOM_FACTOR
    co2_cost_m_per_kg: int = DEFAULT_CO2_COST_M_PER_KG
    ortools_gls_share: float = 0.3

    def __post_init__(self) -> None:
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise InvalidDispatchError("time_limit_s", f"must be positive, got {self.time_limit_s}")
        if self.iterations is not None and (isinstance(self.iterations, bool) or self.iterations < 1):
            raise InvalidDispatchError("iterations", f"must be at least 1, got {self.iterations}")
        if self.time_limit_s is None and self.iterations is None:
            raise InvalidDispatchError("time_limit_s", "give a time limit, an iteration limit or both")
        if self.objective not in OBJECTIVES:
            raise InvalidDispatchError("objective", f"must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        for name in ("minute_cost_m", "quote_minute_cost_m", "co2_cost_m_per_kg", "room_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidDispatchError(name, f"must be an integer >= 0, got {value!r}")
        if self.keeps_quotes and self.minute_cost_m and self.backend in ("hybrid", "ortools"):
            raise InvalidDispatchError("backend", f"{self.backend} cannot price both click-to-door and lateness past "
                                       "the quote: use sisr or auto, or set quote_minute_cost_m=0")
        if self.backend not in BACKEND_NAMES:
            raise InvalidDispatchError("backend", f"must be one of {list(BACKEND_NAMES)}, got {self.backend!r}")
        if not 0 < self.ortools_gls_share <= 1:
            raise InvalidDispatchError("ortools_gls_share", f"must be in (0, 1], got {self.ortools_gls_share}")
        if not isinstance(self.warm_start, bool):
            raise InvalidDispatchError("warm_start", f"must be true or false, got {self.warm_start!r}")
        if self.backend == "pyvrp" and self.minute_cost_m:
            raise InvalidDispatchError("backend", "pyvrp has no soft deadlines: use sisr, hybrid, ortools or auto, "
                                       "or set minute_cost_m=0")

    @property
    def keeps_quotes(self) -> bool:
        """Whether lateness past the quoted ETA is priced (objective click_to_door, quote_minute_cost_m > 0)."""
        return self.objective == "click_to_door" and self.quote_minute_cost_m > 0

    @property
    def params(self) -> SolveParams:
        return SolveParams(time_limit=self.time_limit_s, iterations=self.iterations, seed=self.seed)


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchProblem:
    """A routing problem built from a dispatch state, with the way back: job -> order, vehicle -> courier."""

    problem: Problem
    order_ids: tuple[str, ...]
    couriers: tuple[Courier, ...]
    free: Mapping[str, FreePoint]
    left_out: tuple[str, ...] = ()
    """Open orders not in the problem (`ReoptimizeOptions.room_factor`): unassigned for want of room."""


def _metre_weights(state: DispatchState, profiles: set[str], options: ReoptimizeOptions) -> dict[str, float]:
    """What a metre ridden on each profile counts in the objective, in metres: 1 plus its CO2 at the options'
    price."""
    return {p: 1.0 + state.co2_g_per_km[p] * options.co2_cost_m_per_kg / 1e6 for p in profiles}


def _matrices(state: DispatchState, locations: list[int], weights: Mapping[str, float], open_end: bool
              ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per profile (the keys of `weights`), the durations and the objective's distances (metres times the
    profile's weight) between `locations`, with an "end anywhere" location last when `open_end`."""
    idx = np.ix_(np.asarray(locations, dtype=np.intp), np.asarray(locations, dtype=np.intp))

    def pad(m: np.ndarray) -> np.ndarray:
        if not open_end:
            return m
        n = len(locations)
        padded = np.full((n + 1, n + 1), UNREACHABLE, dtype=np.int64)
        padded[:n, :n] = m
        padded[:, n] = 0
        return padded

    def weighted(m: np.ndarray, weight: float) -> np.ndarray:
        if weight == 1.0:
            return m
        return np.where(m >= UNREACHABLE, m, np.minimum(np.rint(m * weight), UNREACHABLE - 1)).astype(np.int64)

    return ({p: pad(state.travel.durations[p][idx]) for p in weights},
            {p: pad(weighted(state.travel.distances[p][idx], w)) for p, w in weights.items()})


def _approach_cost(state: DispatchState, courier: Courier, fp: FreePoint, weight: float) -> int:
    """What using a free-floating courier costs before its trip starts: the ride to the store (its metres times
    the profile's `weight`)."""
    if not courier.free_floating:
        return 0
    metres = state.travel.distance(courier.profile, fp.location, state.store_location)
    return round(COST_PER_METRE * metres * weight)


def _deferred_cost(at: int, *, wait_from: int | None, wait_cost: int, deadline: int | None,
                   lateness_cost: int) -> int:
    """The time cost of an order served at `at` (the objective's minutes, as the search prices them)."""
    cost = wait_cost * max(0, at - wait_from) if wait_from is not None else 0
    if deadline is not None:
        cost += lateness_cost * max(0, at - deadline)
    return cost


def _time_costs(order: DispatchOrder, options: ReoptimizeOptions) -> tuple[int | None, int, int | None, int]:
    """An order's (wait_from, wait_cost, deadline, lateness_cost) under the options' objective."""
    minute = options.minute_cost_m
    if order.is_return or (minute == 0 and not options.keeps_quotes):
        return None, 0, None, 0
    if options.objective == "click_to_door":
        keep = options.keeps_quotes and order.quoted_by is not None
        return (order.placed_at if minute else None, minute, order.quoted_by if keep else None,
                options.quote_minute_cost_m if keep else 0)
    return None, 0, order.promise_by, minute


def _room(capacity: tuple[int, ...], loads: list[tuple[int, ...]]) -> int:
    """How many of `loads` (smallest first) one trip of `capacity` holds."""
    left = list(capacity)
    count = 0
    for load in loads:
        if any(a > c for a, c in zip(load, left, strict=True)):
            break
        left = [c - a for a, c in zip(load, left, strict=True)]
        count += 1
    return count


def build_problem(state: DispatchState, options: ReoptimizeOptions) -> DispatchProblem | None:
    """The routing problem of the open orders and the couriers on shift (None when either is missing).

    An order left out of the plan costs what serving it one round trip later would (plus a penalty above any
    route's cost), so when the couriers cannot take every order the search leaves out those whose minutes cost
    least if they wait, not the oldest. With `room_factor`, only the most urgent deliveries up to that many times
    what the couriers' next trips could hold are in the problem: the tentative plan's first, then those that would
    miss their quoted ETA (else their promise) if they waited a round trip to their door, then the nearest
    (bundles of near doors serve the most orders per courier hour); the others are `left_out`.
    """
    store = state.store_location
    free = {c.id: state.free_point(c) for c in state.active_couriers}
    starts: list[tuple[Courier, int]] = []
    for c in state.active_couriers:
        fp = free[c.id]
        at_store = fp.time + (state.travel.duration(c.profile, fp.location, store) if c.free_floating else 0)
        if at_store < c.shift_end:
            starts.append((c, at_store))
    if not state.open_orders or not starts:
        return None
    profiles = {c.profile for c, _ in starts}
    rides = {o.id: min(state.travel.duration(p, store, o.location) for p in profiles) for o in state.open_orders}
    orders, left_out = _chosen(state, starts, rides, options.room_factor)
    locations = [store]
    compact = {store: 0}
    for o in orders:
        if o.location not in compact:
            compact[o.location] = len(locations)
            locations.append(o.location)
    open_end = any(c.free_floating for c, _ in starts)
    anywhere = len(locations)
    weights = _metre_weights(state, profiles, options)
    durations, distances = _matrices(state, locations, weights, open_end)
    has_returns = any(o.is_return for o in orders)
    round_trip = 2 * sum(rides[o.id] for o in orders) // len(orders)
    jobs = []
    for o in orders:
        windows = (TimeWindow(start=o.ready_at, end=o.promise_by),) if o.is_return else ()
        wait_from, wait_cost, deadline, late = _time_costs(o, options)
        penalty = None
        if wait_cost or late:  # left out: the penalty plus its minutes if served one round trip later
            penalty = BIG_PENALTY + _deferred_cost(max(state.now + state.tick_s, o.ready_at) + round_trip + rides[o.id],
                                                   wait_from=wait_from, wait_cost=wait_cost, deadline=deadline,
                                                   lateness_cost=late)
        jobs.append(Job(id=_ORDER + o.id, stop=Stop(location=compact[o.location], service=o.service_s,
                                                     time_windows=windows),
                        delivery=o.load_vector, release=0 if o.is_return else o.ready_at,
                        wait_from=wait_from, wait_cost=wait_cost, deadline=deadline, lateness_cost=late,
                        penalty=penalty, skills=frozenset({RETURNS_SKILL}) if o.is_return else frozenset()))
    vehicles = []
    for c, at_store in starts:
        skills = frozenset({RETURNS_SKILL}) if has_returns and not c.free_floating else frozenset()
        approach = _approach_cost(state, c, free[c.id], weights[c.profile])
        vehicles.append(Vehicle(id=_COURIER + c.id, start=0, end=anywhere if c.free_floating else 0,
                                shift=TimeWindow(start=at_store, end=c.shift_end), capacity=c.capacity_vector,
                                profile=c.profile, skills=skills, fixed_cost=approach))
    problem = Problem(durations=durations, distances=distances, jobs=tuple(jobs), vehicles=tuple(vehicles),
                      distance_cost=COST_PER_METRE,
                      initial=_previous_plan(state, orders, starts) if options.warm_start else None)
    return DispatchProblem(problem=problem, order_ids=tuple(o.id for o in orders),
                           couriers=tuple(c for c, _ in starts), free=free, left_out=left_out)


def _chosen(state: DispatchState, starts: list[tuple[Courier, int]], rides: Mapping[str, int], room_factor: int
            ) -> tuple[tuple[DispatchOrder, ...], tuple[str, ...]]:
    """The open orders in the problem and the ids of those left out (see `build_problem`); `rides`: seconds from
    the store to each open order's door."""
    orders = state.open_orders
    if not room_factor:
        return orders, ()
    deliveries = [o for o in orders if not o.is_return]
    loads = sorted((o.load_vector for o in deliveries), key=sum)
    limit = max(1, room_factor * sum(_room(c.capacity_vector, loads) for c, _ in starts))
    if len(deliveries) <= limit:
        return orders, ()
    planned = {oid for trip in state.plan.values() for oid in trip} if state.plan else set()

    def rank(o: DispatchOrder) -> tuple[bool, bool, int, int, str]:
        due = o.quoted_by if o.quoted_by is not None else o.promise_by
        at_risk = max(state.now, o.ready_at) + 2 * rides[o.id] > due  # would miss it after one more round trip
        return o.id not in planned, not at_risk, rides[o.id], o.placed_at, o.id

    ranked = sorted(deliveries, key=rank)
    keep = {o.id for o in ranked[:limit]}
    return (tuple(o for o in orders if o.is_return or o.id in keep),
            tuple(o.id for o in deliveries if o.id not in keep))


def _previous_plan(state: DispatchState, orders: tuple[DispatchOrder, ...],
                   starts: list[tuple[Courier, int]]) -> Plan | None:
    """The previous decision's tentative trips over this problem's jobs and vehicles (the search starts there)."""
    if not state.plan:
        return None
    job_of = {o.id: i for i, o in enumerate(orders)}
    routes = []
    for v, (c, _) in enumerate(starts):
        visits = tuple(Visit(kind="job", index=job_of.pop(oid)) for oid in state.plan.get(c.id, ()) if oid in job_of)
        if visits:
            routes.append(Route(vehicle=v, visits=visits))
    return Plan(routes=tuple(routes)) if routes else None


def _carried(state: DispatchState) -> tuple[Trip, ...]:
    trips = []
    for c in state.active_couriers:
        fp = state.free_point(c)
        if fp.carried is not None:
            trips.append(fp.carried)
    return tuple(trips)


def decisions_from(state: DispatchState, built: DispatchProblem, result: SolveResult, policy: str) -> Decisions:
    """Trips from a solved problem: committed when their courier is free and must set off by now + tick."""
    departures = {r.vehicle: r.departure for r in result.evaluation.routes}
    trips: list[Trip] = []
    tentative: list[Trip] = []
    for route in result.plan.routes:
        courier = built.couriers[route.vehicle]
        order_ids = [built.order_ids[x.index] for x in route.visits if x.kind == "job"]
        if not order_ids:
            continue
        fp = built.free[courier.id]
        trip = state.make_trip(courier, order_ids, departures[route.vehicle],
                               approach_from=fp.location if courier.free_floating else None)
        starts_now = not courier.carrying and trip.dispatch_at <= state.now + state.tick_s
        (trips if starts_now else tentative).append(trip)
    unassigned = tuple(UnassignedOrder(order_id=built.order_ids[u.index], reason=u.reason)
                       for u in result.plan.unassigned if u.kind == "job")
    unassigned += tuple(UnassignedOrder(order_id=oid, reason=NO_FEASIBLE_ROUTE) for oid in built.left_out)
    return Decisions(now=state.now, policy=policy, trips=tuple(trips), tentative=tuple(tentative),
                     carried=tuple(t for t in (fp.carried for fp in built.free.values()) if t is not None),
                     unassigned=unassigned, backend=result.backend)


def reoptimize(state: DispatchState, options: ReoptimizeOptions, *, policy: str = "reoptimize") -> Decisions:
    """Plan every open order with every courier on shift, within the options' budget."""
    built = build_problem(state, options)
    if built is None:
        return Decisions(now=state.now, policy=policy, carried=_carried(state),
                         unassigned=tuple(UnassignedOrder(order_id=o.id, reason=NO_COURIER)
                                          for o in state.open_orders))
    try:
        chosen = get_backend(options.backend, built.problem)
        if isinstance(chosen, OrToolsBackend):
            chosen = type(chosen)(replace(chosen.options, gls_share=options.ortools_gls_share))
        result = run_backend(chosen, built.problem, options.params)
    except InvalidProblemError as e:
        raise InvalidDispatchError("reoptimize", str(e)) from e
    return decisions_from(state, built, result, policy)
