"""Greedy and batch policies, CO2 reporting and the dispatch data types, on a small hand-made city."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from dispatch.errors import DispatchError, InvalidOrderError
from dispatch.policy import BatchPolicy, DispatchPolicy, GreedyPolicy, ReoptimizeOptions, ReoptimizePolicy
from dispatch.state import (
    DEFAULT_CO2_G_PER_KM,
    Courier,
    Decisions,
    DispatchOrder,
    DispatchState,
    InvalidDispatchError,
    TravelMatrices,
)
from routing.matrix import HaversineEngine

STORE = "s1"
SPEED_MPS = 4
# Location 0 is the store; the others are doors, x/y in metres (Manhattan distances, 4 m/s by bike, 10 by car).
POINTS: tuple[tuple[int, int], ...] = (
    (0, 0),  # 0 store
    (1000, 0),  # 1 east
    (1100, 0),  # 2 east, next door
    (1000, 100),  # 3 east, next door
    (-1000, 0),  # 4 west
    (0, 2000),  # 5 north, far
    (3000, 0),  # 6 far east
    (-200, 0),  # 7 near the store
)


def grid_travel(points: Sequence[tuple[int, int]] = POINTS, unreachable: Sequence[int] = ()) -> TravelMatrices:
    """Manhattan metres; bike 4 m/s, car 10 m/s; `unreachable` locations cannot be reached from anywhere."""
    p = np.asarray(points, dtype=np.int64)
    metres = np.abs(p[:, None, :] - p[None, :, :]).sum(axis=2)
    durations, distances = {}, {}
    for profile, speed in (("bike", SPEED_MPS), ("ebike", SPEED_MPS), ("car", 10)):
        d = (metres + speed - 1) // speed
        m = metres.copy()
        for u in unreachable:
            d[:, u] = 2**31 - 1
            m[:, u] = 2**31 - 1
            d[u, u] = m[u, u] = 0
        durations[profile], distances[profile] = d, m
    return TravelMatrices(durations=durations, distances=distances)


def order(oid: str, location: int, *, placed_at: int = 0, ready_at: int | None = None, promise_by: int = 3600,
          load: int = 1, is_return: bool = False, service_s: int = 0) -> DispatchOrder:
    return DispatchOrder(id=oid, store=STORE, location=location, placed_at=placed_at,
                         ready_at=placed_at if ready_at is None else ready_at, promise_by=promise_by, load=load,
                         is_return=is_return, service_s=service_s)


def courier(cid: str, *, position: int = 0, capacity: int = 4, profile: str = "bike", home: str | None = STORE,
            **kwargs: object) -> Courier:
    fields: dict[str, object] = {"shift_start": 0, "shift_end": 8 * 3600, **kwargs}
    return Courier(id=cid, position=position, capacity=capacity, profile=profile, home_store=home,
                   **fields)  # type: ignore[arg-type]


def state(orders: Sequence[DispatchOrder], couriers: Sequence[Courier], *, now: int = 0, tick_s: int = 60,
          travel: TravelMatrices | None = None, **kwargs: object) -> DispatchState:
    return DispatchState(now=now, store_id=STORE, store_location=0, orders=tuple(orders), couriers=tuple(couriers),
                         travel=travel or grid_travel(), tick_s=tick_s, **kwargs)  # type: ignore[arg-type]


def accounted(s: DispatchState, d: Decisions) -> bool:
    """Every order is in exactly one trip or unassigned with a non-empty reason."""
    planned = [oid for t in d.all_trips for oid in t.order_ids]
    reasons = [u.order_id for u in d.unassigned if u.reason]
    return sorted(planned + reasons) == sorted(o.id for o in s.orders)


def test_greedy_sends_nearest_idle_courier_first_come_first_served() -> None:
    """Greedy gives the oldest order to the courier that reaches the store first, the next to the next one."""
    s = state([order("late", 1, placed_at=30), order("first", 4, placed_at=10)],
              [courier("far", position=6, home=None), courier("here", position=0), courier("near", position=7,
                                                                                            home=None)], now=60)
    d = GreedyPolicy().decide(s)
    assert {t.courier_id: t.order_ids for t in d.trips} == {"here": ("first",), "near": ("late",)}
    assert d.tentative == () and d.unassigned == ()


def test_greedy_never_batches() -> None:
    """Greedy sends one order per trip even when the doors are next to each other."""
    s = state([order("a", 1), order("b", 2), order("c", 3)], [courier(f"c{i}") for i in range(2)])
    d = GreedyPolicy().decide(s)
    assert sorted(len(t.order_ids) for t in d.trips) == [1, 1]
    assert d.unassigned_reasons == {"c": "no_idle_courier"}
    assert accounted(s, d)


def test_greedy_waits_for_picking_and_leaves_when_ready() -> None:
    """An order picked after the next tick stays open as not_ready; one picked within the tick leaves then."""
    s = state([order("slow", 1, ready_at=500), order("soon", 4, ready_at=30)], [courier("a"), courier("b")])
    d = GreedyPolicy().decide(s)
    assert d.unassigned_reasons == {"slow": "not_ready"}
    (trip,) = d.trips
    assert trip.order_ids == ("soon",) and trip.departure == 30 and trip.etas == (30 + 250,)


def test_greedy_reasons_for_orders_it_cannot_serve() -> None:
    """Too big for every courier, unreachable, or a return with only free-floating couriers: each gets a reason."""
    travel = grid_travel(unreachable=[5])
    s = state([order("big", 1, load=9), order("island", 5), order("back", 4, is_return=True)],
              [courier("ff", home=None)], travel=travel)
    d = GreedyPolicy().decide(s)
    assert d.unassigned_reasons == {"big": "over_capacity", "island": "unreachable", "back": "no_store_courier"}


def test_batch_holds_an_order_until_hold_s_elapses() -> None:
    """A lone ready order waits (held_for_batching) until hold_s after picking, then leaves."""
    policy = BatchPolicy(hold_s=120, max_orders=3)
    orders = [order("a", 1, ready_at=0, promise_by=3600)]
    held = policy.decide(state(orders, [courier("c")], now=60))
    assert held.unassigned_reasons == {"a": "held_for_batching"} and held.trips == ()
    gone = policy.decide(state(orders, [courier("c")], now=120))
    assert [t.order_ids for t in gone.trips] == [("a",)]


def test_batch_sends_a_bundle_as_soon_as_it_forms() -> None:
    """Nearby ready orders leave together at once when they fill a bundle, far ones keep waiting."""
    policy = BatchPolicy(hold_s=600, max_orders=2, radius_s=60)
    s = state([order("a", 1), order("b", 2, placed_at=5), order("w", 4, placed_at=6)],
              [courier("c1"), courier("c2")], now=10)
    d = policy.decide(s)
    assert [t.order_ids for t in d.trips] == [("a", "b")]
    assert d.unassigned_reasons == {"w": "held_for_batching"}


def test_batch_does_not_hold_an_order_whose_promise_is_at_risk() -> None:
    """An order that would be late if it waited one more tick leaves at once, even alone."""
    s = state([order("a", 1, promise_by=300)], [courier("c")], now=0)
    d = BatchPolicy(hold_s=600).decide(s)
    assert [t.order_ids for t in d.trips] == [("a",)]


def test_co2_is_km_times_grams_per_km_of_each_profile() -> None:
    """Each trip's CO2 is its km × its profile's g/km, and the decisions add every trip up."""
    co2 = {"car": 180.0, "ebike": 5.0, "bike": 0.0}
    s = state([order("a", 1), order("b", 4), order("c", 5)],
              [courier("car", profile="car"), courier("eb", profile="ebike"), courier("bk", profile="bike")],
              co2_g_per_km=co2)
    d = GreedyPolicy().decide(s)
    assert len(d.trips) == 3
    for t in d.trips:
        assert t.co2_g == pytest.approx(t.km * co2[t.profile])
    assert d.co2_g == pytest.approx(sum(t.km * co2[t.profile] for t in d.trips))
    assert d.km == pytest.approx(sum(t.distance_m for t in d.trips) / 1000) and d.km > 0
    car = next(t for t in d.trips if t.profile == "car")
    assert car.distance_m == 2000 and car.co2_g == pytest.approx(360.0)


def test_a_return_is_brought_back_to_the_store() -> None:
    """A return trip collects at the door within its window and ends back at the store."""
    s = state([order("r", 1, ready_at=0, promise_by=600, is_return=True, service_s=30)], [courier("c")])
    (trip,) = GreedyPolicy().decide(s).trips
    assert trip.ends_at_store and trip.etas == (250,) and trip.end_at == 250 + 30 + 250
    assert trip.distance_m == 2000


def test_every_policy_fits_the_protocol_and_accounts_for_every_order() -> None:
    """Greedy, batch and reoptimize all decide through DispatchPolicy and leave no order unaccounted for."""
    policies: list[DispatchPolicy] = [GreedyPolicy(), BatchPolicy(hold_s=60),
                                      ReoptimizePolicy(options=ReoptimizeOptions(iterations=20, time_limit_s=None))]
    s = state([order("a", 1), order("b", 2, ready_at=900), order("c", 4), order("d", 5, load=9)],
              [courier("c1"), courier("c2", home=None, position=6)], now=0)
    for policy in policies:
        assert accounted(s, policy.decide(s))


@pytest.mark.parametrize("seed", range(20))
def test_greedy_and_batch_decisions_pass_the_full_check_they_skip(seed: int) -> None:
    """Greedy and batch return `Decisions.trusted` (their waiting orders unchecked); on random busy states the same
    parts pass the constructor's full check, and every order is accounted for once."""
    rng = np.random.default_rng(seed)
    placed = rng.integers(0, 600, size=60).tolist()
    orders = [order(f"o{k}", int(rng.integers(1, len(POINTS))), placed_at=placed[k],
                    ready_at=placed[k] + int(rng.integers(0, 900)), load=int(rng.integers(1, 4)),
                    is_return=bool(rng.random() < 0.1)) for k in range(int(rng.integers(5, 60)))]
    couriers = [courier(f"c{k}", capacity=int(rng.integers(2, 7)), position=int(rng.integers(0, len(POINTS))),
                        home=STORE if rng.random() < 0.7 else None) for k in range(int(rng.integers(1, 6)))]
    s = state(orders, couriers, now=int(rng.integers(0, 900)))
    for policy in (GreedyPolicy(), BatchPolicy(hold_s=int(rng.integers(0, 300)), max_orders=3)):
        d = policy.decide(s)
        checked = Decisions(now=d.now, policy=d.policy, trips=d.trips, tentative=d.tentative, carried=d.carried,
                            unassigned=d.unassigned, backend=d.backend)
        assert checked == d and accounted(s, d)


def test_carried_trips_are_restated_for_every_policy() -> None:
    """What a courier carries shows up as its carried trip, first and on it, under greedy and batch too."""
    s = state([order("x", 1), order("y", 4), order("new", 2)],
              [courier("busy", status="en_route", position=0, carrying=("y", "x")), courier("free")])
    for policy in (GreedyPolicy(), BatchPolicy(hold_s=0)):
        d = policy.decide(s)
        (carried,) = d.carried
        assert carried.courier_id == "busy" and carried.order_ids == ("y", "x")
        assert [t.courier_id for t in d.trips] == ["free"]


def test_travel_matrices_from_engines_and_validation() -> None:
    """TravelMatrices can be built from any TravelTimes engine and rejects bad matrices by field."""
    points = [(-8.611, 41.1486), (-8.62, 41.15), (-8.60, 41.14)]
    engine = HaversineEngine(points, speed_kmh=15.0)
    tm = TravelMatrices.from_engines({"bike": engine}, [0, 1, 2])
    assert tm.n_locations == 3 and tm.duration("bike", 0, 0) == 0 and tm.distance("bike", 0, 1) > 0
    with pytest.raises(InvalidDispatchError, match=r"^travel.durations\['bike'\]: must be a square"):
        TravelMatrices(durations={"bike": np.zeros((2, 3), dtype=int)}, distances={"bike": np.zeros((2, 3))})
    with pytest.raises(InvalidDispatchError, match=r"^travel\.distances: must cover the same profiles"):
        TravelMatrices(durations={"bike": np.zeros((2, 2), dtype=int)}, distances={})


@pytest.mark.parametrize(("build", "message"), [
    (lambda: order("a", 1, placed_at=10, ready_at=5), "^ready_at: picking cannot end"),
    (lambda: order("a", -1), "^location: must be at least 0"),
    (lambda: order("a", 1, ready_at=100, promise_by=50, is_return=True), "^promise_by: a return's collection"),
    (lambda: courier("c", capacity=0), "^courier c: capacity: must be at least 1"),
    (lambda: courier("c", status="idle", carrying=("a",)), "^courier c: carrying: a courier that is idle"),
    (lambda: courier("c", status="returning", home=None), "^courier c: status: a free-floating courier"),
    (lambda: state([order("a", 1)], [courier("c", status="en_route", carrying=("zz",))]),
     r"^couriers\[0\].carrying: unknown order 'zz'"),
    (lambda: state([], [courier("c", profile="car")], co2_g_per_km={"bike": 0.0}),
     "^co2_g_per_km: needs a figure >= 0 for profile 'car'"),
    (lambda: state([order("a", 99)], []), r"^orders\[0\].location: 99 is outside the 8 locations"),
    (lambda: BatchPolicy(hold_s=-1), "^hold_s: must be an integer >= 0"),
])
def test_invalid_inputs_name_the_field(build: object, message: str) -> None:
    """Bad orders, couriers, states and policy options raise a DispatchError naming the field."""
    with pytest.raises(DispatchError, match=message) as info:
        build()  # type: ignore[operator]
    assert isinstance(info.value, InvalidOrderError | InvalidDispatchError)


def test_default_co2_figures() -> None:
    """The default CO2 table has car 180, e-bike 5 and 0 for bike and foot (g/km)."""
    assert DEFAULT_CO2_G_PER_KM["car"] == 180.0 and DEFAULT_CO2_G_PER_KM["ebike"] == 5.0
    assert DEFAULT_CO2_G_PER_KM["bike"] == DEFAULT_CO2_G_PER_KM["foot"] == 0.0
