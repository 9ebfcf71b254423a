"""Couriers' capacity in several dimensions (boxes, grams, millilitres): validation, loads from boxes, dispatch."""

from __future__ import annotations

import pytest

from dispatch.errors import InvalidDispatchError, InvalidOrderError
from dispatch.model import Item
from dispatch.packaging import DEFAULT_CATALOGUE, LOAD_DIMENSIONS, choose_boxes, order_load
from dispatch.policy import BatchPolicy, GreedyPolicy
from dispatch.reoptimize import build_problem, reoptimize
from dispatch.state import DispatchOrder
from tests.dispatch.test_policy import STORE, accounted, courier, state
from tests.dispatch.test_reoptimize import FAST

MILK = Item(sku="MILK", qty=2, weight_g=1050, dims_mm=(95, 95, 200))
PILLOW = Item(sku="PILLOW", qty=1, weight_g=2000, dims_mm=(400, 300, 150))


def parcel(oid: str, location: int, load: int | tuple[int, ...]) -> DispatchOrder:
    return DispatchOrder(id=oid, store=STORE, location=location, ready_at=0, promise_by=3600, load=load)


def test_an_int_is_one_dimension_and_tuples_are_kept() -> None:
    """load=2 and capacity=4 become (2,) and (4,); tuples stay tuples; Courier.fits checks every dimension."""
    assert parcel("a", 1, 2).load == (2,) and courier("c").capacity == (4,)
    big = courier("c", capacity=(10, 5000, 40_000))
    assert big.capacity == (10, 5000, 40_000) and parcel("a", 1, [1, 2000, 3000]).load == (1, 2000, 3000)  # type: ignore[arg-type]
    assert big.fits((10, 5000, 40_000)) and not big.fits((1, 5001, 0))


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda: parcel("a", 1, ()), InvalidOrderError, "^load: needs at least one dimension"),
    (lambda: parcel("a", 1, (1, -1)), InvalidOrderError, r"^load\[1\]: must be at least 0, got -1"),
    (lambda: parcel("a", 1, "1"), InvalidOrderError, "^load: must be an integer or a tuple"),
    (lambda: courier("c", capacity=(4, 0)), InvalidDispatchError, r"^courier c: capacity\[1\]: must be at least 1"),
    (lambda: courier("c", capacity=(4, 1.5)), InvalidDispatchError, r"^courier c: capacity\[1\]: must be an integer"),
    (lambda: state([parcel("a", 1, (1, 2))], [courier("c", capacity=(4, 5, 6))]), InvalidDispatchError,
     r"^orders\[0\].load: has 2 dimensions, expected 3"),
    (lambda: state([], [courier("c"), courier("d", capacity=(4, 5))]), InvalidDispatchError,
     r"^couriers\[1\].capacity: has 2 dimensions, expected 1"),
])
def test_bad_loads_and_capacities_name_the_field(make: object, error: type[Exception], message: str) -> None:
    """Empty, negative or non-integer amounts, and dimensions that differ across a state, are named errors."""
    with pytest.raises(error, match=message):
        make()  # type: ignore[operator]


def test_order_load_counts_boxes_weight_and_volume() -> None:
    """order_load gives (boxes, items' grams, boxes' millilitres), from Box objects or an Allocation's names."""
    items = (MILK, PILLOW)
    boxes = choose_boxes(items)
    expected = (len(boxes), 2 * 1050 + 2000, -(-sum(b.volume_mm3 for b in boxes) // 1000))
    assert order_load(items, boxes) == expected
    assert order_load(items, [b.name for b in boxes]) == expected
    assert order_load((MILK,), ["small"]) == (1, 2100, 8750)
    assert LOAD_DIMENSIONS == ("boxes", "weight_g", "volume_ml")
    with pytest.raises(InvalidOrderError, match=r"^boxes: no box 'crate'"):
        order_load((MILK,), ["crate"], DEFAULT_CATALOGUE)


def test_weight_limits_a_courier_with_room_for_many_boxes() -> None:
    """A courier with room for 10 boxes but 5 kg takes two 2 kg orders, not three; with 50 kg it takes all three."""
    orders = [parcel(f"o{k}", 1 + k, (1, 2000, 3000)) for k in range(3)]
    light = state(orders, [courier("c", capacity=(10, 5000, 100_000))])
    built = build_problem(light, FAST)
    assert built is not None and built.problem.vehicles[0].capacity == (10, 5000, 100_000)
    assert built.problem.jobs[0].delivery == (1, 2000, 3000)
    d = reoptimize(light, FAST)
    assert accounted(light, d)
    assert [len(t.order_ids) for t in d.trips + d.tentative] == [2] and len(d.unassigned) == 1
    strong = state(orders, [courier("c", capacity=(10, 50_000, 100_000))])
    d = reoptimize(strong, FAST)
    assert [len(t.order_ids) for t in d.trips + d.tentative] == [3] and d.unassigned == ()


def test_batch_and_greedy_respect_every_dimension() -> None:
    """Batch bundles only what fits in weight; greedy refuses an order too heavy for every courier."""
    orders = [parcel(f"o{k}", 1 + k, (1, 2000, 3000)) for k in range(3)]
    s = state(orders, [courier("c", capacity=(10, 5000, 100_000))])
    (trip,) = BatchPolicy(hold_s=0, max_orders=3, radius_s=10_000).decide(s).trips
    assert len(trip.order_ids) == 2
    heavy = state([parcel("h", 1, (1, 6000, 10))], [courier("c", capacity=(10, 5000, 100_000))])
    assert GreedyPolicy().decide(heavy).unassigned_reasons == {"h": "over_capacity"}
