"""Tests for simulator.report: the PNGs and report.html of a simulated day on the Moscow Ostankino map."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from api.scenario_file import scenario_from_dict
from routing.network import RoadNetwork
from simulator.recorder import CourierRecord, OrderRecord, Recorder, TripRecord
from simulator.recorder import kpis as compute_kpis
from simulator.report import IMAGES, calibration_html, format_kpi, sample_trips, trip_paths, write_report
from simulator.scenario import Scenario

DATA = Path(__file__).resolve().parents[1] / "data"
MOSCOW = DATA / "moscow_ostankino_drive.osm.bz2"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOUR = 3600


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> RoadNetwork:
    return RoadNetwork.from_osm(MOSCOW, cache_dir=tmp_path_factory.mktemp("cache"))


def make_scenario(network: RoadNetwork, name: str = "ostankino") -> Scenario:
    at = network.lonlat
    return scenario_from_dict({
        "name": name,
        "map": {"file": MOSCOW.name},
        "stores": [{"id": "store-1", "location": at[0].tolist()}],
        "lockers": [{"id": "locker-1", "location": at[40].tolist(), "compartments": {"S": 4}}],
        "pickup_points": [{"id": "pvz-1", "location": at[80].tolist(), "capacity": 10}],
        "fleet": [{"store": "store-1", "profile": "bike", "count": 2, "shift": ["09:00", "17:00"]}],
    }, base=DATA)


def order(oid: str, placed: int, *, status: str = "open", delivered: int | None = None,
          closed: int | None = None) -> OrderRecord:
    return OrderRecord(id=oid, placed_at=placed, location=(37.6, 55.82), mode="courier", status=status,  # type: ignore[arg-type]
                       store="store-1", promise_by=placed + 45 * 60, ready_at=placed + 300,
                       pickup_at=None if delivered is None else placed + 600, delivered_at=delivered,
                       closed_at=closed if closed is not None else delivered)


def make_recorder(network: RoadNetwork) -> Recorder:
    rec = Recorder(end=13 * HOUR)
    rec.orders = {
        "o1": order("o1", 9 * HOUR, status="delivered", delivered=9 * HOUR + 20 * 60),
        "o2": order("o2", 10 * HOUR, status="delivered", delivered=10 * HOUR + 60 * 60),
        "o3": order("o3", 10 * HOUR + 600, status="delivered", delivered=10 * HOUR + 35 * 60),
        "o4": order("o4", 11 * HOUR, status="cancelled", closed=11 * HOUR + 600),
        "o5": order("o5", 12 * HOUR),
    }
    rec.couriers = {
        "c1": CourierRecord(id="c1", store="store-1", profile="bike", shift_start=9 * HOUR, shift_end=13 * HOUR,
                            driving_s=3000, service_s=600, metres=9000, trips=2, delivered=2,
                            busy=[(9 * HOUR + 600, 9 * HOUR + 1800), (10 * HOUR + 600, 11 * HOUR)]),
        "c2": CourierRecord(id="c2", store="store-1", profile="car", shift_start=9 * HOUR, shift_end=13 * HOUR,
                            driving_s=1800, service_s=300, metres=12000, trips=1, delivered=1,
                            busy=[(10 * HOUR + 900, 10 * HOUR + 2100)]),
    }
    last = network.n_nodes - 1
    rec.trips = [
        TripRecord(courier="c1", store="store-1", profile="bike", orders=("o1",), nodes=(0, 60, 0),
                   times=(9 * HOUR + 600, 9 * HOUR + 1200, 9 * HOUR + 1800), metres=4000),
        TripRecord(courier="c2", store="store-1", profile="car", orders=("o3",), nodes=(0, last, 0),
                   times=(10 * HOUR + 900, 10 * HOUR + 1500, 10 * HOUR + 2100), metres=5000),
        TripRecord(courier="c1", store="store-1", profile="bike", orders=("o2",), nodes=(0, 100, 120, 0),
                   times=(10 * HOUR + 600, 10 * HOUR + 1800, 10 * HOUR + 2400, 11 * HOUR), metres=5000),
    ]
    return rec


def scenario_kpis(scenario: Scenario, rec: Recorder) -> dict[str, Any]:
    return compute_kpis(rec, courier_hour_cost=scenario.costs.courier_hour, per_km_cost=scenario.costs.per_km,
                        co2_g_per_km={"car": 150.0})


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def report(tmp: Path, network: RoadNetwork, *, name: str = "ostankino", empty: bool = False, **kw: Any) -> Path:
    scenario = make_scenario(network, name)
    rec = Recorder() if empty else make_recorder(network)
    return write_report(tmp, scenario=scenario, network=network, recorder=rec, kpis=scenario_kpis(scenario, rec),
                        **kw)


def test_report_writes_every_image_as_a_sizeable_png(tmp_path: Path, network: RoadNetwork) -> None:
    """write_report creates the directory, every PNG (signature, both sides > 300 px) and returns report.html."""
    page = report(tmp_path / "out" / "day", network)
    assert page == tmp_path / "out" / "day" / "report.html" and page.is_file()
    for name in IMAGES:
        width, height = png_size(page.parent / name)
        assert width > 300 and height > 300, name


def test_html_names_images_scenario_and_kpis(tmp_path: Path, network: RoadNetwork) -> None:
    """report.html links every image relatively and shows the scenario name, formatted KPIs and attribution."""
    scenario = make_scenario(network)
    rec = make_recorder(network)
    values = scenario_kpis(scenario, rec)
    text = write_report(tmp_path, scenario=scenario, network=network, recorder=rec, kpis=values).read_text()
    for name in IMAGES:
        assert f'src="{name}"' in text
    assert "<title>ostankino: simulated day</title>" in text
    assert values["on_time_rate"] == 0.5  # o1 and o3 on time; o2 late; o5 still open past its promise at the end
    assert format_kpi("on_time_rate", values["on_time_rate"]) == "50.0 %" and "50.0 %" in text
    assert "Click-to-door, mean" in text and "min" in text
    assert "1 dark store · 1 locker · 1 pickup point · 2 couriers" in text
    assert "Map data © OpenStreetMap contributors, ODbL" in text


def test_html_shows_the_quote_calibration_table() -> None:
    """The calibration rows become a table of quoted vs delivered minutes, met share and slack; none, no table."""
    rows = [{"decile": 1, "orders": 1200, "quoted_min": 12.25, "delivered_min": 9.5, "met_rate": 0.975,
             "slack_min": 2.75}]
    text = calibration_html(rows)
    assert "Express quotes: quoted vs delivered" in text
    assert "<td>1</td><td>1,200</td><td>12.2</td><td>9.5</td><td>97.5 %</td><td>2.8</td>" in text
    assert calibration_html([]) == ""


def test_html_escapes_scenario_name(tmp_path: Path, network: RoadNetwork) -> None:
    """A scenario name with markup characters appears escaped, never as raw HTML."""
    text = report(tmp_path, network, name="<b>peak & rain</b>").read_text()
    assert "&lt;b&gt;peak &amp; rain&lt;/b&gt;" in text
    assert "<b>" not in text


def test_empty_recorder_still_writes_every_file(tmp_path: Path, network: RoadNetwork) -> None:
    """With no orders, couriers or trips every PNG and the page are still written (KPIs shown as n/a)."""
    page = report(tmp_path, network, empty=True)
    for name in IMAGES:
        assert min(png_size(tmp_path / name)) > 300
    assert "n/a" in page.read_text()


def test_all_nan_hours_still_plot(tmp_path: Path, network: RoadNetwork) -> None:
    """Hours with no deliveries and no couriers on shift (NaN series) plot without warnings."""
    scenario = make_scenario(network)
    rec = Recorder(end=15 * HOUR, orders={"o": order("o", 9 * HOUR)})
    write_report(tmp_path, scenario=scenario, network=network, recorder=rec, kpis=scenario_kpis(scenario, rec))
    for name in IMAGES:
        width, height = png_size(tmp_path / name)
        assert width > 300 and height > 300, name


def test_sample_trips_is_seeded_and_bounded(network: RoadNetwork) -> None:
    """sample_trips draws k distinct trips in run order, the same for the same seed, all of them when k >= n."""
    trips = [TripRecord(courier=f"c{i}", store="s", profile="bike", orders=(), nodes=(0, i % network.n_nodes),
                        times=(0, 1), metres=0) for i in range(50)]
    first = sample_trips(trips, 12, seed=7)
    assert first == sample_trips(trips, 12, seed=7)
    assert len(first) == 12 and len({t.courier for t in first}) == 12
    assert [trips.index(t) for t in first] == sorted(trips.index(t) for t in first)
    assert any(sample_trips(trips, 12, seed=s) != first for s in range(1, 5))
    assert sample_trips(trips, 80, seed=0) == trips
    assert sample_trips(trips, 0, seed=0) == [] and sample_trips([], 5, seed=0) == []


def test_same_inputs_give_identical_map(tmp_path: Path, network: RoadNetwork) -> None:
    """Two reports from the same inputs and seed draw byte-identical maps."""
    a = report(tmp_path / "a", network, sample_routes=2, seed=3)
    b = report(tmp_path / "b", network, sample_routes=2, seed=3)
    assert (a.parent / "map.png").read_bytes() == (b.parent / "map.png").read_bytes()


def test_trip_paths_follow_road_arcs(network: RoadNetwork) -> None:
    """A drawn trip passes through its stops and every step between points is a road arc of its profile."""
    trip = make_recorder(network).trips[2]
    (path,) = trip_paths(network, [trip])
    index = {tuple(xy): i for i, xy in enumerate(network.lonlat.tolist())}
    nodes = [index[tuple(xy)] for xy in path.tolist()]
    arcs = network.arcs(trip.profile)
    roads = set(zip(arcs.tail.tolist(), arcs.head.tolist(), strict=True))
    assert all(step in roads for step in itertools.pairwise(nodes))
    assert nodes[0] == nodes[-1] == 0 and {100, 120} <= set(nodes)
    assert len(nodes) > len(trip.nodes)


def test_trip_paths_fall_back_to_straight_segments(network: RoadNetwork) -> None:
    """A trip of a profile the network cannot route is drawn straight between its stops; bad nodes are skipped."""
    odd = TripRecord(courier="c", store="s", profile="hovercraft", orders=(), nodes=(0, 5, 0), times=(0, 1, 2),
                     metres=0)
    broken = TripRecord(courier="c", store="s", profile="bike", orders=(), nodes=(0, network.n_nodes), times=(0, 1),
                        metres=0)
    (path,) = trip_paths(network, [odd, broken])
    assert np.array_equal(path, network.lonlat[[0, 5, 0]])


def test_format_kpi_units() -> None:
    """KPI values carry their units: rates as %, times in min, distances in km, counts whole, missing as n/a."""
    assert format_kpi("courier_utilisation", 0.5) == "50.0 %"
    assert format_kpi("click_to_door_p90_min", 31.26) == "31.26 min"  # as kpis.json and the text table have it
    assert format_kpi("express_quote_slack_mean_min", 2.85) == "2.85 min"  # not 2.9: rounded once
    assert format_kpi("km", 12.34) == "12.34 km"
    assert format_kpi("co2_g", 1234.56) == "1,234.6 g"
    assert format_kpi("delivered", 1200) == "1,200"
    assert format_kpi("express_met_rate", None) == "n/a"
    assert format_kpi("unknown_thing", "x") == "x"
