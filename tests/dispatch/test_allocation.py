"""Allocation on the Moscow Ostankino road graph: road-time ranking, fallbacks, rejections and reservations."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import Point, box

from dispatch.allocation import Allocation, Allocator
from dispatch.errors import InvalidFacilityError, InvalidOrderError, ReservationError
from dispatch.inventory import Inventory
from dispatch.model import DarkStore, Facility, Item, Locker, LonLat, Mode, Order, PickupPoint
from dispatch.packaging import Box, BoxCatalogue, choose_boxes, compartments_for, first_unboxable
from dispatch.promise import QueueLoad, StoreQueue
from routing.matrix import ScipyEngine
from routing.network import RoadNetwork
from routing.snap import haversine_m, snap

MOSCOW = Path(__file__).resolve().parents[1] / "data" / "moscow_ostankino_drive.osm.bz2"
NOON = 12 * 3600

OSTANKINO: LonLat = (37.6020, 55.8177)
VDNH: LonLat = (37.6145, 55.8217)
NEAR_VDNH_WEST: LonLat = (37.6029, 55.8215)
BETWEEN_STORES: LonLat = (37.6115, 55.8215)
NEAR_OSTANKINO: LonLat = (37.6008, 55.8146)
WEST: LonLat = (37.5937, 55.8131)
OFF_MAP: LonLat = (37.7000, 55.8500)

MILK = Item(sku="MILK", qty=1, weight_g=1050, dims_mm=(95, 95, 200))
BREAD = Item(sku="BREAD", qty=1, weight_g=400, dims_mm=(250, 110, 90))
TEA = Item(sku="TEA", qty=1, weight_g=100, dims_mm=(120, 80, 60))
COFFEE = Item(sku="COFFEE", qty=1, weight_g=250, dims_mm=(160, 100, 50))
PILLOW = Item(sku="PILLOW", qty=1, weight_g=2000, dims_mm=(400, 300, 150))
TV = Item(sku="TV-65", qty=1, weight_g=22_000, dims_mm=(1500, 900, 150))


@pytest.fixture(scope="module")
def moscow(tmp_path_factory: pytest.TempPathFactory) -> RoadNetwork:
    return RoadNetwork.from_osm(MOSCOW, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def car_times(moscow: RoadNetwork) -> np.ndarray:
    nodes = np.arange(moscow.n_nodes)
    return ScipyEngine(moscow, "car").matrix(nodes, nodes).durations


def order(oid: str, location: LonLat, *items: Item, mode: Mode = "courier", placed_at: int = NOON) -> Order:
    return Order(id=oid, location=location, mode=mode, items=items or (MILK,), placed_at=placed_at)


def stores(**overrides: dict[str, object]) -> list[Facility]:
    base: dict[str, dict[str, object]] = {
        "ostankino": {"location": OSTANKINO, "stock": {"MILK": 10, "BREAD": 5, "COFFEE": 3, "PILLOW": 10, "TV-65": 1}},
        "vdnh": {"location": VDNH, "stock": {"MILK": 10, "BREAD": 0, "TEA": 4, "PILLOW": 5}},
    }
    return [DarkStore(id=sid, **{**fields, **overrides.get(sid, {})}) for sid, fields in base.items()]  # type: ignore[arg-type]


def road_time(moscow: RoadNetwork, car_times: np.ndarray, source: LonLat, target: LonLat) -> int:
    nodes = snap(moscow, [source, target]).nodes
    return int(car_times[nodes[0], nodes[1]])


def test_nearest_by_road_beats_nearest_in_a_straight_line(moscow: RoadNetwork, car_times: np.ndarray) -> None:
    """A courier order goes to the store nearest by road even when another is clearly nearer as the crow flies."""
    lonlat = moscow.lonlat
    crow = haversine_m(lonlat[:, None, :], lonlat[None, :, :])
    road = car_times
    found = np.argwhere((crow[:, None, :] < 0.75 * crow[None, :, :]) & (road[:, None, :] > 1.5 * road[None, :, :]))
    assert len(found) > 0
    a, b, o = (int(v) for v in found[0])
    near_line = DarkStore(id="crow", location=tuple(lonlat[a]), stock={"MILK": 1})
    near_road = DarkStore(id="road", location=tuple(lonlat[b]), stock={"MILK": 1})
    allocator = Allocator(moscow, [near_line, near_road])
    (result,) = allocator.allocate([order("o1", tuple(lonlat[o]))])
    assert crow[a, o] < crow[b, o]
    assert result.facility == "road" and result.store == "road"
    assert result.travel_time_s == road[b, o] < road[a, o]


def test_fixed_coordinates_road_and_straight_line_disagree(moscow: RoadNetwork, car_times: np.ndarray) -> None:
    """At the data files' coordinates Ostankino is nearer in a straight line but VDNH is nearer by road."""
    assert haversine_m(np.array(NEAR_VDNH_WEST), np.array(OSTANKINO)) < haversine_m(
        np.array(NEAR_VDNH_WEST), np.array(VDNH))
    (result,) = Allocator(moscow, stores()).allocate([order("o1", NEAR_VDNH_WEST)])
    assert result.facility == "vdnh"
    assert result.travel_time_s == road_time(moscow, car_times, VDNH, NEAR_VDNH_WEST)
    assert result.travel_time_s < road_time(moscow, car_times, OSTANKINO, NEAR_VDNH_WEST)


def test_falls_back_to_next_store_when_nearest_is_out_of_stock(moscow: RoadNetwork, car_times: np.ndarray) -> None:
    """Bread is out at VDNH (nearest by road), so the order goes to Ostankino; with bread at VDNH it stays there."""
    (result,) = Allocator(moscow, stores()).allocate([order("o1", BETWEEN_STORES, BREAD)])
    assert result.facility == "ostankino" and result.reason is None
    assert result.travel_time_s == road_time(moscow, car_times, OSTANKINO, BETWEEN_STORES)
    (control,) = Allocator(moscow, stores(vdnh={"stock": {"BREAD": 1}})).allocate([order("o1", BETWEEN_STORES, BREAD)])
    assert control.facility == "vdnh" and control.travel_time_s is not None
    assert control.travel_time_s < result.travel_time_s


def test_out_of_stock_names_first_missing_sku_at_best_store(moscow: RoadNetwork) -> None:
    """No store holds bread and tea together; the reason names bread, missing at VDNH, the nearest by road."""
    (result,) = Allocator(moscow, stores()).allocate([order("o1", BETWEEN_STORES, TEA, BREAD)])
    assert result.reason == "out_of_stock: BREAD"
    assert result.facility is None and result.store is None and result.travel_time_s is None and result.boxes == ()
    (unknown,) = Allocator(moscow, stores()).allocate([order("o2", BETWEEN_STORES, MILK, Item(
        sku="CAVIAR", qty=1, weight_g=120, dims_mm=(80, 80, 40)))])
    assert unknown.reason == "out_of_stock: CAVIAR"


def test_zone_decides_which_stores_may_deliver(moscow: RoadNetwork) -> None:
    """A store whose zone misses the address is skipped however near; no covering store means outside_service_area."""
    around_vdnh = Point(VDNH).buffer(0.003)
    facilities = stores(vdnh={"zone": around_vdnh}, ostankino={"zone": box(37.58, 55.80, 37.612, 55.83)})
    allocator = Allocator(moscow, facilities)
    near_vdnh, outside = allocator.allocate([order("o1", NEAR_VDNH_WEST), order("o2", (37.6155, 55.8086))])
    assert near_vdnh.facility == "ostankino"
    assert outside.reason == "outside_service_area"


def test_closed_stores_are_skipped(moscow: RoadNetwork) -> None:
    """A store closed at placed_at is skipped; all closed gives store_closed; opening hours may span midnight."""
    facilities = stores(vdnh={"hours": (7 * 3600, 3600)}, ostankino={"hours": (8 * 3600, 23 * 3600)})
    allocator = Allocator(moscow, facilities)
    late, night, midday = allocator.allocate([
        order("late", OSTANKINO, placed_at=23 * 3600 + 1800),
        order("night", OSTANKINO, placed_at=3 * 3600),
        order("midday", OSTANKINO, placed_at=NOON),
    ])
    assert late.facility == "vdnh" and night.reason == "store_closed" and midday.facility == "ostankino"


def test_unreachable_and_unboxable_orders_are_rejected_not_raised(moscow: RoadNetwork) -> None:
    """Orders off the map or with an item fitting no box come back rejected, in place, without taking stock."""
    allocator = Allocator(moscow, stores())
    batch = [order("far", OFF_MAP), order("tv", OSTANKINO, TV), order("ok", OSTANKINO)]
    results = allocator.allocate(batch)
    assert [r.order for r in results] == ["far", "tv", "ok"]
    assert [r.reason for r in results] == ["unreachable", "no_box_fits: TV-65", None]
    assert allocator.inventory.available("ostankino", "TV-65") == 1


def test_store_mode_is_collected_at_the_nearest_store_with_stock(moscow: RoadNetwork) -> None:
    """A click-and-collect order ignores zones, goes to the nearest open store holding the items, and travels 0 s."""
    facilities = stores(vdnh={"zone": Point(VDNH).buffer(0.001)})
    (result,) = Allocator(moscow, facilities).allocate([order("o1", NEAR_VDNH_WEST, TEA, mode="store")])
    assert result.facility == result.store == "vdnh" and result.travel_time_s == 0


def lockers() -> list[Facility]:
    return [
        Locker(id="locker-a", location=WEST, compartments={"S": 1}, store="ostankino"),
        Locker(id="locker-b", location=BETWEEN_STORES, compartments={"S": 1, "M": 1}),
    ]


def test_full_locker_sends_the_order_to_the_next_locker(moscow: RoadNetwork, car_times: np.ndarray) -> None:
    """Once the nearest locker is full, orders go to the next one, then to a larger compartment, then are rejected."""
    allocator = Allocator(moscow, [*stores(), *lockers()])
    results = allocator.allocate([order(f"l{k}", WEST, mode="locker") for k in range(4)])
    assert [(r.facility, r.compartments) for r in results] == [
        ("locker-a", ("S",)), ("locker-b", ("S",)), ("locker-b", ("M",)), (None, ())
    ]
    assert results[3].reason == "no_free_compartment"
    assert results[0].store == "ostankino"
    assert results[1].store == "vdnh"
    assert results[1].travel_time_s == road_time(moscow, car_times, VDNH, BETWEEN_STORES)
    assert allocator.inventory.free_compartments("locker-b") == {"S": 0, "M": 0, "L": 0}


def test_compartment_size_comes_from_the_boxes(moscow: RoadNetwork) -> None:
    """A pillow needs a medium box, so it skips the nearer S-only locker; nine pillows need three compartments."""
    facilities = [*stores(), *lockers(), Locker(id="locker-c", location=WEST, compartments={"M": 1, "L": 2})]
    allocator = Allocator(moscow, facilities)
    one, nine = allocator.allocate([
        order("one", WEST, PILLOW, mode="locker"),
        order("nine", WEST, Item(sku="PILLOW", qty=9, weight_g=2000, dims_mm=(400, 300, 150)), mode="locker"),
    ])
    assert one.boxes == ("medium",) and one.facility == "locker-c" and one.compartments == ("M",)
    assert nine.reason == "no_free_compartment" and nine.boxes == ()
    (later,) = Allocator(moscow, facilities).allocate([order("nine", WEST, *[PILLOW] * 9, mode="locker")])
    assert later.boxes == ("large", "large", "medium")
    assert later.facility == "locker-c" and later.compartments == ("L", "L", "M")


def test_pickup_points_fill_up_then_next_then_full(moscow: RoadNetwork) -> None:
    """A pickup point takes as many orders as its capacity; the next takes the rest; then pickup_point_full."""
    facilities = [*stores(), PickupPoint(id="p-near", location=NEAR_OSTANKINO, capacity=1),
                  PickupPoint(id="p-far", location=WEST, capacity=1)]
    results = Allocator(moscow, facilities).allocate(
        [order(f"o{k}", NEAR_OSTANKINO, mode="pickup_point") for k in range(3)])
    assert [r.facility for r in results] == ["p-near", "p-far", None]
    assert results[2].reason == "pickup_point_full"


def test_pickup_point_tied_to_a_store_without_stock_is_passed_over(moscow: RoadNetwork) -> None:
    """A pickup point fed only by a store lacking the SKU is skipped for the next; with none left, out_of_stock."""
    tied = PickupPoint(id="p-tied", location=NEAR_OSTANKINO, capacity=5, store="vdnh")
    free = PickupPoint(id="p-free", location=WEST, capacity=5)
    (result,) = Allocator(moscow, [*stores(), tied, free]).allocate([order("o1", NEAR_OSTANKINO, BREAD,
                                                                            mode="pickup_point")])
    assert (result.facility, result.store) == ("p-free", "ostankino")
    (alone,) = Allocator(moscow, [*stores(), tied]).allocate([order("o1", NEAR_OSTANKINO, BREAD, mode="pickup_point")])
    assert alone.reason == "out_of_stock: BREAD"
    (closed,) = Allocator(moscow, [*stores(vdnh={"hours": (13 * 3600, 14 * 3600)}), tied]).allocate(
        [order("o1", NEAR_OSTANKINO, mode="pickup_point")])
    assert closed.reason == "store_closed"


def test_missing_facility_kind_is_a_reason(moscow: RoadNetwork) -> None:
    """Without a facility of the kind an order needs it is rejected with no_locker / no_pickup_point / no_dark_store."""
    results = Allocator(moscow, stores()).allocate(
        [order("a", WEST, mode="locker"), order("b", WEST, mode="pickup_point")]
    )
    assert [r.reason for r in results] == ["no_locker", "no_pickup_point"]
    empty = Allocator(moscow, []).allocate([order("c", WEST), order("d", WEST, mode="store")])
    assert [r.reason for r in empty] == ["no_dark_store", "no_dark_store"]


def test_fifty_orders_race_for_the_last_three_units(moscow: RoadNetwork) -> None:
    """Of 50 orders for the last 3 units exactly 3 are served, first come first served; stock ends at 0."""
    allocator = Allocator(moscow, stores())
    results = allocator.allocate([order(f"o{k}", NEAR_OSTANKINO, COFFEE) for k in range(50)])
    assert len(results) == 50
    assert [r.order for r in results if r.allocated] == ["o0", "o1", "o2"]
    assert Counter(r.reason for r in results) == {None: 3, "out_of_stock: COFFEE": 47}
    assert allocator.inventory.available("ostankino", "COFFEE") == 0


def test_fifty_threads_race_for_the_last_three_units(moscow: RoadNetwork) -> None:
    """Fifty threads allocating at once still serve exactly three orders and never take stock below zero."""
    allocator = Allocator(moscow, stores())
    results: list[Allocation] = []
    start = threading.Barrier(50)

    def place(k: int) -> None:
        start.wait()
        results.extend(allocator.allocate([order(f"o{k}", NEAR_OSTANKINO, COFFEE)]))

    threads = [threading.Thread(target=place, args=(k,)) for k in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 50 and sum(r.allocated for r in results) == 3
    assert allocator.inventory.available("ostankino", "COFFEE") == 0


def test_cancel_releases_stock_and_compartments(moscow: RoadNetwork) -> None:
    """Cancelling an allocated order gives its units and compartment back, so the next order gets them."""
    allocator = Allocator(moscow, [*stores(), *lockers()])
    first = allocator.allocate([order(f"c{k}", NEAR_OSTANKINO, COFFEE) for k in range(3)])
    (locked,) = allocator.allocate([order("l1", WEST, mode="locker")])
    assert all(r.allocated for r in first) and locked.facility == "locker-a"
    (refused,) = allocator.allocate([order("c3", NEAR_OSTANKINO, COFFEE)])
    assert refused.reason == "out_of_stock: COFFEE"
    allocator.cancel("c1")
    allocator.cancel("l1")
    assert allocator.inventory.available("ostankino", "COFFEE") == 1
    retry, relock = allocator.allocate([order("c4", NEAR_OSTANKINO, COFFEE), order("l2", WEST, mode="locker")])
    assert retry.allocated and relock.facility == "locker-a"
    with pytest.raises(ReservationError, match="'c3' holds no reservation"):
        allocator.cancel("c3")


def test_batch_equals_one_at_a_time(moscow: RoadNetwork) -> None:
    """Allocating a batch gives the same results as allocating its orders one by one in the same sequence."""
    batch = [order("a", BETWEEN_STORES, BREAD), order("b", WEST, mode="locker"), order("c", OFF_MAP),
             order("d", NEAR_VDNH_WEST, TEA), order("e", NEAR_OSTANKINO, mode="pickup_point"),
             order("f", WEST, mode="locker"), order("g", WEST, mode="locker")]
    facilities = [*stores(), *lockers(), PickupPoint(id="p", location=NEAR_OSTANKINO, capacity=1)]
    together = Allocator(moscow, facilities).allocate(batch)
    single = Allocator(moscow, facilities)
    one_by_one = tuple(r for o in batch for r in single.allocate([o]))
    assert together == one_by_one
    assert [r.reason for r in together] == [None, None, "unreachable", None, None, None, None]


def test_bad_facilities_and_order_ids_raise(moscow: RoadNetwork) -> None:
    """Off-map facilities, unknown feeding stores and duplicate or already allocated order ids raise, naming them."""
    with pytest.raises(InvalidFacilityError, match=r"^facilities\[2\]\.location: 'far' at .* m from the nearest road"):
        Allocator(moscow, [*stores(), Locker(id="far", location=OFF_MAP, compartments={"S": 1})])
    with pytest.raises(InvalidFacilityError, match=r"^facilities\[2\]\.store: unknown dark store 'nowhere'"):
        Allocator(moscow, [*stores(), Locker(id="l", location=WEST, compartments={"S": 1}, store="nowhere")])
    allocator = Allocator(moscow, stores())
    with pytest.raises(InvalidOrderError, match=r"^orders\[1\]\.id: duplicate id 'o1'"):
        allocator.allocate([order("o1", WEST), order("o1", WEST)])
    allocator.allocate([order("o1", WEST)])
    with pytest.raises(InvalidOrderError, match=r"^orders\[0\]\.id: 'o1' is already allocated"):
        allocator.allocate([order("o1", WEST)])


def _random_orders(moscow: RoadNetwork, rng: np.random.Generator, count: int, skus: list[Item],
                   modes: tuple[Mode, ...] = ("courier",)) -> list[Order]:
    nodes = rng.integers(0, moscow.n_nodes, count)
    points = moscow.lonlat[nodes] + rng.normal(0.0, 0.0003, (count, 2))
    return [Order(id=f"r{k}", location=(float(points[k, 0]), float(points[k, 1])), mode=modes[k % len(modes)],
                  items=tuple(skus[int(s)] for s in rng.choice(len(skus), int(rng.integers(1, min(3, len(skus)) + 1)),
                                                               replace=False)),
                  placed_at=int(rng.integers(0, 2 * 86_400))) for k in range(count)]


def test_with_ample_stock_each_order_goes_to_the_nearest_open_covering_store(
    moscow: RoadNetwork, car_times: np.ndarray
) -> None:
    """Against a brute-force ranking: zones, hours (also over midnight), ties to the earlier store, and the reason
    of the first failing check (outside_service_area, then unreachable, then store_closed)."""
    rng = np.random.default_rng(7)
    lonlat = moscow.lonlat
    sites = rng.choice(moscow.n_nodes, 8, replace=False)
    hours = [None, (8 * 3600, 20 * 3600), (22 * 3600, 6 * 3600), (10 * 3600, 11 * 3600)]
    shelves = {"MILK": 10**6, "TEA": 10**6}
    facilities = [DarkStore(id=f"s{i}", location=tuple(lonlat[n]), stock=shelves,
                            zone=Point(lonlat[n]).buffer(0.004), hours=hours[i % 4]) for i, n in enumerate(sites)]
    twin = facilities[1]
    facilities.append(DarkStore(id="twin", location=twin.location, stock=shelves, zone=twin.zone, hours=twin.hours))
    orders = _random_orders(moscow, rng, 400, [MILK, TEA], modes=("courier", "courier", "store"))
    results = Allocator(moscow, facilities).allocate(orders)
    store_nodes = snap(moscow, [f.location for f in facilities]).nodes
    order_nodes = snap(moscow, [o.location for o in orders]).nodes
    for o, node, result in zip(orders, order_nodes, results, strict=True):
        covering = [i for i, f in enumerate(facilities)
                    if o.mode == "store" or f.zone is None or f.zone.contains(Point(o.location))]
        reached = [i for i in covering if car_times[store_nodes[i], node] < 2**31 - 1]
        open_ = [i for i in reached if facilities[i].is_open(o.placed_at)]
        if not open_:
            expected = "outside_service_area" if not covering else "unreachable" if not reached else "store_closed"
            assert result.reason == expected
            continue
        best = min(open_, key=lambda i: (car_times[store_nodes[i], node], i))
        assert (result.facility, result.reason) == (facilities[best].id, None)
        assert result.travel_time_s == (car_times[store_nodes[best], node] if o.mode == "courier" else 0)
    counts = Counter(r.facility for r in results)
    assert counts["s1"] > 0 and counts["twin"] == 0  # same place, zone and hours as s1, listed later
    assert {r.reason for r in results} >= {None, "outside_service_area", "store_closed"}


def test_an_order_alone_is_allocated_as_it_is_in_a_batch(moscow: RoadNetwork) -> None:
    """A batch of one order (planned in scalars) gets what the same order gets in a batch (planned in arrays), for
    every mode, with zones, hours over midnight, scarce stock, lockers, pickup points and off-map addresses."""
    rng = np.random.default_rng(11)
    lonlat = moscow.lonlat
    sites = rng.choice(moscow.n_nodes, 10, replace=False)
    hours = [(8 * 3600, 20 * 3600), (22 * 3600, 6 * 3600), (10 * 3600, 11 * 3600)]
    facilities: list[Facility] = [
        DarkStore(id=f"s{i}", location=tuple(lonlat[n]), stock={"MILK": 30, "TEA": 5},
                  zone=Point(lonlat[n]).buffer(0.008), hours=hours[i % 3])
        for i, n in enumerate(sites[:5])]
    facilities += [Locker(id=f"l{i}", location=tuple(lonlat[n]), compartments={"S": 2, "M": 1},
                          store="s0" if i == 0 else None) for i, n in enumerate(sites[5:8])]
    facilities += [PickupPoint(id=f"p{i}", location=tuple(lonlat[n]), capacity=3) for i, n in enumerate(sites[8:])]
    orders = _random_orders(moscow, rng, 300, [MILK, TEA, PILLOW],
                            modes=("courier", "store", "locker", "pickup_point", "courier"))
    orders += [order("far", OFF_MAP), order("far-locker", OFF_MAP, mode="locker")]
    together = Allocator(moscow, facilities).allocate(orders)
    alone = Allocator(moscow, facilities)
    assert together == tuple(alone.allocate([o])[0] for o in orders)
    reasons = Counter((r.reason or "ok").split(":")[0] for r in together)
    assert {"ok", "unreachable", "outside_service_area", "store_closed", "out_of_stock"} <= set(reasons)
    assert {r.facility[0] for r in together if r.facility} == {"s", "l", "p"}


def test_boxes_are_those_of_choose_boxes(moscow: RoadNetwork) -> None:
    """Every allocated order carries the boxes choose_boxes gives (one box or several), locker orders one
    compartment per box; an item fitting no box is named as first_unboxable finds it."""
    rng = np.random.default_rng(11)
    dims = [(95, 95, 200), (250, 110, 90), (400, 300, 150), (590, 390, 390), (120, 80, 60), (1500, 900, 150)]
    skus = [Item(sku=f"K{i}", qty=int(rng.integers(1, 6)), weight_g=int(rng.integers(100, 9000)), dims_mm=d)
            for i, d in enumerate(dims * 3)]
    stock = {item.sku: 10**6 for item in skus}
    facilities: list[Facility] = [DarkStore(id="s", location=OSTANKINO, stock=stock),
                                  Locker(id="l", location=WEST, compartments={"S": 500, "M": 500, "L": 500})]
    orders = _random_orders(moscow, rng, 300, skus, modes=("courier", "locker"))
    results = Allocator(moscow, facilities).allocate(orders)
    for o, result in zip(orders, results, strict=True):
        bad = first_unboxable(o.items)
        if bad is not None:
            assert result.reason == f"no_box_fits: {o.items[bad].sku}"
            continue
        boxes = choose_boxes(o.items)
        assert result.reason is None and result.boxes == tuple(b.name for b in boxes)
        assert result.compartments == (compartments_for(boxes) if o.mode == "locker" else ())
    assert any(len(r.boxes) > 1 for r in results) and any(len(r.boxes) == 1 for r in results)
    assert any(r.reason and r.reason.startswith("no_box_fits") for r in results)


def test_a_fresh_inventory_or_another_catalogue_takes_effect(moscow: RoadNetwork) -> None:
    """Replacing the allocator's inventory starts from full stock again; replacing its catalogue changes the boxes."""
    allocator = Allocator(moscow, [*stores(), *lockers()])
    batch = [order(f"o{k}", NEAR_OSTANKINO, COFFEE) for k in range(4)] + [order("l", WEST, mode="locker")]
    first = allocator.allocate(batch)
    allocator.inventory = Inventory(allocator.facilities)
    assert allocator.allocate(batch) == first
    assert [r.reason for r in first] == [None, None, None, "out_of_stock: COFFEE", None]
    allocator.catalogue = BoxCatalogue(boxes=(Box(name="crate", inner_dims_mm=(500, 500, 500), max_weight_g=30_000,
                                                  compartment="L"),))
    allocator.inventory = Inventory(allocator.facilities)
    crated = allocator.allocate(batch)
    assert [r.boxes for r in crated] == [("crate",)] * 3 + [(), ()]
    assert crated[4].reason == "no_free_compartment"  # a crate needs an L compartment; neither locker has one


KETTLE = Item(sku="KETTLE", qty=1, weight_g=1400, dims_mm=(220, 180, 250))


def returned(oid: str, location: LonLat, *items: Item) -> Order:
    return Order(id=oid, location=location, mode="return_pickup_point", items=(), returns=items or (KETTLE,),
                 placed_at=NOON)


def test_returns_take_a_place_at_the_nearest_pickup_point_with_room(moscow: RoadNetwork) -> None:
    """Returns fill the nearest pickup point, then the next, then pickup_point_full; stock is untouched."""
    facilities = [*stores(), PickupPoint(id="p-near", location=NEAR_OSTANKINO, capacity=1),
                  PickupPoint(id="p-far", location=WEST, capacity=1)]
    allocator = Allocator(moscow, facilities)
    results = allocator.allocate([returned(f"r{k}", NEAR_OSTANKINO) for k in range(3)])
    assert [r.facility for r in results] == ["p-near", "p-far", None]
    assert results[2].reason == "pickup_point_full" and results[2].store is None
    assert results[0].boxes == ("medium",) and results[0].compartments == ()
    assert allocator.inventory.free_capacity("p-near") == allocator.inventory.free_capacity("p-far") == 0
    assert allocator.inventory.available("ostankino", "MILK") == 10
    released = allocator.cancel("r0")
    assert released.pickup_point == "p-near" and released.store is None and dict(released.stock) == {}
    (again,) = allocator.allocate([returned("r3", NEAR_OSTANKINO)])
    assert again.facility == "p-near"


def test_return_is_collected_by_the_pickup_points_store_or_the_nearest(moscow: RoadNetwork) -> None:
    """The collecting store is the pickup point's `store`, else the store nearest it by road, open or not."""
    near = PickupPoint(id="p", location=NEAR_OSTANKINO, capacity=5)
    allocator = Allocator(moscow, [*stores(ostankino={"hours": (1 * 3600, 2 * 3600)}), near])
    (result,) = allocator.allocate([returned("r", NEAR_OSTANKINO)])
    nearest = min(("ostankino", "vdnh"), key=lambda s: allocator.travel_time(s, "p"))
    assert (result.facility, result.store) == ("p", nearest)
    assert result.travel_time_s == allocator.travel_time(nearest, "p")
    other = "vdnh" if nearest == "ostankino" else "ostankino"
    tied = PickupPoint(id="p", location=NEAR_OSTANKINO, capacity=5, store=other)
    (result,) = Allocator(moscow, [*stores(), tied]).allocate([returned("r", NEAR_OSTANKINO)])
    assert result.store == other and result.travel_time_s == allocator.travel_time(other, "p")


def test_return_rejections(moscow: RoadNetwork) -> None:
    """No pickup point, an unboxable return, an address off the map: each rejected with its reason."""
    assert Allocator(moscow, stores()).allocate([returned("r", NEAR_OSTANKINO)])[0].reason == "no_pickup_point"
    facilities = [*stores(), PickupPoint(id="p", location=NEAR_OSTANKINO, capacity=5)]
    tv, off = Allocator(moscow, facilities).allocate([returned("tv", NEAR_OSTANKINO, TV), returned("off", OFF_MAP)])
    assert tv.reason == "no_box_fits: TV-65" and off.reason == "unreachable"
    alone = Allocator(moscow, [PickupPoint(id="p", location=NEAR_OSTANKINO, capacity=5)])
    assert alone.allocate([returned("r", NEAR_OSTANKINO)])[0].reason == "no_dark_store"


def _queues(vdnh_queue: int, *, couriers: tuple[int, ...] = (0,) * 5) -> QueueLoad:
    return QueueLoad(stores={"vdnh": StoreQueue(picking_queue=vdnh_queue, couriers_free_at=couriers)},
                     default=StoreQueue(couriers_free_at=couriers))


def test_busy_nearest_store_spills_over_within_the_detour(moscow: RoadNetwork, car_times: np.ndarray) -> None:
    """With 20 orders queued at VDNH (nearest by road) the order goes to Ostankino, whose door arrival is
    earlier; an idle VDNH keeps it, and so does a detour limit below the extra road time."""
    extra = (road_time(moscow, car_times, OSTANKINO, NEAR_VDNH_WEST)
             - road_time(moscow, car_times, VDNH, NEAR_VDNH_WEST))
    assert extra > 0
    busy = Allocator(moscow, stores(), load=_queues(20)).allocate([order("o1", NEAR_VDNH_WEST)])[0]
    assert busy.facility == "ostankino"
    assert busy.travel_time_s == road_time(moscow, car_times, OSTANKINO, NEAR_VDNH_WEST)
    idle = Allocator(moscow, stores(), load=_queues(0)).allocate([order("o1", NEAR_VDNH_WEST)])[0]
    assert idle.facility == "vdnh"
    tight = Allocator(moscow, stores(), load=_queues(20), max_detour_s=extra - 1)
    assert tight.allocate([order("o1", NEAR_VDNH_WEST)])[0].facility == "vdnh"


def test_spill_over_keeps_stock_and_couriers_in_mind(moscow: RoadNetwork) -> None:
    """A busy VDNH still gets the order when Ostankino lacks the item, or when no store has a courier (then the
    choice is the nearest by road, as without a load)."""
    no_milk = stores(ostankino={"stock": {"BREAD": 5}})
    assert Allocator(moscow, no_milk, load=_queues(20)).allocate([order("o1", NEAR_VDNH_WEST)])[0].facility == "vdnh"
    nobody = Allocator(moscow, stores(), load=_queues(20, couriers=()))
    assert nobody.allocate([order("o1", NEAR_VDNH_WEST)])[0].facility == "vdnh"


def test_negative_detour_is_rejected(moscow: RoadNetwork) -> None:
    """max_detour_s must be an integer >= 0; the error names it."""
    with pytest.raises(InvalidFacilityError, match="max_detour_s"):
        Allocator(moscow, stores(), max_detour_s=-1)
