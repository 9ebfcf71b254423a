"""Meal dispatch: the MDRP timing rules and the greedy nearest-courier baseline (pure, no simulator)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dispatch.errors import InvalidDispatchError
from dispatch.meal import GreedyMealPolicy, MealAssignment, MealCourier, MealOrder, MealRules, assignment_times

RULES = MealRules(meters_per_minute=100, pickup_service=4, dropoff_service=4)


def order(oid: str, *, placed: int = 0, ready: int = 10, pickup: tuple[float, float] = (0, 0),
          door: tuple[float, float] = (0, 500), restaurant: str = "r1") -> MealOrder:
    return MealOrder(id=oid, restaurant=restaurant, pickup=pickup, door=door, placement_time=placed, ready_time=ready)


def courier(cid: str, location: tuple[float, float], free_at: int = 0, off: int = 100) -> MealCourier:
    return MealCourier(id=cid, location=location, free_at=free_at, off_time=off)


def test_travel_is_ceiling_of_euclidean_over_speed() -> None:
    """Travel minutes round up: 501 m at 100 m/min is 6 minutes, 500 m is 5."""
    assert RULES.travel((0, 0), (0, 500)) == 5 and RULES.travel((0, 0), (0, 501)) == 6


def test_pickup_waits_for_ready_then_half_services() -> None:
    """Ready binds: pickup 10, leave 12, arrive 17, drop 19, free 21 at the door."""
    t = assignment_times(RULES, 0, (0, 0), [order("o1")])
    assert (t.arrival, t.pickup, t.dropoffs, t.free_at, t.end, t.driving) == (0, 10, (19,), 21, (0, 500), 5)


def test_pickup_half_service_binds_after_ready() -> None:
    """Arriving after ready: pickup = arrival + 2."""
    t = assignment_times(RULES, 30, (0, 1000), [order("o1", ready=5)])
    assert (t.arrival, t.pickup) == (40, 42)


def test_bundle_drops_in_order() -> None:
    """A two-order assignment drops in the given order, each 2 min after arrival, leaving 2 min later."""
    t = assignment_times(RULES, 0, (0, 0), [order("a"), order("b", door=(0, 1000))])
    assert t.dropoffs == (19, 28) and t.free_at == 30


def test_greedy_picks_earliest_arrival_counting_free_time() -> None:
    """A busy courier next door loses to an idle one 3 minutes away when it frees up later."""
    busy = courier("busy", (0, 0), free_at=20)
    idle = courier("idle", (300, 0))
    assert GreedyMealPolicy(rules=RULES).assign(0, [order("o1")], [busy, idle]) == [
        MealAssignment(courier="idle", restaurant="r1", orders=("o1",))]


def test_greedy_skips_courier_that_cannot_pick_up_before_off_time() -> None:
    """The nearer courier would pick up at 10 after its off-time 9, so the farther one gets the order."""
    near = courier("near", (0, 0), off=9)
    far = courier("far", (0, 800))
    assert [a.courier for a in GreedyMealPolicy(rules=RULES).assign(0, [order("o1")], [near, far])] == ["far"]


def test_rules_refuse_a_limit_that_is_not_a_positive_integer() -> None:
    """The day's maximum click-to-door must be an integer of at least one minute; the message names it."""
    for bad in (0, 1.5, True):
        with pytest.raises(InvalidDispatchError, match="max_click_to_door"):
            MealRules(meters_per_minute=100, pickup_service=4, dropoff_service=4, max_click_to_door=bad)


def test_greedy_leaves_order_open_when_nobody_can() -> None:
    """With every courier off before the ready time, no assignment is made."""
    assert GreedyMealPolicy(rules=RULES).assign(0, [order("o1")], [courier("c", (0, 0), off=5)]) == []


def test_greedy_accounts_for_its_own_assignments() -> None:
    """Two orders from one restaurant: no bundling; a (busy until 18 after o1) reaches r1 at 23, b at 20."""
    orders = [order("o2", placed=1, ready=1), order("o1", placed=0, ready=0)]
    got = GreedyMealPolicy(rules=RULES).assign(5, orders, [courier("a", (0, 0)), courier("b", (0, 1500))])
    assert got == [MealAssignment(courier="a", restaurant="r1", orders=("o1",)),
                   MealAssignment(courier="b", restaurant="r1", orders=("o2",))]


def test_validation() -> None:
    """Odd service minutes, empty assignments and ready before placement are rejected."""
    with pytest.raises(InvalidDispatchError, match="pickup_service"):
        MealRules(meters_per_minute=100, pickup_service=3, dropoff_service=4)
    with pytest.raises(InvalidDispatchError, match="orders"):
        MealAssignment(courier="c", restaurant="r", orders=())
    with pytest.raises(InvalidDispatchError, match="ready_time"):
        order("o", placed=10, ready=5)


def test_meal_dispatch_imports_no_simulation() -> None:
    """dispatch.meal stays pure: no simpy, simulator or api imports."""
    tree = ast.parse(Path(__file__).resolve().parents[2].joinpath("dispatch", "meal.py").read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not names & {"simpy", "simulator", "api"}


def test_rolling_bundles_only_one_restaurant() -> None:
    """With more orders than couriers, bundles form but never mix restaurants."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    orders = [order(f"a{k}", ready=2, restaurant="r1") for k in range(3)]
    orders += [order(f"b{k}", ready=2, restaurant="r2", pickup=(300, 0), door=(300, 500)) for k in range(3)]
    policy = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(max_bundle=3))
    out = policy.assign(0, orders, [courier("c1", (0, 0)), courier("c2", (300, 0))])
    by_id = {o.id: o for o in orders}
    assert out and max(len(a.orders) for a in out) > 1
    assert all({by_id[o].restaurant for o in a.orders} == {a.restaurant} for a in out)


def test_rolling_never_assigns_past_off_time() -> None:
    """A courier whose pickup would fall after its off-time is not used; one that can is."""
    from dispatch.meal import RollingHorizonMealPolicy

    policy = RollingHorizonMealPolicy(rules=RULES)
    near_but_off = courier("near", (0, 0), off=3)
    far = courier("far", (0, 300), off=100)
    out = policy.assign(0, [order("o1", ready=4)], [near_but_off, far])
    assert [(a.courier, a.orders) for a in out] == [("far", ("o1",))]
    assert policy.assign(0, [order("o1", ready=4)], [near_but_off]) == []


def test_rolling_postpones_until_courier_must_leave() -> None:
    """An order ready in 15 min with a courier 5 min away is postponed now and committed when it must leave."""
    from dispatch.meal import RollingHorizonMealPolicy

    policy = RollingHorizonMealPolicy(rules=RULES)
    c = courier("c1", (0, 500))
    assert policy.assign(0, [order("o1", ready=15)], [c]) == []
    assert [a.orders for a in policy.assign(8, [order("o1", ready=15)], [c])] == [("o1",)]


def test_rolling_is_deterministic() -> None:
    """The same inputs give the same assignments, from the same policy object or a fresh one; and it does assign:
    each courier at most once, each order at most once."""
    from dispatch.meal import RollingHorizonMealPolicy

    orders = [order(f"o{k}", ready=k % 3, door=(k * 100, 500)) for k in range(8)]
    couriers = [courier(f"c{k}", (k * 200, 0)) for k in range(3)]
    policy = RollingHorizonMealPolicy(rules=RULES)
    first = policy.assign(0, orders, couriers)
    assert first == policy.assign(0, list(orders), list(couriers))
    assert first == RollingHorizonMealPolicy(rules=RULES).assign(0, list(orders), list(couriers))
    assert first, "nothing assigned: the test would hold for any policy"
    assigned = [o for a in first for o in a.orders]
    assert len(assigned) == len(set(assigned))
    assert len({a.courier for a in first}) == len(first)


def test_rolling_skips_orders_that_cannot_make_the_maximum() -> None:
    """At minute 89 an order placed at 0 can no longer be delivered within 90: no courier is spent on it by default."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    late_order = order("o1", placed=0, ready=0)
    c = courier("c1", (0, 0), off=200)
    assert RollingHorizonMealPolicy(rules=RULES).assign(89, [late_order], [c]) == []
    keep_all = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(skip_late=False))
    assert [a.orders for a in keep_all.assign(89, [late_order], [c])] == [("o1",)]


def test_rolling_drops_the_late_order_from_a_bundle() -> None:
    """Of two orders bundled at one restaurant, the one that would miss the maximum is left open, the other goes."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    old = order("old", placed=0, ready=60, door=(0, 2300))  # alone it would make 89
    new = order("new", placed=60, ready=60, door=(0, 500))
    policy = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(size_orders_window=0))
    out = policy.assign(60, [old, new], [courier("c1", (0, 0), off=200)])
    assert [a.orders for a in out] == [("new",)]


def test_rolling_urgency_serves_the_waiting_order_first() -> None:
    """One courier between two restaurants: by default the order waiting 30 minutes goes first; without the urgency
    reward the fresh one (less predicted excess) would."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    waiting = order("waiting", placed=0, ready=10, pickup=(0, 300), door=(0, 800), restaurant="r1")
    fresh = order("fresh", placed=38, ready=40, pickup=(0, -300), door=(0, -800), restaurant="r2")
    c = courier("c1", (0, 0), off=200)
    urgent = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(urgency_weight=2.0))
    assert [a.orders for a in urgent.assign(40, [waiting, fresh], [c])] == [("waiting",)]
    plain = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(urgency_weight=0.0))
    assert [a.orders for a in plain.assign(40, [waiting, fresh], [c])] == [("fresh",)]


def test_rolling_trip_cost_gives_a_short_courier_the_short_trip_first() -> None:
    """One free courier, two orders that have waited as long: by default the one whose trip ties the courier up least
    (2-minute ride to the door) goes first although its restaurant is a minute farther; without the trip cost the
    nearer restaurant with the 30-minute ride wins."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    long = order("long", placed=0, ready=10, pickup=(0, 300), door=(0, 3300), restaurant="r1")
    short = order("short", placed=0, ready=10, pickup=(0, -400), door=(0, -600), restaurant="r2")
    c = courier("c1", (0, 0), free_at=20, off=200)
    assert [a.orders for a in RollingHorizonMealPolicy(rules=RULES).assign(20, [long, short], [c])] == [("short",)]
    plain = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(trip_weight=0.0))
    assert [a.orders for a in plain.assign(20, [long, short], [c])] == [("long",)]


def test_rolling_trip_cost_stops_at_the_couriers_off_time() -> None:
    """Of two couriers side by side, the one going off at 10 takes the order with a 30-minute ride (its minutes past
    10 cost nothing, the other courier's would); without the trip cost the tie goes to the first listed."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    o = order("o1", placed=0, ready=0, door=(0, 3000))
    couriers = [courier("long", (0, 0), off=200), courier("ending", (0, 0), off=10)]
    assert [a.courier for a in RollingHorizonMealPolicy(rules=RULES).assign(0, [o], couriers)] == ["ending"]
    plain = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(trip_weight=0.0))
    assert [a.courier for a in plain.assign(0, [o], couriers)] == ["long"]


@pytest.mark.parametrize(("knobs", "field"), [
    ({"skip_late": 1}, "skip_late"),
    ({"urgency_weight": -1.0}, "urgency_weight"),
    ({"size_orders_window": -1}, "size_orders_window"),
    ({"commit_busy": 0}, "commit_busy"),
    ({"join_wait": -2}, "join_wait"),
    ({"join_ratio": -1.0}, "join_ratio"),
    ({"courier_horizon": 0}, "courier_horizon"),
    ({"pending_weight": -0.1}, "pending_weight"),
    ({"trip_weight": float("nan")}, "trip_weight"),
    ({"bundle_window": -1}, "bundle_window"),
    ({"bundle_max_delay": -1.0}, "bundle_max_delay"),
    ({"shift_weight": -0.1}, "shift_weight"),
    ({"shift_window": 0}, "shift_window"),
    ({"move_to_match": 1}, "move_to_match"),
    ({"move_to_demand": "yes"}, "move_to_demand"),
    ({"demand_window": 0}, "demand_window"),
    ({"split_idle": 1}, "split_idle"),
    ({"split_bonus": -1.0}, "split_bonus"),
    ({"end_join": "no"}, "end_join"),
    ({"commit_ride": -2}, "commit_ride"),
    ({"commit_ride": 1.5}, "commit_ride"),
    ({"bind_margin": -1.0}, "bind_margin"),
])
def test_rolling_options_validation(knobs: dict[str, object], field: str) -> None:
    """The new knobs are type-checked like the old ones."""
    from dispatch.meal import RollingHorizonOptions

    with pytest.raises(InvalidDispatchError, match=field):
        RollingHorizonOptions(**knobs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("knobs", "message"), [
    ({"max_bundle": 9}, "max_bundle: must be at most 8 orders, got 9"),
    ({"max_bundle": 10**10}, "max_bundle: must be at most 8 orders"),
    ({"horizon": 1441}, "horizon: must be at most 1440 (minutes: a day), got 1441"),
    ({"frequency": 10**12}, "frequency: must be at most 1440"),
    ({"demand_window": 2000}, "demand_window: must be at most 1440"),
    ({"join_wait": 1441}, "join_wait: must be at most 1440"),
    ({"commit_ride": 10**9}, "commit_ride: must be at most 1440"),
    ({"bundle_max_delay": 1440.5}, "bundle_max_delay: must be at most 1440 (minutes: a day)"),
    ({"bind_margin": 1e300}, "bind_margin: must be at most 1440"),
    ({"order_value": 1e308}, "order_value: must be at most 1000000, got 1e+308"),
    ({"trip_weight": 2e6}, "trip_weight: must be at most 1000000"),
    ({"join_ratio": 1e7}, "join_ratio: must be at most 1000000"),
])
def test_rolling_options_have_upper_bounds(knobs: dict[str, object], message: str) -> None:
    """A knob past its upper bound (max_bundle 8, minutes a day, weights 10^6) raises naming the knob and the bound."""
    from dispatch.meal import RollingHorizonOptions

    with pytest.raises(InvalidDispatchError) as err:
        RollingHorizonOptions(**knobs)  # type: ignore[arg-type]
    assert message in str(err.value)


def test_rolling_options_bounds_themselves_are_accepted() -> None:
    """Every knob at its upper bound is accepted, and the defaults stay within the bounds."""
    from dispatch.meal import MAX_BUNDLE, MAX_KNOB_MINUTES, MAX_KNOB_WEIGHT, MINUTE_KNOBS, RollingHorizonOptions

    top: dict[str, object] = {"max_bundle": MAX_BUNDLE}
    for name in ("frequency", "horizon", "courier_horizon", "size_window", "size_orders_window", "bundle_window",
                 "shift_window", "demand_window", "join_wait", "commit_ride"):
        top[name] = MAX_KNOB_MINUTES
    for name in ("travel_weight", "trip_weight", "pending_weight", "late_penalty", "order_value", "urgency_weight",
                 "join_ratio", "shift_weight"):
        top[name] = float(MAX_KNOB_WEIGHT)
    top.update({name: float(MAX_KNOB_MINUTES) for name in MINUTE_KNOBS})
    assert RollingHorizonOptions(**top)  # type: ignore[arg-type]
    assert RollingHorizonOptions().max_bundle == 4


def test_rolling_waits_for_a_busy_courier_instead_of_committing_to_it() -> None:
    """The order goes to the near courier still busy until 3: nothing is committed at 0, the match is made at 3;
    with `commit_busy` the busy courier is committed at once."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    o = order("o1", placed=0, ready=0)
    busy = courier("busy", (0, 0), free_at=3)
    far = courier("far", (0, 2000))
    policy = RollingHorizonMealPolicy(rules=RULES)
    assert policy.assign(0, [o], [busy, far]) == []
    assert [a.courier for a in policy.assign(3, [o], [busy, far])] == ["busy"]
    eager = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(commit_busy=True))
    assert [a.courier for a in eager.assign(0, [o], [busy, far])] == ["busy"]


def test_rolling_joins_a_spare_order_of_the_same_restaurant_when_short_of_couriers() -> None:
    """An order matched to a busy courier rides along with the courier leaving now from its restaurant; without
    joining it stays open."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    a, b = order("a", placed=0, ready=0), order("b", placed=0, ready=0, door=(500, 0))
    couriers = [courier("c1", (0, 0)), courier("c2", (0, 0), free_at=4)]
    joined = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(join_ratio=1.0, max_bundle=2))
    out = joined.assign(0, [a, b], couriers)
    assert len(out) == 1 and set(out[0].orders) == {"a", "b"}
    alone = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(join_ratio=1.0, join_wait=-1,
                                                                                max_bundle=2))
    assert [len(x.orders) for x in alone.assign(0, [a, b], couriers)] == [1]


def test_rolling_courier_ending_its_shift_takes_an_order_ready_before_its_off_time() -> None:
    """When short of couriers, a courier whose trip runs past its off-time (20) takes along a same-restaurant order
    ready at 19, past `join_wait`; a courier with a long shift, or the policy without `end_join`, leaves it open."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    first = order("o1", placed=0, ready=10, door=(0, 1000))
    later = order("o2", placed=0, ready=19, door=(0, 1200))
    busy = courier("c2", (0, 0), free_at=17, off=300)
    policy = RollingHorizonMealPolicy(rules=RULES)
    ending = policy.assign(10, [first, later], [courier("c1", (0, 0), off=20), busy])
    assert [(a.courier, a.orders) for a in ending] == [("c1", ("o1", "o2"))]
    staying = policy.assign(10, [first, later], [courier("c1", (0, 0), off=300), busy])
    assert [(a.courier, a.orders) for a in staying] == [("c1", ("o1",))]
    plain = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(end_join=False))
    assert [a.orders for a in plain.assign(10, [first, later], [courier("c1", (0, 0), off=20), busy])] == [("o1",)]


def test_rolling_splits_a_bundle_going_two_ways_with_an_idle_courier() -> None:
    """Four orders and three couriers make two bundles; the one whose doors lie apart is split with the courier the
    matching left idle, the one whose doors lie the same way rides together; without `split_idle` nothing splits."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    orders = [order("a1", ready=0, door=(0, 1000)), order("a2", ready=0, door=(0, 1100)),
              order("b1", ready=0, door=(0, -1000)), order("b2", ready=0, door=(1000, -1000))]
    couriers = [courier("c1", (0, 0)), courier("c2", (0, 0)), courier("c3", (0, 0))]
    split = RollingHorizonMealPolicy(rules=RULES).assign(0, orders, couriers)
    assert sorted(a.orders for a in split) == [("a1", "a2"), ("b1",), ("b2",)]
    assert len({a.courier for a in split}) == 3
    whole = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(split_idle=False))
    assert sorted(a.orders for a in whole.assign(0, orders, couriers)) == [("a1", "a2"), ("b1", "b2")]


def test_rolling_joined_bundle_keeps_every_order_within_the_maximum() -> None:
    """A spare order that would push a drop-off past the maximum click-to-door is not joined."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    a = order("a", placed=0, ready=80, door=(0, 400))
    b = order("b", placed=0, ready=80, door=(0, -400))
    couriers = [courier("c1", (0, 0), off=200), courier("c2", (0, 0), free_at=84, off=200)]
    policy = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(join_ratio=1.0, max_bundle=2))
    out = policy.assign(80, [a, b], couriers)
    assert out and all(len(x.orders) == 1 for x in out)


def test_rolling_prefers_a_free_courier_over_a_slightly_earlier_busy_one() -> None:
    """Without the trip cost, a waiting order goes now to a free courier picking up at 8 rather than waiting for a
    busy one (free at 5) picking up at 7; without the pending cost too it waits for the busy one, and with the trip
    cost (the default) as well: the free courier's 6-minute ride would tie it up 4 minutes longer."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    o = order("o1", placed=0, ready=0)
    couriers = [courier("busy", (0, 0), free_at=5), courier("free", (0, 600))]
    pending = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(trip_weight=0.0))
    assert [a.courier for a in pending.assign(0, [o], couriers)] == ["free"]
    plain = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(trip_weight=0.0, pending_weight=0.0))
    assert plain.assign(0, [o], couriers) == []
    assert RollingHorizonMealPolicy(rules=RULES).assign(0, [o], couriers) == []


def test_rolling_looks_ahead_to_couriers_beyond_the_order_horizon() -> None:
    """A courier next door free in 26 minutes beats one 40 minutes away, so nothing is committed at 0; with the
    courier horizon cut to 25 the far courier is sent at once."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    o = order("o1", placed=0, ready=0)
    couriers = [courier("later", (0, 0), free_at=26), courier("far", (0, 4000))]
    assert RollingHorizonMealPolicy(rules=RULES).assign(0, [o], couriers) == []
    short = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(courier_horizon=25))
    assert [a.courier for a in short.assign(0, [o], couriers)] == ["far"]


def test_rolling_bundles_orders_whose_doors_lie_the_same_way() -> None:
    """Four orders for two couriers ride in pairs by direction (north, south); with no bundle window consecutive
    orders pair up across directions."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    orders = [order("a", ready=0, door=(0, 500)), order("b", ready=0, door=(0, -500)),
              order("c", ready=1, door=(0, 600)), order("d", ready=1, door=(0, -600))]
    couriers = [courier("c1", (0, 0)), courier("c2", (0, 0))]
    policy = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(max_bundle=2))
    assert {frozenset(a.orders) for a in policy.assign(0, orders, couriers)} == {frozenset("ac"), frozenset("bd")}
    plain = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(max_bundle=2, bundle_window=0))
    assert {frozenset(a.orders) for a in plain.assign(0, orders, couriers)} == {frozenset("ab"), frozenset("cd")}


def test_rolling_joins_the_spare_order_going_the_same_way() -> None:
    """The leaving courier takes along the spare order whose door lies beyond its own, not the earlier-ready one
    in the opposite direction."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    orders = [order("a", ready=0, door=(0, 500)), order("b", ready=3, door=(0, -500)),
              order("c", ready=4, door=(0, 600))]
    couriers = [courier(f"c{k}", (0, 0)) for k in range(3)]
    policy = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(join_ratio=1.0, max_bundle=2))
    out = policy.assign(0, orders, couriers)
    assert [set(a.orders) for a in out] == [{"a", "c"}]


def test_rolling_keeps_orders_apart_when_bundling_adds_too_much_delay() -> None:
    """Two orders to opposite doors 15 minutes out would cost the second 36 minutes in a bundle: with the default
    limit the one courier takes one order alone; without a limit it takes both."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    orders = [order("a", ready=0, door=(0, 1500)), order("b", ready=0, door=(0, -1500))]
    options = RollingHorizonOptions(max_bundle=2, join_wait=-1)
    policy = RollingHorizonMealPolicy(rules=RULES, options=options)
    assert [len(a.orders) for a in policy.assign(0, orders, [courier("c1", (0, 0))])] == [1]
    unlimited = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(
        max_bundle=2, join_wait=-1, bundle_max_delay=100.0))
    assert [set(a.orders) for a in unlimited.assign(0, orders, [courier("c1", (0, 0))])] == [{"a", "b"}]


def test_rolling_sends_the_courier_whose_shift_ends_first() -> None:
    """With a shift cost, of two couriers side by side the one going off at 30 takes the order and the one on until
    200 is kept; with none (the default) the tie goes to the first listed (the long shift)."""
    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions

    o = order("o1", placed=0, ready=0)
    couriers = [courier("long", (0, 0), off=200), courier("short", (0, 0), off=30)]
    shift = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(shift_weight=0.05))
    assert [a.courier for a in shift.assign(0, [o], couriers)] == ["short"]
    assert [a.courier for a in RollingHorizonMealPolicy(rules=RULES).assign(0, [o], couriers)] == ["long"]


def test_meal_move_and_plan_validation() -> None:
    """A move needs a courier and a finite target; a plan moves a courier at most once and never one it assigns."""
    from dispatch.meal import MealMove, MealPlan

    with pytest.raises(InvalidDispatchError, match="courier"):
        MealMove(courier="", target=(0, 0))
    with pytest.raises(InvalidDispatchError, match="target"):
        MealMove(courier="c1", target=(0, float("nan")))
    move = MealMove(courier="c1", target=(0, 0))
    with pytest.raises(InvalidDispatchError, match="moved twice"):
        MealPlan(moves=(move, MealMove(courier="c1", target=(5, 5))))
    with pytest.raises(InvalidDispatchError, match="both assigned and moved"):
        MealPlan(assignments=(MealAssignment(courier="c1", restaurant="r1", orders=("o1",)),), moves=(move,))


def test_rolling_plan_sends_a_matched_courier_toward_its_restaurant() -> None:
    """An order ready in 30 minutes is matched to the free courier 10 minutes away but not committed; the plan sends
    that courier toward the restaurant meanwhile (couriers staying put: no move)."""
    from dispatch.meal import MealMove, RollingHorizonMealPolicy, RollingHorizonOptions

    o = order("o1", ready=30, pickup=(0, 0))
    c = courier("c1", (0, 1000))
    plan = RollingHorizonMealPolicy(rules=RULES).plan(0, [o], [c], [o])
    assert plan.assignments == () and plan.moves == (MealMove(courier="c1", target=(0, 0)),)
    stay = RollingHorizonMealPolicy(rules=RULES, options=RollingHorizonOptions(move_to_match=False,
                                                                               move_to_demand=False))
    assert stay.plan(0, [o], [c], [o]).moves == ()


def test_rolling_plan_moves_idle_couriers_toward_recent_demand() -> None:
    """With no open order, an idle courier rides to the restaurant of the last two hours' orders: not to one whose
    orders are older than the demand window, nor to one whose order is not placed yet; a busy courier stays."""
    from dispatch.meal import MealMove, RollingHorizonMealPolicy

    recent = [order(f"a{k}", placed=200 + k, ready=210 + k, pickup=(3000, 0), restaurant="ra") for k in range(2)]
    old = [order(f"b{k}", placed=10 + k, ready=20 + k, pickup=(0, 3000), restaurant="rb") for k in range(5)]
    future = [order(f"f{k}", placed=241, ready=250, pickup=(0, 3000), restaurant="rb") for k in range(3)]
    idle, busy = courier("idle", (0, 2900), off=400), courier("busy", (0, 0), free_at=250, off=400)
    policy = RollingHorizonMealPolicy(rules=RULES)
    plan = policy.plan(240, [], [idle, busy], [*old, *recent, *future])
    assert plan.moves == (MealMove(courier="idle", target=(3000.0, 0.0)),)
    assert policy.plan(240, [], [idle, busy], old).moves == ()


def test_rolling_plan_spreads_idle_couriers_over_demand() -> None:
    """Two idle couriers and recent demand at two restaurants: one courier to each, each to the nearer one (a
    courier already there stays)."""
    from dispatch.meal import MealMove, RollingHorizonMealPolicy

    placed = [order("a", placed=50, ready=60, pickup=(5000, 0), restaurant="ra"),
              order("b", placed=51, ready=61, pickup=(0, 5000), restaurant="rb"),
              order("c", placed=52, ready=62, pickup=(0, 5000), restaurant="rb")]
    couriers = [courier("west", (0, 5000), off=300), courier("east", (4000, 100), off=300)]
    plan = RollingHorizonMealPolicy(rules=RULES).plan(60, [], couriers, placed)
    assert plan.moves == (MealMove(courier="east", target=(5000.0, 0.0)),)


def test_rolling_plan_without_moves_is_assign() -> None:
    """With both kinds of move off, `plan` commits exactly what `assign` does and moves nobody; `meal_policy` builds
    each named policy and names the choices when the name is unknown."""
    from dispatch.meal import (
        MEAL_POLICIES,
        GreedyMealPolicy,
        RollingHorizonMealPolicy,
        RollingHorizonOptions,
        meal_policy,
    )

    orders = [order("a", ready=0), order("b", ready=2, door=(300, 0)), order("c", ready=20, door=(0, -400))]
    couriers = [courier("c1", (0, 100)), courier("c2", (0, 900)), courier("c3", (0, 0), free_at=5)]
    stay = meal_policy("rolling-stay", RULES)
    assert isinstance(stay, RollingHorizonMealPolicy)
    plan = stay.plan(0, orders, couriers, orders)
    assert plan.moves == () and list(plan.assignments) == stay.assign(0, orders, couriers) != []
    assert 0 < stay.options.trip_weight < RollingHorizonOptions().trip_weight  # its own, lighter trip cost
    assert isinstance(meal_policy("greedy", RULES), GreedyMealPolicy) and MEAL_POLICIES[0] == "rolling"
    with pytest.raises(InvalidDispatchError, match="rolling, rolling-stay, greedy"):
        meal_policy("fastest", RULES)


def test_rolling_plan_rides_toward_a_ready_order_and_commits_within_a_minute_of_it() -> None:
    """A ready order and a free courier 5 minutes away: `plan` sends the courier toward the restaurant and commits
    nothing (a courier freed nearer could still take the order), and commits once the courier is a minute away;
    `assign` (no moves), `commit_ride=-1` and couriers that stay commit at once."""
    from dispatch.meal import MealMove, RollingHorizonMealPolicy, RollingHorizonOptions

    o = order("o1", ready=0, pickup=(0, 0))
    far, near = courier("c1", (0, 500)), courier("c1", (0, 90))
    policy = RollingHorizonMealPolicy(rules=RULES)
    plan = policy.plan(0, [o], [far], [o])
    assert plan.assignments == () and plan.moves == (MealMove(courier="c1", target=(0, 0)),)
    assert [a.orders for a in policy.plan(4, [o], [near], [o]).assignments] == [("o1",)]
    assert [a.orders for a in policy.assign(0, [o], [far])] == [("o1",)]
    for options in (RollingHorizonOptions(commit_ride=-1), RollingHorizonOptions(move_to_match=False)):
        bound = RollingHorizonMealPolicy(rules=RULES, options=options).plan(0, [o], [far], [o])
        assert [a.orders for a in bound.assignments] == [("o1",)] and bound.moves == ()


def test_rolling_plan_commits_at_once_an_order_near_the_limit() -> None:
    """An order placed at 0 whose predicted drop-off (71) falls within `bind_margin` (25) of the 90-minute limit is
    committed as the courier leaves, 5 minutes away; the same order placed at 20 (drop-off 51 minutes after it) is
    not."""
    from dispatch.meal import RollingHorizonMealPolicy

    c = courier("c1", (0, 500), off=200)
    policy = RollingHorizonMealPolicy(rules=RULES)
    urgent, relaxed = order("o1", placed=0, ready=50), order("o1", placed=20, ready=50)
    assert [a.orders for a in policy.plan(55, [urgent], [c], [urgent]).assignments] == [("o1",)]
    assert policy.plan(55, [relaxed], [c], [relaxed]).assignments == ()
