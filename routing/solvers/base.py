"""The RouteSolver protocol and the work every backend shares: screening, locked prefixes, repair, evaluation."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from routing.errors import InvalidProblemError, UnsupportedProblemError
from routing.evaluate import Evaluation, evaluate
from routing.problem import UNREACHABLE, Job, Plan, Problem, Route, Shipment, Stop, Unassigned, Vehicle, Visit

BIG_PENALTY = 10**12
"""What leaving a required job unassigned costs inside a solver: more than any route could."""
NO_FEASIBLE_ROUTE = "no_feasible_route"
"""Why a required job (no `penalty`, or one of at least BIG_PENALTY) is unassigned: no route could take it."""
DROPPED_FOR_COST = "dropped_for_cost"
"""Why an optional job (with a `penalty`) is unassigned: serving it would cost more than its penalty."""


MAX_TIME_LIMIT_S = 86_400.0
"""The longest search a solve may be given: a day (the solvers' clocks count milliseconds in 64 bits, and no
dispatch decision waits longer)."""
MAX_ITERATIONS = 10**9
"""The largest iteration limit (the compiled search takes 20 steps an iteration, counted in 64 bits)."""
MAX_SEED = 2**31 - 1
"""The largest seed, as `POST /v1/solve` allows: PyVRP's random generator takes 32 bits and no sign."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SolveParams:
    """How long to search: a wall-clock limit in seconds (at most `MAX_TIME_LIMIT_S`), an iteration limit
    (deterministic, at most `MAX_ITERATIONS`), a seed in [0, `MAX_SEED`]."""

    time_limit: float | None = None
    iterations: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.time_limit is not None and not 0 < self.time_limit <= MAX_TIME_LIMIT_S:
            raise InvalidProblemError(f"time_limit: must be positive and at most {MAX_TIME_LIMIT_S:g} s, got "
                                      f"{self.time_limit}")
        if self.iterations is not None and not 1 <= self.iterations <= MAX_ITERATIONS:
            raise InvalidProblemError(f"iterations: must lie in [1, {MAX_ITERATIONS}], got {self.iterations}")
        if not 0 <= self.seed <= MAX_SEED:
            raise InvalidProblemError(f"seed: must lie in [0, {MAX_SEED}], got {self.seed}")
        if self.time_limit is None and self.iterations is None:
            object.__setattr__(self, "time_limit", 10.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Phase:
    """One algorithm's turn in a solve: what ran, for how many seconds, and the plan it left behind (its cost by
    `routing.evaluate`, on the problem the backend saw, and how many jobs and shipments it left out)."""

    algorithm: str
    seconds: float
    cost: int
    unassigned: int


class Trace:
    """Records the phases of one solve in order, so a result can say which algorithm produced its plan."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.phases: list[Phase] = []
        self._since = time.perf_counter()

    def record(self, algorithm: str, plan: Plan) -> None:
        """`algorithm` ran since the last record (or the start) and left `plan`."""
        seconds = time.perf_counter() - self._since
        cost = evaluate(self.problem, plan).cost
        self.phases.append(Phase(algorithm=algorithm, seconds=seconds, cost=cost, unassigned=len(plan.unassigned)))
        self._since = time.perf_counter()


@dataclass(frozen=True, slots=True, kw_only=True)
class SolveResult:
    """A plan, its independent evaluation, and how the search went: the backend and, in order, the algorithms
    that ran in it (`phases`; empty when nothing needed solving)."""

    plan: Plan
    evaluation: Evaluation
    backend: str
    runtime_s: float
    phases: tuple[Phase, ...] = ()

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The algorithms that improved the plan, in order: the first phase and each that lowered the cost or
        served more."""
        out: list[str] = []
        best: tuple[int, int] | None = None
        for ph in self.phases:
            key = (ph.unassigned, ph.cost)
            if best is None or key < best:
                out.append(ph.algorithm)
                best = key
        return tuple(dict.fromkeys(out))


class RouteSolver(Protocol):
    """A vehicle-routing backend."""

    name: str

    def unsupported(self, problem: Problem) -> list[str]:
        """Features of `problem` this backend cannot honour (empty when it can solve it)."""
        ...

    def solve(self, problem: Problem, params: SolveParams) -> SolveResult:
        """Solve within the limits; every job ends on a route or in `unassigned` with a reason."""
        ...


class Backend(Protocol):
    """The part of a solver that differs per library: solve an already-screened problem."""

    name: str

    def unsupported(self, problem: Problem) -> list[str]: ...

    def prepare(self, problem: Problem) -> None:
        """One-off work before the clock starts (loading compiled code), not counted against the time limit."""
        ...

    def solve_reduced(self, problem: Problem, params: SolveParams, deadline: float | None, trace: Trace) -> Plan:
        """Search `problem` (already screened and reduced) until `deadline`; record each algorithm's turn in
        `trace`."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class _Reduction:
    problem: Problem
    job_map: tuple[int, ...]
    shipment_map: tuple[int, ...]
    unassigned: tuple[Unassigned, ...]


def _fits(amounts: tuple[int, ...], capacity: tuple[int, ...]) -> bool:
    return all(a <= c for a, c in zip(amounts, capacity, strict=False))


SCREEN_REASONS = ("no_vehicle_with_skill", "over_capacity", "unreachable", "window_closed")
"""Why no vehicle can serve an item, by how far the closest vehicle got through `_screen`'s checks."""


def _screen(problem: Problem, item: Job | Shipment) -> str | None:
    """None when some vehicle could serve `item` alone, else the reason (`SCREEN_REASONS`) of the vehicle that got
    furthest through the checks: skills, capacity, reachability, time windows. Stops at the first vehicle that
    passes them all (on a large fleet, usually the first one)."""
    loads: tuple[tuple[int, ...], ...]
    stops: tuple[Stop, ...]
    if isinstance(item, Job):
        loads, stops, release = (item.delivery, item.pickup), (item.stop,), item.release
    else:
        loads, stops, release = (item.amount,), (item.pickup, item.delivery), 0
    furthest = 0
    for v in problem.vehicles:
        if not item.skills <= v.skills:
            continue
        if not all(_fits(a, v.capacity) for a in loads):
            furthest = max(furthest, 1)
            continue
        dur = problem.durations[v.profile]
        path = [v.start, *(s.location for s in stops), v.end_location]
        if not all(dur[a, b] < UNREACHABLE for a, b in itertools.pairwise(path)):
            furthest = max(furthest, 2)
            continue
        t, here = max(v.shift.start, release), v.start
        for s in stops:
            start = s.service_start(t + int(dur[here, s.location]))
            if start is None:
                break
            t, here = start + s.service, s.location
        else:
            if t + int(dur[here, v.end_location]) <= v.shift.end:
                return None
        furthest = 3
    if furthest == 0:
        return f"{SCREEN_REASONS[0]}: " + ",".join(sorted(item.skills))
    return SCREEN_REASONS[furthest]


def _collapse_locked(problem: Problem, vehicle: Vehicle) -> Vehicle:
    """The vehicle as it is once its locked prefix is done: standing at the last locked stop, later."""
    if not vehicle.locked:
        return vehicle
    dur = problem.durations[vehicle.profile]
    jobs = [problem.jobs[problem.job_index(j)] for j in vehicle.locked]
    t = max([vehicle.shift.start, *(j.release for j in jobs)])
    here = vehicle.start
    for j in jobs:
        start = j.stop.service_start(t + int(dur[here, j.stop.location]))
        t = (t + int(dur[here, j.stop.location]) if start is None else start) + j.stop.service
        here = j.stop.location
    elapsed = t - vehicle.shift.start
    return replace(
        vehicle,
        start=here,
        end=vehicle.end_location,
        depot=vehicle.reload_location,
        shift=replace(vehicle.shift, start=min(t, vehicle.shift.end)),
        max_duration=None if vehicle.max_duration is None else max(0, vehicle.max_duration - elapsed),
        max_stops=None if vehicle.max_stops is None else max(0, vehicle.max_stops - len(jobs)),
        locked=(),
    )


def reduce(problem: Problem) -> _Reduction:
    """Drop what no vehicle can serve (with its reason) and collapse locked prefixes into vehicle starts."""
    locked = problem.locked_jobs()
    unassigned: list[Unassigned] = []
    job_map: list[int] = []
    for i, job in enumerate(problem.jobs):
        if i in locked:
            continue
        reason = _screen(problem, job)
        if reason is None:
            job_map.append(i)
        else:
            unassigned.append(Unassigned(kind="job", index=i, reason=reason))
    shipment_map: list[int] = []
    for i, s in enumerate(problem.shipments):
        reason = _screen(problem, s)
        if reason is None:
            shipment_map.append(i)
        else:
            unassigned.append(Unassigned(kind="shipment", index=i, reason=reason))
    reduced = Problem(
        durations=problem.durations,
        distances=problem.distances,
        jobs=tuple(problem.jobs[i] for i in job_map),
        shipments=tuple(problem.shipments[i] for i in shipment_map),
        vehicles=tuple(_collapse_locked(problem, v) for v in problem.vehicles),
        distance_cost=problem.distance_cost,
        duration_cost=problem.duration_cost,
        initial=_reduce_initial(problem, job_map, shipment_map),
    )
    return _Reduction(problem=reduced, job_map=tuple(job_map), shipment_map=tuple(shipment_map),
                      unassigned=tuple(unassigned))


def _reduce_initial(problem: Problem, job_map: list[int], shipment_map: list[int]) -> Plan | None:
    if problem.initial is None:
        return None
    jobs = {old: new for new, old in enumerate(job_map)}
    ships = {old: new for new, old in enumerate(shipment_map)}
    routes = []
    for r in problem.initial.routes:
        visits = []
        for x in r.visits:
            if x.kind in ("reload", "break"):
                visits.append(x)
            elif x.kind == "job" and x.index in jobs:
                visits.append(Visit(kind="job", index=jobs[x.index]))
            elif x.kind in ("pickup", "delivery") and x.index in ships:
                visits.append(Visit(kind=x.kind, index=ships[x.index]))
        routes.append(Route(vehicle=r.vehicle, visits=tuple(visits)))
    return Plan(routes=tuple(routes))


def _restore(problem: Problem, red: _Reduction, plan: Plan) -> Plan:
    by_vehicle: dict[int, list[Visit]] = {}
    for r in plan.routes:
        visits = []
        for x in r.visits:
            if x.kind == "job":
                visits.append(Visit(kind="job", index=red.job_map[x.index]))
            elif x.kind in ("pickup", "delivery"):
                visits.append(Visit(kind=x.kind, index=red.shipment_map[x.index]))
            else:
                visits.append(x)
        by_vehicle[r.vehicle] = visits
    routes = []
    for vi, v in enumerate(problem.vehicles):
        prefix = [Visit(kind="job", index=problem.job_index(j)) for j in v.locked]
        visits = prefix + by_vehicle.get(vi, [])
        while visits and visits[-1].kind == "reload":
            visits.pop()
        if not any(x.kind not in ("reload", "break") for x in visits):
            continue
        taken = {x.index for x in visits if x.kind == "break"}
        visits += [Visit(kind="break", index=b) for b in range(len(v.breaks)) if b not in taken]
        routes.append(Route(vehicle=vi, visits=tuple(visits)))
    unassigned = list(red.unassigned)
    for u in plan.unassigned:
        index = red.job_map[u.index] if u.kind == "job" else red.shipment_map[u.index]
        unassigned.append(replace(u, index=index))
    return Plan(routes=tuple(routes), unassigned=tuple(unassigned))


def _drop_reason(item: Job | Shipment) -> str:
    """A penalty of BIG_PENALTY or more still makes a job required: left out only where no route takes it."""
    return NO_FEASIBLE_ROUTE if item.penalty is None or item.penalty >= BIG_PENALTY else DROPPED_FOR_COST


def repair(problem: Problem, plan: Plan) -> Plan:
    """Take visits off violating routes, the least harmful first, until every route is feasible."""
    routes = list(plan.routes)
    unassigned = list(plan.unassigned)
    locked = problem.locked_jobs()
    for ri, route in enumerate(routes):
        single = Plan(routes=(route,))
        current = evaluate(problem, single).routes[0].violations
        while current:
            best: tuple[int, tuple[str, ...], Route] | None = None
            for pos, x in enumerate(route.visits):
                if x.kind in ("reload", "break") or (x.kind == "job" and x.index in locked):
                    continue
                drop_pair = x.kind in ("pickup", "delivery")
                visits = tuple(
                    y for k, y in enumerate(route.visits)
                    if k != pos and not (drop_pair and y.kind in ("pickup", "delivery") and y.index == x.index)
                )
                candidate = Route(vehicle=route.vehicle, visits=visits)
                found = evaluate(problem, Plan(routes=(candidate,))).routes
                left = found[0].violations if found else ()
                if best is None or len(left) < len(best[1]):
                    best = (pos, left, candidate)
            if best is None:
                break
            x = route.visits[best[0]]
            if x.kind == "job":
                unassigned.append(Unassigned(kind="job", index=x.index, reason=_drop_reason(problem.jobs[x.index])))
            else:
                s = problem.shipments[x.index]
                unassigned.append(Unassigned(kind="shipment", index=x.index, reason=_drop_reason(s)))
            route, current = best[2], best[1]
        routes[ri] = route
    # a route left with breaks (or reloads) alone serves nothing: the vehicle stays unused, its breaks untaken
    kept = tuple(r for r in routes if any(x.kind not in ("reload", "break") for x in r.visits))
    return Plan(routes=kept, unassigned=tuple(unassigned))


def unassigned_reason(problem: Problem, kind: Literal["job", "shipment"], index: int) -> Unassigned:
    item = problem.jobs[index] if kind == "job" else problem.shipments[index]
    return Unassigned(kind=kind, index=index, reason=_drop_reason(item))


def run_backend(backend: Backend, problem: Problem, params: SolveParams) -> SolveResult:
    """Screen, reduce, let the backend search, restore, repair and evaluate — within the time limit."""
    missing = backend.unsupported(problem)
    if missing:
        raise UnsupportedProblemError(f"backend {backend.name} cannot honour: {', '.join(missing)}")
    backend.prepare(problem)
    started = time.perf_counter()
    deadline = None if params.time_limit is None else started + params.time_limit
    red = reduce(problem)
    trace = Trace(red.problem)
    plan = Plan()
    if red.problem.jobs or red.problem.shipments:
        plan = backend.solve_reduced(red.problem, params, deadline, trace)
    full = _restore(problem, red, plan)
    evaluation = evaluate(problem, full)
    if any(r.violations for r in evaluation.routes):
        full = repair(problem, full)
        evaluation = evaluate(problem, full)
    return SolveResult(plan=full, evaluation=evaluation, backend=backend.name,
                       runtime_s=time.perf_counter() - started, phases=tuple(trace.phases))


def remaining(deadline: float | None, floor: float = 0.05) -> float | None:
    """Seconds left before `deadline`, never below `floor`."""
    if deadline is None:
        return None
    return max(floor, deadline - time.perf_counter())
