"""The PyVRP backend: iterated local search, strongest on time windows, capacities, multi-trip and release times."""

from __future__ import annotations

import time
import warnings
from collections import Counter, defaultdict

import numpy as np
import pyvrp
from pyvrp.exceptions import PenaltyBoundWarning
from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria, StoppingCriterion

from routing.errors import UnsupportedProblemError
from routing.problem import Plan, Problem, Route, TimeWindow, Unassigned, Vehicle, Visit
from routing.solvers.base import SolveParams, SolveResult, Trace, remaining, run_backend, unassigned_reason

_INF = np.iinfo(np.int64).max


class PyVrpBackend:
    """Solves with PyVRP's iterated local search."""

    name = "pyvrp"

    def unsupported(self, problem: Problem) -> list[str]:
        missing = []
        if any((j.deadline is not None and j.lateness_cost) or (j.wait_from is not None and j.wait_cost)
               for j in problem.jobs) or any(s.deadline is not None and s.lateness_cost for s in problem.shipments):
            missing.append("soft deadlines")
        if any(v.breaks for v in problem.vehicles):
            missing.append("breaks")
        if len({v.skills for v in problem.vehicles}) > 1:
            missing.append("skills that differ between vehicles")
        if any(len(s.pickup.time_windows) > 1 or len(s.delivery.time_windows) > 1 for s in problem.shipments):
            missing.append("shipments with several time windows")
        if any(v.max_stops is not None for v in problem.vehicles) and (
            problem.shipments or any(v.max_trips > 1 for v in problem.vehicles)
        ):
            missing.append("max_stops with shipments or multi-trip vehicles")
        loop = _priced_loop(problem)
        if loop is not None:
            missing.append(loop)
        return missing

    def solve(self, problem: Problem, params: SolveParams) -> SolveResult:
        return run_backend(self, problem, params)

    def prepare(self, problem: Problem) -> None:
        return None

    def solve_reduced(self, problem: Problem, params: SolveParams, deadline: float | None, trace: Trace) -> Plan:
        """Search with every required job required; if no feasible plan turns up in the first
        `GIVE_UP_SHARE` of the budget, search again with them optional at a prize no route can outweigh."""
        model = _PyVrpModel(problem, relax=False)
        left = remaining(deadline)
        give_up = _GiveUp(None if left is None else time.perf_counter() + GIVE_UP_SHARE * left,
                          None if params.iterations is None else int(GIVE_UP_SHARE * params.iterations))
        result = _run(model, _stop(deadline, params.iterations, give_up), params.seed, model.initial_solution())
        if result.best.is_feasible():
            plan = model.extract(result.best)
            trace.record("pyvrp.ils", plan)
            return plan
        relaxed = _PyVrpModel(problem, relax=True)
        iterations = None if params.iterations is None else params.iterations - result.num_iterations
        result = _run(relaxed, _stop(deadline, max(1, iterations or 0) if iterations is not None else None, None),
                      params.seed, None)
        plan = relaxed.extract(result.best)
        trace.record("pyvrp.ils_optional_jobs", plan)
        return plan


GIVE_UP_SHARE = 0.4
"""Share of the budget after which a search that found nothing feasible restarts with optional jobs."""


class _GiveUp:
    """Stops a search that still has no feasible solution after a time or an iteration count."""

    def __init__(self, at_time: float | None, at_iteration: int | None) -> None:
        self.at_time = at_time
        self.at_iteration = at_iteration
        self.calls = 0

    def __call__(self, best_cost: float) -> bool:
        self.calls += 1
        if best_cost < _INF:
            return False
        if self.at_iteration is not None and self.calls > self.at_iteration:
            return True
        return self.at_time is not None and time.perf_counter() >= self.at_time


def _stop(deadline: float | None, iterations: int | None, give_up: _GiveUp | None) -> StoppingCriterion:
    criteria: list[StoppingCriterion] = []
    left = remaining(deadline)
    if left is not None:
        criteria.append(MaxRuntime(max(0.01, left - 0.1)))
    if iterations is not None:
        criteria.append(MaxIterations(iterations))
    if give_up is not None:
        criteria.append(give_up)
    return criteria[0] if len(criteria) == 1 else MultipleCriteria(criteria)


def _run(model: _PyVrpModel, stop: StoppingCriterion, seed: int, initial: pyvrp.Solution | None) -> pyvrp.Result:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        return pyvrp.solve(model.data, stop, seed=seed, collect_stats=False, initial_solution=initial)


def _loop_places(problem: Problem) -> set[int]:
    """The locations where a route may go from a place to itself, so that a plan pays the matrices' diagonal
    there: two tasks at one place, a task where a vehicle starts or ends, or a reload depot (a route that serves
    nothing is never priced, so a vehicle's start and end alone never pay it)."""
    tasks = Counter(j.stop.location for j in problem.jobs)
    tasks.update(loc for s in problem.shipments for loc in (s.pickup.location, s.delivery.location))
    ends = {loc for v in problem.vehicles for loc in (v.start, v.end_location)}
    reloads = {v.reload_location for v in problem.vehicles if v.max_trips > 1}
    return {loc for loc, k in tasks.items() if k > 1 or loc in ends} | reloads


def _priced_loop(problem: Problem) -> str | None:
    """What PyVRP lacks when a plan could pay a non-zero diagonal (it requires zero travel from a place to itself),
    else None. Elsewhere the diagonal is priced by no plan, and PyVRP gets it as zeros."""
    places = sorted(_loop_places(problem))
    if not places:
        return None
    for profile in sorted({v.profile for v in problem.vehicles}):
        for name, matrix in (("durations", problem.durations[profile]), ("distances", problem.distances[profile])):
            diagonal = np.diagonal(matrix)[places]
            if diagonal.any():
                k = int(np.flatnonzero(diagonal)[0])
                loc = places[k]
                return (f"travel from a place to itself ({name} of profile {profile!r} at location {loc} is "
                        f"{int(diagonal[k])}, not 0, and two stops, or a stop and a vehicle's start or end, are "
                        "there)")
    return None


def _bounds(window: TimeWindow | None) -> tuple[int, int]:
    return (0, _INF) if window is None else (window.start, window.end)


def _zero_diagonal(matrix: np.ndarray) -> np.ndarray:
    """The matrix with zeros from each place to itself, as PyVRP requires (`_priced_loop`: no plan pays them)."""
    out = np.ascontiguousarray(matrix).copy()
    np.fill_diagonal(out, 0)
    return out


class _PyVrpModel:
    def __init__(self, problem: Problem, *, relax: bool) -> None:
        self.p = problem
        v_locs = {loc for v in problem.vehicles for loc in (v.start, v.end_location, v.reload_location)}
        depot_locs = sorted(v_locs)
        other = sorted({j.stop.location for j in problem.jobs}
                       | {loc for s in problem.shipments for loc in (s.pickup.location, s.delivery.location)})
        locations = depot_locs + [x for x in other if x not in v_locs]
        self.loc_index = {loc: i for i, loc in enumerate(locations)}
        depot_of = {loc: i for i, loc in enumerate(depot_locs)}
        count_stops = any(v.max_stops is not None for v in problem.vehicles)
        n_dims = problem.n_dims + (1 if count_stops else 0)

        def amounts(a: tuple[int, ...], stop: int) -> list[int]:
            out = list(a) if a else [0] * problem.n_dims
            return [*out, stop] if count_stops else out

        arc = max(int(m.max(initial=0)) for m in problem.distances.values()) * problem.distance_cost + max(
            int(m.max(initial=0)) for m in problem.durations.values()) * problem.duration_cost
        big_prize = 1000 * (arc + 1) if relax else 0
        clients: list[pyvrp.Client] = []
        groups: list[pyvrp.ClientGroup] = []
        self.client_job: list[int] = []
        for ji, job in enumerate(problem.jobs):
            copies: tuple[TimeWindow | None, ...] = job.stop.time_windows or (None,)
            required = job.penalty is None and len(copies) == 1 and not relax
            prize = big_prize if job.penalty is None else job.penalty
            first = len(clients)
            for w in copies:
                early, late = _bounds(w)
                clients.append(pyvrp.Client(
                    location=self.loc_index[job.stop.location],
                    delivery=amounts(job.delivery, 1), pickup=amounts(job.pickup, 0),
                    service_duration=job.stop.service, release_time=job.release,
                    prize=prize, required=required, tw_early=early, tw_late=late,
                    group=len(groups) if len(copies) > 1 else None, name=job.id))
                self.client_job.append(ji)
            if len(copies) > 1:
                groups.append(pyvrp.ClientGroup(list(range(first, len(clients))),
                                                required=job.penalty is None and not relax))
        shipments = []
        for s in problem.shipments:
            p_early, p_late = _bounds(s.pickup.time_windows[0] if s.pickup.time_windows else None)
            d_early, d_late = _bounds(s.delivery.time_windows[0] if s.delivery.time_windows else None)
            shipments.append(pyvrp.Shipment(
                self.loc_index[s.pickup.location], self.loc_index[s.delivery.location],
                pickup_tw_early=p_early, pickup_tw_late=p_late,
                pickup_service_duration=s.pickup.service,
                delivery_tw_early=d_early, delivery_tw_late=d_late,
                delivery_service_duration=s.delivery.service,
                amount=amounts(s.amount, 0), prize=big_prize if s.penalty is None else s.penalty,
                required=s.penalty is None and not relax, name=s.id))
        profiles = sorted({v.profile for v in problem.vehicles})
        profile_index = {pr: i for i, pr in enumerate(profiles)}
        types: dict[tuple, list[int]] = defaultdict(list)
        for vi, v in enumerate(problem.vehicles):
            types[self._type_key(v)].append(vi)
        self.type_vehicles = list(types.values())
        vehicle_types = []
        for key, members in types.items():
            v = problem.vehicles[members[0]]
            cap = list(v.capacity) if v.capacity else [0] * problem.n_dims
            if not problem.n_dims:
                cap = []
            if count_stops:
                cap.append(v.max_stops if v.max_stops is not None else len(clients) + 1)
            vehicle_types.append(pyvrp.VehicleType(
                num_available=len(members), capacity=cap if n_dims else [],
                start_depot=depot_of[v.start], end_depot=depot_of[v.end_location],
                fixed_cost=v.fixed_cost, tw_early=v.shift.start, tw_late=v.shift.end,
                shift_duration=_INF if v.max_duration is None else v.max_duration,
                unit_distance_cost=problem.distance_cost, unit_duration_cost=problem.duration_cost,
                profile=profile_index[v.profile],
                reload_depots=[depot_of[v.reload_location]] if v.max_trips > 1 else [],
                max_reloads=v.max_trips - 1 if v.max_trips > 1 else 0,
                name=str(key[0])))
        idx = np.asarray(locations, dtype=np.intp)
        loop = _priced_loop(problem)
        if loop is not None:  # `unsupported` refuses it on the whole problem; the reduced one has no more such places
            raise UnsupportedProblemError(f"backend pyvrp cannot honour: {loop}")
        distance_matrices: list = [_zero_diagonal(problem.distances[pr][np.ix_(idx, idx)]) for pr in profiles]
        duration_matrices: list = [_zero_diagonal(problem.durations[pr][np.ix_(idx, idx)]) for pr in profiles]
        self.data = pyvrp.ProblemData(
            locations=[pyvrp.Location(0, 0) for _ in locations],
            clients=clients,
            depots=[pyvrp.Depot(location=i) for i in range(len(depot_locs))],
            vehicle_types=vehicle_types,
            distance_matrices=distance_matrices,
            duration_matrices=duration_matrices,
            groups=groups,
            shipments=shipments,
        )

    @staticmethod
    def _type_key(v: Vehicle) -> tuple:
        return (v.profile, v.start, v.end_location, v.reload_location, v.shift.start, v.shift.end, v.capacity,
                v.fixed_cost, v.max_duration, v.max_stops, v.max_trips)

    def initial_solution(self) -> pyvrp.Solution | None:
        if self.p.initial is None or self.p.shipments or any(v.max_trips > 1 for v in self.p.vehicles):
            return None
        client_of: dict[int, int] = {}
        for ci, ji in enumerate(self.client_job):
            client_of.setdefault(ji, ci)
        type_of = {vi: t for t, members in enumerate(self.type_vehicles) for vi in members}
        routes = []
        for r in self.p.initial.routes:
            visits = [client_of[x.index] for x in r.visits if x.kind == "job"]
            if visits:
                routes.append(pyvrp.Route(self.data, visits, type_of[r.vehicle]))
        try:
            return pyvrp.Solution(self.data, routes)
        except (ValueError, RuntimeError, IndexError):
            return None

    def extract(self, solution: pyvrp.Solution) -> Plan:
        free = [list(members) for members in self.type_vehicles]
        routes = []
        served_jobs: set[int] = set()
        served_ships: set[int] = set()
        for route in solution.routes():
            vehicle = free[route.vehicle_type()].pop(0)
            schedule = route.schedule()
            visits: list[Visit] = []
            for act in schedule[1:-1]:
                if act.is_depot():
                    visits.append(Visit(kind="reload", index=self.p.vehicles[vehicle].reload_location))
                elif act.is_client():
                    ji = self.client_job[act.idx]
                    served_jobs.add(ji)
                    visits.append(Visit(kind="job", index=ji))
                else:
                    served_ships.add(act.idx)
                    visits.append(Visit(kind="pickup" if act.is_pickup() else "delivery", index=act.idx))
            routes.append(Route(vehicle=vehicle, visits=tuple(visits)))
        unassigned: list[Unassigned] = [unassigned_reason(self.p, "job", i)
                                        for i in range(len(self.p.jobs)) if i not in served_jobs]
        unassigned += [unassigned_reason(self.p, "shipment", i)
                       for i in range(len(self.p.shipments)) if i not in served_ships]
        return Plan(routes=tuple(routes), unassigned=tuple(unassigned))
