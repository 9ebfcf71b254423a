"""The compiled string-removal search: feasible, cheaper, reproducible, and honest about what it cannot model."""

from __future__ import annotations

import time

import numpy as np
import pytest

from routing.errors import InvalidProblemError
from routing.evaluate import evaluate
from routing.problem import Break, Job, Plan, Problem, Route, Shipment, Stop, TimeWindow, Unassigned, Vehicle, Visit
from routing.solvers.base import SolveParams
from routing.solvers.lns import LnsOptions, StringRemovalSearch, close_jobs, unsupported
from routing.solvers.ortools import HybridBackend, OrToolsBackend, OrToolsOptions, SisrBackend, _OrToolsModel
from tests.routing.lines import job, line_problem, random_cvrp, tw


def as_plan(routes: list[list[int]]) -> Plan:
    return Plan(routes=tuple(Route(vehicle=v, visits=tuple(Visit(kind="job", index=j) for j in r))
                             for v, r in enumerate(routes) if r))


def random_vrptw(seed: int, customers: int, vehicles: int) -> Problem:
    """Seeded customers with 10-unit service, 120-unit windows over a 1000-unit day, capacity 10 of 1-3 each."""
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 100, size=(customers + 1, 2))
    pts[0] = (50, 50)
    m = np.ceil(np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))).astype(np.int64)
    jobs = []
    for i in range(1, customers + 1):
        opens = int(rng.integers(m[0, i], 1000 - 120 - 10 - m[i, 0]))
        jobs.append(Job(id=f"j{i}", stop=Stop(location=i, service=10, time_windows=tw(opens, opens + 120)),
                        delivery=(int(rng.integers(1, 4)),)))
    fleet = tuple(Vehicle(id=f"v{k}", start=0, shift=TimeWindow(start=0, end=1000), capacity=(10,))
                  for k in range(vehicles))
    return Problem(durations={"car": m}, distances={"car": m}, jobs=tuple(jobs), vehicles=fleet)


def one_per_vehicle(p: Problem) -> list[list[int]]:
    return [[i] if i < len(p.jobs) else [] for i in range(len(p.vehicles))]


def test_improves_a_poor_plan_and_stays_feasible() -> None:
    """From one job per vehicle, the search finds a much cheaper plan that the evaluator finds feasible."""
    p = random_vrptw(1, 40, 40)
    start = one_per_vehicle(p)
    routes, cost = StringRemovalSearch(p).run(start, seed=0, steps=3000)
    ev = evaluate(p, as_plan(routes))
    assert ev.feasible, ev.violations
    assert sorted(j for r in routes for j in r) == list(range(40))
    assert cost == ev.distance
    assert ev.distance < 0.6 * evaluate(p, as_plan(start)).distance


def test_same_seed_same_routes() -> None:
    """With a step count, the same seed gives the same routes, another seed may not."""
    p = random_vrptw(2, 30, 30)
    start = one_per_vehicle(p)
    a = StringRemovalSearch(p).run(start, seed=5, steps=500)
    b = StringRemovalSearch(p).run(start, seed=5, steps=500)
    assert a == b


def test_deadline_ends_the_search() -> None:
    """A deadline 0.3 s ahead ends the search (within 2 s on the shared test machine), with steps done."""
    p = random_cvrp(4, 60, 60, 10)
    search = StringRemovalSearch(p)
    started = time.perf_counter()
    search.run(one_per_vehicle(p), seed=0, deadline=started + 0.3)
    assert time.perf_counter() - started <= 2.0
    assert search.steps_done > 0


def test_capacities_and_skills_are_honoured() -> None:
    """Loads stay within each vehicle's capacity and a job needing a skill rides the one vehicle that has it."""
    jobs = [job(i, delivery=(1,)) for i in range(1, 6)] + [job(6, delivery=(1,), skills=frozenset({"fridge"}))]
    fleet = [Vehicle(id="a", start=0, capacity=(3,)), Vehicle(id="b", start=0, capacity=(3,)),
             Vehicle(id="cold", start=0, capacity=(1,), skills=frozenset({"fridge"}))]
    p = line_problem([0, 10, 20, 30, 40, 50, 60], jobs, fleet)
    routes, _ = StringRemovalSearch(p).run([[0, 1, 2], [3, 4], [5]], seed=1, steps=300)
    assert routes[2] == [5]
    assert all(len(r) <= 3 for r in routes[:2])
    assert evaluate(p, as_plan(routes)).feasible


def test_optional_job_left_out_when_its_detour_costs_more_than_its_penalty() -> None:
    """A job whose penalty is below its detour stays unassigned; the cost counts the penalty."""
    jobs = [job(1), job(6, penalty=30)]
    p = line_problem([0, 10, 20, 30, 40, 50, 60], jobs, [Vehicle(id="v", start=0)])
    routes, cost = StringRemovalSearch(p).run([[0, 1]], seed=0, steps=200)
    assert routes == [[0]]
    assert cost == 20 + 30


def test_fixed_costs_favour_fewer_vehicles() -> None:
    """With a fixed cost per vehicle above any detour, all jobs on a line ride one vehicle."""
    fleet = [Vehicle(id=f"v{k}", start=0, fixed_cost=1000) for k in range(3)]
    p = line_problem([0, 10, 20, 30], [job(i) for i in (1, 2, 3)], fleet)
    routes, cost = StringRemovalSearch(p).run([[0], [1], [2]], seed=0, steps=300)
    assert sorted(len(r) for r in routes) == [0, 0, 3]
    assert cost == 60 + 1000


def test_unsupported_features_are_named() -> None:
    """Shipments, breaks and several windows per job are reported, and the search refuses such a problem."""
    brk = Break(window=TimeWindow(start=0, end=10), duration=5)
    ship = Shipment(id="s", pickup=Stop(location=1), delivery=Stop(location=2))
    windows = (TimeWindow(start=0, end=5), TimeWindow(start=10, end=15))
    p = line_problem([0, 10, 20], [job(1, time_windows=windows)],
                     [Vehicle(id="v", start=0, breaks=(brk,))], shipments=(ship,))
    missing = unsupported(p)
    assert missing == ["shipments", "several time windows per job", "breaks, stop, duration or trip limits"]
    with pytest.raises(InvalidProblemError, match="shipments"):
        StringRemovalSearch(p)


def test_soft_deadline_puts_the_urgent_job_first() -> None:
    """With a lateness cost per unit, the job due early is served first even though it is farther."""
    jobs = [job(1, service=50), job(6, deadline=60, lateness_cost=100)]
    p = line_problem([0, 10, 20, 30, 40, 50, 60], jobs, [Vehicle(id="v", start=0)])
    routes, cost = StringRemovalSearch(p).run([[0, 1]], seed=0, steps=200)
    assert routes == [[1, 0]]
    ev = evaluate(p, as_plan(routes))
    assert ev.lateness_cost == 0 and cost == ev.cost


def test_release_time_delays_the_route_and_lateness_is_counted() -> None:
    """A job released at 100 holds its vehicle at the depot; a deadline it then misses costs per unit late."""
    jobs = [job(1, release=100), job(2, deadline=105, lateness_cost=3)]
    p = line_problem([0, 10, 20], jobs, [Vehicle(id="v", start=0), Vehicle(id="w", start=0, fixed_cost=100)])
    routes, cost = StringRemovalSearch(p).run([[0, 1], []], seed=0, steps=300)
    ev = evaluate(p, as_plan(routes))
    assert ev.feasible and cost == ev.cost
    assert sorted(routes[0]) == [0, 1] and routes[1] == []
    assert ev.lateness_cost == 3 * (100 + 20 - 105)


def test_initial_route_breaking_a_window_is_refused() -> None:
    """A starting route that misses a time window is an error naming the vehicle."""
    p = line_problem([0, 10, 20], [job(1, time_windows=tw(0, 5))], [Vehicle(id="v", start=0)])
    with pytest.raises(InvalidProblemError, match="vehicle v"):
        StringRemovalSearch(p).run([[0]], seed=0, steps=10)


def test_bad_options_name_the_field() -> None:
    """Options out of range raise an error naming the option."""
    with pytest.raises(InvalidProblemError, match="blink"):
        LnsOptions(blink=1.5)
    with pytest.raises(InvalidProblemError, match="temperature"):
        LnsOptions(start_temperature=0.1, end_temperature=0.2)
    with pytest.raises(InvalidProblemError, match="granular_from"):
        LnsOptions(granular_from=-1)
    with pytest.raises(InvalidProblemError, match="warp_weight"):
        LnsOptions(warp_weight=-0.5)


def test_hybrid_backend_uses_it_under_a_time_limit() -> None:
    """A time-limited hybrid solve of a windowed problem is complete, feasible, never worse than the OR-Tools plan
    it started from, and within 1 % of OR-Tools alone at the same budget (wall-clock budgets on a loaded machine:
    the strict comparison is the iteration-limited test's)."""
    p = random_vrptw(3, 50, 15)
    params = SolveParams(time_limit=1.5, seed=0)
    with_search = HybridBackend().solve(p, params)
    without = OrToolsBackend().solve(p, params)
    assert with_search.evaluation.feasible and not with_search.plan.unassigned
    first = with_search.phases[0]
    assert first.algorithm == "ortools.gls" and with_search.evaluation.cost <= first.cost
    assert with_search.evaluation.distance <= 1.01 * without.evaluation.distance


def test_hybrid_backend_with_an_iteration_limit_repeats_and_gains() -> None:
    """With an iteration limit the hybrid solve repeats exactly and beats OR-Tools alone."""
    p = random_vrptw(4, 40, 12)
    params = SolveParams(iterations=100, seed=3)
    a, b = HybridBackend().solve(p, params), HybridBackend().solve(p, params)
    without = OrToolsBackend().solve(p, params)
    assert a.plan == b.plan
    assert a.evaluation.feasible and not a.plan.unassigned
    assert a.evaluation.distance < without.evaluation.distance


def mixed_problem(seed: int) -> Problem:
    """Two profiles; vehicles with own start, end, shift, 2-D capacity, skills, fixed cost; optional jobs, some
    released late, some with soft deadlines."""
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 60, size=(30, 2))
    euclid = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
    bumps = rng.integers(0, 4, size=euclid.shape)
    durations = {"bike": np.ceil(euclid * 3).astype(np.int64) + bumps, "car": np.ceil(euclid).astype(np.int64)}
    distances = {"bike": np.rint(euclid).astype(np.int64), "car": np.rint(euclid * 1.3).astype(np.int64)}
    for m in (*durations.values(), *distances.values()):
        np.fill_diagonal(m, 0)
    jobs = []
    for i in range(25):
        opens = int(rng.integers(0, 300))
        windows = tw(opens, opens + int(rng.integers(30, 200))) if rng.random() < 0.7 else ()
        jobs.append(Job(id=f"j{i}", stop=Stop(location=int(rng.integers(5, 30)), service=int(rng.integers(0, 10)),
                                              time_windows=windows),
                        delivery=(int(rng.integers(0, 4)), int(rng.integers(0, 3))),
                        penalty=int(rng.integers(50, 400)), release=int(rng.integers(0, 80)) if i % 3 == 0 else 0,
                        deadline=opens + 60 if i % 4 == 0 else None, lateness_cost=int(rng.integers(0, 3)),
                        skills=frozenset({"cold"}) if rng.random() < 0.2 else frozenset()))
    fleet = tuple(Vehicle(id=f"v{k}", start=k, end=int(rng.integers(0, 5)), profile=("bike", "car")[k % 2],
                          shift=TimeWindow(start=int(rng.integers(0, 50)), end=int(rng.integers(250, 500))),
                          capacity=(int(rng.integers(4, 9)), int(rng.integers(2, 6))),
                          fixed_cost=int(rng.integers(0, 60)),
                          skills=frozenset({"cold"}) if k in (1, 4) else frozenset())
                  for k in range(6))
    return Problem(durations=durations, distances=distances, jobs=tuple(jobs), vehicles=fleet)


@pytest.mark.parametrize("seed", range(4))
def test_cost_and_feasibility_agree_with_the_evaluator(seed: int) -> None:
    """On mixed problems from an empty plan, every route is feasible and the search's cost is the evaluator's."""
    p = mixed_problem(seed)
    routes, cost = StringRemovalSearch(p).run([[] for _ in p.vehicles], seed=seed, steps=2000)
    served = [j for r in routes for j in r]
    assert len(served) == len(set(served)) and served
    plan = as_plan(routes)
    plan = Plan(routes=plan.routes, unassigned=tuple(
        Unassigned(kind="job", index=j, reason="dropped_for_cost") for j in range(len(p.jobs)) if j not in served))
    ev = evaluate(p, plan)
    assert ev.feasible, ev.violations
    assert cost == ev.cost


def test_ortools_model_builds_a_plan_from_nothing_with_the_search() -> None:
    """When OR-Tools has no first plan, the search starts from empty routes and still serves every job feasibly."""
    p = random_vrptw(5, 30, 10)
    model = _OrToolsModel(p, OrToolsOptions())
    model.model.CloseModelWithParameters(model._search("GUIDED_LOCAL_SEARCH", None, 20))
    plan = model._plan(model._string_removal([[] for _ in p.vehicles], SolveParams(iterations=20), None))
    ev = evaluate(p, plan)
    assert ev.feasible and not plan.unassigned


def test_node_rows_match_the_kernels() -> None:
    """The rows the Python side fills are the rows the compiled kernels read."""
    from routing.solvers import _lns_kernels as k
    from routing.solvers.lns import NODE_ROWS

    kernel_rows = [k.LOC, k.SERVICE, k.READY, k.DUE, k.RELEASE, k.DEADLINE, k.LATE_COST, k.WAIT_FROM, k.WAIT_COST]
    names = ("loc", "service", "ready", "due", "release", "deadline", "late_cost", "wait_from", "wait_cost")
    assert kernel_rows == [NODE_ROWS.index(name) for name in names]


@pytest.mark.parametrize("blink", [0.01, 0.2])
def test_places_blink_at_the_given_rate_one_draw_per_skipped_place(blink: float) -> None:
    """The gaps between skipped places are geometric: a place is skipped with probability `blink` (the mean gap is
    (1 - blink) / blink and a gap of zero, two skipped places in a row, comes with probability `blink`)."""
    from routing.solvers import _lns_kernels as k

    k._seed(3)
    gaps = np.array([k._gap(blink) for _ in range(40_000)])
    assert gaps.min() >= 0
    assert abs(gaps.mean() - (1 - blink) / blink) < 0.03 * (1 - blink) / blink
    assert abs((gaps == 0).mean() - blink) < 0.25 * blink
    assert k._gap(1e-300) >= 0  # a rate too small for log(1 - blink) still gives a (huge) finite gap


def test_ortools_model_starts_afresh_from_a_plan_the_search_cannot_take() -> None:
    """Given routes that miss time windows, the search starts from empty routes and still serves every job."""
    p = random_vrptw(7, 30, 10)
    model = _OrToolsModel(p, OrToolsOptions())
    model.model.CloseModelWithParameters(model._search("GUIDED_LOCAL_SEARCH", None, 20))
    late_order = [list(range(29, -1, -1))] + [[] for _ in range(9)]
    with pytest.raises(InvalidProblemError, match="time window"):
        StringRemovalSearch(p).run(late_order, seed=0, steps=1)
    plan = model._plan(model._string_removal(late_order, SolveParams(iterations=20), None))
    assert evaluate(p, plan).feasible and not plan.unassigned


def test_each_backend_reports_the_algorithms_that_ran() -> None:
    """OR-Tools alone runs only its own search, the compiled search alone only itself, and the hybrid runs OR-Tools,
    the compiled search and OR-Tools' polish in that order; each phase's cost is that of the plan it left."""
    p = random_vrptw(5, 40, 12)
    params = SolveParams(iterations=60, seed=2)
    alone = OrToolsBackend().solve(p, params)
    assert [ph.algorithm for ph in alone.phases] == ["ortools.gls"]
    sisr = SisrBackend().solve(p, params)
    assert [ph.algorithm for ph in sisr.phases] == ["sisr"]
    assert sisr.evaluation.feasible and not sisr.plan.unassigned
    assert sisr.phases[0].cost == sisr.evaluation.cost
    hybrid = HybridBackend().solve(p, params)
    assert [ph.algorithm for ph in hybrid.phases] == ["ortools.gls", "sisr", "ortools.gls_polish"]
    assert hybrid.phases[0].cost == alone.phases[0].cost
    assert hybrid.phases[-1].cost == hybrid.evaluation.cost
    assert hybrid.phases[1].cost < hybrid.phases[0].cost
    assert hybrid.algorithms[:2] == ("ortools.gls", "sisr")


def test_sisr_backend_repeats_for_a_seed_and_refuses_what_it_cannot_model() -> None:
    """The compiled search alone gives the same plan for the same seed and names the features it lacks."""
    p = random_vrptw(6, 30, 10)
    params = SolveParams(iterations=40, seed=4)
    assert SisrBackend().solve(p, params).plan == SisrBackend().solve(p, params).plan
    brk = Break(window=TimeWindow(start=0, end=50), duration=5)
    with_break = line_problem([0, 10, 20], [job(1), job(2)], [Vehicle(id="v", start=0, breaks=(brk,))])
    assert "breaks, stop, duration or trip limits" in SisrBackend().unsupported(with_break)


def test_auto_picks_by_kind_and_size_of_problem() -> None:
    """`auto` runs the hybrid on timed problems up to its size limit and on capacities alone below theirs, PyVRP
    above them; soft deadlines, which PyVRP lacks, stay with the hybrid at any size."""
    from dataclasses import replace

    from routing.solvers.auto import HYBRID_MAX_TIMED_JOBS, HYBRID_MAX_UNTIMED_JOBS, choose_backend

    small, large = random_vrptw(1, 40, 8), random_vrptw(2, HYBRID_MAX_TIMED_JOBS + 1, 60)
    assert choose_backend(small).name == "hybrid"
    assert choose_backend(large).name == "pyvrp"
    assert choose_backend(random_cvrp(3, HYBRID_MAX_UNTIMED_JOBS - 1, 8, 100)).name == "hybrid"
    assert choose_backend(random_cvrp(3, HYBRID_MAX_UNTIMED_JOBS, 8, 100)).name == "pyvrp"
    soft = replace(large, jobs=tuple(replace(j, deadline=900, lateness_cost=5) for j in large.jobs))
    assert choose_backend(soft).name == "hybrid"


def test_sisr_backend_plans_a_single_job_and_starts_from_the_initial_plan() -> None:
    """A problem of one job gets it planned (there is nothing to search, only to insert); a feasible initial plan
    is where the search starts, so with no steps to improve it the plan is kept; an infeasible one is dropped."""
    from dataclasses import replace

    single = line_problem([0, 10, 20], [job(2)], [Vehicle(id="v", start=0), Vehicle(id="w", start=0)])
    plan = SisrBackend().solve(single, SolveParams(iterations=1, seed=0)).plan
    assert [[x.index for x in r.visits] for r in plan.routes] == [[0]] and plan.unassigned == ()
    p = random_vrptw(6, 12, 4)
    good = SisrBackend().solve(p, SolveParams(iterations=100, seed=0))
    one_step = SisrBackend(LnsOptions(steps_per_iteration=1))
    warm = one_step.solve(replace(p, initial=good.plan), SolveParams(iterations=1, seed=0))
    cold = one_step.solve(p, SolveParams(iterations=1, seed=0))
    assert warm.evaluation.cost <= good.evaluation.cost < cold.evaluation.cost
    broken = Plan(routes=(Route(vehicle=0, visits=tuple(Visit(kind="job", index=j) for j in range(12))),))
    full = SisrBackend().solve(replace(p, initial=broken), SolveParams(iterations=5, seed=0))
    assert full.evaluation.feasible and not full.plan.unassigned


def test_a_wait_cost_beside_a_soft_deadline_is_the_compiled_searchs_alone() -> None:
    """A job may cost per second from `wait_from` and per second past `deadline` at once: the compiled search
    and the evaluator price both (and agree), auto picks the compiled search, OR-Tools and PyVRP decline it.
    Two vehicles, two jobs at 10 and 20 on a line: serving the near one first keeps the far one's promise."""
    from dataclasses import replace

    from routing.solvers.auto import choose_backend
    from routing.solvers.pyvrp import PyVrpBackend

    p = line_problem([0, 10, 20], [job(1), job(2)], [Vehicle(id="v", start=0)])
    timed = replace(p, jobs=(replace(p.jobs[0], wait_from=0, wait_cost=1),
                             replace(p.jobs[1], wait_from=0, wait_cost=1, deadline=20, lateness_cost=100)))
    result = SisrBackend().solve(timed, SolveParams(iterations=5, seed=0))
    assert [[x.index for x in r.visits] for r in result.plan.routes] == [[0, 1]]
    evaluation = evaluate(timed, result.plan)
    assert evaluation.lateness_cost == 10 + 20 and evaluation.cost == 40 + 30  # arcs 0-10-20-0, waits 10 + 20
    late_first = evaluate(timed, as_plan([[1, 0]]))
    assert late_first.lateness_cost == 20 + 30 + 0 * 100  # the far job on time at 20, the near one waits 30
    assert choose_backend(timed).name == "sisr"
    assert "two time costs on one job" in " ".join(OrToolsBackend().unsupported(timed))
    assert "soft deadlines" in " ".join(PyVrpBackend().unsupported(timed))
    one_piece = replace(timed, jobs=tuple(replace(j, deadline=None, lateness_cost=0) for j in timed.jobs))
    assert OrToolsBackend().unsupported(one_piece) == [] and choose_backend(one_piece).name == "hybrid"


def _recreate_one(granular: int) -> list[list[int]]:
    """Job 0 left out of routes [1] and [2, 3], put back by one recreate pass with `granular` nearest jobs (0: all).

    Job 0's nearest job is job 1 (1 away), where it costs 1 more; between jobs 2 and 3 it costs nothing (a detour
    of 5 + 5 for a direct arc of 10), so only the full scan finds that place."""
    from routing.solvers import _lns_kernels as k

    m = np.array([[0, 10, 10, 10, 10], [10, 0, 1, 5, 5], [10, 1, 0, 10, 10], [10, 5, 10, 0, 10],
                  [10, 5, 10, 10, 0]], dtype=np.int64)
    jobs = tuple(Job(id=f"j{i}", stop=Stop(location=i + 1)) for i in range(4))
    fleet = tuple(Vehicle(id=f"v{i}", start=0) for i in range(2))
    p = Problem(durations={"car": m}, distances={"car": m}, jobs=jobs, vehicles=fleet)
    search = StringRemovalSearch(p)
    state, d = search._state([[1], [2, 3]]), search.d
    places = np.zeros((4 + 4 + 2 * granular, 2), dtype=np.int64)
    k._recreate(np.zeros(1, dtype=np.int64), state, np.zeros(2, dtype=np.bool_), 4, 2, d.nd, d.demand, d.penalty,
                d.allowed, d.capacity, d.fixed, d.profile, d.vclass, d.times, d.costs, d.timed, 0.0,
                np.zeros(1, dtype=np.bool_), d.neighbours, granular, places)
    out = np.zeros(4, dtype=np.int64)
    return [out[:k._route_nodes(v, state[k.NXT], 4, 2, out)].tolist() for v in range(2)]


def test_granular_recreate_tries_only_places_next_to_the_nearest_jobs() -> None:
    """With one nearest job the left-out job goes next to it; every place (granular 0, or as many neighbours as
    jobs) finds the cheaper place elsewhere."""
    assert _recreate_one(1) in ([[0, 1], [2, 3]], [[1, 0], [2, 3]])
    assert _recreate_one(0) == [[1], [2, 0, 3]]
    assert _recreate_one(3) == [[1], [2, 0, 3]]


def test_granular_search_applies_from_the_given_size_and_repeats_for_a_seed() -> None:
    """Below `granular_from` jobs the search tries every place (the same routes as without it); from that size it
    tries the nearest jobs' places, serves every job feasibly and gives the same routes for the same seed."""
    p = random_vrptw(4, 40, 12)
    start = one_per_vehicle(p)
    every = StringRemovalSearch(p).run(start, seed=2, steps=400)
    above = StringRemovalSearch(p, LnsOptions(granular=5, granular_from=41))
    assert above.granular == 0 and above.run(start, seed=2, steps=400) == every
    near = StringRemovalSearch(p, LnsOptions(granular=5, granular_from=40))
    assert near.granular == 5
    routes, cost = near.run(start, seed=2, steps=400)
    assert (routes, cost) == near.run(start, seed=2, steps=400) and (routes, cost) != every
    ev = evaluate(p, as_plan(routes))
    assert ev.feasible and sorted(j for r in routes for j in r) == list(range(40)) and cost == ev.distance


def _window_line() -> Problem:
    """Jobs 0-3 at 10, 12, 30 and 31 on a line from a depot at 0: job 1 is open only late in the day, jobs 0, 2
    and 3 early."""
    m = np.abs(np.subtract.outer(np.array([0, 10, 12, 30, 31]), np.array([0, 10, 12, 30, 31]))).astype(np.int64)
    windows = [(0, 50), (500, 600), (0, 50), (0, 50)]
    jobs = tuple(Job(id=f"j{i}", stop=Stop(location=i + 1, service=5, time_windows=tw(a, b)))
                 for i, (a, b) in enumerate(windows))
    return Problem(durations={"car": m}, distances={"car": m}, jobs=jobs,
                   vehicles=(Vehicle(id="v", start=0, shift=TimeWindow(start=0, end=1000)),))


def test_close_jobs_rank_by_arc_cost_and_the_wait_the_windows_force() -> None:
    """Without time weights the nearest job on the road comes first; with them a job whose window forces a long
    wait falls behind a farther job whose window fits (and the ranking is symmetric in the two directions)."""
    search = StringRemovalSearch(_window_line())
    d = search.d
    by_road = close_jobs(d.nd, d.times[0], d.costs[0], 4, 0.0, 0.0)
    assert by_road[0].tolist() == [1, 2, 3]
    timed = close_jobs(d.nd, d.times[0], d.costs[0], 4, 0.05, 0.25)
    assert timed[0].tolist() == [2, 3, 1]
    assert timed[1].tolist() == [0, 2, 3]


def test_granular_search_with_windows_tries_the_jobs_that_fit_in_time() -> None:
    """On a windowed problem the granular search's insertion neighbours are the time-aware ones (the search still
    ruins by road distance), and without windows they are the road neighbours."""
    windowed = StringRemovalSearch(_window_line(), LnsOptions(granular=2, granular_from=4))
    d = windowed.d
    assert d.windowed and windowed.close.tolist() == close_jobs(d.nd, d.times[0], d.costs[0], 4, 0.05,
                                                                0.25)[:, :2].tolist()
    assert windowed.close.tolist() != d.neighbours[:, :2].tolist()
    plain = StringRemovalSearch(random_cvrp(3, 12, 4, 5), LnsOptions(granular=3, granular_from=10))
    assert not plain.d.windowed and plain.close.tolist() == plain.d.neighbours[:, :3].tolist()
