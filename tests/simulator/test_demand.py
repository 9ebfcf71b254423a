"""Demand: generated days follow the hourly profile, the centres and the shares, seeded; CSV replay is strict."""

from __future__ import annotations

import time
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dispatch.model import Item, Order, Promise
from routing.network import RoadNetwork
from simulator.demand import M_PER_DEG, generate, orders_for, read_orders_csv, write_orders_csv
from simulator.errors import ScenarioError
from simulator.scenario import DEFAULT_SKUS, Clock, Demand, Scenario, Sku

DATA = Path(__file__).resolve().parents[1] / "data"
MOSCOW = DATA / "moscow_ostankino_drive.osm.bz2"
HOUR = 3600
CLOCK = Clock(start=10 * HOUR, end=14 * HOUR)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> RoadNetwork:
    return RoadNetwork.from_osm(MOSCOW, cache_dir=tmp_path_factory.mktemp("cache"))


def demand(**changes: object) -> Demand:
    return replace(Demand(), **changes)  # type: ignore[arg-type]


def metres(points: np.ndarray, to: np.ndarray) -> np.ndarray:
    """Equirectangular distances (m) from each of `points` (n, 2) to each of `to` (m, 2): an (n, m) array."""
    dx = (points[:, None, 0] - to[None, :, 0]) * M_PER_DEG * np.cos(np.radians(to[None, :, 1]))
    dy = (points[:, None, 1] - to[None, :, 1]) * M_PER_DEG
    return np.hypot(dx, dy)


def test_count_ids_and_order(network: RoadNetwork) -> None:
    """Exactly `orders` orders, ids o00001.. in placement order, sorted by (placed_at, id), express promise."""
    orders = generate(demand(orders=300, express_s=1800), CLOCK, network, seed=1)
    assert len(orders) == 300
    assert [o.id for o in orders] == [f"o{i:05d}" for i in range(1, 301)]
    assert list(orders) == sorted(orders, key=lambda o: (o.placed_at, o.id))
    assert {o.promise for o in orders} == {Promise.express(1800)}
    assert generate(demand(orders=0), CLOCK, network, seed=1) == ()


def test_times_in_window_and_not_in_zero_weight_hours(network: RoadNetwork) -> None:
    """Placement times are integers in [start, end) and never fall in an hour of weight 0."""
    hourly = [1.0] * 24
    hourly[12] = 0.0
    clock = Clock(start=6 * HOUR + 900, end=22 * HOUR + 600)
    orders = generate(demand(orders=3000, hourly=tuple(hourly)), clock, network, seed=2)
    times = np.array([o.placed_at for o in orders])
    assert all(isinstance(o.placed_at, int) for o in orders)
    assert times.min() >= clock.start and times.max() < clock.end
    assert not np.any(times // HOUR == 12)
    assert np.any(times // HOUR == 22) and np.any(times // HOUR == 6)


def test_partial_hour_weighs_its_fraction(network: RoadNetwork) -> None:
    """With flat weights, an hour a third inside the window gets about a third of a full hour's orders."""
    clock = Clock(start=10 * HOUR + 40 * 60, end=12 * HOUR)
    orders = generate(demand(orders=4000, hourly=(1.0,) * 24), clock, network, seed=3)
    hours = np.array([o.placed_at // HOUR for o in orders])
    assert abs(np.mean(hours == 10) - 0.25) < 0.03
    assert abs(np.mean(hours == 11) - 0.75) < 0.03


def test_zero_weight_window_is_an_error(network: RoadNetwork) -> None:
    """A clock window whose hours all weigh 0 raises a ScenarioError naming demand.hourly."""
    with pytest.raises(ScenarioError, match=r"demand\.hourly"):
        generate(demand(), Clock(start=0, end=5 * HOUR), network, seed=0)


def test_seeded(network: RoadNetwork) -> None:
    """The same seed gives identical orders; another seed gives different ones."""
    d = demand(orders=200, centres=((37.60, 55.815),), centre_weights=(1.0,),
               modes={"courier": 0.5, "locker": 0.5})
    assert generate(d, CLOCK, network, seed=7) == generate(d, CLOCK, network, seed=7)
    assert generate(d, CLOCK, network, seed=7) != generate(d, CLOCK, network, seed=8)


def test_mode_shares(network: RoadNetwork) -> None:
    """On 2,000 orders the modes follow their shares within a few points."""
    d = demand(orders=2000, modes={"courier": 6.0, "locker": 3.0, "pickup_point": 1.0})
    modes = [o.mode for o in generate(d, CLOCK, network, seed=4)]
    for mode, share in {"courier": 0.6, "locker": 0.3, "pickup_point": 0.1}.items():
        assert abs(modes.count(mode) / len(modes) - share) < 0.04, mode


def test_kernel_concentrates_orders_near_centre(network: RoadNetwork) -> None:
    """With a 300 m kernel, the share of orders within 500 m of the centre far exceeds the share of nodes there."""
    nodes = np.asarray(network.lonlat)
    centre = nodes.mean(axis=0)
    near_nodes = np.mean(metres(nodes, centre[None, :])[:, 0] < 500)
    kernel = generate(demand(orders=2000, centres=(tuple(centre),), centre_weights=(1.0,), spread_m=300.0),
                      CLOCK, network, seed=5)
    uniform = generate(demand(orders=2000), CLOCK, network, seed=5)
    share = {name: np.mean(metres(np.array([o.location for o in orders]), centre[None, :])[:, 0] < 500)
             for name, orders in (("kernel", kernel), ("uniform", uniform))}
    assert 0 < near_nodes < 0.5
    assert share["kernel"] > 1.5 * near_nodes
    assert abs(share["uniform"] - near_nodes) < 0.06


def test_a_centre_off_the_map_is_named(network: RoadNetwork) -> None:
    """A demand centre with no road node within 3 x spread_m (kilometres off with a 300 m kernel) is a
    ScenarioError naming it; a centre on the map gives its orders."""
    centre = tuple(np.asarray(network.lonlat).mean(axis=0))
    off = (centre[0] + 0.15, centre[1] + 0.08)
    with pytest.raises(ScenarioError, match=r"demand\.centres\[1\].*off the map\?"):
        generate(demand(orders=10, centres=(centre, off), centre_weights=(1.0, 1.0), spread_m=300.0),
                 CLOCK, network, seed=5)
    assert len(generate(demand(orders=10, centres=(centre,), centre_weights=(1.0,), spread_m=3000.0),
                        CLOCK, network, seed=5)) == 10


def test_points_jittered_near_nodes(network: RoadNetwork) -> None:
    """Every address lies within 20 m of a road node, and not exactly on one."""
    orders = generate(demand(orders=500), CLOCK, network, seed=6)
    d = metres(np.array([o.location for o in orders]), np.asarray(network.lonlat)).min(axis=1)
    assert d.max() < 20 and np.all(d > 0)


def test_baskets(network: RoadNetwork) -> None:
    """Basket sizes are within `basket`, SKUs are distinct catalogue items, qty 1..3 with the catalogue's sizes."""
    catalogue = {s.id: s for s in DEFAULT_SKUS}
    orders = generate(demand(orders=1000, basket=(2, 4)), CLOCK, network, seed=7)
    assert {len(o.items) for o in orders} == {2, 3, 4}
    for o in orders:
        assert len({i.sku for i in o.items}) == len(o.items)
        for i in o.items:
            assert 1 <= i.qty <= 3
            assert (i.weight_g, i.dims_mm) == (catalogue[i.sku].weight_g, catalogue[i.sku].dims_mm)
    assert {i.qty for o in orders for i in o.items} == {1, 2, 3}


def test_basket_capped_at_catalogue(network: RoadNetwork) -> None:
    """A basket bigger than the catalogue holds every SKU once."""
    skus = DEFAULT_SKUS[:2]
    orders = generate(demand(orders=50, basket=(5, 6), skus=skus), CLOCK, network, seed=8)
    assert all(sorted(i.sku for i in o.items) == sorted(s.id for s in skus) for o in orders)


def test_generates_fast_on_a_big_map() -> None:
    """20,000 orders around two centres on a 7,500-node map take under two seconds (about 0.5 s here)."""
    rng = np.random.default_rng(0)
    big = types.SimpleNamespace(lonlat=np.column_stack((37.5 + 0.2 * rng.random(7500), 55.7 + 0.1 * rng.random(7500))))
    d = demand(orders=20_000, centres=((37.6, 55.75), (37.55, 55.72)), centre_weights=(2.0, 1.0))
    start = time.perf_counter()
    orders = generate(d, Clock(), big, seed=1)  # type: ignore[arg-type]
    assert time.perf_counter() - start < 2.0
    assert len(orders) == 20_000


def test_csv_round_trip(network: RoadNetwork, tmp_path: Path) -> None:
    """Generated orders written to CSV read back identical."""
    d = demand(orders=500, modes={"courier": 1.0, "locker": 1.0, "pickup_point": 1.0}, express_s=1500)
    orders = generate(d, CLOCK, network, seed=9)
    write_orders_csv(orders, tmp_path / "day.csv")
    assert read_orders_csv(tmp_path / "day.csv", d) == orders


def test_read_three_orders() -> None:
    """A hand-written file is parsed: all time formats, items, modes, default and explicit promise, sorted."""
    orders = read_orders_csv(DATA / "demand_three_orders.csv", demand(express_s=2700))
    milk, coffee = DEFAULT_SKUS[0], DEFAULT_SKUS[5]
    assert [o.id for o in orders] == ["b-2", "a-1", "c-3"]
    assert [o.placed_at for o in orders] == [36900, 36930, 39600]
    assert [o.mode for o in orders] == ["locker", "courier", "pickup_point"]
    assert [o.promise for o in orders] == [Promise.express(2700), Promise.express(1800), Promise.express(2700)]
    assert orders[1].location == (37.6020, 55.8177)
    assert orders[1].items == (Item(sku="milk-1l", qty=2, weight_g=milk.weight_g, dims_mm=milk.dims_mm),
                               Item(sku="coffee", qty=1, weight_g=coffee.weight_g, dims_mm=coffee.dims_mm))


def test_bad_row_file_names_file_line_and_column() -> None:
    """The shipped bad file fails on its line 3 (header is line 1), naming the items column and the qty."""
    path = DATA / "demand_bad_row.csv"
    with pytest.raises(ScenarioError) as info:
        read_orders_csv(path, demand())
    assert str(info.value) == f"{path} row 3: items: qty of 'bread' must be a positive integer, got '0'"
    assert (info.value.file, info.value.row, info.value.key) == (str(path), 3, "items")


GOOD = "a-1,10:15,37.6020,55.8177,courier,milk-1l:2"


@pytest.mark.parametrize(("row", "column", "message"), [
    (",10:15,37.60,55.81,courier,bread:1", "id", "must not be empty"),
    ("a-1,10:20,37.60,55.81,courier,bread:1", "id", "duplicate id 'a-1' (first on line 2)"),
    ("a-2,25:99,37.60,55.81,courier,bread:1", "placed_at", "must be a time"),
    ("a-2,noon,37.60,55.81,courier,bread:1", "placed_at", "must be a time"),
    ("a-2,-60,37.60,55.81,courier,bread:1", "placed_at", "must be a time"),
    ("a-2,10:20,east,55.81,courier,bread:1", "lon", "must be a number, got 'east'"),
    ("a-2,10:20,37.60,91,courier,bread:1", "lat", "must be a number of degrees in [-90, 90], got '91'"),
    ("a-2,10:20,181,55.81,courier,bread:1", "lon", "must be a number of degrees in [-180, 180]"),
    ("a-2,10:20,37.60,nan,courier,bread:1", "lat", "must be a number of degrees"),
    ("a-2,10:20,37.60,55.81,drone,bread:1", "mode", "must be one of ['courier', 'locker', 'pickup_point', 'store']"),
    ("a-2,10:20,37.60,55.81,courier,caviar:1", "items", "unknown sku 'caviar'"),
    ("a-2,10:20,37.60,55.81,courier,bread:1.5", "items", "qty of 'bread' must be a positive integer, got '1.5'"),
    ("a-2,10:20,37.60,55.81,courier,bread:-1", "items", "qty of 'bread' must be a positive integer"),
    ("a-2,10:20,37.60,55.81,courier,bread", "items", "must be sku:qty;sku:qty, got 'bread'"),
    ("a-2,10:20,37.60,55.81,courier,bread:1;bread:2", "items", "sku 'bread' is listed twice"),
    ("a-2,10:20,37.60,55.81,courier,", "items", "must list at least one sku:qty"),
    ("a-2,10:20,37.60,55.81,courier,bread:1,extra", "", "has 7 fields, the header has 6"),
    ("a-2,10:20,37.60,55.81,courier,bread:99999999999999999999999", "items", "bread: qty: must be at most"),
    ("a-2,10:20,37.60,55.81,courier,bread:150;milk-1l:60", "items", "at most 200 units in one order, got 210"),
])
def test_bad_rows(tmp_path: Path, row: str, column: str, message: str) -> None:
    """Each bad cell raises a ScenarioError naming the file, its line (header = 1) and the column."""
    path = tmp_path / "day.csv"
    path.write_text(f"id,placed_at,lon,lat,mode,items\n{GOOD}\n{row}\n")
    with pytest.raises(ScenarioError) as info:
        read_orders_csv(path, demand())
    where = f"{path} row 3: {column}: " if column else f"{path} row 3: "
    assert str(info.value).startswith(where + message), str(info.value)
    assert (info.value.row, info.value.key) == (3, column)


def test_bad_promise_cell(tmp_path: Path) -> None:
    """A promise_s that is not a positive integer, or is absurdly large, is named with its line and column."""
    path = tmp_path / "day.csv"
    path.write_text(f"id,placed_at,lon,lat,mode,items,promise_s\n{GOOD},0\n")
    with pytest.raises(ScenarioError, match=r"day\.csv row 2: promise_s: must be a positive integer"):
        read_orders_csv(path, demand())
    path.write_text(f"id,placed_at,lon,lat,mode,items,promise_s\n{GOOD},{10**20}\n")
    with pytest.raises(ScenarioError, match=r"day\.csv row 2: promise_s: must be at most 2147483647"):
        read_orders_csv(path, demand())


@pytest.mark.parametrize(("header", "column", "message"), [
    ("id,placed_at,lon,mode,items", "lat", "missing column"),
    ("id,placed_at,lon,lat,mode,items,colour", "colour", "unknown column"),
    ("id,placed_at,lon,lat,lat,mode,items", "lat", "column appears twice"),
])
def test_bad_header(tmp_path: Path, header: str, column: str, message: str) -> None:
    """Header problems name the file and the column, with no row."""
    path = tmp_path / "day.csv"
    path.write_text(f"{header}\n")
    with pytest.raises(ScenarioError) as info:
        read_orders_csv(path, demand())
    assert str(info.value).startswith(f"{path}: {column}: {message}")
    assert info.value.row is None


def test_empty_and_missing_files(tmp_path: Path) -> None:
    """A missing or empty file raises a ScenarioError naming it; a header-only file holds no orders."""
    with pytest.raises(ScenarioError, match="no such demand file") as info:
        read_orders_csv(tmp_path / "absent.csv", demand())
    assert info.value.file == str(tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ScenarioError, match="empty file"):
        read_orders_csv(tmp_path / "empty.csv", demand())
    (tmp_path / "header.csv").write_text("id,placed_at,lon,lat,mode,items\n")
    assert read_orders_csv(tmp_path / "header.csv", demand()) == ()


def test_write_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    """Orders without an express promise cannot be written to a demand file."""
    sku = Sku(id="bread", weight_g=400, dims_mm=(250, 120, 100))
    order = Order(id="x", location=(37.6, 55.8), mode="courier", placed_at=100, promise=Promise.next_day(),
                  items=(Item(sku=sku.id, qty=1, weight_g=sku.weight_g, dims_mm=sku.dims_mm),))
    with pytest.raises(ScenarioError, match="express promises only"):
        write_orders_csv([order], tmp_path / "x.csv")


def test_orders_for_dispatches_on_kind(network: RoadNetwork) -> None:
    """orders_for generates with the scenario's seed, or replays its file, sorted by (placed_at, id)."""
    base = Scenario(name="t", path=None, map_file=MOSCOW, seed=11, clock=CLOCK, demand=demand(orders=50))
    assert orders_for(base, network) == generate(base.demand, CLOCK, network, seed=11)
    replay = replace(base, demand=demand(kind="replay", file=DATA / "demand_three_orders.csv"))
    assert [o.id for o in orders_for(replay, network)] == ["b-2", "a-1", "c-3"]
    with pytest.raises(ScenarioError, match=r"demand\.file"):
        orders_for(replace(base, demand=demand(kind="replay")), network)


@pytest.mark.parametrize(("placed_at", "shown"), [("03:00", "'03:00'"), ("09:59:59", "'09:59:59'"),
                                                  ("14:00", "'14:00'"), ("17:30", "'17:30'"),
                                                  ("48:00", "'48:00'"), ("0", "'0'")])
def test_a_row_placed_outside_the_clock_is_refused(tmp_path: Path, placed_at: str, shown: str) -> None:
    """With the scenario's clock, a row placed before clock.start or from clock.end on names file, line, placed_at."""
    path = tmp_path / "day.csv"
    path.write_text(f"id,placed_at,lon,lat,mode,items\n{GOOD}\nb1,{placed_at},37.6029,55.8215,courier,milk-1l:2\n")
    with pytest.raises(ScenarioError) as info:
        read_orders_csv(path, demand(), clock=CLOCK)
    assert str(info.value) == (f"{path} row 3: placed_at: must be within the scenario's day, from clock.start 10:00 "
                               f"until before clock.end 14:00, got {shown}")
    assert (info.value.file, info.value.row, info.value.key) == (str(path), 3, "placed_at")


def test_rows_at_the_clock_bounds_are_read(tmp_path: Path) -> None:
    """Rows placed at clock.start and one second before clock.end are within the day and read as given."""
    path = tmp_path / "day.csv"
    path.write_text("id,placed_at,lon,lat,mode,items\na,10:00,37.60,55.81,courier,bread:1\n"
                    "b,13:59:59,37.60,55.81,courier,bread:1\n")
    assert [o.placed_at for o in read_orders_csv(path, demand(), clock=CLOCK)] == [CLOCK.start, CLOCK.end - 1]


def test_orders_for_refuses_a_replayed_row_before_the_day(network: RoadNetwork, tmp_path: Path) -> None:
    """orders_for checks a replayed file against the scenario's own clock (the reader alone does not know it)."""
    path = tmp_path / "day.csv"
    path.write_text("id,placed_at,lon,lat,mode,items\nb1,03:00,37.6029,55.8215,courier,milk-1l:2\n")
    replay = Scenario(name="t", path=None, map_file=MOSCOW, clock=CLOCK, demand=demand(kind="replay", file=path))
    with pytest.raises(ScenarioError, match=r"day\.csv row 2: placed_at: must be within the scenario's day"):
        orders_for(replay, network)
    early = replace(replay, clock=Clock(start=3 * HOUR, end=14 * HOUR))
    assert [o.placed_at for o in orders_for(early, network)] == [3 * HOUR]
