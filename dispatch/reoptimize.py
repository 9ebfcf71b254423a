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
  With `minute_cost_m=0` time is free: the plan minimises metres alone.

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
from routing.solvers.base import SolveParams, SolveResult, run_backend
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
_ORDER = "o:"
_COURIER = "c:"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReoptimizeOptions:
    """How to re-optimise: a wall-clock budget and/or an iteration limit (deterministic alone), seed, backend.

    `objective` is what a minute costs (see the module doc: `click_to_door` or `lateness`) and `minute_cost_m`
    how many metres of riding one such minute is worth (0: minutes are free, the plan minimises metres).
    `warm_start`: the search starts from the previous decision's tentative plan (`DispatchState.plan`) with the
    new orders inserted, instead of from nothing.
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
        for name in ("minute_cost_m", "quote_minute_cost_m"):
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


def _matrices(state: DispatchState, locations: list[int], profiles: set[str], open_end: bool
              ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    idx = np.asarray(locations, dtype=np.intp)
    out: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] = ({}, {})
    for source, target in ((state.travel.durations, out[0]), (state.travel.distances, out[1])):
        for profile in profiles:
            m = source[profile][np.ix_(idx, idx)]
            if open_end:
                n = len(locations)
                padded = np.full((n + 1, n + 1), UNREACHABLE, dtype=np.int64)
                padded[:n, :n] = m
                padded[:, n] = 0
                m = padded
            target[profile] = m
    return out


def _approach_cost(state: DispatchState, courier: Courier, fp: FreePoint) -> int:
    """What using a free-floating courier costs before its trip starts: the ride to the store."""
    if not courier.free_floating:
        return 0
    return COST_PER_METRE * state.travel.distance(courier.profile, fp.location, state.store_location)


def build_problem(state: DispatchState, options: ReoptimizeOptions) -> DispatchProblem | None:
    """The routing problem of the open orders and the couriers on shift (None when either is missing)."""
    orders = state.open_orders
    store = state.store_location
    free = {c.id: state.free_point(c) for c in state.active_couriers}
    starts: list[tuple[Courier, int]] = []
    for c in state.active_couriers:
        fp = free[c.id]
        at_store = fp.time + (state.travel.duration(c.profile, fp.location, store) if c.free_floating else 0)
        if at_store < c.shift_end:
            starts.append((c, at_store))
    if not orders or not starts:
        return None
    locations = [store]
    compact = {store: 0}
    for o in orders:
        if o.location not in compact:
            compact[o.location] = len(locations)
            locations.append(o.location)
    open_end = any(c.free_floating for c, _ in starts)
    anywhere = len(locations)
    durations, distances = _matrices(state, locations, {c.profile for c, _ in starts}, open_end)
    has_returns = any(o.is_return for o in orders)
    minute = options.minute_cost_m
    by_placement = options.objective == "click_to_door"
    jobs = []
    for o in orders:
        windows = (TimeWindow(start=o.ready_at, end=o.promise_by),) if o.is_return else ()
        delivery = not o.is_return
        wait = delivery and by_placement and minute > 0
        if by_placement:
            keep = delivery and options.keeps_quotes and o.quoted_by is not None
            deadline, late = (o.quoted_by, options.quote_minute_cost_m) if keep else (None, 0)
        else:
            deadline, late = (o.promise_by, minute) if delivery and minute > 0 else (None, 0)
        jobs.append(Job(id=_ORDER + o.id, stop=Stop(location=compact[o.location], service=o.service_s,
                                                     time_windows=windows),
                        delivery=o.load_vector, release=0 if o.is_return else o.ready_at,
                        wait_from=o.placed_at if wait else None, wait_cost=minute if wait else 0,
                        deadline=deadline, lateness_cost=late,
                        skills=frozenset({RETURNS_SKILL}) if o.is_return else frozenset()))
    vehicles = []
    for c, at_store in starts:
        skills = frozenset({RETURNS_SKILL}) if has_returns and not c.free_floating else frozenset()
        vehicles.append(Vehicle(id=_COURIER + c.id, start=0, end=anywhere if c.free_floating else 0,
                                shift=TimeWindow(start=at_store, end=c.shift_end), capacity=c.capacity_vector,
                                profile=c.profile, skills=skills, fixed_cost=_approach_cost(state, c, free[c.id])))
    problem = Problem(durations=durations, distances=distances, jobs=tuple(jobs), vehicles=tuple(vehicles),
                      distance_cost=COST_PER_METRE,
                      initial=_previous_plan(state, orders, starts) if options.warm_start else None)
    return DispatchProblem(problem=problem, order_ids=tuple(o.id for o in orders),
                           couriers=tuple(c for c, _ in starts), free=free)


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
