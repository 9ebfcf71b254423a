"""Scenario files: the shipped ones load, every bad key is named with its file, sweep settings apply."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from simulator.errors import ScenarioError
from simulator.scenario import apply_setting, load_scenario, parse_time, scenario_from_dict

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
TINY = SCENARIOS / "moscow-ostankino-tiny.toml"


def tiny_data() -> dict:
    return tomllib.loads(TINY.read_text())


def load_with(tmp_path: Path, data: dict) -> None:
    scenario_from_dict(data, base=SCENARIOS, path=tmp_path / "x.toml")


def test_shipped_scenarios_load() -> None:
    """Every scenario in scenarios/ loads and validates."""
    files = sorted(SCENARIOS.glob("*.toml"))
    assert TINY in files
    for f in files:
        sc = load_scenario(f)
        assert sc.stores and sc.couriers > 0 and sc.map_file.is_file()


def test_porto_day_is_big_enough() -> None:
    """porto-centre-day has >= 8 stores, lockers, pickup points, >= 5000 orders and a bike/foot/car fleet."""
    sc = load_scenario(SCENARIOS / "porto-centre-day.toml")
    assert len(sc.stores) >= 8 and sc.lockers and sc.pickup_points
    assert sc.demand.orders >= 5000
    assert {"bike", "foot", "car"} <= {g.profile for g in sc.fleet}


def test_porto_metro_day_is_city_scale() -> None:
    """porto-metro-day runs on the metro map with >= 40 stores, lockers, pickup points and >= 50,000 orders, and
    every fleet group belongs to one of its stores."""
    sc = load_scenario(SCENARIOS / "porto-metro-day.toml")
    assert sc.map_file.name == "porto_drive.osm.bz2"
    assert len(sc.stores) >= 40 and len(sc.lockers) >= 20 and len(sc.pickup_points) >= 20
    assert sc.demand.orders >= 50_000
    assert {g.store for g in sc.fleet} == {s.id for s in sc.stores}


def test_tiny_values() -> None:
    """Times, coordinates and nested tables are read into the dataclasses."""
    sc = load_scenario(TINY)
    assert sc.clock.start == 10 * 3600 and sc.clock.end == 14 * 3600
    assert sc.stores[0].location == (37.6020, 55.8177)
    assert sc.stores[0].hours == (8 * 3600, 23 * 3600)
    assert sc.lockers[0].compartments == {"S": 4, "M": 4, "L": 2}
    assert sc.policy.name == "batch" and sc.policy.hold_s == 240
    assert sc.demand.modes == {"courier": 0.8, "locker": 0.1, "pickup_point": 0.1}


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.update(colour="red"), "colour: unknown key"),
    (lambda d: d["fleet"][2].update(count=-3), "fleet[2].count: must be at least 0, got -3"),
    (lambda d: d["fleet"][0].update(profile="rocket"), "fleet[0].profile: must be one of"),
    (lambda d: d["fleet"][0].update(store="nowhere"), "fleet[0].store: must be one of"),
    (lambda d: d["stores"][1].update(location=[37.6]), "stores[1].location: must be [lon, lat]"),
    (lambda d: d["clock"].update(start="25:99"), "clock.start: must be a time"),
    (lambda d: d["clock"].update(end="09:00"), "clock.end: must be after start"),
    (lambda d: d["policy"].update(name="magic"), "policy.name: must be one of"),
    (lambda d: d["demand"].update(modes={"drone": 1.0}), "demand.modes.drone: unknown key"),
    (lambda d: d["map"].update(file="maps/nope.osm"), "map.file: no such map file"),
    (lambda d: d["stores"].append(dict(d["stores"][0])), "used twice"),
    (lambda d: d["delivery"].update(failure_rate=1.5), "delivery.failure_rate: must lie in [0.0, 1.0]"),
    (lambda d: d.update(allocation={"rank": "cheapest"}), "allocation.rank: must be one of"),
    (lambda d: d["delivery"].update(failed_to="neighbour"), "delivery.failed_to: must be one of"),
    (lambda d: d.update(allocation={"max_detour_s": -5}), "allocation.max_detour_s: must be at least 0"),
    (lambda d: d.update(promise={"margin": 60}), "promise.margin: unknown option"),
    (lambda d: d.update(promise={"margin_s": -1}), "promise.margin_s: must be an integer >= 0"),
    (lambda d: d["stores"][0].update(picking_s=2**63 - 1), "stores[0].picking_s: must be at most 172800"),
    (lambda d: d["fleet"][0].update(count=10**23), "fleet[0].count: must be at most 1000000"),
    (lambda d: d["demand"].update(orders=10**9), "demand.orders: must be at most 1000000"),
    (lambda d: d["demand"].update(basket=[1, 10**23]), "demand.basket: must be [low, high] with 1 <= low <= high"),
    (lambda d: d["demand"].update(hourly=[float("inf")] * 24), "demand.hourly: must be 24 numbers in [0, 1e"),
    (lambda d: d["demand"].update(centre_weights=[float("nan"), 1]), "demand.centre_weights: must be 2 numbers"),
    (lambda d: d["demand"].update(spread_m=1e308), "demand.spread_m: must lie in [1.0, 20000000.0]"),
    (lambda d: d.update(seed=2**64), "seed: must be at most 2147483647"),
    (lambda d: d.update(costs={"per_km": {"car": 1e308}}), "costs.per_km.car: must be a number in [0, 1e"),
    (lambda d: d.update(promise={"margin_rate": 1e308}), "promise.margin_rate: must be at most 100"),
])
def test_bad_scenario_names_the_key(tmp_path: Path, mutate, message: str) -> None:
    """A bad value or unknown key raises ScenarioError naming the key path."""
    data = tiny_data()
    mutate(data)
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        load_with(tmp_path, data)


def test_error_names_the_file(tmp_path: Path) -> None:
    """load_scenario puts the file name in front of the key."""
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.read_text().replace('name = "moscow-ostankino-tiny"', 'name = "x"\nfleets = 3')
                   .replace('file = "maps/', f'file = "{SCENARIOS}/maps/'))
    with pytest.raises(ScenarioError) as err:
        load_scenario(bad)
    assert str(err.value) == f"{bad}: fleets: unknown key"


def test_not_toml_and_missing(tmp_path: Path) -> None:
    """A missing file or broken TOML is one readable error naming the file."""
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "none.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[map\nfile=")
    with pytest.raises(ScenarioError, match=r"broken\.toml: not valid TOML"):
        load_scenario(broken)


def test_parse_time() -> None:
    """HH:MM, HH:MM:SS and seconds are accepted; junk is refused."""
    assert parse_time("08:30", "x") == 8 * 3600 + 1800
    assert parse_time("23:59:59", "x") == 86_399
    assert parse_time(600, "x") == 600
    for bad in ("8h", "12:60", True, 1.5, -1):
        with pytest.raises(ScenarioError):
            parse_time(bad, "x")


def test_settings() -> None:
    """Sweep settings change the named knob: fleet totals per profile spread over groups, policy, seed."""
    sc = load_scenario(TINY)
    bikes = apply_setting(sc, "fleet.bike", "10")
    assert sum(g.count for g in bikes.fleet if g.profile == "bike") == 10
    assert [g.count for g in bikes.fleet if g.profile != "bike"] == [g.count for g in sc.fleet if g.profile != "bike"]
    assert apply_setting(sc, "policy", "greedy").policy.name == "greedy"
    assert apply_setting(sc, "policy.hold_s", "60").policy.hold_s == 60
    assert apply_setting(sc, "seed", "9").seed == 9
    assert apply_setting(sc, "fleet.scale", "2").couriers == 2 * sc.couriers
    assert sc.allocation.rank == "eta" and apply_setting(sc, "allocation.rank", "nearest").allocation.rank == "nearest"
    assert apply_setting(sc, "allocation.max_detour_s", "120").allocation.max_detour_s == 120
    for key, value in (("fleet.rocket", "3"), ("policy", "magic"), ("fleet.bike", "-1"), ("color", "1"),
                       ("policy.nope", "1"), ("allocation.rank", "random"), ("fleet.bike", str(10**23)),
                       ("fleet.scale", "1e300"), ("policy.hold_s", str(2**63)), ("seed", str(2**64)),
                       ("demand.orders", str(10**12))):
        with pytest.raises(ScenarioError, match=f"--set {key}"):
            apply_setting(sc, key, value)
