"""The per-store Dispatcher: order and courier life cycles, commits, reopening, and a small event-driven run."""

from __future__ import annotations

import heapq
import itertools

import pytest

from dispatch.engine import CourierEvent, Dispatcher
from dispatch.errors import InvalidDispatchError
from dispatch.policy import BatchPolicy, DispatchPolicy, GreedyPolicy, ReoptimizeOptions, ReoptimizePolicy
from dispatch.state import Courier, Decisions, DispatchOrder
from tests.dispatch.test_policy import STORE, courier, grid_travel, order

FAST = ReoptimizeOptions(iterations=20, time_limit_s=None, seed=1)


def dispatcher(policy: DispatchPolicy, *couriers: Courier, tick_s: int = 60) -> Dispatcher:
    return Dispatcher(policy, store_id=STORE, store_location=0, travel=grid_travel(), tick_s=tick_s,
                      couriers=couriers)


def test_order_and_courier_life_cycle() -> None:
    """A new order is committed to an idle courier, picked up, delivered and the courier comes back idle."""
    d = dispatcher(GreedyPolicy(), courier("a"))
    decisions = d.on_order(order("o1", 1, placed_at=10), now=10)
    assert [t.order_ids for t in decisions.trips] == [("o1",)]
    assert d.couriers["a"].status == "assigned" and d.couriers["a"].carrying == ("o1",)
    assert d.open_orders == ()
    d.on_courier_event("a", "picked_up", 10)
    assert d.couriers["a"].status == "en_route"
    d.on_courier_event("a", "delivered", 260, order_id="o1")
    assert d.couriers["a"].status == "returning" and d.completed == {"o1": 260} and d.orders == {}
    d.on_courier_event("a", "at_store", 510)
    assert d.couriers["a"].status == "idle" and d.couriers["a"].position == 0


def test_tentative_trips_do_not_bind_couriers() -> None:
    """Only trips that start now change courier state; a tentative trip leaves the order open for the next tick."""
    d = dispatcher(ReoptimizePolicy(options=FAST), courier("a"))
    decisions = d.on_order(order("later", 1, ready_at=900), now=0)
    assert decisions.trips == () and [t.order_ids for t in decisions.tentative] == [("later",)]
    assert d.couriers["a"].status == "idle" and [o.id for o in d.open_orders] == ["later"]
    committed = d.tick(870)
    assert [t.order_ids for t in committed.trips] == [("later",)] and d.couriers["a"].carrying == ("later",)


def test_the_next_decision_sees_the_tentative_plan_which_survives_a_snapshot() -> None:
    """After a decision, the state holds its tentative trips as `plan` (committed ones are not in it), and the
    plan is part of the snapshot: a restored dispatcher decides from the same plan."""
    d = dispatcher(ReoptimizePolicy(options=FAST), courier("a"), courier("b"))
    d.on_order(order("later", 1, ready_at=900), now=0)
    d.on_order(order("west", 4, ready_at=1200), now=10)
    plan = dict(d.state().plan)
    assert sorted(oid for oids in plan.values() for oid in oids) == ["later", "west"]
    again = dispatcher(ReoptimizePolicy(options=FAST), courier("a"), courier("b"))
    again.restore(d.snapshot())
    assert dict(again.state().plan) == plan
    assert again.tick(870) == d.tick(870)
    assert "later" not in {oid for oids in d.state().plan.values() for oid in oids}


def test_preview_decides_with_an_order_without_keeping_anything() -> None:
    """A preview plans the extra order as a real decision would, and leaves orders, couriers, the plan, the time
    and the version as they were; a duplicate or foreign order is refused as on_order refuses it."""
    d = dispatcher(ReoptimizePolicy(options=FAST), courier("a"), courier("b"))
    d.on_order(order("later", 1, ready_at=900), now=10)
    before = (d.orders, d.couriers, dict(d.state().plan), d.now, d.version, d.last)
    preview = d.preview(order("probe", 4), 20)
    assert preview.trip_of("probe") is not None and preview.trip_of("later") is not None
    assert (d.orders, d.couriers, dict(d.state().plan), d.now, d.version, d.last) == before
    with pytest.raises(InvalidDispatchError, match=r"^order.id: duplicate"):
        d.preview(order("later", 2), 20)
    with pytest.raises(InvalidDispatchError, match=r"^now: must be integer seconds >= 10"):
        d.preview(order("probe", 4), 5)


def test_undelivered_orders_reopen_when_the_courier_is_back() -> None:
    """Orders still on board when a courier gets back to the store are open again, never lost."""
    d = dispatcher(GreedyPolicy(), courier("a", capacity=4))
    d.on_order(order("o1", 1), now=0)
    d.on_courier_event("a", "picked_up", 0)
    d.on_courier_event("a", "at_store", 600)
    assert [o.id for o in d.open_orders] == ["o1"] and d.couriers["a"].status == "idle"
    again = d.tick(600)
    assert [t.order_ids for t in again.trips] == [("o1",)]


def test_going_off_shift_reopens_a_trip_not_yet_picked_up() -> None:
    """A courier going off before leaving hands its trip back; one with parcels on board cannot go off."""
    d = dispatcher(GreedyPolicy(), courier("a"), courier("b"))
    d.on_order(order("o1", 1), now=0)
    d.on_order(order("o2", 4), now=0)
    d.on_courier_event("a", "off", 5)
    assert [o.id for o in d.open_orders] == ["o1"] and d.couriers["a"].status == "off"
    d.on_courier_event("b", "picked_up", 5)
    with pytest.raises(InvalidDispatchError, match=r"^courier b: off: the courier still has parcels on board"):
        d.on_courier_event("b", "off", 6)
    d.on_courier_event("a", "on", 7, location=0)
    assert d.couriers["a"].status == "idle"


def test_a_return_is_done_when_it_reaches_the_store() -> None:
    """A collected return stays on the courier until it is back at the store, then it is completed."""
    d = dispatcher(GreedyPolicy(), courier("a"))
    d.on_order(order("r1", 1, is_return=True, promise_by=900), now=0)
    d.on_courier_event("a", "picked_up", 0)
    d.on_courier_event("a", "delivered", 250, order_id="r1")
    assert d.completed == {} and d.couriers["a"].status == "returning"
    d.on_courier_event("a", "at_store", 500)
    assert d.completed == {"r1": 500}


def test_free_floating_courier_is_idle_where_it_delivered() -> None:
    """A free-floating courier with nothing left is idle at its last door, not sent back to the store."""
    d = dispatcher(GreedyPolicy(), courier("f", home=None, position=7))
    d.on_order(order("o1", 4), now=0)
    d.on_courier_event("f", "picked_up", 50)
    d.on_courier_event("f", "delivered", 300, order_id="o1")
    f = d.couriers["f"]
    assert f.status == "idle" and f.position == 4 and f.available_at == 300


@pytest.mark.parametrize(("action", "message"), [
    (lambda d: d.tick(-1), "^now: time went back from 0 to -1"),
    (lambda d: d.on_courier_event("zz", "position", 0, location=1), "^courier_id: unknown courier 'zz'"),
    (lambda d: d.on_courier_event("a", "teleport", 0), "^event: must be one of"),
    (lambda d: d.on_courier_event("a", "position", 0), "^courier a: position: needs a location"),
    (lambda d: d.on_courier_event("a", "picked_up", 0), "^courier a: picked_up: the courier is idle"),
    (lambda d: d.on_courier_event("a", "delivered", 0, order_id="x"), "^courier a: delivered: order 'x' is not"),
    (lambda d: d.on_order(DispatchOrder(id="x", store="other", location=1, ready_at=0, promise_by=9), 0),
     "^order.store: 'other' is not this store"),
    (lambda d: d.cancel("nope", 0), "^order_id: unknown order 'nope'"),
])
def test_bad_calls_name_the_problem(action: object, message: str) -> None:
    """Bad times, unknown couriers or orders and impossible events raise InvalidDispatchError and change nothing."""
    d = dispatcher(GreedyPolicy(), courier("a"))
    with pytest.raises(InvalidDispatchError, match=message):
        action(d)  # type: ignore[operator]
    assert d.couriers["a"].status == "idle" and d.orders == {}


def test_duplicate_orders_are_refused_and_cancel_withdraws_open_ones() -> None:
    """An order id is taken once; cancel removes an open order but not one already on a courier."""
    d = dispatcher(GreedyPolicy())
    d.on_order(order("o1", 1), now=0)
    with pytest.raises(InvalidDispatchError, match=r"^order\.id: duplicate order id 'o1'"):
        d.on_order(order("o1", 1), now=0)
    d.cancel("o1", now=1)
    assert d.orders == {}
    d.add_courier(courier("a"))
    d.on_order(order("o2", 1), now=2)
    with pytest.raises(InvalidDispatchError, match=r"^order_id: order 'o2' is already on a courier"):
        d.cancel("o2", now=3)


def _scenario() -> list[DispatchOrder]:
    doors = [1, 2, 3, 4, 7, 1, 6, 2, 4, 3, 7, 5]
    orders = [order(f"o{i:02d}", door, placed_at=45 * i, ready_at=45 * i + 120, promise_by=45 * i + 1800,
                    service_s=30) for i, door in enumerate(doors)]
    orders.append(order("ret", 3, placed_at=100, ready_at=400, promise_by=2400, is_return=True))
    return orders


def _simulate(policy: DispatchPolicy, tick_s: int = 60) -> tuple[Dispatcher, list[Decisions]]:
    """Drive a Dispatcher like a simulator: orders arrive, couriers follow committed trips to the second."""
    d = dispatcher(policy, courier("a", capacity=3), courier("b", capacity=3), courier("f", home=None, position=7),
                   tick_s=tick_s)
    seq = itertools.count()
    timeline: list[tuple[int, int, str, object]] = []
    for o in _scenario():
        heapq.heappush(timeline, (o.placed_at, next(seq), "order", o))
    for t in range(0, 4 * 3600, tick_s):
        heapq.heappush(timeline, (t, next(seq), "tick", None))
    decisions: list[Decisions] = []
    while timeline and (d.orders or any(kind == "order" for _, _, kind, _ in timeline)):
        t, _, kind, what = heapq.heappop(timeline)
        if kind == "event":
            cid, event, oid = what  # type: ignore[misc]
            ev: CourierEvent = event
            d.on_courier_event(cid, ev, t, order_id=oid)
            _check_kept(d)
            continue
        made = d.on_order(what, t) if kind == "order" else d.tick(t)  # type: ignore[arg-type]
        _check_kept(d)
        decisions.append(made)
        planned = [oid for trip in made.all_trips for oid in trip.order_ids]
        reasons = [u.order_id for u in made.unassigned if u.reason]
        assert sorted(planned + reasons) == sorted(d.orders), "an order is neither planned nor unassigned"
        for trip in made.trips:
            assert trip.dispatch_at >= t
            heapq.heappush(timeline, (trip.departure, next(seq), "event", (trip.courier_id, "picked_up", None)))
            for oid, eta in zip(trip.order_ids, trip.etas, strict=True):
                done = eta + d.orders[oid].service_s
                heapq.heappush(timeline, (done, next(seq), "event", (trip.courier_id, "delivered", oid)))
            if trip.ends_at_store:
                heapq.heappush(timeline, (trip.end_at, next(seq), "event", (trip.courier_id, "at_store", None)))
    return d, decisions


@pytest.mark.parametrize("policy", [GreedyPolicy(), BatchPolicy(hold_s=180, max_orders=3),
                                    ReoptimizePolicy(options=FAST)], ids=["greedy", "batch", "reoptimize"])
def test_every_order_is_served_under_every_policy(policy: DispatchPolicy) -> None:
    """In an event-driven run every order is always accounted for, and all are delivered (returns reach the store)."""
    d, decisions = _simulate(policy)
    assert sorted(d.completed) == sorted(o.id for o in _scenario())
    assert d.orders == {} and all(c.status in ("idle", "returning") for c in d.couriers.values())
    assert any(t.co2_g == 0 and t.km > 0 for ds in decisions for t in ds.trips)


def test_batching_rides_fewer_km_than_greedy() -> None:
    """On the same run, batch and reoptimize bundle orders and ride less than the one-order-per-trip greedy."""
    km = {}
    for name, policy in (("greedy", GreedyPolicy()), ("batch", BatchPolicy(hold_s=180, max_orders=3)),
                         ("reoptimize", ReoptimizePolicy(options=FAST))):
        _, decisions = _simulate(policy)
        km[name] = sum(t.km for ds in decisions for t in ds.trips)
    assert km["batch"] < km["greedy"] and km["reoptimize"] < km["greedy"]


def _fresh_queue(d: Dispatcher) -> list[str]:
    return [o.id for o in sorted(d.open_orders, key=lambda o: (o.placed_at, o.ready_at, o.id))]


def _check_kept(d: Dispatcher) -> None:
    """What the dispatcher keeps between changes equals what it would compute afresh: the queue and its
    columns, and the picking times of every tracked order that is not a return."""
    queue = d.queue_arrays()
    assert [o.id for o in queue.orders] == _fresh_queue(d)
    assert all(o is d.orders[o.id] for o in queue.orders)  # the latest object (a quote replaces it)
    assert queue.ready_at.tolist() == [o.ready_at for o in queue.orders]
    assert queue.locations.tolist() == [o.location for o in queue.orders]
    assert queue.service_s.tolist() == [o.service_s for o in queue.orders]
    assert [(u.order_id, u.reason) for u in queue.not_ready] == [(o.id, "not_ready") for o in queue.orders]
    assert d.picking().tolist() == sorted(o.ready_at for o in d.orders.values() if not o.is_return)


def test_the_kept_queue_follows_every_change_of_orders_and_couriers() -> None:
    """`queue()` (kept between changes) always equals the open orders sorted first come, first served, with its
    columns and the picking times alongside: after new orders, quotes, commits, pick-ups, deliveries, reopening,
    going off, cancelling and a restore."""
    d = dispatcher(GreedyPolicy(), courier("a"), courier("b"))
    steps = [
        lambda: d.on_order(order("o1", 1, placed_at=0, ready_at=900), now=0),
        lambda: d.on_order(order("o2", 4, placed_at=5), now=5),
        lambda: d.on_order(order("o3", 2, placed_at=6, ready_at=950), now=6),
        lambda: d.set_quote("o1", 1500),
        lambda: d.on_courier_event("b", "off", 7),
        lambda: d.on_courier_event("a", "picked_up", 8),
        lambda: d.on_courier_event("a", "at_store", 20),
        lambda: d.cancel("o3", 30),
        lambda: d.tick(900),
        lambda: d.on_courier_event("a", "picked_up", 905),
        lambda: d.on_courier_event("a", "delivered", 1100, order_id=d.couriers["a"].carrying[0]),
        lambda: d.on_order(order("o4", 3, placed_at=1110, ready_at=2000), now=1110),
        lambda: d.restore(d.snapshot()),
        lambda: d.on_order(order("o5", 5, placed_at=1120, ready_at=1500), now=1120),
    ]
    seen = set()
    for step in steps:
        step()
        _check_kept(d)
        seen.add(tuple(o.id for o in d.queue()))
    assert len(seen) >= 4  # the queue did change along the way


def test_free_table_is_the_states_free_points_at_every_later_time() -> None:
    """`Dispatcher.free_table` (which keeps each courier's free shape until the courier changes) gives each
    active courier the location and time of `DispatchState.free_point` at every later time, for every status:
    idle, assigned (with and without a return to collect), en route, returning, free-floating; off skipped;
    and the ride from there to the store."""
    d = dispatcher(GreedyPolicy(), courier("a"), courier("b"), courier("c"), courier("r"),
                   courier("f", home=None, position=7), courier("i", position=3, available_at=300))
    d.on_order(order("o1", 1, placed_at=0), now=0)
    d.on_order(order("o2", 4, placed_at=0), now=0)
    d.on_order(order("ret", 5, placed_at=0, is_return=True, promise_by=4000, ready_at=50), now=0)
    d.on_courier_event("a", "picked_up", 10)
    d.on_courier_event("a", "delivered", 200, order_id="o1")  # a: returning
    d.on_courier_event("r", "off", 210)
    assert any(d.orders[oid].is_return for c in d.couriers.values() if c.status == "assigned" for oid in c.carrying)
    statuses = set()
    for now in (220, 221, 400, 1000, 2500, 9000):
        state = d.state(now)
        table = d.free_table(now)
        got = {c.id: (int(where), int(when)) for c, where, when in zip(table.couriers, table.location, table.time,
                                                                       strict=True)}
        want = {c.id: (fp.location, fp.time) for c in state.active_couriers for fp in [state.free_point(c)]}
        assert got == want and "r" not in got
        assert table.to_store.tolist() == [state.travel.duration(c.profile, int(where), state.store_location)
                                           for c, where in zip(table.couriers, table.location, strict=True)]
        statuses |= {d.couriers[cid].status for cid in got}
    assert statuses >= {"returning", "assigned", "idle"}
