"""Backends built on Google OR-Tools' routing library and the compiled string-removal search.

- `ortools`: OR-Tools' own search alone (parallel cheapest insertion, then guided local search for the budget).
- `sisr`: the compiled string-removal search alone (`routing.solvers.lns`), from an empty plan.
- `hybrid`: OR-Tools' first plan and a share of guided local search, then the compiled search, then guided local
  search again from its best plan; where the compiled search cannot model the problem, OR-Tools' local search
  inside a ruin-and-recreate loop instead.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, field

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from routing.errors import InvalidProblemError
from routing.problem import HORIZON, Job, Plan, Problem, Route, Stop, Visit
from routing.solvers import lns
from routing.solvers.base import (
    BIG_PENALTY,
    SolveParams,
    SolveResult,
    Trace,
    remaining,
    run_backend,
    unassigned_reason,
)

STALL_SECONDS = 2.0
"""With an iteration limit alone, a search that finds no new solution (nothing to move) still stops after
this plus 10 ms per iteration; a search that keeps finding solutions ends on the iteration limit first."""


MIN_POLISH_SECONDS = 0.02
"""Less time than this left after the compiled search: no guided local search from its plan."""


@dataclass(frozen=True, slots=True)
class _Node:
    location: int
    stop: Stop | None
    visit: Visit | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrToolsOptions:
    """Search knobs of the OR-Tools backend.

    With a time limit, guided local search runs for `gls_share` of it. When the compiled string-removal search
    models the whole problem (see `lns.unsupported`), it takes the rest but the last `polish_share`,
    in which guided local search starts again from its best plan (with an iteration limit, the search takes
    `steps_per_iteration` steps per iteration and the polish the same iteration limit). Otherwise, for at most
    `ruin_up_to` stops, the rest goes to OR-Tools' own ruin and recreate: remove a cluster of nearby stops, let
    OR-Tools' local search put them back, keep the result when it is better or within a threshold that shrinks to
    zero. `string_removal=None` turns the compiled search off.
    """

    gls_lambda: float = 0.1
    gls_share: float = 0.15
    ruin_min: int = 5
    ruin_max: int = 20
    recreate_seconds: float = 0.2
    threshold: float = 0.005
    ruin_up_to: int = 300
    string_removal: lns.LnsOptions | None = field(default_factory=lns.LnsOptions)
    polish_share: float = 0.05

    def __post_init__(self) -> None:
        for name in ("gls_share", "polish_share"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise InvalidProblemError(f"{name}: must be in (0, 1], got {value}")
        if not 1 <= self.ruin_min <= self.ruin_max:
            raise InvalidProblemError("ruin_min, ruin_max: need 1 <= ruin_min <= ruin_max")

    def compiled_search_fits(self, problem: Problem) -> bool:
        """Whether the compiled string-removal search is on and models every feature of `problem`."""
        return self.string_removal is not None and not lns.unsupported(problem)


def _unmodelled(problem: Problem) -> list[str]:
    """What neither OR-Tools' model nor the compiled search (which builds on the same nodes) handles."""
    missing = []
    if any(v.max_trips > 1 for v in problem.vehicles):
        missing.append("multi-trip vehicles (max_trips > 1)")
    job_loads = any(any(j.delivery) or any(j.pickup) for j in problem.jobs)
    if any(any(j.delivery) and any(j.pickup) for j in problem.jobs) or (
        any(any(j.delivery) for j in problem.jobs) and any(any(j.pickup) for j in problem.jobs)
    ):
        missing.append("jobs that both deliver and pick up loads")
    if job_loads and any(any(s.amount) for s in problem.shipments):
        missing.append("loads on both jobs and shipments")
    return missing


ORTOOLS_ALONE = OrToolsOptions(string_removal=None, ruin_up_to=0)
"""OR-Tools' own search and nothing else: guided local search takes the whole budget."""


class OrToolsBackend:
    """OR-Tools' own search alone: parallel cheapest insertion, then guided local search."""

    name = "ortools"
    default_options = ORTOOLS_ALONE

    def __init__(self, options: OrToolsOptions | None = None) -> None:
        self.options = options or self.default_options

    def unsupported(self, problem: Problem) -> list[str]:
        missing = _unmodelled(problem)
        if any(j.wait_cost and j.wait_from is not None and j.lateness_cost and j.deadline is not None
               for j in problem.jobs):
            missing.append("two time costs on one job (a wait cost beside a soft deadline)")
        return missing

    def prepare(self, problem: Problem) -> None:
        if self.options.compiled_search_fits(problem):
            lns.kernels()

    def solve(self, problem: Problem, params: SolveParams) -> SolveResult:
        return run_backend(self, problem, params)

    def solve_reduced(self, problem: Problem, params: SolveParams, deadline: float | None, trace: Trace) -> Plan:
        return _OrToolsModel(problem, self.options).solve(params, deadline, trace)


class HybridBackend(OrToolsBackend):
    """OR-Tools' first plan and guided local search, the compiled string-removal search, then OR-Tools' polish
    (or OR-Tools inside ruin and recreate where the compiled search does not model the problem)."""

    name = "hybrid"
    default_options = OrToolsOptions()


class SisrBackend:
    """The compiled string-removal search alone, from the problem's initial plan if it has a feasible one, else
    from an empty plan (its first step inserts every job)."""

    name = "sisr"

    def __init__(self, options: lns.LnsOptions | None = None) -> None:
        self.options = options or lns.LnsOptions()

    def unsupported(self, problem: Problem) -> list[str]:
        return [*_unmodelled(problem), *lns.unsupported(problem)]

    def prepare(self, problem: Problem) -> None:
        lns.kernels()

    def solve(self, problem: Problem, params: SolveParams) -> SolveResult:
        return run_backend(self, problem, params)

    def solve_reduced(self, problem: Problem, params: SolveParams, deadline: float | None, trace: Trace) -> Plan:
        steps = None if params.iterations is None else params.iterations * self.options.steps_per_iteration
        search = lns.StringRemovalSearch(problem, self.options)
        empty: list[list[int]] = [[] for _ in problem.vehicles]
        start = lns.initial_routes(problem) or empty
        try:
            routes, _ = search.run(start, seed=params.seed, steps=steps, deadline=deadline)
        except InvalidProblemError:  # the initial plan breaks a window or a capacity
            routes, _ = search.run(empty, seed=params.seed, steps=steps, deadline=deadline)
        plan = lns.to_plan(problem, routes)
        trace.record("sisr", plan)
        return plan


class _OrToolsModel:
    def __init__(self, problem: Problem, options: OrToolsOptions) -> None:
        self.p = problem
        self.options = options
        nodes: list[_Node] = []
        for i, job in enumerate(problem.jobs):
            nodes.append(_Node(job.stop.location, job.stop, Visit(kind="job", index=i)))
        for i, s in enumerate(problem.shipments):
            nodes.append(_Node(s.pickup.location, s.pickup, Visit(kind="pickup", index=i)))
            nodes.append(_Node(s.delivery.location, s.delivery, Visit(kind="delivery", index=i)))
        starts, ends = [], []
        for v in problem.vehicles:
            starts.append(len(nodes))
            nodes.append(_Node(v.start, None, None))
            ends.append(len(nodes))
            nodes.append(_Node(v.end_location, None, None))
        self.nodes = nodes
        self.manager = pywrapcp.RoutingIndexManager(len(nodes), len(problem.vehicles), starts, ends)
        self.model = pywrapcp.RoutingModel(self.manager)
        self._locations = np.array([n.location for n in nodes], dtype=np.intp)
        self.trace = Trace(problem)
        self._service = np.array([n.stop.service if n.stop else 0 for n in nodes], dtype=np.int64)
        self._build()

    def _matrix(self, matrix: np.ndarray, add_service: bool) -> list[list[int]]:
        m = matrix[np.ix_(self._locations, self._locations)].astype(np.int64)
        if add_service:
            m = m + self._service[:, None]
        return m.tolist()

    def _build(self) -> None:
        p, model, manager = self.p, self.model, self.manager
        profiles = sorted({v.profile for v in p.vehicles})
        arc_cost = {
            pr: model.RegisterTransitMatrix(self._matrix(p.distances[pr] * p.distance_cost, False))
            for pr in profiles
        }
        transit = {pr: model.RegisterTransitMatrix(self._matrix(p.durations[pr], True)) for pr in profiles}
        for vi, v in enumerate(p.vehicles):
            model.SetArcCostEvaluatorOfVehicle(arc_cost[v.profile], vi)
            model.SetFixedCostOfVehicle(v.fixed_cost, vi)
        model.AddDimensionWithVehicleTransits(
            [transit[v.profile] for v in p.vehicles], HORIZON, 2 * HORIZON, False, "time")
        time_dim = model.GetDimensionOrDie("time")
        if p.duration_cost:
            time_dim.SetSpanCostCoefficientForAllVehicles(p.duration_cost)
        for vi, v in enumerate(p.vehicles):
            time_dim.CumulVar(model.Start(vi)).SetRange(v.shift.start, v.shift.end)
            time_dim.CumulVar(model.End(vi)).SetRange(v.shift.start, v.shift.end)
            if v.max_duration is not None:
                time_dim.SetSpanUpperBoundForVehicle(v.max_duration, vi)
            model.AddVariableMinimizedByFinalizer(time_dim.CumulVar(model.End(vi)))
            model.AddVariableMaximizedByFinalizer(time_dim.CumulVar(model.Start(vi)))
        solver = model.solver()
        for ni, node in enumerate(self.nodes):
            if node.stop is None or node.visit is None:
                continue
            index = manager.NodeToIndex(ni)
            cumul = time_dim.CumulVar(index)
            windows = node.stop.time_windows
            if windows:
                cumul.SetRange(windows[0].start, windows[-1].end)
                for a, b in itertools.pairwise(windows):
                    cumul.RemoveInterval(a.end + 1, b.start - 1)
            item = p.jobs[node.visit.index] if node.visit.kind == "job" else p.shipments[node.visit.index]
            penalty = BIG_PENALTY if item.penalty is None else item.penalty
            if node.visit.kind == "delivery":
                model.AddDisjunction([index], 0)
            else:
                model.AddDisjunction([index], penalty)
            if node.visit.kind != "pickup" and item.deadline is not None and item.lateness_cost:
                time_dim.SetCumulVarSoftUpperBound(index, item.deadline, item.lateness_cost)
            elif isinstance(item, Job) and item.wait_from is not None and item.wait_cost:
                time_dim.SetCumulVarSoftUpperBound(index, item.wait_from, item.wait_cost)
            allowed = [vi for vi, v in enumerate(p.vehicles) if item.skills <= v.skills]
            if len(allowed) < len(p.vehicles):
                model.VehicleVar(index).SetValues([-1, *allowed])
            if node.visit.kind == "job" and p.jobs[node.visit.index].release > 0:
                release = p.jobs[node.visit.index].release
                vehicle = model.VehicleVar(index)
                for vi, v in enumerate(p.vehicles):
                    if v.shift.start < release:
                        start = time_dim.CumulVar(model.Start(vi))
                        solver.Add(start >= solver.IsEqualCstVar(vehicle, vi) * release)
            if node.visit.kind == "delivery":
                pickup = manager.NodeToIndex(ni - 1)
                model.AddPickupAndDelivery(pickup, index)
                solver.Add(model.VehicleVar(pickup) == model.VehicleVar(index))
                solver.Add(time_dim.CumulVar(pickup) <= time_dim.CumulVar(index))
        self._add_loads()
        self._add_stop_limits()
        self._add_breaks(time_dim)

    def _add_breaks(self, time_dim: pywrapcp.RoutingDimension) -> None:
        model, solver = self.model, self.model.solver()
        self.time_dim = time_dim
        self.breaks: dict[int, list[pywrapcp.IntervalVar]] = {}
        if not any(v.breaks for v in self.p.vehicles):
            return
        transits = [int(self._service[self.manager.IndexToNode(i)]) for i in range(model.Size())]
        for vi, v in enumerate(self.p.vehicles):
            if not v.breaks:
                continue
            intervals = [solver.FixedDurationIntervalVar(b.window.start, b.window.end, b.duration, False,
                                                         f"break {vi}.{k}") for k, b in enumerate(v.breaks)]
            for interval in intervals:
                model.AddIntervalToAssignment(interval)
            time_dim.SetBreakIntervalsOfVehicle(intervals, vi, transits)
            self.breaks[vi] = intervals

    def _add_loads(self) -> None:
        p, model = self.p, self.model
        for d in range(p.n_dims):
            demand = np.zeros(len(self.nodes), dtype=np.int64)
            for ni, node in enumerate(self.nodes):
                if node.visit is None:
                    continue
                x = node.visit
                if x.kind == "job":
                    job = p.jobs[x.index]
                    demand[ni] = (job.delivery[d] if job.delivery else 0) + (job.pickup[d] if job.pickup else 0)
                elif p.shipments[x.index].amount:
                    amount = p.shipments[x.index].amount[d]
                    demand[ni] = amount if x.kind == "pickup" else -amount
            if not demand.any():
                continue
            callback = model.RegisterUnaryTransitVector(demand.tolist())
            model.AddDimensionWithVehicleCapacity(
                callback, 0, [v.capacity[d] for v in p.vehicles], True, f"load{d}")

    def _add_stop_limits(self) -> None:
        p, model = self.p, self.model
        if all(v.max_stops is None for v in p.vehicles):
            return
        ones = [0 if node.visit is None else 1 for node in self.nodes]
        callback = model.RegisterUnaryTransitVector(ones)
        model.AddDimensionWithVehicleCapacity(
            callback, 0, [len(self.nodes) if v.max_stops is None else v.max_stops for v in p.vehicles],
            True, "stops")

    def _initial_routes(self) -> list[list[int]] | None:
        if self.p.initial is None:
            return None
        node_of = {(n.visit.kind, n.visit.index): ni for ni, n in enumerate(self.nodes) if n.visit}
        routes: list[list[int]] = [[] for _ in self.p.vehicles]
        for r in self.p.initial.routes:
            routes[r.vehicle] = [node_of[(x.kind, x.index)] for x in r.visits if (x.kind, x.index) in node_of]
        return routes

    def _search(self, metaheuristic: str, seconds: float | None, solutions: int | None) -> object:
        search = pywrapcp.DefaultRoutingSearchParameters()
        search.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
        search.local_search_metaheuristic = getattr(routing_enums_pb2.LocalSearchMetaheuristic, metaheuristic)
        search.guided_local_search_lambda_coefficient = self.options.gls_lambda
        if seconds is not None:
            search.time_limit.FromMilliseconds(max(10, int(seconds * 1000)))
        if solutions is not None:
            search.solution_limit = solutions
            if seconds is None:
                search.time_limit.FromMilliseconds(int(1000 * (STALL_SECONDS + solutions * 0.01)))
        return search

    def solve(self, params: SolveParams, deadline: float | None, trace: Trace) -> Plan:
        self.trace = trace
        left = remaining(deadline)
        single = sum(1 for n in self.nodes if n.visit is not None and n.visit.kind != "delivery") <= 1
        compiled = not single and self.options.compiled_search_fits(self.p)
        ruin = compiled or len(self.p.jobs) + 2 * len(self.p.shipments) <= self.options.ruin_up_to
        share = self.options.gls_share if ruin else 1.0
        gls_seconds = None if left is None else max(0.01, left * share - 0.05)
        local = "ortools.greedy_descent" if single else "ortools.gls"
        search = self._search("GREEDY_DESCENT" if single else "GUIDED_LOCAL_SEARCH", gls_seconds, params.iterations)
        self.model.CloseModelWithParameters(search)
        initial = self._initial_routes()
        assignment = None
        if initial is not None:
            start = self.model.ReadAssignmentFromRoutes(initial, True)
            if start is not None:
                assignment = self.model.SolveFromAssignmentWithParameters(start, search)
        if assignment is None:
            assignment = self.model.SolveWithParameters(search)
        if assignment is None and compiled:
            self._record(local, [])
            return self._plan(self._string_removal([[] for _ in self.p.vehicles], params, deadline))
        if assignment is None and gls_seconds is not None:
            rest = remaining(deadline)
            assignment = self.model.SolveWithParameters(self._search("GUIDED_LOCAL_SEARCH", rest, params.iterations))
        if assignment is None:
            return self._record(local, [])
        routes = self._routes(assignment)
        if self.breaks:
            return self._record(local, routes, self._break_positions(assignment, routes))
        self._record(local, routes)
        if compiled:
            return self._plan(self._string_removal(routes, params, deadline))
        if params.iterations is not None or deadline is None or not ruin:
            return self._plan(routes)
        better = self._ruin_and_recreate(routes, assignment.ObjectiveValue(), params.seed, deadline)
        return self._record("ortools.ruin_recreate", better)

    def _record(self, algorithm: str, routes: list[list[int]], breaks: dict[int, list[int]] | None = None) -> Plan:
        plan = self._plan(routes, breaks)
        self.trace.record(algorithm, plan)
        return plan

    def _string_removal(self, routes: list[list[int]], params: SolveParams, deadline: float | None) -> list[list[int]]:
        """The compiled search from OR-Tools' plan, then guided local search again from the best plan it found."""
        options = self.options.string_removal
        assert options is not None
        steps = None if params.iterations is None else params.iterations * options.steps_per_iteration
        until = None
        if deadline is not None:
            until = deadline - self.options.polish_share * max(0.0, deadline - time.perf_counter())
        search = lns.StringRemovalSearch(self.p, options)
        try:
            better, cost = search.run(routes, seed=params.seed, steps=steps, deadline=until)
        except InvalidProblemError:
            better, cost = search.run([[] for _ in routes], seed=params.seed, steps=steps, deadline=until)
        self._record("sisr", better)
        left = None if deadline is None else deadline - time.perf_counter()
        start = self.model.ReadAssignmentFromRoutes(better, True)
        if start is None or (left is not None and left < MIN_POLISH_SECONDS):
            return better
        found = self.model.SolveFromAssignmentWithParameters(
            start, self._search("GUIDED_LOCAL_SEARCH", left, params.iterations))
        polished = self._routes(found) if found is not None and found.ObjectiveValue() < cost else better
        self._record("ortools.gls_polish", polished)
        return polished

    def _routes(self, assignment: pywrapcp.Assignment) -> list[list[int]]:
        model, manager = self.model, self.manager
        routes = []
        for vi in range(len(self.p.vehicles)):
            nodes = []
            index = assignment.Value(model.NextVar(model.Start(vi)))
            while not model.IsEnd(index):
                nodes.append(manager.IndexToNode(index))
                index = assignment.Value(model.NextVar(index))
            routes.append(nodes)
        return routes

    def _ruin_and_recreate(self, routes: list[list[int]], cost: int, seed: int, deadline: float) -> list[list[int]]:
        opts = self.options
        visit_nodes = [ni for ni, n in enumerate(self.nodes) if n.visit is not None]
        if len(visit_nodes) < 2:
            return routes
        partner = {ni: ni + (1 if n.visit.kind == "pickup" else -1) for ni, n in enumerate(self.nodes)
                   if n.visit is not None and n.visit.kind in ("pickup", "delivery")}
        dist = self.p.distances[self.p.vehicles[0].profile]
        locs = self._locations[visit_nodes]
        rng = random.Random(seed)
        best_routes, best_cost = routes, cost
        current, current_cost = routes, cost
        started = time.perf_counter()
        span = max(1e-6, deadline - started)
        while True:
            now = time.perf_counter()
            left = deadline - now - 0.05
            if left < 0.02:
                break
            seed_node = rng.randrange(len(visit_nodes))
            k = min(len(visit_nodes) - 1, rng.randint(opts.ruin_min, opts.ruin_max))
            order = np.argsort(dist[locs[seed_node], locs], kind="stable")[:k]
            removed = {visit_nodes[i] for i in order}
            removed |= {partner[ni] for ni in removed if ni in partner}
            partial = [[ni for ni in r if ni not in removed] for r in current]
            start = self.model.solver().Assignment()
            if not self.model.RoutesToAssignment(partial, True, True, start):
                continue
            search = self._search("GREEDY_DESCENT", min(opts.recreate_seconds, left), None)
            found = self.model.SolveFromAssignmentWithParameters(start, search)
            if found is None:
                continue
            found_cost = found.ObjectiveValue()
            threshold = opts.threshold * max(0.0, 1.0 - (now - started) / span)
            if found_cost < current_cost * (1 + threshold):
                current, current_cost = self._routes(found), found_cost
                if found_cost < best_cost:
                    best_routes, best_cost = current, found_cost
        return best_routes

    def _break_positions(self, assignment: pywrapcp.Assignment, routes: list[list[int]]) -> dict[int, list[int]]:
        """For each vehicle with breaks, after how many of its stops each break is taken."""
        out = {}
        for vi, intervals in self.breaks.items():
            starts = [assignment.Value(self.time_dim.CumulVar(self.manager.NodeToIndex(ni))) for ni in routes[vi]]
            out[vi] = [sum(1 for s in starts if s <= assignment.StartValue(iv)) for iv in intervals]
        return out

    def _plan(self, routes: list[list[int]], breaks: dict[int, list[int]] | None = None) -> Plan:
        out = []
        served: set[tuple[str, int]] = set()
        for vi, nodes in enumerate(routes):
            visits = [v for v in (self.nodes[ni].visit for ni in nodes) if v is not None]
            if breaks and vi in breaks and visits:
                for k, pos in sorted(enumerate(breaks[vi]), key=lambda kp: (-kp[1], -kp[0])):
                    visits.insert(pos, Visit(kind="break", index=k))
            served |= {("job" if v.kind == "job" else "shipment", v.index) for v in visits if v.kind != "break"}
            if visits:
                out.append(Route(vehicle=vi, visits=tuple(visits)))
        unassigned = [unassigned_reason(self.p, "job", i) for i in range(len(self.p.jobs))
                      if ("job", i) not in served]
        unassigned += [unassigned_reason(self.p, "shipment", i) for i in range(len(self.p.shipments))
                       if ("shipment", i) not in served]
        return Plan(routes=tuple(out), unassigned=tuple(unassigned))
