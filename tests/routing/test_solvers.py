"""Solver backends: every job routed or unassigned with a reason, features honoured, results reproducible."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from routing.errors import InvalidProblemError, UnsupportedProblemError
from routing.evaluate import evaluate
from routing.problem import UNREACHABLE, Break, Plan, Problem, Route, Shipment, Stop, TimeWindow, Vehicle, Visit
from routing.solvers.auto import choose_backend, solve
from routing.solvers.base import BIG_PENALTY, MAX_SEED, SolveParams, reduce, run_backend
from routing.solvers.ortools import OrToolsBackend, OrToolsOptions, _OrToolsModel
from routing.solvers.pyvrp import PyVrpBackend
from tests.routing.lines import job, line_matrix, line_problem, random_cvrp, tw

FAST = SolveParams(iterations=200, time_limit=5.0)
POSITIONS = [0, 10, 20, 30, 40, 50, 60]


def served(plan: Plan) -> set[int]:
    return {x.index for r in plan.routes for x in r.visits if x.kind == "job"}


def test_all_jobs_routed_and_feasible(backend: str) -> None:
    """Six jobs on a line, two vehicles of capacity 4: every job routed, no violation, and the optimum 160 (the
    vehicle reaching 60 rides 120 whatever it carries; the other takes the two nearest, 2 × 20)."""
    p = line_problem(POSITIONS, [job(i, delivery=(1,)) for i in range(1, 7)],
                     [Vehicle(id=f"v{k}", start=0, capacity=(4,)) for k in range(2)])
    r = solve(p, FAST, backend=backend)
    assert served(r.plan) == set(range(6))
    assert r.evaluation.feasible, r.evaluation.violations
    assert r.evaluation.distance == 160


def test_unserveable_jobs_get_reasons(backend: str) -> None:
    """Unreachable, closed-window, too-heavy and skill-less jobs are unassigned with their reason, never lost."""
    m = line_matrix(POSITIONS)
    m[:, 5] = UNREACHABLE
    m[5, 5] = 0
    jobs = [job(1, delivery=(1,)), job(2, delivery=(9,)), job(3, delivery=(1,), time_windows=tw(0, 5)),
            job(4, delivery=(1,), skills=frozenset({"fridge"})), job(5, delivery=(1,))]
    p = Problem(durations={"car": m}, distances={"car": m}, jobs=tuple(jobs),
                vehicles=(Vehicle(id="v", start=0, capacity=(4,)),))
    r = solve(p, FAST, backend=backend)
    reasons = {p.jobs[u.index].id: u.reason for u in r.plan.unassigned}
    assert reasons == {"j2": "over_capacity", "j3": "window_closed", "j4": "no_vehicle_with_skill: fridge",
                       "j5": "unreachable"}
    assert served(r.plan) == {0}


def test_the_reason_is_that_of_the_vehicle_that_came_closest() -> None:
    """On a mixed fleet a job's reason is the furthest check any vehicle passed (skills, then capacity, then
    reachability, then time windows), whichever order the vehicles come in; one vehicle that can serve it is
    enough."""
    m = line_matrix(POSITIONS)
    m[:, 5] = UNREACHABLE
    m[5, 5] = 0
    small = Vehicle(id="small", start=0, capacity=(2,), skills=frozenset({"fridge"}))
    big = Vehicle(id="big", start=0, capacity=(9,))
    jobs = (job(1, delivery=(3,), skills=frozenset({"fridge"})),  # the fridge is too small, the big has none
            job(2, delivery=(3,), time_windows=tw(0, 5)),  # the small is too small, the big is too late
            job(5, delivery=(3,)))  # the small is too small, the big cannot reach it
    for fleet in ((small, big), (big, small)):
        p = Problem(durations={"car": m}, distances={"car": m}, jobs=jobs, vehicles=fleet)
        assert {p.jobs[u.index].id: u.reason for u in reduce(p).unassigned} == {
            "j1": "over_capacity", "j2": "window_closed", "j5": "unreachable"}
    served_by_one = Problem(durations={"car": m}, distances={"car": m}, jobs=(job(3, delivery=(3,)),),
                            vehicles=(small, big))
    assert reduce(served_by_one).unassigned == ()


def test_fleet_too_small_leaves_jobs_with_reason(backend: str) -> None:
    """When the fleet cannot carry everything, the rest is no_feasible_route and the plan stays feasible."""
    p = line_problem(POSITIONS, [job(i, delivery=(1,)) for i in range(1, 5)],
                     [Vehicle(id="v", start=0, capacity=(2,))])
    r = solve(p, FAST, backend=backend)
    assert len(served(r.plan)) == 2
    assert [u.reason for u in r.plan.unassigned] == ["no_feasible_route"] * 2
    assert r.evaluation.feasible


def test_a_penalty_of_at_least_big_penalty_keeps_a_job_required(backend: str) -> None:
    """Jobs priced at BIG_PENALTY or more are left out only for want of room, so their reason is no_feasible_route."""
    jobs = [replace(job(i, delivery=(1,)), penalty=BIG_PENALTY + 60 * i) for i in range(1, 5)]
    p = line_problem(POSITIONS, jobs, [Vehicle(id="v", start=0, capacity=(2,))])
    r = solve(p, FAST, backend=backend)
    assert len(served(r.plan)) == 2
    assert [u.reason for u in r.plan.unassigned] == ["no_feasible_route"] * 2


def test_time_windows_are_met(backend: str) -> None:
    """Tight windows force the far job first; service starts inside every window."""
    jobs = [job(1, time_windows=tw(100, 120)), job(6, time_windows=tw(60, 70))]
    p = line_problem(POSITIONS, jobs, [Vehicle(id="v", start=0)])
    r = solve(p, FAST, backend=backend)
    assert [x.index for x in r.plan.routes[0].visits] == [1, 0]
    timings = r.evaluation.routes[0].timings
    assert timings[0].start == 60 and timings[1].start == 110


def test_several_time_windows(backend: str) -> None:
    """A job with two windows is served in the one it can still reach."""
    windows = (TimeWindow(start=0, end=5), TimeWindow(start=200, end=300))
    p = line_problem(POSITIONS, [job(3, time_windows=windows)], [Vehicle(id="v", start=0)])
    r = solve(p, FAST, backend=backend)
    assert r.evaluation.routes[0].timings[0].start == 200
    assert r.evaluation.feasible


def test_release_time_delays_departure(backend: str) -> None:
    """A job ready at 500 at the depot cannot be delivered before 500 + travel time."""
    p = line_problem(POSITIONS, [job(2, release=500), job(1)], [Vehicle(id="v", start=0)])
    r = solve(p, FAST, backend=backend)
    starts = {t.visit.index: t.start for t in r.evaluation.routes[0].timings}
    assert starts[0] >= 520
    assert r.evaluation.feasible


def test_shipments_pickup_before_delivery(backend: str) -> None:
    """A shipment is picked up before it is delivered, by the same vehicle, within capacity."""
    ships = [Shipment(id="s1", pickup=Stop(location=6), delivery=Stop(location=1), amount=(1,)),
             Shipment(id="s2", pickup=Stop(location=2), delivery=Stop(location=5), amount=(1,))]
    m = line_matrix(POSITIONS)
    p = Problem(durations={"car": m}, distances={"car": m}, shipments=tuple(ships),
                vehicles=(Vehicle(id="v", start=0, capacity=(1,)), Vehicle(id="w", start=0, capacity=(1,))))
    r = solve(p, FAST, backend=backend)
    assert r.evaluation.feasible, r.evaluation.violations
    assert not r.plan.unassigned


def test_locked_prefix_is_kept(backend: str) -> None:
    """Jobs a courier already carries stay first on its route, in the given order."""
    p = line_problem(POSITIONS, [job(i) for i in range(1, 7)],
                     [Vehicle(id="v", start=0, locked=("j5", "j2")), Vehicle(id="w", start=0)])
    r = solve(p, FAST, backend=backend)
    route = next(rt for rt in r.plan.routes if rt.vehicle == 0)
    assert [x.index for x in route.visits[:2]] == [4, 1]
    assert r.evaluation.feasible and served(r.plan) == set(range(6))


def test_optional_job_dropped_for_cost(backend: str) -> None:
    """A far job whose penalty is below its detour cost is left out as dropped_for_cost."""
    p = line_problem(POSITIONS, [job(1), job(6, penalty=10)], [Vehicle(id="v", start=0)])
    r = solve(p, FAST, backend=backend)
    assert [(u.index, u.reason) for u in r.plan.unassigned] == [(1, "dropped_for_cost")]


def test_max_stops(backend: str) -> None:
    """max_stops caps the jobs on one route; the rest goes to the other vehicle."""
    p = line_problem(POSITIONS, [job(i) for i in range(1, 5)],
                     [Vehicle(id="v", start=0, max_stops=2), Vehicle(id="w", start=0, max_stops=2)])
    r = solve(p, FAST, backend=backend)
    assert sorted(len(rt.visits) for rt in r.plan.routes) == [2, 2]


def test_same_seed_same_plan(backend: str) -> None:
    """With an iteration limit, the same seed gives the same plan."""
    p = random_cvrp(3, 29, 8, 15, max_demand=4)
    params = SolveParams(iterations=300, seed=11)
    a, b = solve(p, params, backend=backend), solve(p, params, backend=backend)
    assert a.plan == b.plan


def test_time_limit_respected() -> None:
    """A 1-second limit on a 100-customer instance returns a complete plan well before the 10 s default search
    (3 s allowed: the 2-core test machine is shared; the tight figure is measured by the benchmarks)."""
    p = random_cvrp(5, 100, 12, 10, side=10_000)
    for backend in ("pyvrp", "ortools"):
        started = time.perf_counter()
        r = solve(p, SolveParams(time_limit=1.0), backend=backend)
        assert time.perf_counter() - started <= 3.0
        assert len(served(r.plan)) == 100


def test_backend_preparation_is_not_timed() -> None:
    """A backend's one-off preparation (loading compiled code) happens before the time limit starts to run."""

    class SlowToPrepare(OrToolsBackend):
        def prepare(self, problem: Problem) -> None:
            time.sleep(1.5)
            super().prepare(problem)

    r = run_backend(SlowToPrepare(), random_cvrp(6, 40, 10, 10), SolveParams(time_limit=0.5))
    assert r.runtime_s <= 1.4  # counted, the preparation alone would be 1.5 s
    assert r.evaluation.feasible and len(served(r.plan)) == 40


def test_multi_trip_reloads_at_depot() -> None:
    """One vehicle of capacity 2 serves four jobs in two trips (PyVRP), reloading at its depot."""
    p = line_problem(POSITIONS, [job(i, delivery=(1,)) for i in range(1, 5)],
                     [Vehicle(id="v", start=0, capacity=(2,), max_trips=2)])
    assert choose_backend(p).name == "pyvrp"
    r = solve(p, FAST)
    assert [x.kind for x in r.plan.routes[0].visits].count("reload") == 1
    assert r.evaluation.feasible and served(r.plan) == set(range(4))
    with pytest.raises(InvalidProblemError, match="multi-trip"):
        solve(p, FAST, backend="ortools")


def test_skills_choose_hybrid() -> None:
    """A job needing a skill goes to the one vehicle that has it (auto picks the hybrid backend)."""
    p = line_problem(POSITIONS, [job(1, skills=frozenset({"fridge"})), job(2)],
                     [Vehicle(id="v", start=0), Vehicle(id="cold", start=0, skills=frozenset({"fridge"}))])
    assert choose_backend(p).name == "hybrid"
    r = solve(p, FAST)
    owner = {x.index: rt.vehicle for rt in r.plan.routes for x in rt.visits}
    assert owner[0] == 1


def test_soft_deadline_orders_the_late_job_first() -> None:
    """With a lateness cost, the job with the earlier deadline is served first even against distance."""
    jobs = [job(1, service=50), job(6, deadline=60, lateness_cost=100)]
    p = line_problem(POSITIONS, jobs, [Vehicle(id="v", start=0)])
    r = solve(p, FAST)
    assert r.backend == "hybrid"
    assert [x.index for x in r.plan.routes[0].visits] == [1, 0]
    assert r.evaluation.lateness_cost == 0


def test_initial_solution_is_accepted(backend: str) -> None:
    """An initial plan warm-starts the search and the result is no worse than it."""
    jobs = [job(i) for i in range(1, 7)]
    start = Plan(routes=(Route(vehicle=0, visits=tuple(Visit(kind="job", index=i) for i in (5, 0, 3, 1, 4, 2))),))
    p = line_problem(POSITIONS, jobs, [Vehicle(id="v", start=0)], initial=start)
    r = solve(p, FAST, backend=backend)
    assert r.evaluation.distance <= evaluate(p, start).distance
    assert r.evaluation.distance == 120


def test_ortools_ruin_and_recreate_improves_a_poor_plan() -> None:
    """Ruin and recreate turns one-job-per-vehicle routes into a cheaper plan that is still complete and feasible."""
    p = random_cvrp(8, 30, 30, 10)
    model = _OrToolsModel(p, OrToolsOptions())
    model.model.CloseModelWithParameters(model._search("GUIDED_LOCAL_SEARCH", 1.0, None))
    poor = [[i] for i in range(30)]
    poor_plan = model._plan(poor)
    better = model._plan(model._ruin_and_recreate(poor, 10**9, 1, time.perf_counter() + 1.0))
    assert evaluate(p, better).feasible and not better.unassigned
    assert evaluate(p, better).distance < evaluate(p, poor_plan).distance


def test_breaks_are_scheduled() -> None:
    """A vehicle with a break gets it inside its window (auto picks the hybrid backend); the plan stays feasible."""
    brk = Break(window=TimeWindow(start=20, end=40), duration=15)
    p = line_problem(POSITIONS, [job(i, service=5) for i in range(1, 7)], [Vehicle(id="v", start=0, breaks=(brk,))])
    assert choose_backend(p).name == "hybrid"
    r = solve(p, FAST)
    assert r.evaluation.feasible, r.evaluation.violations
    assert served(r.plan) == set(range(6))
    taken = [t for t in r.evaluation.routes[0].timings if t.visit.kind == "break"]
    assert len(taken) == 1 and 20 <= taken[0].start <= 40 and taken[0].departure - taken[0].start == 15


def test_single_job_with_iteration_limit_returns_at_once(backend: str) -> None:
    """One job and an iteration limit: the nearer vehicle serves it, at once (no search left stalling)."""
    p = line_problem(POSITIONS, [job(3)], [Vehicle(id="v", start=0), Vehicle(id="w", start=1)])
    r = solve(p, SolveParams(iterations=50), backend=backend)
    assert r.plan.routes == (Route(vehicle=1, visits=(Visit(kind="job", index=0),)),)
    assert r.runtime_s < 5.0  # at once; the bound leaves room for a loaded test machine


def with_diagonal(p: Problem, value: int) -> Problem:
    """`p` with every place `value` seconds and metres from itself."""
    m = line_matrix(POSITIONS) + value * np.eye(len(POSITIONS), dtype=np.int64)
    return replace(p, durations={"car": m}, distances={"car": m})


def test_a_diagonal_no_plan_pays_is_solved_by_every_backend(backend: str) -> None:
    """A non-zero matrix diagonal where no route goes from a place to itself (one task a place, none at the
    depot) changes no plan's cost: PyVRP gets zeros there and every backend finds the same optimal plan."""
    p = with_diagonal(line_problem(POSITIONS, [job(i) for i in range(1, 4)], [Vehicle(id="v", start=0)]), 5)
    assert PyVrpBackend().unsupported(p) == []
    r = solve(p, FAST, backend=backend)
    assert r.evaluation.feasible and not r.plan.unassigned and r.evaluation.distance == 60


def test_a_diagonal_a_plan_pays_is_refused_by_pyvrp_alone() -> None:
    """A job where the vehicle starts makes the depot's non-zero diagonal part of every plan's cost: PyVRP, which
    needs zero there, is refused naming it, and `auto` picks a backend that prices it."""
    p = with_diagonal(line_problem(POSITIONS, [job(1), job(2, location=0)], [Vehicle(id="v", start=0)]), 5)
    (missing,) = PyVrpBackend().unsupported(p)
    assert "travel from a place to itself" in missing and "location 0" in missing
    with pytest.raises(UnsupportedProblemError, match="backend pyvrp cannot honour: travel from a place"):
        solve(p, FAST, backend="pyvrp")
    r = solve(p, FAST)
    assert r.backend != "pyvrp" and r.evaluation.feasible and not r.plan.unassigned
    assert r.evaluation.distance == 20 + 5  # out to 10 and back, plus one stay at the depot


@pytest.mark.parametrize("name", ["ortools", "hybrid", "auto"])
def test_a_break_outside_the_shift_leaves_the_vehicle_unused(name: str) -> None:
    """A vehicle whose break cannot be taken within its shift is not used: no route of breaks alone, the jobs
    unassigned with a reason, no violated shift in the answer (PyVRP models no breaks)."""
    brk = Break(window=TimeWindow(start=500, end=600), duration=10)
    p = line_problem(POSITIONS, [job(1), job(2)], [Vehicle(id="v", start=0, shift=tw(0, 100)[0], breaks=(brk,))])
    r = solve(p, FAST, backend=name)
    assert r.plan.routes == () and r.evaluation.violations == ()
    assert [u.reason for u in r.plan.unassigned] == ["no_feasible_route"] * 2


@pytest.mark.parametrize(("params", "field"), [
    ({"seed": -1}, "seed"), ({"seed": MAX_SEED + 1}, "seed"), ({"seed": 2**63}, "seed"),
    ({"time_limit": 1e308}, "time_limit"), ({"time_limit": float("nan")}, "time_limit"),
    ({"iterations": 2**63}, "iterations"),
])
def test_solve_params_refuse_what_a_backend_cannot_take(params: dict[str, float], field: str) -> None:
    """Seeds outside [0, 2^31 - 1], time limits past a day (or NaN) and iteration limits past 10^9 are refused by
    name before any backend sees them (they crashed PyVRP, OR-Tools or the compiled search)."""
    with pytest.raises(InvalidProblemError, match=f"^{field}: must"):
        SolveParams(**params)  # type: ignore[arg-type]
    assert SolveParams(seed=MAX_SEED, time_limit=86_400.0, iterations=10**9).seed == MAX_SEED


def test_the_largest_seed_runs_on_every_backend(backend: str) -> None:
    """The largest seed allowed is taken by every backend."""
    p = line_problem(POSITIONS, [job(i) for i in range(1, 4)], [Vehicle(id="v", start=0)])
    r = solve(p, SolveParams(iterations=20, seed=MAX_SEED), backend=backend)
    assert r.evaluation.feasible and not r.plan.unassigned
