"""The evaluator recomputes schedules and finds every violation on its own."""

from __future__ import annotations

from routing.evaluate import evaluate, late_schedule
from routing.problem import Break, Plan, Route, Shipment, Stop, TimeWindow, Vehicle, Visit
from tests.routing.lines import job, line_problem, tw

POS = [0, 10, 20, 30]


def jobs_route(vehicle: int, *indices: int) -> Route:
    return Route(vehicle=vehicle, visits=tuple(Visit(kind="job", index=i) for i in indices))


def test_schedule_by_hand() -> None:
    """Arrival, waiting, service and return match a hand computation."""
    p = line_problem(POS, [job(1, service=5, time_windows=tw(30, 40)), job(3, service=5)],
                     [Vehicle(id="v", start=0)])
    e = evaluate(p, Plan(routes=(jobs_route(0, 0, 1),)))
    t = e.routes[0].timings
    assert (t[0].arrival, t[0].start, t[0].departure) == (10, 30, 35)
    assert (t[1].arrival, t[1].start) == (55, 55)
    assert e.routes[0].end == 90 and e.distance == 60
    assert e.routes[0].duration == 70
    assert e.feasible


def test_violations_found() -> None:
    """Late service, overload, a shift overrun and a missing job are all reported."""
    p = line_problem(POS, [job(1, delivery=(3,), time_windows=tw(0, 5)), job(2, delivery=(3,)), job(3)],
                     [Vehicle(id="v", start=0, capacity=(4,), shift=tw(0, 30)[0])])
    e = evaluate(p, Plan(routes=(jobs_route(0, 0, 1),)))
    text = "\n".join(e.violations)
    assert "job j1 reached at 10, after its last window closed at 5" in text
    assert "exceeds capacity" in text
    assert "after its shift ends at 30" in text
    assert "job j3 is missing from the plan" in text
    assert not e.feasible


def test_duplicate_and_skills() -> None:
    """A job on two routes and a job on a vehicle without its skill are violations."""
    p = line_problem(POS, [job(1, skills=frozenset({"cold"}))], [Vehicle(id="v", start=0), Vehicle(id="w", start=0)])
    e = evaluate(p, Plan(routes=(jobs_route(0, 0), jobs_route(1, 0))))
    assert any("planned 2 times" in v for v in e.violations)
    assert any("needs skills ['cold']" in v for v in e.violations)


def test_shipment_order_and_locked_prefix() -> None:
    """Delivery before pickup and a broken locked prefix are reported."""
    ship = Shipment(id="s", pickup=Stop(location=1), delivery=Stop(location=2))
    p = line_problem(POS, [job(3)], [Vehicle(id="v", start=0, locked=("j3",))], shipments=(ship,))
    route = Route(vehicle=0, visits=(Visit(kind="delivery", index=0), Visit(kind="pickup", index=0),
                                     Visit(kind="job", index=0)))
    e = evaluate(p, Plan(routes=(route,)))
    assert any("not delivered after its pickup" in v for v in e.violations)
    assert any("does not start with its locked jobs" in v for v in e.violations)


def test_release_and_lateness_cost() -> None:
    """Departure waits for the release time; lateness past a soft deadline is costed per time unit."""
    p = line_problem(POS, [job(2, release=100, deadline=110, lateness_cost=3)], [Vehicle(id="v", start=0)])
    e = evaluate(p, Plan(routes=(jobs_route(0, 0),)))
    assert e.routes[0].departure == 100
    assert e.routes[0].timings[0].lateness == 10
    assert e.lateness_cost == 30 and e.cost == 40 + 30


def test_multi_trip_reload() -> None:
    """A reload visit returns to the depot, empties the load count and starts a new trip."""
    p = line_problem(POS, [job(1, delivery=(2,)), job(2, delivery=(2,))],
                     [Vehicle(id="v", start=0, capacity=(2,), max_trips=2)])
    route = Route(vehicle=0, visits=(Visit(kind="job", index=0), Visit(kind="reload", index=0),
                                     Visit(kind="job", index=1)))
    e = evaluate(p, Plan(routes=(route,)))
    assert e.feasible and e.distance == 20 + 40
    one_trip = line_problem(POS, list(p.jobs), [Vehicle(id="v", start=0, capacity=(2,), max_trips=1)])
    assert any("max_trips is 1" in v for v in evaluate(one_trip, Plan(routes=(route,))).violations)


def test_break_on_the_road_by_hand() -> None:
    """A break taken on the way delays arrival by its length; a break window that has closed is a violation."""
    brk = Break(window=TimeWindow(start=3, end=20), duration=7)
    p = line_problem(POS, [job(1, service=5)], [Vehicle(id="v", start=0, breaks=(brk,))])
    route = Route(vehicle=0, visits=(Visit(kind="break", index=0), Visit(kind="job", index=0)))
    e = evaluate(p, Plan(routes=(route,)))
    timings = {t.visit.kind: t for t in e.routes[0].timings}
    assert (timings["break"].start, timings["break"].departure) == (3, 10)
    assert timings["job"].arrival == 17 and e.routes[0].end == 32 and e.feasible
    late = line_problem(POS, [job(3, service=5)], [Vehicle(id="v", start=0, breaks=(
        Break(window=TimeWindow(start=0, end=20), duration=7),))])
    after = Route(vehicle=0, visits=(Visit(kind="job", index=0), Visit(kind="break", index=0)))
    assert any("after its window closes at 20" in v for v in evaluate(late, Plan(routes=(after,))).violations)


def test_missing_break_is_a_violation() -> None:
    """A used vehicle must take each of its breaks exactly once."""
    brk = Break(window=TimeWindow(start=0, end=100), duration=5)
    p = line_problem(POS, [job(1)], [Vehicle(id="v", start=0, breaks=(brk,))])
    e = evaluate(p, Plan(routes=(jobs_route(0, 0),)))
    assert any("must take each of its 1 breaks once" in v for v in e.violations)


def test_late_schedule_leaves_as_late_as_the_windows_allow() -> None:
    """A route waiting on the road (/tmp/probe_a/mtt.json: windows [100, 200] then [250, 300]) is driven leaving
    at 190, not 90: its real span is 80 s, within max_duration 100, while `evaluate` keeps its earliest timings."""
    p = line_problem([0, 10, 20], [job(1, time_windows=tw(100, 200)), job(2, time_windows=tw(250, 300))],
                     [Vehicle(id="v", start=0, max_duration=100)])
    route = jobs_route(0, 0, 1)
    early = evaluate(p, Plan(routes=(route,))).routes[0]
    assert early.departure == 0 and early.timings[0].arrival == 10 and early.duration == 80
    late = late_schedule(p, route)
    assert late.departure == 190 and late.end == 270 and late.duration == late.end - late.departure == 80
    assert [(t.arrival, t.start) for t in late.timings] == [(200, 200), (210, 250)]
    assert late.violations == ()


def test_late_schedule_flags_a_span_no_departure_keeps() -> None:
    """Where several windows make `evaluate`'s credit for a later departure wrong, the schedule driven is a real
    one and the max_duration it breaks is among its violations."""
    p = line_problem([0, 10, 20], [job(1, time_windows=(TimeWindow(start=100, end=105), TimeWindow(start=300,
                                                                                                 end=400))),
                                   job(2, time_windows=tw(250, 260))],
                     [Vehicle(id="v", start=0, max_duration=100)])
    route = jobs_route(0, 0, 1)
    assert evaluate(p, Plan(routes=(route,))).feasible  # credited as if it could leave at 230
    late = late_schedule(p, route)
    assert late.duration == late.end - late.departure and late.duration > 100
    assert late.timings[0].start == 100 and late.timings[1].start == 250
    assert any("max_duration is 100" in m for m in late.violations)


def test_late_schedule_finds_a_departure_between_the_windows() -> None:
    """Several windows per stop: leaving at the credit (155) misses job 1's second window and leaving as its first
    window allows (40) spans 155 s; leaving at 140, to reach job 1 as its second window opens, keeps every window
    and spans 55 s, within max_duration 60."""
    windows = tuple(TimeWindow(start=a, end=a + 10) for a in (50, 150, 300))
    p = line_problem([0, 10, 20], [job(1, time_windows=windows), job(2, time_windows=tw(175, 180))],
                     [Vehicle(id="v", start=0, max_duration=60)])
    late = late_schedule(p, jobs_route(0, 0, 1))
    assert (late.departure, late.end, late.duration) == (140, 195, 55)
    assert [(t.arrival, t.start) for t in late.timings] == [(150, 150), (160, 175)]
    assert late.violations == ()
