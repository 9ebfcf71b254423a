"""The operations core on the real Ostankino map: calls in, domain events out, stock and places kept right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dispatch.errors import InvalidDispatchError
from dispatch.model import DarkStore, Item, Locker, Order, PickupPoint, Promise
from dispatch.operations import (
    Admission,
    CourierSetup,
    Event,
    Operations,
    OperationsOptions,
    admit,
    order_from_json,
    order_to_json,
)
from dispatch.policy import DispatchPolicy, GreedyPolicy, ReoptimizeOptions, ReoptimizePolicy
from dispatch.promise import ExpressModel, PromiseOptions
from routing.network import RoadNetwork

MAP = Path(__file__).resolve().parents[1] / "data" / "moscow_ostankino_drive.osm.bz2"
STORE = (37.6020, 55.8177)
DOOR = (37.6029, 55.8215)
MILK = Item(sku="MILK", qty=1, weight_g=1050, dims_mm=(95, 95, 200))
NOON = 12 * 3600


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> RoadNetwork:
    return RoadNetwork.from_osm(MAP, cache_dir=tmp_path_factory.mktemp("cache"))


def core(network: RoadNetwork, *, stock: int = 5, failed_to: str = "store", couriers: int = 1,
         policy: DispatchPolicy | None = None, promise: PromiseOptions | None = None) -> Operations:
    facilities = [DarkStore(id="s1", location=STORE, stock={"MILK": stock}, picking_s=120),
                  Locker(id="lk", location=(37.5942, 55.8132), compartments={"S": 1}, store="s1"),
                  PickupPoint(id="pvz", location=(37.6018, 55.8139), capacity=2, store="s1")]
    fleet = [CourierSetup(id=f"c{k}", store="s1", profile="bike", capacity=4, shift_start=0, shift_end=86_400)
             for k in range(couriers)]
    options = OperationsOptions(service_s=60, failed_to=failed_to,  # type: ignore[arg-type]
                                promise=promise or PromiseOptions())
    ops = Operations(network, facilities, fleet, policy or GreedyPolicy(), pickers={"s1": 1}, options=options)
    for c in fleet:
        ops.shift(c.id, True, 0)
    return ops


def order(oid: str, at: int = NOON, qty: int = 1) -> Order:
    return Order(id=oid, location=DOOR, mode="courier", items=(Item(sku="MILK", qty=qty, weight_g=1050,
                                                                     dims_mm=(95, 95, 200)),),
                 placed_at=at, promise=Promise.express(45 * 60))


def kinds(events: tuple[Event, ...]) -> list[str]:
    return [e.event for e in events]


def test_an_order_goes_from_placed_to_delivered(network: RoadNetwork) -> None:
    """Placed, allocated (stock taken), assigned once picked, picked up, delivered on time: each call returns
    the events it caused and the order leaves the books when delivered."""
    ops = core(network)
    placed = ops.place(order("o1"), NOON)
    assert kinds(placed.events)[:2] == ["placed", "allocated"]
    assert placed.events[0].fields["quoted_eta"] > NOON
    assert placed.events[1].fields["promise_by"] == NOON + 45 * 60
    assert ops.allocator.inventory.available("s1", "MILK") == 4
    assert kinds(ops.picked("o1", NOON + 120).events) == ["picked"]
    trips = placed.trips or ops.tick("s1", NOON + 120).trips
    assert [t.order_ids for t in trips] == [("o1",)]
    assert kinds(ops.picked_up("c0", NOON + 130).events) == ["picked_up"]
    delivered = ops.delivered("c0", "o1", NOON + 500, arrived_at=NOON + 440)
    assert [(e.event, e.t, e.fields["on_time"]) for e in delivered.events] == [("delivered", NOON + 440, True)]
    assert "o1" not in ops.orders
    ops.at_store("c0", NOON + 800)
    assert ops.courier_status("c0") == "idle"


def test_an_order_that_cannot_be_served_is_rejected_with_its_reason(network: RoadNetwork) -> None:
    """Asking for more than the stock gives placed then rejected naming the SKU; nothing is kept or reserved."""
    ops = core(network, stock=1)
    out = ops.place(order("big", qty=3), NOON)
    assert kinds(out.events) == ["placed", "rejected"]
    assert out.events[1].fields["reason"] == "out_of_stock: MILK"
    assert "big" not in ops.orders and ops.allocator.inventory.available("s1", "MILK") == 1


def test_an_order_without_a_promise_is_sold_as_express_within_the_default(network: RoadNetwork) -> None:
    """An order placed without a promise is allocated with the default express promise (OperationsOptions), stock
    taken once, and the journal replays it with that promise."""
    ops = core(network)
    journal: list[dict[str, object]] = []
    ops.journal = journal
    bare = Order(id="o1", location=DOOR, mode="courier", items=(MILK,), placed_at=NOON)
    placed = ops.place(bare, NOON)
    assert kinds(placed.events)[:2] == ["placed", "allocated"]
    assert placed.events[1].fields["promise_by"] == NOON + OperationsOptions().default_express_s
    assert ops.allocator.inventory.available("s1", "MILK") == 4
    assert order_from_json(journal[0]["order"]).promise == Promise.express(OperationsOptions().default_express_s)
    with pytest.raises(InvalidDispatchError, match="default_express_s"):
        OperationsOptions(default_express_s=0)


def test_collected_and_picked_change_nothing_out_of_turn(network: RoadNetwork) -> None:
    """`collected` before the parcel waits at its locker and `picked` a second time or once a courier has left
    with it give no event and keep the order on the books with its stock; the courier still delivers it."""
    ops = core(network)
    ops.place(order("o1"), NOON)
    assert kinds(ops.collected("o1", NOON + 10).events) == []
    assert "o1" in ops.orders and ops.allocator.inventory.available("s1", "MILK") == 4
    assert kinds(ops.picked("o1", NOON + 120).events) == ["picked"]
    assert kinds(ops.picked("o1", NOON + 121).events) == []
    assert [t.order_ids for t in ops.tick("s1", NOON + 121).trips] == [("o1",)]
    ops.picked_up("c0", NOON + 130)
    assert kinds(ops.collected("o1", NOON + 140).events) == []
    assert kinds(ops.delivered("c0", "o1", NOON + 500).events) == ["delivered"] and "o1" not in ops.orders
    locker = Order(id="l1", location=DOOR, mode="locker", items=(MILK,), placed_at=NOON + 600,
                   promise=Promise.express(3600))
    assert kinds(ops.place(locker, NOON + 600).events)[:2] == ["placed", "allocated"]
    assert kinds(ops.collected("l1", NOON + 610).events) == [] and "l1" in ops.orders
    ops.picked("l1", NOON + 720)
    ops.at_store("c0", NOON + 720)
    assert [t.order_ids for t in ops.tick("s1", NOON + 780).trips] == [("l1",)]
    ops.picked_up("c0", NOON + 790)
    ops.delivered("c0", "l1", NOON + 1000)
    assert kinds(ops.picked("l1", NOON + 1001).events) == []
    assert kinds(ops.collected("l1", NOON + 1100).events) == ["collected"] and "l1" not in ops.orders


def test_a_click_and_collect_order_takes_no_courier(network: RoadNetwork) -> None:
    """A `store` order is never on a courier's trip: once picked it is delivered at its store with no courier and
    waits; its customer collecting it takes the stock for good; one cancelled before picking gives its stock back."""
    ops = core(network)
    at_store = Order(id="s1", location=DOOR, mode="store", items=(MILK,), placed_at=NOON,
                     promise=Promise.express(3600))
    assert kinds(ops.place(at_store, NOON).events) == ["placed", "allocated"]
    assert ops.tick("s1", NOON + 60).trips == () and ops.courier_status("c0") == "idle"
    assert kinds(ops.collected("s1", NOON + 60).events) == []
    ready = ops.picked("s1", NOON + 120)
    assert [(e.event, e.fields.get("courier"), e.fields.get("on_time")) for e in ready.events] == [
        ("picked", None, None), ("delivered", None, True)]
    assert not ops.cancellable("s1") and kinds(ops.cancel("s1", NOON + 130).events) == []
    assert kinds(ops.collected("s1", NOON + 900).events) == ["collected"] and "s1" not in ops.orders
    assert ops.allocator.inventory.available("s1", "MILK") == 4
    again = Order(id="s2", location=DOOR, mode="store", items=(MILK,), placed_at=NOON + 1000,
                  promise=Promise.express(3600))
    ops.place(again, NOON + 1000)
    assert kinds(ops.cancel("s2", NOON + 1010).events) == ["cancelled"]
    assert ops.allocator.inventory.available("s1", "MILK") == 4


def test_an_order_no_courier_of_its_store_can_carry_is_rejected(network: RoadNetwork) -> None:
    """An order packed into more boxes than the largest courier of its store carries is rejected `too_large`
    naming both counts, with no quote and its stock given back; one that fits is placed."""
    ops = core(network, stock=200)
    big = ops.place(order("big", qty=120), NOON)
    assert kinds(big.events) == ["placed", "rejected"] and big.events[0].fields["quoted_eta"] is None
    assert big.events[1].fields["reason"].startswith("too_large: ")
    assert big.events[1].fields["reason"].endswith(" boxes, couriers carry at most 4")
    assert "big" not in ops.orders and ops.allocator.inventory.available("s1", "MILK") == 200
    assert kinds(ops.place(order("ok", qty=2), NOON).events)[:2] == ["placed", "allocated"]


def test_an_order_picked_before_the_queues_estimate_leaves_at_the_next_tick(network: RoadNetwork) -> None:
    """`picked` before the picking queue's estimate makes the order ready then, and the next tick sends it off
    then (a courier was waiting for the estimate) instead of at the estimate."""
    ops = core(network)
    ops.place(order("o1"), NOON)
    assert ops.dispatchers["s1"].orders["o1"].ready_at == NOON + 120
    assert ops.tick("s1", NOON + 30).trips == ()
    assert kinds(ops.picked("o1", NOON + 40).events) == ["picked"]
    assert ops.dispatchers["s1"].orders["o1"].ready_at == NOON + 40
    assert [(t.order_ids, t.departure) for t in ops.tick("s1", NOON + 41).trips] == [(("o1",), NOON + 41)]


def test_a_parcel_brought_back_unreported_is_open_again_and_leaves_once_more(network: RoadNetwork) -> None:
    """A courier back at the store with a parcel neither delivered nor failed gives it back (`unassigned`,
    `back_at_store`); the next trip takes it out again without taking its stock twice, and it is delivered; one
    cancelled once back is closed; a failure reported twice is returned once."""
    ops = core(network)
    ops.place(order("o1"), NOON)
    ops.picked("o1", NOON + 120)
    ops.tick("s1", NOON + 120)
    ops.picked_up("c0", NOON + 130)
    back = ops.at_store("c0", NOON + 300)
    assert [(e.event, e.fields["reason"]) for e in back.events] == [("unassigned", "back_at_store")]
    assert ops.courier_status("c0") == "idle" and ops.cancellable("o1")
    twin = core(network)  # the same, cancelled once back: closed, its stock gone with the parcel's first trip
    twin.place(order("o1"), NOON)
    twin.picked("o1", NOON + 120)
    twin.tick("s1", NOON + 120)
    twin.picked_up("c0", NOON + 130)
    assert kinds(twin.failed("c0", "o1", NOON + 200).events) == ["failed"]
    assert kinds(twin.failed("c0", "o1", NOON + 201).events) == []  # reported twice: returned once
    assert kinds(twin.at_store("c0", NOON + 300).events) == ["returned"] and "o1" not in twin.orders
    third = core(network)
    third.place(order("o1"), NOON)
    third.picked("o1", NOON + 120)
    third.tick("s1", NOON + 120)
    third.picked_up("c0", NOON + 130)
    third.at_store("c0", NOON + 300)
    assert kinds(third.cancel("o1", NOON + 310).events) == ["cancelled"] and "o1" not in third.orders
    assert third.allocator.inventory.available("s1", "MILK") == 4 and third.tick("s1", NOON + 360).trips == ()
    assert [t.order_ids for t in ops.tick("s1", NOON + 360).trips] == [("o1",)]
    assert kinds(ops.picked_up("c0", NOON + 400).events) == ["picked_up"]
    assert kinds(ops.delivered("c0", "o1", NOON + 700).events) == ["delivered"]
    assert ops.allocator.inventory.available("s1", "MILK") == 4 and "o1" not in ops.orders


def test_cancel_releases_stock_and_only_before_a_courier_has_it(network: RoadNetwork) -> None:
    """An open order cancels (stock back); one on a courier does not (no event, still on the books)."""
    ops = core(network, couriers=0)
    ops.place(order("o1"), NOON)
    assert kinds(ops.cancel("o1", NOON + 10).events) == ["cancelled"]
    assert ops.allocator.inventory.available("s1", "MILK") == 5
    ops2 = core(network)
    ops2.place(order("o2"), NOON)
    ops2.tick("s1", NOON + 120)
    assert ops2.courier_status("c0") == "assigned"
    assert ops2.cancel("o2", NOON + 130).events == ()
    assert "o2" in ops2.orders


def test_a_courier_off_shift_before_leaving_gives_its_orders_back(network: RoadNetwork) -> None:
    """Ending the shift with a committed trip not yet left: one `unassigned` event per order (naming the courier
    and the reason), the orders stay on the books and the next courier on shift gets them; an idle courier's end
    of shift causes no event."""
    ops = core(network, couriers=2)
    ops.shift("c1", False, NOON - 10)
    assert ops.shift("c1", True, NOON - 5).events == ()
    ops.shift("c1", False, NOON - 1)
    ops.place(order("o1"), NOON)
    trips = ops.tick("s1", NOON + 120).trips
    assert [(t.courier_id, t.order_ids) for t in trips] == [("c0", ("o1",))]
    ops.shift("c1", True, NOON + 125)
    out = ops.shift("c0", False, NOON + 130)
    assert [(e.event, e.order, dict(e.fields)) for e in out.events] == [
        ("unassigned", "o1", {"courier": "c0", "reason": "courier_off_shift"})]
    assert "o1" in ops.orders and ops.courier_status("c0") == "off"
    again = ops.tick("s1", NOON + 140)
    assert [(t.courier_id, t.order_ids) for t in again.trips] == [("c1", ("o1",))]


@pytest.mark.parametrize(("failed_to", "expected"), [("store", ["returned"]), ("locker", ["redirected"])])
def test_a_failed_parcel_is_returned_or_sent_on_to_a_locker(network: RoadNetwork, failed_to: str,
                                                             expected: list[str]) -> None:
    """A customer absent: failed at the door, then at the store either returned (final) or redirected to the
    locker with room (taking a compartment) and dispatched again."""
    ops = core(network, failed_to=failed_to)
    ops.place(order("o1"), NOON)
    ops.tick("s1", NOON + 120)
    ops.picked_up("c0", NOON + 130)
    assert kinds(ops.failed("c0", "o1", NOON + 500).events) == ["failed"]
    back = ops.at_store("c0", NOON + 800)
    assert kinds(back.events)[:1] == expected
    if failed_to == "locker":
        assert ops.allocator.inventory.free_compartments("lk")["S"] == 0
        assert "o1" in ops.orders
    else:
        assert "o1" not in ops.orders


def test_a_returned_parcel_carries_the_reason_its_failure_gave(network: RoadNetwork) -> None:
    """`returned` gives the reason of the courier's `failed` report (not always `customer_absent`), and it
    survives a snapshot taken while the parcel rides back."""
    ops = core(network)
    ops.place(order("o1"), NOON)
    ops.tick("s1", NOON + 120)
    ops.picked_up("c0", NOON + 130)
    ops.failed("c0", "o1", NOON + 500, reason="address_not_found")
    restored = core(network)
    restored.restore(ops.snapshot())
    back = restored.at_store("c0", NOON + 800)
    assert [(e.event, e.fields.get("reason")) for e in back.events] == [("returned", "address_not_found")]


def test_a_return_is_collected_from_its_pickup_point_and_closes_there(network: RoadNetwork) -> None:
    """A return_pickup_point order takes no picker and holds a place at its point until a courier takes it:
    no `picked_up` as the courier leaves the store, `delivered` at the point (final, the place free again); a
    failure cannot be reported on it, and a courier back without it leaves it open for the next one."""
    ops = core(network)
    kettle = Item(sku="KETTLE", qty=1, weight_g=1400, dims_mm=(220, 180, 250))
    ret = Order(id="r1", location=(37.6008, 55.8146), mode="return_pickup_point", items=(), returns=(kettle,),
                placed_at=NOON, promise=Promise.express(3 * 3600))
    placed = ops.place(ret, NOON)
    assert placed.events[1].fields["facility"] == "pvz" and ops.allocator.inventory.free_capacity("pvz") == 1
    after = ops.place(order("o1"), NOON)  # the picker is free for the first delivery: ready 120 s later
    assert ops.dispatchers["s1"].orders["o1"].ready_at == NOON + 120
    assert ops.picked("r1", NOON + 10).events == ()  # nothing to pick
    trips = placed.trips + after.trips + ops.tick("s1", NOON + 60).trips
    assert trips[0].order_ids == ("r1",)
    assert ops.picked_up("c0", NOON + 70).events == ()
    with pytest.raises(InvalidDispatchError, match="return waiting at its pickup point"):
        ops.failed("c0", "r1", NOON + 300)
    back = ops.at_store("c0", NOON + 600)  # came back without it: open again
    assert [(e.event, e.fields["reason"]) for e in back.events] == [("unassigned", "back_at_store")]
    trips = ops.tick("s1", NOON + 660).trips
    assert "r1" in trips[0].order_ids
    ops.picked_up("c0", NOON + 670)
    done = ops.delivered("c0", "r1", NOON + 900)
    assert [(e.event, e.fields["on_time"]) for e in done.events] == [("delivered", True)]
    assert "r1" not in ops.orders and ops.allocator.inventory.free_capacity("pvz") == 2


def test_live_places_are_recycled_over_many_orders(network: RoadNetwork) -> None:
    """Sixty orders to sixty doors, each delivered before the next: the store's place pool stays small."""
    ops = core(network, stock=100)
    pool = ops.places["s1"].pool
    nodes = network.n_nodes
    t = 6 * 3600
    delivered = 0
    for k in range(60):
        node = (k * 7919) % nodes
        door = (float(network.lon[node]), float(network.lat[node]))
        o = Order(id=f"o{k}", location=door, mode="courier", items=(MILK,), placed_at=t,
                  promise=Promise.express(3600))
        out = ops.place(o, t)
        if not ops.orders.get(o.id):
            continue
        t += 120
        ops.picked(o.id, t)
        if not out.trips:
            ops.tick("s1", t)
        ops.picked_up("c0", t)
        t += 300
        delivered += len(ops.delivered("c0", o.id, t).events)
        t += 300
        ops.at_store("c0", t)
    assert delivered >= 50
    assert pool.capacity <= 32
    assert len(ops.orders) == 0


def test_orders_round_trip_through_json_and_time_never_goes_back(network: RoadNetwork) -> None:
    """An order survives order_to_json/order_from_json unchanged; a call earlier than the last is refused."""
    o = order("o1")
    assert order_from_json(order_to_json(o)) == o
    ops = core(network)
    ops.tick("s1", NOON)
    with pytest.raises(InvalidDispatchError, match="now"):
        ops.tick("s1", NOON - 1)
    with pytest.raises(InvalidDispatchError, match="courier_id"):
        ops.picked_up("nobody", NOON)


def test_quote_changes_nothing_and_a_stock_count_decides_the_next_order(network: RoadNetwork) -> None:
    """A quote offers express for an address without reserving; after the store counts 0 units the next order
    is rejected out of stock, and after a delivery of 3 units it is served again."""
    ops = core(network, stock=2)
    quote = ops.quote(DOOR, (MILK,), NOON)
    assert quote.express.available and quote.express.eta is not None and quote.express.eta > NOON
    assert ops.allocator.inventory.available("s1", "MILK") == 2
    ops.stock("s1", "MILK", 0, NOON + 1)
    assert kinds(ops.place(order("o1", NOON + 2), NOON + 2).events) == ["placed", "rejected"]
    ops.stock("s1", "MILK", 3, NOON + 3)
    assert kinds(ops.place(order("o2", NOON + 4), NOON + 4).events)[:2] == ["placed", "allocated"]
    assert ops.allocator.inventory.available("s1", "MILK") == 2
    with pytest.raises(InvalidDispatchError, match="store"):
        ops.stock("nowhere", "MILK", 1, NOON + 5)


def test_a_courier_position_becomes_a_live_place_of_its_store(network: RoadNetwork) -> None:
    """A reported (lon, lat) is snapped to the road and becomes the courier's position; off the map is refused."""
    ops = core(network)
    ops.position("c0", DOOR, NOON)
    courier = ops.dispatchers["s1"].couriers["c0"]
    assert courier.position != ops.dispatchers["s1"].store_location
    node = ops.node("s1", courier.position)
    assert abs(float(network.lon[node]) - DOOR[0]) < 0.003 and abs(float(network.lat[node]) - DOOR[1]) < 0.003
    with pytest.raises(InvalidDispatchError, match="location"):
        ops.position("c0", (0.0, 0.0), NOON + 1)
    assert [c["op"] for c in (ops.journal or [])] == []
    ops.journal = []
    ops.position("c0", STORE, NOON + 2)
    assert ops.journal == [{"op": "position", "now": NOON + 2, "courier": "c0", "location": list(STORE)}]


def test_the_quote_of_a_placed_order_follows_the_dispatchers_plan(network: RoadNetwork) -> None:
    """Under reoptimize the placed event's quote basis holds the planned hand-over of the decision the order went
    into, a checkout quote a moment before plans the same (a dry run that changes nothing), and with a fitted
    model the quoted ETA is the model's lead rounded up to the minute; greedy makes no plan for an order in
    picking, so its basis has none."""
    model = ExpressModel(constant_s=100.0, picking=0.0, courier_wait=0.0, road=0.0, plan=1.0)
    ops = core(network, policy=ReoptimizePolicy(options=ReoptimizeOptions(iterations=20, time_limit_s=None)),
               promise=PromiseOptions(express_model=model))
    quote = ops.quote(DOOR, (MILK,), NOON)
    assert quote.express.basis is not None and quote.express.basis.planned_s is not None
    assert ops.open_orders("s1") == 0 and ops.dispatchers["s1"].state().plan == {}
    placed = ops.place(order("o1"), NOON).events[0].fields
    basis = placed["quote_basis"]
    assert basis["planned_s"] == quote.express.basis.planned_s
    assert basis["planned_s"] >= basis["picking_s"] + basis["road_s"] - 60
    assert placed["quoted_eta"] == quote.express.eta == NOON + -(-(100 + basis["planned_s"]) // 60) * 60
    greedy = core(network).place(order("o2"), NOON).events[0].fields["quote_basis"]
    assert greedy["planned_s"] is None and greedy["picking_s"] == 120


def test_an_admission_places_the_order_where_it_was_admitted(network: RoadNetwork) -> None:
    """`admit` changes no count; placing with the admission books the same store, boxes and counts as placing
    without one, and a rejected admission is placed as rejected with its reason."""
    ops, twin = core(network), core(network)
    admission = admit(ops.allocator, ops.quoter, order("o1", qty=2), NOON)
    assert ops.allocator.inventory.available("s1", "MILK") == 5 and admission.claims() == [("stock:s1", "MILK", 2)]
    assert admission.quoted_eta is not None and admission.quoted_eta > NOON
    again = Admission.from_json("o1", json.loads(json.dumps(admission.to_json())))
    assert again == admission
    mine = ops.place(order("o1", qty=2), NOON, admission=again)
    theirs = twin.place(order("o1", qty=2), NOON)
    assert mine.events[1] == theirs.events[1] and mine.events[0].fields["quoted_eta"] == admission.quoted_eta
    assert ops.allocator.inventory.counters() == twin.allocator.inventory.counters()
    refused = admit(ops.allocator, ops.quoter, order("o2", qty=9), NOON)
    assert refused.reservation is None and refused.claims() == []
    out = ops.place(order("o2", qty=9), NOON, admission=refused)
    assert kinds(out.events) == ["placed", "rejected"] and out.events[1].fields["reason"] == "out_of_stock: MILK"


def test_the_inventory_journal_holds_what_changed_beyond_admissions(network: RoadNetwork) -> None:
    """With a journal, reservations, releases and stock counts are noted as deltas; an admitted order's booking
    and a stock delta from a live store are not (the store counted them)."""
    ops = core(network, couriers=0)
    journal: list[tuple[str, str, int]] = []
    ops.allocator.inventory.journal = journal
    ops.place(order("o1", qty=2), NOON)
    ops.cancel("o1", NOON + 1)
    ops.stock("s1", "MILK", 9, NOON + 2)
    assert journal == [("stock:s1", "MILK", -2), ("stock:s1", "MILK", 2), ("stock:s1", "MILK", 4)]
    journal.clear()
    admission = admit(ops.allocator, ops.quoter, order("o2"), NOON + 3)
    ops.place(order("o2"), NOON + 3, admission=admission)
    ops.stock("s1", "MILK", 0, NOON + 4, delta=-3)
    assert journal == [] and ops.allocator.inventory.available("s1", "MILK") == 5
