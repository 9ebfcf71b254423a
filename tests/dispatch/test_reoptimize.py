"""Rolling-horizon re-optimisation: problem building, determinism, bundling, promises, carried orders, returns."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dispatch.errors import InvalidDispatchError
from dispatch.policy import ReoptimizeOptions, ReoptimizePolicy
from dispatch.reoptimize import (
    DEFAULT_MINUTE_COST_M,
    DEFAULT_QUOTE_MINUTE_COST_M,
    RETURNS_SKILL,
    build_problem,
    reoptimize,
)
from tests.dispatch.test_policy import accounted, courier, order, state

FAST = ReoptimizeOptions(iterations=40, time_limit_s=None, seed=3)
UNPRICED = replace(FAST, co2_cost_m_per_kg=0)


def test_same_state_and_seed_give_the_same_decisions() -> None:
    """Re-optimising one state twice with an iteration limit and a seed gives identical decisions."""
    s = state([order(f"o{i}", 1 + i % 7, placed_at=i, ready_at=30 * i, promise_by=1200 + 60 * i) for i in range(10)],
              [courier("a"), courier("b"), courier("f", home=None, position=6), courier("c", capacity=2)])
    first = ReoptimizePolicy(options=FAST).decide(s)
    assert ReoptimizePolicy(options=FAST).decide(s) == first
    assert accounted(s, first)


def test_bundles_nearby_orders_when_promises_allow() -> None:
    """Three doors next to each other with loose promises go on one trip rather than three."""
    s = state([order("a", 1), order("b", 2), order("c", 3)], [courier(f"c{i}") for i in range(3)])
    d = reoptimize(s, FAST)
    trips = d.trips + d.tentative
    assert len(trips) == 1 and sorted(trips[0].order_ids) == ["a", "b", "c"]
    assert d.lateness_s == 0 and d.unassigned == ()


def test_splits_orders_to_meet_promises() -> None:
    """Doors in opposite directions with tight promises go to two couriers, both on time."""
    s = state([order("east", 1, promise_by=300), order("west", 4, promise_by=300)], [courier("a"), courier("b")])
    d = reoptimize(s, FAST)
    assert sorted(t.order_ids for t in d.trips) == [("east",), ("west",)]
    assert d.lateness_s == 0


def test_late_is_better_than_never() -> None:
    """An order that cannot make its promise is still planned (soft deadline), with its lateness reported."""
    s = state([order("far", 6, promise_by=100)], [courier("a")])
    d = reoptimize(s, FAST)
    (trip,) = d.trips
    assert trip.etas == (750,) and trip.lateness_s == (650,) and d.lateness_s == 650


def test_carried_orders_stay_first_and_on_their_courier() -> None:
    """Orders a courier carries keep their order and courier; its new trip starts at the store once it is back."""
    busy = courier("busy", status="en_route", position=1, available_at=100, carrying=("x2", "x1"))
    s = state([order("x1", 1), order("x2", 2), order("n1", 3), order("n2", 7)], [busy], now=100)
    d = reoptimize(s, FAST)
    (carried,) = d.carried
    assert carried.courier_id == "busy" and carried.order_ids == ("x2", "x1")
    assert carried.etas == (125, 150) and carried.end_at == 400
    (new,) = d.tentative
    assert d.trips == () and set(new.order_ids) == {"n1", "n2"} and new.departure >= carried.end_at
    built = build_problem(s, FAST)
    assert built is not None and built.order_ids == ("n1", "n2")
    assert built.problem.vehicles[0].shift.start == carried.end_at and built.problem.vehicles[0].start == 0


def test_trip_starts_now_only_if_the_courier_must_leave_before_the_next_tick() -> None:
    """A trip leaving within one tick is committed; one waiting for picking beyond it stays tentative."""
    s = state([order("now", 1, ready_at=50, promise_by=400), order("later", 4, ready_at=900)],
              [courier("a"), courier("b")], tick_s=60)
    d = reoptimize(s, FAST)
    assert [t.order_ids for t in d.trips] == [("now",)]
    assert [t.order_ids for t in d.tentative] == [("later",)] and d.tentative[0].departure == 900


def test_every_open_order_is_planned_or_unassigned_with_a_reason() -> None:
    """With too little room and an unreachable door, the rest is listed unassigned with the routing reason."""
    from tests.dispatch.test_policy import grid_travel

    s = state([order(f"o{i}", 1 + i % 4) for i in range(6)] + [order("island", 5)],
              [courier("a", capacity=2), courier("b", capacity=2)], travel=grid_travel(unreachable=[5]))
    d = reoptimize(s, FAST)
    assert accounted(s, d)
    reasons = d.unassigned_reasons
    assert reasons.pop("island") == "unreachable"
    assert len(reasons) == 2 and set(reasons.values()) == {"no_feasible_route"}


def test_no_courier_on_shift_leaves_orders_open() -> None:
    """When every courier is off or past its shift, every open order is unassigned with no_courier."""
    s = state([order("a", 1)], [courier("off", status="off"), courier("done", shift_start=0, shift_end=50)],
              now=60)
    d = reoptimize(s, FAST)
    assert d.unassigned_reasons == {"a": "no_courier"} and d.trips == ()


def test_returns_end_at_the_store_within_their_window() -> None:
    """A return is collected within its window by a store courier whose trip ends at the store."""
    s = state([order("r", 4, ready_at=600, promise_by=900, is_return=True), order("d", 1), order("e", 2)],
              [courier("a"), courier("ff", home=None, position=7)])
    d = reoptimize(s, FAST)
    trip = d.trip_of("r")
    assert trip is not None and trip.courier_id == "a" and trip.ends_at_store
    eta = trip.etas[trip.order_ids.index("r")]
    assert 600 <= eta <= 900 and trip.end_at >= eta + 250
    built = build_problem(s, FAST)
    assert built is not None
    skills = {c.id: v.skills for c, v in zip(built.couriers, built.problem.vehicles, strict=True)}
    assert skills == {"a": frozenset({RETURNS_SKILL}), "ff": frozenset()}


def test_returns_need_a_store_courier() -> None:
    """With only free-floating couriers, a return stays open with a reason naming the missing skill."""
    s = state([order("r", 1, is_return=True, promise_by=900)], [courier("ff", home=None)])
    assert reoptimize(s, FAST).unassigned_reasons == {"r": f"no_vehicle_with_skill: {RETURNS_SKILL}"}


def test_free_floating_courier_rides_to_the_store_then_ends_at_the_door() -> None:
    """A free-floating courier's trip includes the ride to the store, sets off earlier and ends at the last door."""
    s = state([order("a", 1)], [courier("ff", home=None, position=4)], tick_s=600)
    (trip,) = reoptimize(s, FAST).trips
    assert trip.dispatch_at == 0 and trip.departure == 250 and trip.etas == (500,)
    assert not trip.ends_at_store and trip.end_at == 500 and trip.distance_m == 2000


def test_auto_picks_the_hybrid_for_a_stores_problem_and_pyvrp_refuses_minute_costs() -> None:
    """Soft deadlines make auto pick the hybrid, and so do minutes free (capacities alone, far below 500 jobs);
    pyvrp with minute costs fails; the default backend is the compiled search alone."""
    s = state([order("a", 1), order("b", 4)], [courier("a"), courier("b")])
    assert reoptimize(s, FAST).backend == "sisr"
    assert reoptimize(s, replace(FAST, backend="auto")).backend == "hybrid"
    free_minutes = ReoptimizeOptions(iterations=40, time_limit_s=None, minute_cost_m=0, backend="auto")
    assert reoptimize(s, free_minutes).backend == "hybrid"
    with pytest.raises(InvalidDispatchError, match=r"^backend: pyvrp has no soft deadlines"):
        ReoptimizeOptions(backend="pyvrp")


def test_the_objective_prices_click_to_door_or_lateness() -> None:
    """click_to_door prices every minute from placement at minute_cost_m and, once the customer has a quote,
    every minute past it at quote_minute_cost_m; lateness prices only the minutes past the promise."""
    a = order("a", 1, placed_at=30, promise_by=2000)
    s = state([a, replace(a, id="q", quoted_by=900)], [courier("c")], now=60)
    ctd, quoted = build_problem(s, replace(FAST, minute_cost_m=150)).problem.jobs  # type: ignore[union-attr]
    late, _ = build_problem(s, replace(FAST, objective="lateness")).problem.jobs  # type: ignore[union-attr]
    assert (ctd.wait_from, ctd.wait_cost, ctd.deadline, ctd.lateness_cost) == (30, 150, None, 0)
    assert (quoted.wait_from, quoted.deadline, quoted.lateness_cost) == (30, 900, DEFAULT_QUOTE_MINUTE_COST_M)
    assert (late.wait_from, late.deadline, late.lateness_cost) == (None, 2000, DEFAULT_MINUTE_COST_M)
    unkept = build_problem(s, replace(FAST, quote_minute_cost_m=0)).problem.jobs[1]  # type: ignore[union-attr]
    assert (unkept.wait_cost, unkept.deadline) == (DEFAULT_MINUTE_COST_M, None)
    with pytest.raises(InvalidDispatchError, match=r"^backend: hybrid cannot price both"):
        ReoptimizeOptions(backend="hybrid")
    assert ReoptimizeOptions(backend="hybrid", quote_minute_cost_m=0).backend == "hybrid"


def test_a_later_order_does_not_push_an_earlier_one_past_its_quote() -> None:
    """One courier, an order quoted to arrive by 260 s and a new one next to the store: minimising click-to-door
    alone serves the new, nearer one first (the quoted one arrives late), keeping quotes serves the quoted one
    first."""
    orders = [replace(order("quoted", 1), quoted_by=260), order("near", 7)]
    s = state(orders, [courier("a")])
    alone = reoptimize(s, replace(FAST, quote_minute_cost_m=0))
    kept = reoptimize(s, replace(FAST, quote_minute_cost_m=1000))
    assert [t.order_ids for t in alone.trips + alone.tentative] == [("near", "quoted")]
    assert [t.order_ids for t in kept.trips + kept.tentative] == [("quoted", "near")]


def test_click_to_door_sends_a_ready_order_rather_than_hold_it_for_a_bundle() -> None:
    """An order ready now and one ready in ten minutes next door: the lateness objective holds the first to ride
    both in one trip (promises are loose); click_to_door sends the first at once and the second when it is ready."""
    s = state([order("now", 1), order("soon", 2, ready_at=600)], [courier("a"), courier("b")])
    held = reoptimize(s, replace(FAST, objective="lateness"))
    assert held.trips == () and [sorted(t.order_ids) for t in held.tentative] == [["now", "soon"]]
    fast = reoptimize(s, replace(FAST, minute_cost_m=400))
    assert [t.order_ids for t in fast.trips] == [("now",)] and fast.trips[0].etas == (250,)
    assert [t.order_ids for t in fast.tentative] == [("soon",)]


def test_the_search_starts_from_the_previous_plan() -> None:
    """With warm_start the problem's initial plan is the previous decision's trips over the orders still open (in
    their order, on couriers still on shift); without it, or without a plan, there is none."""
    orders = [order("a", 1), order("b", 2), order("c", 4)]
    plan = {"x": ("b", "gone", "a"), "y": ("c",), "off-shift": ("a",)}
    s = state(orders, [courier("x"), courier("y")], plan=plan)
    initial = build_problem(s, FAST).problem.initial  # type: ignore[union-attr]
    assert initial is not None
    assert [(r.vehicle, [x.index for x in r.visits]) for r in initial.routes] == [(0, [1, 0]), (1, [2])]
    assert build_problem(s, replace(FAST, warm_start=False)).problem.initial is None  # type: ignore[union-attr]
    assert build_problem(state(orders, [courier("x")]), FAST).problem.initial is None  # type: ignore[union-attr]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"time_limit_s": 0}, "^time_limit_s: must be positive"),
    ({"time_limit_s": None}, "^time_limit_s: give a time limit"),
    ({"iterations": 0}, "^iterations: must be at least 1"),
    ({"backend": "cplex"}, "^backend: must be one of"),
    ({"minute_cost_m": -1}, "^minute_cost_m: must be an integer >= 0"),
    ({"objective": "speed"}, "^objective: must be one of"),
    ({"warm_start": 1}, "^warm_start: must be true or false"),
    ({"co2_cost_m_per_kg": -5}, "^co2_cost_m_per_kg: must be an integer >= 0"),
    ({"co2_cost_m_per_kg": 2.5}, "^co2_cost_m_per_kg: must be an integer >= 0"),
])
def test_bad_options_name_the_field(kwargs: dict[str, object], message: str) -> None:
    """Invalid re-optimisation options raise InvalidDispatchError naming the field."""
    with pytest.raises(InvalidDispatchError, match=message):
        ReoptimizeOptions(**kwargs)  # type: ignore[arg-type]


def test_prefers_the_free_floating_courier_closer_to_the_store() -> None:
    """With time to spare, the free-floating courier with the shorter ride to the store takes the order."""
    s = state([order("a", 1, promise_by=7200)],
              [courier("far", home=None, position=6), courier("near", home=None, position=7)])
    built = build_problem(s, FAST)
    assert built is not None and [v.fixed_cost for v in built.problem.vehicles] == [60 * 3000, 60 * 200]
    d = reoptimize(s, FAST)
    assert [t.courier_id for t in d.trips + d.tentative] == ["near"]


def test_returns_dropped_at_a_pickup_point_end_at_the_store() -> None:
    """Returns waiting at a pickup point (one location, several parcels) are collected and ridden to the store."""
    from dispatch.policy import GreedyPolicy

    pickup_point = 4
    s = state([order("r1", pickup_point, is_return=True, promise_by=3600),
               order("r2", pickup_point, is_return=True, promise_by=3600), order("d", 1, placed_at=10)],
              [courier("a"), courier("ff", home=None, position=7)])
    back = s.travel.duration("bike", pickup_point, s.store_location)
    d = reoptimize(s, FAST)
    assert accounted(s, d) and d.unassigned == ()
    for rid in ("r1", "r2"):
        trip = d.trip_of(rid)
        assert trip is not None and trip.courier_id == "a" and trip.ends_at_store
        assert trip.end_at >= trip.etas[trip.order_ids.index(rid)] + back
    (first, *_) = GreedyPolicy().decide(s).trips
    assert first.order_ids == ("r1",) and first.ends_at_store and first.end_at == first.etas[0] + back


def test_with_too_little_room_the_order_past_its_quote_goes_before_the_newest() -> None:
    """One place on one trip: the old order that would break its quote is served, not the new one with time left."""
    old = replace(order("old", 2, placed_at=0, promise_by=4000), quoted_by=700)
    new = replace(order("new", 2, placed_at=600, promise_by=4000), quoted_by=3000)
    s = state([old, new], [courier("a", capacity=1)], now=600)
    d = reoptimize(s, FAST)
    assert [t.order_ids for t in d.all_trips] == [("old",)]
    assert d.unassigned_reasons == {"new": "no_feasible_route"}


def test_room_factor_bounds_the_orders_a_decision_considers() -> None:
    """With a backlog past the couriers' room, the problem holds room_factor x room: first the orders that would
    miss their quote after one more round trip, then the nearest; the rest are unassigned for want of room."""
    urgent = [replace(order(f"u{i}", 6, placed_at=10 * i, promise_by=4000), quoted_by=1500) for i in range(2)]
    doors = (7, 1, 5, 6, 7, 5, 1, 4, 6, 6)  # rides 50, 250, 500, 750 s; 4 is 250 s out, as 1
    rest = [replace(order(f"r{i}", door, placed_at=100 + i, promise_by=9000), quoted_by=6000)
            for i, door in enumerate(doors)]
    s = state(urgent + rest, [courier("a", capacity=2), courier("b", capacity=1)], now=600)
    options = replace(FAST, room_factor=2)
    built = build_problem(s, options)
    assert built is not None and len(built.problem.jobs) == 6
    assert set(built.order_ids) == {"u0", "u1", "r0", "r4", "r1", "r6"}
    assert set(built.left_out) == {"r2", "r3", "r5", "r7", "r8", "r9"}
    d = reoptimize(s, options)
    assert accounted(s, d) and {d.unassigned_reasons[oid] for oid in built.left_out} == {"no_feasible_route"}
    every = build_problem(s, replace(FAST, room_factor=0))
    assert every is not None and len(every.problem.jobs) == 12 and every.left_out == ()
    default = build_problem(s, FAST)  # off by default
    assert default is not None and default.order_ids == every.order_ids and default.left_out == ()


def test_room_factor_keeps_the_tentative_plan_in_view() -> None:
    """Orders of the previous decision's tentative plan stay in the problem however the others rank."""
    orders = [replace(order(f"o{i}", 1 + i % 6, placed_at=10 * i, promise_by=4000), quoted_by=900 + 60 * i)
              for i in range(8)]
    s = state(orders, [courier("a", capacity=1)], now=600, plan={"a": ("o7",)})
    built = build_problem(s, replace(FAST, room_factor=2))
    assert built is not None and set(built.order_ids) == {"o7", "o0"}


def test_room_factor_must_be_a_whole_number() -> None:
    """A negative or fractional room_factor is refused, naming the field."""
    for bad in (-1, 1.5, True):
        with pytest.raises(InvalidDispatchError, match="room_factor"):
            ReoptimizeOptions(room_factor=bad)  # type: ignore[arg-type]


def test_room_factor_with_no_room_still_accounts_for_every_order() -> None:
    """When no courier can hold even the smallest order, every order is still unassigned with a reason."""
    s = state([order(f"o{i}", 1 + i % 6, load=3) for i in range(5)], [courier("a", capacity=2)], now=60)
    d = reoptimize(s, replace(FAST, room_factor=2))
    assert accounted(s, d) and d.all_trips == ()
    assert set(d.unassigned_reasons.values()) <= {"no_feasible_route", "over_capacity"}


def test_a_co2_price_weighs_each_profiles_metres_by_its_emissions() -> None:
    """With a CO2 price the objective's car metres grow by 180 g/km x the price, a bike's (0 g/km) stay metres."""
    s = state([order("a", 3)], [courier("bike"), courier("car", profile="car")])
    plain = build_problem(s, UNPRICED)
    priced = build_problem(s, replace(FAST, co2_cost_m_per_kg=10_000))
    assert plain is not None and priced is not None
    car, bike = plain.problem.distances["car"], plain.problem.distances["bike"]
    assert (priced.problem.distances["bike"] == bike).all()
    assert (priced.problem.distances["car"] == (car * 2.8).round()).all() and car.max() > 0


def test_a_co2_price_sends_the_bike_where_the_car_only_saves_minutes() -> None:
    """Unpriced, the faster car takes an order both couriers can serve on time; at a CO2 price the bike does."""
    s = state([order("a", 3)], [courier("bike"), courier("car", profile="car")])
    assert [t.courier_id for t in reoptimize(s, UNPRICED).all_trips] == ["car"]
    priced = reoptimize(s, replace(FAST, co2_cost_m_per_kg=10_000))
    assert [t.courier_id for t in priced.all_trips] == ["bike"] and priced.unassigned == ()


def test_a_co2_price_weighs_a_free_floating_cars_ride_to_the_store() -> None:
    """A free-floating car's fixed cost (its ride to the store) grows with the CO2 price like its other metres."""
    s = state([order("a", 1)], [courier("car", profile="car", home=None, position=6)])
    plain, priced = build_problem(s, UNPRICED), build_problem(s, replace(FAST, co2_cost_m_per_kg=10_000))
    assert plain is not None and priced is not None
    assert priced.problem.vehicles[0].fixed_cost == round(plain.problem.vehicles[0].fixed_cost * 2.8) > 0
