"""Delivery promise on the Moscow Ostankino road graph: express ETAs, slots, pickup points, lockers, honesty."""

from __future__ import annotations

import heapq
import itertools
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from shapely.geometry import Point

from dispatch.allocation import Allocator
from dispatch.engine import CourierEvent, Dispatcher
from dispatch.errors import InvalidDispatchError, InvalidOrderError, ReservationError
from dispatch.model import DAY_S, DarkStore, Facility, Item, Locker, LonLat, Mode, Order, PickupPoint
from dispatch.policy import GreedyPolicy
from dispatch.promise import (
    DispatcherLoad,
    PromiseOptions,
    QueueLoad,
    Quote,
    Quoter,
    StoreLoad,
    StoreQueue,
    next_open,
    session,
)
from dispatch.state import Courier, DispatchOrder, TravelMatrices
from routing.matrix import ScipyEngine
from routing.network import RoadNetwork
from routing.snap import snap
from tests.dispatch.test_allocation import (
    BETWEEN_STORES,
    BREAD,
    MILK,
    NEAR_OSTANKINO,
    NEAR_VDNH_WEST,
    OFF_MAP,
    OSTANKINO,
    TEA,
    VDNH,
    WEST,
)
from tests.dispatch.test_policy import grid_travel

MOSCOW = Path(__file__).resolve().parents[1] / "data" / "moscow_ostankino_drive.osm.bz2"
DAY = 3 * DAY_S  # any day: day boundaries are multiples of DAY_S
NOON = DAY + 12 * 3600
HOURS = (8 * 3600, 23 * 3600)
PICKING_S = 120
EXACT = PromiseOptions(margin_s=0, margin_rate=0.0, round_to_s=1)
"""No buffer, no rounding: quoted times are the bare estimates."""
IDLE = QueueLoad(default=StoreQueue(couriers_free_at=(0,) * 10))
"""Empty picking queues and ten idle couriers at every store."""
CAVIAR = Item(sku="CAVIAR", qty=1, weight_g=120, dims_mm=(80, 80, 40))


@pytest.fixture(scope="module")
def moscow(tmp_path_factory: pytest.TempPathFactory) -> RoadNetwork:
    return RoadNetwork.from_osm(MOSCOW, cache_dir=tmp_path_factory.mktemp("cache"))


def stores(**overrides: dict[str, object]) -> list[Facility]:
    base: dict[str, dict[str, object]] = {
        "ostankino": {"location": OSTANKINO, "stock": {"MILK": 10, "BREAD": 5}},
        "vdnh": {"location": VDNH, "stock": {"MILK": 10, "BREAD": 0, "TEA": 4}},
    }
    return [DarkStore(id=sid, hours=HOURS, picking_s=PICKING_S, **{**fields, **overrides.get(sid, {})})  # type: ignore[arg-type]
            for sid, fields in base.items()]


def quoter(moscow: RoadNetwork, facilities: list[Facility] | None = None, load: StoreLoad = IDLE,
           options: PromiseOptions = EXACT) -> Quoter:
    return Quoter(Allocator(moscow, stores() if facilities is None else facilities), load, options)


def allocated(moscow: RoadNetwork, facilities: list[Facility], location: LonLat, *items: Item,
              mode: Mode = "courier", placed_at: int = NOON) -> tuple[str | None, int | None]:
    """(store, travel time) the Allocator gives a fresh order."""
    (a,) = Allocator(moscow, facilities).allocate([Order(id="ref", location=location, mode=mode, items=items,
                                                         placed_at=placed_at)])
    return a.store, a.travel_time_s


def eta(q: Quote) -> int:
    assert q.express.eta is not None, q.express
    return q.express.eta


def test_express_eta_grows_with_the_picking_queue(moscow: RoadNetwork) -> None:
    """Each order queued for picking adds picking_s per picker to the express ETA (a queue read from a
    Dispatcher too)."""
    def with_queue(queue: int, pickers: int = 1) -> int:
        load = QueueLoad(default=StoreQueue(picking_queue=queue, pickers=pickers, couriers_free_at=(0,) * 20))
        return eta(quoter(moscow, load=load).quote(NEAR_VDNH_WEST, [MILK], NOON))

    etas = [with_queue(q) for q in (0, 1, 4, 8)]
    assert etas == sorted(set(etas))
    assert [t - etas[0] for t in etas] == [0, PICKING_S, 4 * PICKING_S, 8 * PICKING_S]
    assert with_queue(8, pickers=2) - etas[0] == 4 * PICKING_S

    d = Dispatcher(GreedyPolicy(), store_id="vdnh", store_location=0, travel=grid_travel(),
                   couriers=[Courier(id="a", capacity=4, shift_end=DAY + DAY_S, position=0, home_store="vdnh")])
    live = DispatcherLoad({"vdnh": d})
    vdnh = quoter(moscow).allocator.stores[1]
    before = eta(quoter(moscow, load=live).quote(NEAR_VDNH_WEST, [MILK], NOON))
    assert before == NOON + PICKING_S + allocated(moscow, stores(), NEAR_VDNH_WEST, MILK)[1]  # type: ignore[operator]
    for k, ready in enumerate((NOON + 300, NOON + 600)):
        d.on_order(DispatchOrder(id=f"p{k}", store="vdnh", location=1, placed_at=NOON, ready_at=ready,
                                 promise_by=NOON + 3600), NOON)
    assert live.picking_done_at(vdnh, NOON) == NOON + 600 + PICKING_S
    assert DispatcherLoad({"vdnh": d}, pickers=2).picking_done_at(vdnh, NOON) == NOON + 300 + PICKING_S
    assert eta(quoter(moscow, load=live).quote(NEAR_VDNH_WEST, [MILK], NOON)) > before + 600


def test_express_eta_grows_with_courier_load(moscow: RoadNetwork) -> None:
    """Busy couriers and orders waiting for one push the express ETA back; with no courier, express is unavailable."""
    def with_couriers(free: tuple[int, ...], waiting: int = 0) -> Quote:
        load = QueueLoad(default=StoreQueue(couriers_free_at=free, awaiting_courier=waiting, trip_s=900))
        return quoter(moscow, load=load).quote(NEAR_VDNH_WEST, [MILK], NOON)

    idle, busy = eta(with_couriers((NOON,))), eta(with_couriers((NOON + 1000,)))
    queued = eta(with_couriers((NOON + 1000,), waiting=2))
    assert idle < busy < queued
    assert busy - idle == 1000 - PICKING_S and queued - busy == 2 * 900
    one = QueueLoad(default=StoreQueue(picking_queue=2, couriers_free_at=(0,), trip_s=900))
    vdnh = quoter(moscow).allocator.stores[1]
    assert one.courier_free_at(vdnh, NOON) == NOON + PICKING_S + 900 + 900  # both queued orders ride first
    none = with_couriers(())
    assert none.express.reason == "no_courier" and none.express.eta is None and none.express.store == "vdnh"

    # Live: a Dispatcher's couriers (bike, Manhattan grid: door 5 is 500 s from the store each way).
    d = Dispatcher(GreedyPolicy(), store_id="vdnh", store_location=0, travel=grid_travel(), tick_s=60,
                   couriers=[Courier(id="a", capacity=4, shift_end=DAY + DAY_S, position=0, home_store="vdnh")])
    q = quoter(moscow, load=DispatcherLoad({"vdnh": d}))
    etas = [eta(q.quote(NEAR_VDNH_WEST, [MILK], NOON))]
    for k in range(2):
        d.on_order(DispatchOrder(id=f"o{k}", store="vdnh", location=5, placed_at=NOON, ready_at=NOON,
                                 promise_by=NOON + 3600), NOON)
        etas.append(eta(q.quote(NEAR_VDNH_WEST, [MILK], NOON)))
    assert d.couriers["a"].status == "assigned" and [o.id for o in d.open_orders] == ["o1"]
    assert etas[1] - etas[0] == 1000 + 60 - PICKING_S  # the courier is back after 1000 s, seen at the next tick
    assert etas[2] - etas[1] == 1000 + 60  # and takes o1 first
    d.on_courier_event("a", "off", NOON)
    assert q.quote(NEAR_VDNH_WEST, [MILK], NOON).express.reason == "no_courier"


def test_best_store_is_chosen_like_the_allocator_by_road_time_and_stock(moscow: RoadNetwork) -> None:
    """Express comes from the store the Allocator picks: nearest by road holding every item, with live stock."""
    q = quoter(moscow)
    for where, items, expected in ((NEAR_VDNH_WEST, [MILK], "vdnh"), (BETWEEN_STORES, [BREAD], "ostankino"),
                                   (BETWEEN_STORES, [MILK], "vdnh"), (NEAR_OSTANKINO, [TEA], "vdnh")):
        store, travel = allocated(moscow, stores(), where, *items)
        express = q.quote(where, items, NOON).express
        assert express.store == express.facility == store == expected
        assert express.eta == NOON + PICKING_S + travel  # type: ignore[operator]
    (all_milk,) = q.allocator.allocate([Order(id="all-milk", location=VDNH, mode="courier", placed_at=NOON,
                                              items=(Item(sku="MILK", qty=10, weight_g=100, dims_mm=(50, 50, 50)),))])
    assert all_milk.store == "vdnh" and q.allocator.inventory.available("vdnh", "MILK") == 0
    assert q.quote(BETWEEN_STORES, [MILK], NOON).express.store == "ostankino"


def test_eta_includes_the_buffer(moscow: RoadNetwork) -> None:
    """The promised ETA is the estimate plus margin_s plus margin_rate of the lead time, rounded up."""
    bare = eta(quoter(moscow).quote(NEAR_VDNH_WEST, [MILK], NOON))
    lead = bare - NOON
    margin = eta(quoter(moscow, options=PromiseOptions(margin_s=300, margin_rate=0.0, round_to_s=1)).quote(
        NEAR_VDNH_WEST, [MILK], NOON))
    rated = eta(quoter(moscow, options=PromiseOptions(margin_s=300, margin_rate=0.5, round_to_s=1)).quote(
        NEAR_VDNH_WEST, [MILK], NOON))
    default = eta(quoter(moscow, options=PromiseOptions()).quote(NEAR_VDNH_WEST, [MILK], NOON))
    assert margin == bare + 300
    assert rated == bare + 300 + -(-lead // 2)
    assert default % 60 == 0 and bare + 300 + lead // 5 <= default < bare + 300 + lead // 5 + 61


def test_slots_start_after_the_earliest_feasible_time_within_opening_hours(moscow: RoadNetwork) -> None:
    """Slots tile the store's hours, each starting no earlier than the express-style earliest delivery; late in
    the evening they move to the next day, and when every store is closed they start after tomorrow's opening."""
    q = quoter(moscow, options=PromiseOptions())
    tomorrow = DAY + DAY_S
    cases = [(DAY + 3 * 3600, DAY), (DAY + 7 * 3600, DAY), (NOON + 600, DAY), (DAY + 22 * 3600 + 1800, tomorrow),
             (DAY + 23 * 3600 + 1800, tomorrow)]
    for now, day in cases:
        quote = q.quote(NEAR_VDNH_WEST, [MILK], now)
        slots = quote.slots
        assert slots and all(s.store == s.facility == "vdnh" and s.slot is not None for s in slots)
        starts = [s.slot[0] for s in slots if s.slot]
        assert all(s.slot == (t, t + 3600) and s.eta == t + 3600 for s, t in zip(slots, starts, strict=True))
        assert starts == list(range(starts[0], day + HOURS[1], 3600))  # every later slot of that day
        assert starts[0] >= day + HOURS[0] and (starts[0] - day - HOURS[0]) % 3600 == 0
        if quote.express.available:
            assert quote.express.eta is not None and starts[0] >= quote.express.eta
            assert day > DAY or starts[0] < quote.express.eta + 3600  # the first slot that can be met
            assert slots[0].allocate_at == now
        else:
            assert quote.express.reason == "store_closed"
            assert slots[0].allocate_at == next_open(HOURS, now) < starts[0]
        if now < DAY + 8 * 3600:
            assert slots[0].slot == (DAY + 9 * 3600, DAY + 10 * 3600)  # picking, ride and buffer miss 8-9


def test_slot_capacity_is_kept_by_the_quoter(moscow: RoadNetwork) -> None:
    """With one order per slot, a booked slot is listed as slot_full until released; a full slot cannot be booked."""
    q = quoter(moscow, options=PromiseOptions(slot_capacity=1))
    first = q.quote(NEAR_VDNH_WEST, [MILK], NOON).slots[0]
    q.book_slot(first)
    again = q.quote(NEAR_VDNH_WEST, [MILK], NOON)
    assert again.of("slot")[0].slot == first.slot and again.of("slot")[0].reason == "slot_full"
    assert again.slots[0].slot == (first.slot[0] + 3600, first.slot[1] + 3600)  # type: ignore[index]
    with pytest.raises(ReservationError, match=r"^slot: vdnh .* is full"):
        q.book_slot(first)
    q.release_slot(first)
    assert q.quote(NEAR_VDNH_WEST, [MILK], NOON).slots[0] == first and q.booked("vdnh", first.slot) == 0  # type: ignore[arg-type]
    with pytest.raises(ReservationError, match=r"^option: must be a slot option"):
        q.book_slot(again.express)


def test_full_locker_shows_no_free_compartment_while_a_pickup_point_is_offered(moscow: RoadNetwork) -> None:
    """A locker with no free compartment is listed unavailable; the pickup point is offered, ready after picking,
    the ride from its store and its opening."""
    pvz = PickupPoint(id="pvz", location=NEAR_OSTANKINO, capacity=5, hours=(10 * 3600, 21 * 3600))
    facilities = [*stores(), Locker(id="locker", location=WEST, compartments={"S": 1}, store="ostankino"), pvz]
    q = quoter(moscow, facilities)
    free = q.quote(WEST, [MILK], NOON).first("locker")
    assert (free.facility, free.store, free.compartments) == ("locker", "ostankino", ("S",))
    assert free.ready_at == NOON + PICKING_S + q.allocator.travel_time("ostankino", "locker")
    (taken,) = q.allocator.allocate([Order(id="l1", location=WEST, mode="locker", items=(MILK,), placed_at=NOON)])
    assert taken.facility == "locker"
    quote = q.quote(WEST, [MILK], NOON)
    locker, pickup = quote.first("locker"), quote.first("pickup_point")
    assert locker.reason == "no_free_compartment" and locker.ready_at is None
    store, leg = allocated(moscow, facilities, WEST, MILK, mode="pickup_point")
    assert pickup.available and (pickup.facility, pickup.store) == ("pvz", store)
    assert pickup.ready_at == NOON + PICKING_S + leg  # type: ignore[operator]
    assert q.quote(WEST, [MILK], DAY + 9 * 3600).first("pickup_point").ready_at == DAY + 10 * 3600


def test_out_of_stock_everywhere_makes_every_kind_unavailable(moscow: RoadNetwork) -> None:
    """An SKU no store holds: express (and every other kind) unavailable with out_of_stock: SKU."""
    facilities = [*stores(), Locker(id="locker", location=WEST, compartments={"S": 1}),
                  PickupPoint(id="pvz", location=NEAR_OSTANKINO, capacity=5)]
    quote = quoter(moscow, facilities).quote(BETWEEN_STORES, [MILK, CAVIAR], NOON)
    assert quote.express.reason == "out_of_stock: CAVIAR" and quote.express.eta is None
    assert {o.kind: o.reason for o in quote.options} == dict.fromkeys(
        ("express", "slot", "pickup_point", "locker", "store"), "out_of_stock: CAVIAR")
    assert quote.available == () and quote.slots == ()


def test_addresses_that_cannot_be_served_get_reasons_not_errors(moscow: RoadNetwork) -> None:
    """Off the map every kind is unreachable; outside every zone delivery is outside_service_area but click &
    collect is offered; with no dark store at all, no_dark_store."""
    off = quoter(moscow).quote(OFF_MAP, [MILK], NOON)
    assert {o.reason for o in off.options} == {"unreachable"}
    zoned = stores(vdnh={"zone": Point(VDNH).buffer(0.002)}, ostankino={"zone": Point(OSTANKINO).buffer(0.002)})
    outside = quoter(moscow, zoned).quote(BETWEEN_STORES, [MILK], NOON)
    assert outside.express.reason == outside.first("slot").reason == "outside_service_area"
    assert outside.first("store").available and outside.first("store").store == "vdnh"
    assert outside.first("pickup_point").reason == "no_pickup_point"
    empty = Quoter(Allocator(moscow, []), IDLE).quote(WEST, [MILK], NOON)
    assert empty.express.reason == "no_dark_store" and empty.first("locker").reason == "no_locker"


def test_the_quote_is_deterministic_and_reserves_nothing(moscow: RoadNetwork) -> None:
    """The same inputs give the same quote, and quoting leaves stock, places and compartments untouched."""
    facilities = [*stores(), Locker(id="locker", location=WEST, compartments={"S": 1}),
                  PickupPoint(id="pvz", location=NEAR_OSTANKINO, capacity=1)]
    q = quoter(moscow, facilities, options=PromiseOptions())
    first = q.quote(BETWEEN_STORES, [BREAD, MILK], NOON)
    assert all(q.quote(BETWEEN_STORES, (BREAD, MILK), NOON) == first for _ in range(3))
    assert len(first.available) > 5
    assert q.allocator.inventory.available("ostankino", "BREAD") == 5
    assert q.allocator.inventory.free_capacity("pvz") == 1
    assert q.allocator.inventory.free_compartments("locker") == {"S": 1, "M": 0, "L": 0}
    assert q.allocator.inventory.holding(["__quote__"]) == set()


def test_bad_input_raises_naming_the_field(moscow: RoadNetwork) -> None:
    """A location that is not a (lon, lat) pair, no items, a non-item or a bad time raise, naming the field."""
    q = quoter(moscow)
    for bad in ("Moscow", (37.6,), (37.6, 55.8, 0.0), None, (200.0, 55.8)):
        with pytest.raises(InvalidOrderError, match=r"^location: "):
            q.quote(bad, [MILK], NOON)  # type: ignore[arg-type]
    with pytest.raises(InvalidOrderError, match=r"^items: a quote needs at least one item"):
        q.quote(WEST, [], NOON)
    with pytest.raises(InvalidOrderError, match=r"^items\[1\]: must be an Item, got str"):
        q.quote(WEST, [MILK, "BREAD"], NOON)  # type: ignore[list-item]
    with pytest.raises(InvalidOrderError, match=r"^items: must be a sequence of Item"):
        q.quote(WEST, "MILK", NOON)  # type: ignore[arg-type]
    for now in (-1, 1.5, True):
        with pytest.raises(InvalidDispatchError, match=r"^now: "):
            q.quote(WEST, [MILK], now)  # type: ignore[arg-type]
    with pytest.raises(InvalidDispatchError, match=r"^margin_rate: must be a finite number >= 0"):
        PromiseOptions(margin_rate=-0.1)
    with pytest.raises(InvalidDispatchError, match=r"^travel_factor: must be at most 100"):
        PromiseOptions(travel_factor=1e308)
    with pytest.raises(InvalidDispatchError, match=r"^margin_s: must be at most one day"):
        PromiseOptions(margin_s=10**20)
    with pytest.raises(InvalidDispatchError, match=r"^promise\.margin: unknown option"):
        PromiseOptions.from_mapping({"margin": 60})
    with pytest.raises(InvalidDispatchError, match=r"^promise\.slot_capacity: must be a positive integer"):
        PromiseOptions.from_mapping({"slot_capacity": 0})
    assert PromiseOptions.from_mapping({"margin_s": 120, "slot_s": 1800}) == PromiseOptions(margin_s=120, slot_s=1800)


def test_opening_sessions_and_next_opening() -> None:
    """Sessions run from opening to closing (over midnight into the next day); next_open finds the next opening."""
    assert session((8 * 3600, 23 * 3600), DAY) == (DAY + 8 * 3600, DAY + 23 * 3600)
    assert session((22 * 3600, 6 * 3600), DAY) == (DAY + 22 * 3600, DAY + DAY_S + 6 * 3600)
    assert session(None, DAY) == (DAY, DAY + DAY_S)
    assert next_open((8 * 3600, 23 * 3600), DAY + 3600) == DAY + 8 * 3600
    assert next_open((8 * 3600, 23 * 3600), DAY + 23 * 3600) == DAY + DAY_S + 8 * 3600
    assert next_open((22 * 3600, 6 * 3600), DAY + 7 * 3600) == DAY + 22 * 3600
    assert next_open((22 * 3600, 6 * 3600), DAY + 3 * 3600) == DAY + 3 * 3600


def _run(moscow: RoadNetwork, options: PromiseOptions, noise: float, seed: int = 5) -> list[tuple[int, int]]:
    """Drive a store like the simulator: orders arrive, each is quoted from the live Dispatcher then placed with
    that promise; couriers ride each leg `noise` × rng-uniform(0, 1) slower than planned. (quoted, arrived) each."""
    rng = np.random.default_rng(seed)
    store = DarkStore(id="ostankino", location=OSTANKINO, stock={"MILK": 10**6}, picking_s=PICKING_S)
    allocator = Allocator(moscow, [store])
    picks = rng.choice(moscow.n_nodes, 60, replace=False)
    doors = [(float(lon), float(lat)) for lon, lat in moscow.lonlat[picks]]
    nodes = snap(moscow, [OSTANKINO, *doors]).nodes
    travel = TravelMatrices.from_engines({"car": ScipyEngine(moscow, "car")}, nodes)
    couriers = [Courier(id=f"c{k}", capacity=1, shift_end=DAY + DAY_S, position=0, profile="car",
                        home_store=store.id) for k in range(3)]
    d = Dispatcher(GreedyPolicy(), store_id=store.id, store_location=0, travel=travel, tick_s=60, couriers=couriers)
    load = DispatcherLoad({store.id: d})
    q = Quoter(allocator, load, options)
    seq = itertools.count()
    timeline: list[tuple[int, int, str, object]] = []
    t = NOON
    for k in range(len(doors)):
        t += int(rng.integers(60, 300))
        heapq.heappush(timeline, (t, next(seq), "order", k))
    for tick in range(NOON, t + 4 * 3600, 60):
        heapq.heappush(timeline, (tick, next(seq), "tick", None))
    promised: dict[str, int] = {}
    arrived: dict[str, int] = {}
    while timeline and len(arrived) < len(doors):
        now, _, kind, what = heapq.heappop(timeline)
        if kind == "event":
            cid, event, oid = cast(tuple[str, CourierEvent, str | None], what)
            d.on_courier_event(cid, event, now, order_id=oid)
            continue
        if kind == "order":
            k = cast(int, what)
            express = q.quote(doors[k], [MILK], now).express
            assert express.eta is not None and express.store == store.id, express
            promised[f"o{k}"] = express.eta
            made = d.on_order(DispatchOrder(id=f"o{k}", store=store.id, location=k + 1, placed_at=now,
                                            ready_at=load.picking_done_at(store, now), promise_by=express.eta,
                                            service_s=60), now)
        else:
            made = d.tick(now)
        for trip in made.trips:
            (oid,) = trip.order_ids
            door = int(oid[1:]) + 1
            ride = [travel.duration("car", 0, door), travel.duration("car", door, 0)]
            out, back = (int(r * (1 + noise * rng.uniform())) for r in ride)
            arrived[oid] = trip.departure + out
            heapq.heappush(timeline, (trip.departure, next(seq), "event", (trip.courier_id, "picked_up", None)))
            heapq.heappush(timeline, (arrived[oid] + 60, next(seq), "event", (trip.courier_id, "delivered", oid)))
            heapq.heappush(timeline, (arrived[oid] + 60 + back, next(seq), "event",
                                      (trip.courier_id, "at_store", None)))
    assert sorted(arrived) == sorted(promised)
    return [(promised[oid], arrived[oid]) for oid in sorted(promised)]


def test_quotes_from_a_live_dispatcher_are_honest(moscow: RoadNetwork) -> None:
    """Quoted from a live greedy Dispatcher: with exact rides even unbuffered quotes are met; with rides up to 40 %
    slower the default buffer keeps >= 95 % on time where the bare estimate does not."""
    exact = _run(moscow, EXACT, noise=0.0)
    assert all(arrival <= quoted for quoted, arrival in exact)
    assert sum(arrival == quoted for quoted, arrival in exact) > 0  # the estimate is tight, not just generous
    bare = _run(moscow, EXACT, noise=0.4)
    buffered = _run(moscow, PromiseOptions(), noise=0.4)
    on_time = [sum(a <= q for q, a in run) / len(run) for run in (bare, buffered)]
    assert on_time[0] < 0.95 <= on_time[1]


def test_express_alone_is_the_express_option_of_the_full_quote(moscow: RoadNetwork) -> None:
    """Quoter.express gives exactly the express option of quote() for the same inputs, busy store or idle, and
    rejects bad input naming the field."""
    busy = QueueLoad(default=StoreQueue(picking_queue=6, couriers_free_at=(NOON + 600,)))
    for load in (IDLE, busy):
        q = quoter(moscow, load=load)
        assert q.express(NEAR_VDNH_WEST, [MILK], NOON) == q.quote(NEAR_VDNH_WEST, [MILK], NOON).express
    assert quoter(moscow, load=busy).express(NEAR_VDNH_WEST, [MILK], NOON).eta > eta(
        quoter(moscow).quote(NEAR_VDNH_WEST, [MILK], NOON))
    with pytest.raises(InvalidOrderError, match="items"):
        quoter(moscow).express(NEAR_VDNH_WEST, [], NOON)


def test_dispatcher_load_follows_the_dispatcher_between_changes() -> None:
    """The store load (which keeps the queue's arrays between changes) gives what a fresh reading of the
    dispatcher gives: picking done behind the orders still to pick by each picker, and a later courier once
    the only courier is taken, at every time and after every change."""
    store = DarkStore(id="s1", location=(37.6, 55.8), stock={}, picking_s=PICKING_S)
    travel = grid_travel()
    d = Dispatcher(GreedyPolicy(), store_id="s1", store_location=0, travel=travel, tick_s=60,
                   couriers=[Courier(id="a", capacity=(4,), shift_start=0, shift_end=86_400, position=0,
                                     home_store="s1")])
    load = DispatcherLoad({"s1": d}, pickers=2)

    def fresh_picking(now: int) -> int:
        todo = sorted(o.ready_at for o in d.orders.values() if not o.is_return and o.ready_at > now)
        return max(now, todo[-2] if len(todo) >= 2 else now) + PICKING_S

    frees = []
    for k, ready in enumerate((300, 200, 500, 400)):
        d.on_order(DispatchOrder(id=f"o{k}", store="s1", location=k + 1, ready_at=ready, promise_by=3000,
                                 placed_at=k), now=k)
        for now in (k, 250, 450):
            assert load.picking_done_at(store, max(now, k)) == fresh_picking(max(now, k))
        frees.append(load.courier_free_at(store, k))
    assert frees[0] is not None and all(f is not None and f >= frees[0] for f in frees)
    d.tick(300)  # the courier takes the first order ready
    assert d.couriers["a"].status == "assigned"
    after = load.courier_free_at(store, 300)
    assert after is not None and after > 300
