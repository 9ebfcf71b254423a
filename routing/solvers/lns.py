"""Compiled ruin and recreate (slack induction by string removals) for jobs with time windows and capacities."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from routing.errors import InvalidProblemError
from routing.problem import HORIZON, Job, Plan, Problem, Route, Stop, TimeWindow, Vehicle, Visit
from routing.solvers.base import BIG_PENALTY, unassigned_reason


@dataclass(frozen=True, slots=True, kw_only=True)
class LnsOptions:
    """Knobs of the string-removal search.

    About `removed` jobs leave per step, in strings of at most `max_string` from nearby routes; a job is
    reinserted at its cheapest feasible place, each place skipped with probability `blink`. On problems of at least
    `granular_from` jobs, the places tried are only those next to the job's `granular` nearest jobs (and the start
    of an empty vehicle), not every place of every route (0: every place); when jobs have time windows, nearest
    counts the arc cost plus `wait_weight` times the least wait and `warp_weight` times the least lateness the two
    windows force on the arc (`close_jobs`). A worse plan is
    accepted under simulated annealing whose temperature falls from `start_temperature` to `end_temperature`,
    both in units of the mean arc cost of the first plan. A solve with an iteration limit of N takes
    N × `steps_per_iteration` steps.
    """

    removed: float = 10.0
    max_string: int = 10
    blink: float = 0.01
    start_temperature: float = 10.0
    end_temperature: float = 0.1
    steps_per_call: int = 2000
    steps_per_iteration: int = 20
    granular: int = 50
    granular_from: int = 300
    wait_weight: float = 0.05
    warp_weight: float = 0.25

    def __post_init__(self) -> None:
        if not self.removed >= 1:
            raise InvalidProblemError(f"removed: must be at least 1, got {self.removed}")
        if self.max_string < 1:
            raise InvalidProblemError(f"max_string: must be at least 1, got {self.max_string}")
        if not 0 <= self.blink < 1:
            raise InvalidProblemError(f"blink: must be in [0, 1), got {self.blink}")
        if not self.start_temperature >= self.end_temperature > 0:
            raise InvalidProblemError("start_temperature, end_temperature: need start >= end > 0")
        for name in ("steps_per_call", "steps_per_iteration"):
            if getattr(self, name) < 1:
                raise InvalidProblemError(f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("granular", "granular_from"):
            if getattr(self, name) < 0:
                raise InvalidProblemError(f"{name}: must be at least 0, got {getattr(self, name)}")
        for name in ("wait_weight", "warp_weight"):
            if not getattr(self, name) >= 0:
                raise InvalidProblemError(f"{name}: must be at least 0, got {getattr(self, name)}")


def unsupported(problem: Problem) -> list[str]:
    """Features of `problem` the compiled search does not model (it then stays out of the way)."""
    missing = []
    if problem.shipments:
        missing.append("shipments")
    if problem.duration_cost:
        missing.append("duration cost")
    if any(len(j.stop.time_windows) > 1 for j in problem.jobs):
        missing.append("several time windows per job")
    if any(v.breaks or v.max_stops is not None or v.max_duration is not None or v.max_trips > 1
           for v in problem.vehicles):
        missing.append("breaks, stop, duration or trip limits")
    return missing


def to_plan(problem: Problem, routes: list[list[int]]) -> Plan:
    """The plan of routes as the search keeps them (one list of job indices per vehicle); jobs on no route are
    unassigned with their reason."""
    served = {j for r in routes for j in r}
    return Plan(routes=tuple(Route(vehicle=v, visits=tuple(Visit(kind="job", index=j) for j in r))
                             for v, r in enumerate(routes) if r),
                unassigned=tuple(unassigned_reason(problem, "job", j) for j in range(len(problem.jobs))
                                 if j not in served))


def initial_routes(problem: Problem) -> list[list[int]] | None:
    """`problem.initial` as the search keeps routes (job indices per vehicle), or None when there is none or it
    visits anything but jobs."""
    if problem.initial is None:
        return None
    routes: list[list[int]] = [[] for _ in problem.vehicles]
    for r in problem.initial.routes:
        if any(x.kind != "job" for x in r.visits):
            return None
        routes[r.vehicle] = [x.index for x in r.visits]
    return routes


@dataclass(frozen=True, slots=True, kw_only=True)
class _Data:
    nd: np.ndarray
    demand: np.ndarray
    penalty: np.ndarray
    allowed: np.ndarray
    capacity: np.ndarray
    fixed: np.ndarray
    profile: np.ndarray
    vclass: np.ndarray
    times: np.ndarray
    costs: np.ndarray
    neighbours: np.ndarray
    timed: bool
    windowed: bool


NODE_ROWS = ("loc", "service", "ready", "due", "release", "deadline", "late_cost", "wait_from", "wait_cost")
"""Rows of the node attribute array, in the order of the kernels' row constants (LOC, SERVICE, ...)."""


def _nodes(problem: Problem, loc: np.ndarray) -> np.ndarray:
    """One row per node attribute, one column per node: jobs, then vehicle starts, then vehicle ends."""
    jobs, vehicles = problem.jobs, problem.vehicles
    n_jobs, n_veh = len(jobs), len(vehicles)
    row = {name: k for k, name in enumerate(NODE_ROWS)}
    nd = np.zeros((len(NODE_ROWS), n_jobs + 2 * n_veh), dtype=np.int64)
    nd[row["loc"]] = loc
    nd[row["deadline"]] = HORIZON
    nd[row["wait_from"]] = HORIZON
    for i, j in enumerate(jobs):
        nd[row["service"], i] = j.stop.service
        nd[row["ready"], i], nd[row["due"], i] = j.stop.earliest, j.stop.latest
        nd[row["release"], i] = j.release
        if j.deadline is not None and j.lateness_cost:
            nd[row["deadline"], i], nd[row["late_cost"], i] = j.deadline, j.lateness_cost
        if j.wait_from is not None and j.wait_cost:
            nd[row["wait_from"], i], nd[row["wait_cost"], i] = j.wait_from, j.wait_cost
    for k, v in enumerate(vehicles):
        for node in (n_jobs + k, n_jobs + n_veh + k):
            nd[row["ready"], node], nd[row["due"], node] = v.shift.start, v.shift.end
    return nd


def close_jobs(nd: np.ndarray, times: np.ndarray, costs: np.ndarray, n_jobs: int, wait_weight: float,
               warp_weight: float) -> np.ndarray:
    """Per job, the other jobs by how well they go next to it in a route, best first: the arc cost, plus in cost
    units `wait_weight` times the least wait and `warp_weight` times the least lateness the two time windows force on
    that arc (the wait when the first is served as late and the second as early as they allow, the lateness when the
    first is served as early and the second as late as they allow), the better of the two directions (the granular
    neighbourhoods of Vidal et al. 2013, as PyVRP builds them). `nd`: the search's node rows (jobs first); `times`,
    `costs`: one profile's matrices by location. Time becomes cost units at the ratio of the mean arc cost to the
    mean arc time between jobs."""
    row = {name: k for k, name in enumerate(NODE_ROWS)}
    loc = nd[row["loc"], :n_jobs]
    cost = costs[np.ix_(loc, loc)].astype(np.float64)
    ride = times[np.ix_(loc, loc)].astype(np.float64)
    ready, due, service = (nd[row[k], :n_jobs].astype(np.float64) for k in ("ready", "due", "service"))
    unit = cost.mean() / ride.mean() if ride.mean() > 0 else 1.0
    wait = np.maximum(ready[None, :] - (due + service)[:, None] - ride, 0.0)
    warp = np.maximum((ready + service)[:, None] + ride - due[None, :], 0.0)
    score = cost + unit * (wait_weight * wait + warp_weight * warp)
    score = np.minimum(score, score.T)
    np.fill_diagonal(score, -1.0)
    return np.argsort(score, axis=1, kind="stable")[:, 1:]


def _contiguous(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.bool_ if a.dtype == np.bool_ else np.int64)


def _data(problem: Problem) -> _Data:
    jobs, vehicles = problem.jobs, problem.vehicles
    n_jobs = len(jobs)
    raw_locs = [j.stop.location for j in jobs] + [v.start for v in vehicles] + [v.end_location for v in vehicles]
    used, loc = np.unique(np.asarray(raw_locs, dtype=np.int64), return_inverse=True)
    profiles = sorted({v.profile for v in vehicles})
    times = np.stack([problem.durations[p][np.ix_(used, used)] for p in profiles]).astype(np.int64)
    costs = np.stack([problem.distances[p][np.ix_(used, used)] * problem.distance_cost
                      for p in profiles]).astype(np.int64)
    nd = _nodes(problem, loc)
    dims = max(1, problem.n_dims)
    demand = np.zeros((n_jobs, dims), dtype=np.int64)
    for i, j in enumerate(jobs):
        for d in range(problem.n_dims):
            demand[i, d] = (j.delivery[d] if j.delivery else 0) + (j.pickup[d] if j.pickup else 0)
    capacity = np.full((len(vehicles), dims), np.iinfo(np.int64).max // 4, dtype=np.int64)
    for k, v in enumerate(vehicles):
        capacity[k, :len(v.capacity)] = v.capacity
    penalty = np.array([BIG_PENALTY if j.penalty is None else j.penalty for j in jobs], dtype=np.int64)
    allowed = np.array([[j.skills <= v.skills for v in vehicles] for j in jobs], dtype=np.bool_).reshape(
        n_jobs, len(vehicles))
    profile = np.array([profiles.index(v.profile) for v in vehicles], dtype=np.int64)
    keys: dict[tuple[object, ...], int] = {}
    vclass = np.array([keys.setdefault((v.start, v.end_location, v.shift, v.capacity, v.profile, v.fixed_cost,
                                        v.skills), len(keys)) for v in vehicles], dtype=np.int64)
    job_locs = loc[:n_jobs]
    between = costs[0][np.ix_(job_locs, job_locs)]
    near = between + between.T
    np.fill_diagonal(near, -1)
    neighbours = np.argsort(near, axis=1, kind="stable")[:, 1:] if n_jobs > 1 else np.zeros((n_jobs, 0))
    fixed = np.array([v.fixed_cost for v in vehicles], dtype=np.int64)
    timed = bool(nd[NODE_ROWS.index("release")].any() or nd[NODE_ROWS.index("late_cost")].any()
                 or nd[NODE_ROWS.index("wait_cost")].any())
    windowed = bool((nd[NODE_ROWS.index("ready"), :n_jobs] > 0).any()
                    or (nd[NODE_ROWS.index("due"), :n_jobs] < HORIZON).any())
    c = _contiguous
    return _Data(nd=c(nd), demand=c(demand), penalty=c(penalty), allowed=c(allowed), capacity=c(capacity),
                 fixed=c(fixed), profile=c(profile), vclass=c(vclass), times=c(times), costs=c(costs),
                 neighbours=c(neighbours), timed=timed, windowed=windowed)


_kernels: ModuleType | None = None


def kernels() -> ModuleType:
    """The compiled kernels, loaded (or compiled, the first time on a machine) and warmed up once per process."""
    global _kernels
    if _kernels is None:
        from routing.solvers import _lns_kernels

        _kernels = _lns_kernels
        _warm_up()
    return _kernels


def _warm_up() -> None:
    m = np.array([[0, 2, 3, 4], [2, 0, 1, 2], [3, 1, 0, 1], [4, 2, 1, 0]], dtype=np.int64)
    jobs = tuple(Job(id=f"j{i}", stop=Stop(location=i, time_windows=(TimeWindow(start=0, end=100),)),
                     delivery=(1,)) for i in (1, 2, 3))
    vehicles = tuple(Vehicle(id=f"v{k}", start=0, capacity=(2,)) for k in range(2))
    problem = Problem(durations={"car": m}, distances={"car": m}, jobs=jobs, vehicles=vehicles)
    StringRemovalSearch(problem).run([[0, 1], [2]], seed=0, steps=20)


class StringRemovalSearch:
    """Improves a plan of `problem` (routes as lists of job indices, one list per vehicle) by ruin and recreate."""

    def __init__(self, problem: Problem, options: LnsOptions | None = None) -> None:
        missing = unsupported(problem)
        if missing:
            raise InvalidProblemError(f"string removal search cannot model: {', '.join(missing)}")
        self.problem = problem
        self.options = options or LnsOptions()
        self.d = _data(problem)
        self.n_jobs = len(problem.jobs)
        self.n_veh = len(problem.vehicles)
        self.steps_done = 0
        o = self.options
        # a removed job is tried next to its first `granular` neighbours (0: at every place), by arc cost, or with
        # time windows by how well the windows fit too
        self.granular = o.granular if o.granular_from <= self.n_jobs and o.granular < self.n_jobs - 1 else 0
        close = self.d.neighbours
        if self.granular and self.d.windowed:
            close = close_jobs(self.d.nd, self.d.times[0], self.d.costs[0], self.n_jobs, o.wait_weight,
                               o.warp_weight)
        self.close = np.ascontiguousarray(close[:, :self.granular], dtype=np.int64)
        self.k = kernels()

    def _state(self, routes: list[list[int]]) -> tuple[np.ndarray, ...]:
        n_jobs, n_veh, d = self.n_jobs, self.n_veh, self.d
        n = n_jobs + 2 * n_veh
        st = (np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64),
              np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
              np.zeros((n_veh, d.demand.shape[1]), dtype=np.int64), np.zeros(n_veh, dtype=np.int64),
              np.zeros(n_veh, dtype=np.int64), np.zeros(1, dtype=np.int64))
        nxt, prv, route, _, _, load, _, lateness, cost = st
        loc = d.nd[NODE_ROWS.index("loc")]
        for v in range(n_veh):
            path = [n_jobs + v, *routes[v], n_jobs + n_veh + v]
            nxt[path[:-1]], prv[path[1:]] = path[1:], path[:-1]
            route[path] = v
            if routes[v]:
                p = d.profile[v]
                cost += d.fixed[v] + sum(d.costs[p, loc[a], loc[b]] for a, b in itertools.pairwise(path))
            vehicle = self.problem.vehicles[v].id
            if not self.k._update(v, st, n_jobs, n_veh, d.nd, d.demand, d.times, d.profile):
                raise InvalidProblemError(f"vehicle {vehicle}: the initial route misses a time window")
            if (load[v] > d.capacity[v]).any():
                raise InvalidProblemError(f"vehicle {vehicle}: the initial route is over capacity")
        cost += lateness.sum() + d.penalty[route[:n_jobs] < 0].sum()
        return st

    def run(self, routes: list[list[int]], *, seed: int, steps: int | None = None,
            deadline: float | None = None) -> tuple[list[list[int]], int]:
        """Search for `steps` steps (same seed, same result) or until `deadline` (a perf_counter time), or both.

        Returns the best routes found and their cost (arcs, fixed costs, lateness and penalties of jobs left out).
        """
        if steps is None and deadline is None:
            raise InvalidProblemError("steps, deadline: give at least one of them")
        o = self.options
        cur = self._state(routes)
        best = tuple(a.copy() for a in cur)
        if self.n_jobs >= 2:
            unit = max(1.0, self._arc_unit(cur, routes))
            self._loop(cur, best, unit * o.start_temperature, unit * o.end_temperature, seed, steps, deadline)
        elif self.n_jobs == 1 and cur[self.k.ROUTE][0] < 0:  # one job left out: nothing to search, insert it
            d = self.d
            touched = np.zeros(self.n_veh, dtype=np.bool_)
            seen = np.zeros(int(d.vclass.max()) + 1, dtype=np.bool_)
            delta = self.k._recreate(np.zeros(1, dtype=np.int64), cur, touched, 1, self.n_veh, d.nd, d.demand,
                                     d.penalty, d.allowed, d.capacity, d.fixed, d.profile, d.vclass, d.times,
                                     d.costs, d.timed, 0.0, seen, d.neighbours, 0,
                                     np.zeros((1 + 2 * self.n_veh, 2), dtype=np.int64))
            cur[self.k.COST][0] += delta
            best = cur
        nxt, out = best[0], []
        for v in range(self.n_veh):
            nodes, node = [], int(nxt[self.n_jobs + v])
            while node != self.n_jobs + self.n_veh + v:
                nodes.append(node)
                node = int(nxt[node])
            out.append(nodes)
        return out, int(best[-1][0])

    def _arc_unit(self, state: tuple[np.ndarray, ...], routes: list[list[int]]) -> float:
        """Mean arc cost of the plan, or of the depot-to-job arcs when the plan is empty."""
        d, n_jobs = self.d, self.n_jobs
        served = sum(len(r) for r in routes)
        if not served:
            loc = d.nd[NODE_ROWS.index("loc")]
            return float(d.costs[0, loc[n_jobs], loc[:n_jobs]].mean())
        _, _, route, _, _, _, _, lateness, cost = state
        used = [v for v, r in enumerate(routes) if r]
        arcs = cost[0] - lateness.sum() - d.penalty[route[:n_jobs] < 0].sum() - d.fixed[used].sum()
        return float(arcs / (served + len(used)))

    def _loop(self, cur: tuple[np.ndarray, ...], best: tuple[np.ndarray, ...], t_from: float, t_to: float,
              seed: int, steps: int | None, deadline: float | None) -> None:
        d, o = self.d, self.options
        self.k._seed(seed)
        started = time.perf_counter()
        done = 0
        while True:
            now = time.perf_counter()
            if deadline is not None and now >= deadline:
                break
            if steps is not None:
                chunk = min(o.steps_per_call, steps - done)
                frac0, frac1 = done / steps, (done + chunk) / steps
            else:
                assert deadline is not None
                span, left = max(1e-9, deadline - started), deadline - now
                rate = done / max(1e-9, now - started)
                chunk = min(o.steps_per_call, int(rate * left)) if done else min(o.steps_per_call, 50)
                frac0 = (now - started) / span
                frac1 = min(1.0, frac0 + chunk / rate / span) if done else frac0
            if chunk <= 0:
                break
            ratio = t_to / t_from
            self.k._search(chunk, t_from * ratio**frac0, t_from * ratio**frac1, cur, best, self.n_jobs, self.n_veh,
                           d.nd, d.demand, d.penalty, d.allowed, d.capacity, d.fixed, d.profile, d.vclass, d.times,
                           d.costs, d.neighbours, self.close, d.timed, float(o.removed), o.max_string,
                           float(o.blink), self.granular)
            done += chunk
        self.steps_done = done
