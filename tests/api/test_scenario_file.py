"""api.scenario_file: scenario files load through pydantic models, errors name the file and key, the JSON Schema."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from api.cli import main
from api.scenario_file import (
    EXAMPLE,
    TIME_PATTERN,
    ScenarioFile,
    day_time,
    json_schema,
    json_schema_text,
    load_scenario,
    scenario_from_dict,
)
from dispatch.promise import ExpressModel
from simulator.errors import ScenarioError
from simulator.scenario import DEFAULT_SKUS, INT_SETTINGS, apply_setting

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
TINY = SCENARIOS / "moscow-ostankino-tiny.toml"
SCHEMA_FILE = ROOT / "docs" / "schemas" / "scenario.schema.json"
SHIPPED = sorted(SCENARIOS.glob("*.toml"))


def tiny_data() -> dict[str, Any]:
    return tomllib.loads(TINY.read_text())


def load_with(tmp_path: Path, data: dict[str, Any]) -> None:
    scenario_from_dict(data, base=SCENARIOS, path=tmp_path / "x.toml")


def test_shipped_scenarios_load() -> None:
    """Every scenario in scenarios/ loads and validates."""
    assert TINY in SHIPPED
    for f in SHIPPED:
        sc = load_scenario(f)
        assert sc.stores and sc.couriers > 0 and sc.map_file.is_file() and sc.path == f and sc.name == f.stem


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
    """Times, coordinates and nested tables are read into the dataclasses, as the types the domain declares."""
    sc = load_scenario(TINY)
    assert sc.clock.start == 10 * 3600 and sc.clock.end == 14 * 3600
    assert sc.stores[0].location == (37.6020, 55.8177) and type(sc.stores[0].location) is tuple
    assert sc.stores[0].hours == (8 * 3600, 23 * 3600)
    assert sc.lockers[0].compartments == {"S": 4, "M": 4, "L": 2}
    assert sc.policy.name == "batch" and sc.policy.hold_s == 240
    assert sc.demand.modes == {"courier": 0.8, "locker": 0.1, "pickup_point": 0.1}
    assert sc.demand.centre_weights == (2.0, 1.0) and all(type(w) is float for w in sc.demand.centre_weights)
    assert sc.max_snap_m == 300.0 and type(sc.max_snap_m) is float
    assert sc.fleet[1].shift == (11 * 3600, 14 * 3600 + 1800) and sc.fleet[2].capacity == 8


def test_defaults_of_a_minimal_document() -> None:
    """A document with only a map and a store gets the documented default of every other key."""
    sc = scenario_from_dict({"map": {"file": "maps/moscow_ostankino_drive.osm.bz2"},
                             "stores": [{"id": "s", "location": [37.6, 55.8]}]}, base=SCENARIOS, name="mini")
    assert sc.name == "mini" and sc.path is None and sc.seed == 0 and sc.max_snap_m == 300.0
    assert (sc.clock.start, sc.clock.end, sc.clock.tick_s, sc.clock.traffic) == (8 * 3600, 23 * 3600, 60, True)
    assert (sc.policy.name, sc.policy.max_orders, sc.policy.hold_s) == ("batch", 3, 300)
    assert (sc.stores[0].pickers, sc.stores[0].picking_s, sc.stores[0].stock) == (2, 240, 100_000)
    assert sc.demand.skus == DEFAULT_SKUS and sc.demand.centre_weights == () and sc.demand.modes == {"courier": 1.0}
    assert sc.demand.basket == (1, 6) and len(sc.demand.hourly) == 24 and sc.fleet == ()
    assert sc.costs.courier_hour["car"] == 15.0 and sc.promise.margin_s == 300


def test_costs_given_replace_only_their_profiles() -> None:
    """`[costs]` rates given for a profile replace its default; the other profiles keep theirs."""
    data = tiny_data()
    data["costs"] = {"per_km": {"car": 0.5}}
    sc = scenario_from_dict(data, base=SCENARIOS)
    assert sc.costs.per_km == {"bike": 0.0, "ebike": 0.02, "foot": 0.0, "car": 0.5}
    assert sc.costs.courier_hour["bike"] == 11.0


def test_whole_floats_are_integers() -> None:
    """A whole float where an integer is due (`count = 3.0`, JSON Schema's `integer`) is that integer."""
    data = tiny_data()
    data["fleet"][0]["count"] = 3.0
    sc = scenario_from_dict(data, base=SCENARIOS)
    assert sc.fleet[0].count == 3 and type(sc.fleet[0].count) is int


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.update(colour="red"), "colour: not a field of a scenario file; expected ['allocation', "),
    (lambda d: d["fleet"][2].update(count=-3), "fleet[2].count: must be at least 0, got -3"),
    (lambda d: d["fleet"][0].update(profile="rocket"), "fleet[0].profile: must be one of 'bike', 'ebike', 'foot' or "
                                                       "'car', got 'rocket'"),
    (lambda d: d["fleet"][0].update(store="nowhere"), "fleet[0].store: must be one of ['ostankino', 'vdnh'], got "
                                                      "'nowhere'"),
    (lambda d: d["lockers"][0].update(store="nowhere"), "lockers[0].store: must be one of ['ostankino', 'vdnh']"),
    (lambda d: d["stores"][1].update(location=[37.6]), "stores[1].location: must have 2 items, got 1"),
    (lambda d: d["stores"][1].update(location=[37.6, 91]), "stores[1].location[1]: must be at most 90, got 91"),
    (lambda d: d["clock"].update(start="25:99"), "clock.start: must be a time"),
    (lambda d: d["clock"].update(end="09:00"), "clock.end: must be after start (10:00), got 09:00"),
    (lambda d: d["clock"].update(tick_s=0), "clock.tick_s: must be at least 1, got 0"),
    (lambda d: d["clock"].update(traffic="yes"), "clock.traffic: must be true or false, got 'yes'"),
    (lambda d: d.update(clock=3), "clock: must be an object, got int"),
    (lambda d: d["policy"].update(name="magic"), "policy.name: must be one of 'greedy', 'batch' or 'reoptimize'"),
    (lambda d: d["policy"].update(max_orders=0), "policy.max_orders: must be at least 1, got 0"),
    (lambda d: d["demand"].update(modes={"drone": 1.0}), "demand.modes.drone: unknown key; expected one of "
                                                         "'courier', 'locker', 'pickup_point' or 'store'"),
    (lambda d: d["demand"].update(modes={"courier": 0}), "demand.modes: needs a share > 0 for at least one mode"),
    (lambda d: d["map"].update(file="maps/nope.osm"), "map.file: no such map file"),
    (lambda d: d["map"].update(file="maps"), "map.file: " + str(SCENARIOS / "maps") + " is a folder, not an OSM file"),
    (lambda d: d.pop("map"), "map: missing"),
    (lambda d: d["stores"].append(dict(d["stores"][0])), "stores[2].id: facility id 'ostankino' is used twice"),
    (lambda d: d["pickup_points"][0].update(id="vdnh"), "pickup_points[0].id: facility id 'vdnh' is used twice"),
    (lambda d: d.update(stores=[]), "stores: must not be empty"),
    (lambda d: d.update(fleet={"store": "x"}), "fleet: must be a list, got dict"),
    (lambda d: d["fleet"][0].update(shift=["14:00", "10:00"]), "fleet[0].shift: must end after it starts, got "
                                                               "['14:00', '10:00']"),
    (lambda d: d["fleet"][0].update(shift=["10:00", "49:00"]), "fleet[0].shift[1]: must be at most 48:00"),
    (lambda d: d["stores"][0].update(hours=["08:00", "25:00"]), "stores[0].hours[1]: must be at most 24:00, got "
                                                               "'25:00'"),
    (lambda d: d["stores"][0].update(pickers=2.5), "stores[0].pickers: must be an integer, got 2.5"),
    (lambda d: d["delivery"].update(failure_rate=1.5), "delivery.failure_rate: must be at most 1, got 1.5"),
    (lambda d: d.update(allocation={"rank": "cheapest"}), "allocation.rank: must be one of 'eta' or 'nearest'"),
    (lambda d: d["delivery"].update(failed_to="neighbour"), "delivery.failed_to: must be one of 'store' or 'locker'"),
    (lambda d: d.update(allocation={"max_detour_s": -5}), "allocation.max_detour_s: must be at least 0, got -5"),
    (lambda d: d.update(promise={"margin": 60}), "promise.margin: not a field of a promise; expected ["),
    (lambda d: d.update(promise={"margin_s": -1}), "promise.margin_s: must be at least 0, got -1"),
    (lambda d: d["lockers"][0].update(compartments={"S": 0}), "lockers[0].compartments: must hold at least one"),
    (lambda d: d["lockers"][0].update(compartments={"XL": 2}), "lockers[0].compartments.XL: unknown key"),
    (lambda d: d["stores"][0].update(picking_s=2**63 - 1), "stores[0].picking_s: must be at most 172800"),
    (lambda d: d["fleet"][0].update(count=10**23), "fleet[0].count: must be at most 1000000"),
    (lambda d: d["demand"].update(orders=10**9), "demand.orders: must be at most 1000000"),
    (lambda d: d["demand"].update(basket=[1, 10**23]), "demand.basket[1]: must be at most 1000000"),
    (lambda d: d["demand"].update(basket=[4, 2]), "demand.basket: must be [low, high] with low <= high, got [4, 2]"),
    (lambda d: d["demand"].update(hourly=[float("inf")] * 24), "demand.hourly[0]: must be a finite number, got inf"),
    (lambda d: d["demand"].update(hourly=[0] * 24), "demand.hourly: must not be all zero"),
    (lambda d: d["demand"].update(centre_weights=[float("nan"), 1]), "demand.centre_weights[0]: must be a finite"),
    (lambda d: d["demand"].update(centre_weights=[1]), "demand.centre_weights: must be 2 numbers, one per centre"),
    (lambda d: d["demand"].update(spread_m=1e308), "demand.spread_m: must be at most 20000000, got 1e+308"),
    (lambda d: d["demand"].update(kind="replay"), "demand.file: missing"),
    (lambda d: d["demand"].update(file="x.csv"), "demand.file: only a replay demand reads a file"),
    (lambda d: d["demand"].update(skus=[{"id": "a", "weight_g": 1, "dims_mm": [1, 1, 1]}] * 2),
     "demand.skus[1].id: duplicate id 'a'"),
    (lambda d: d["demand"].update(skus=[{"id": "a", "weight_g": 1, "dims_mm": [1, 1]}]),
     "demand.skus[0].dims_mm: must have 3 items, got 2"),
    (lambda d: d.update(seed=2**64), "seed: must be at most 2147483647"),
    (lambda d: d.update(costs={"per_km": {"car": 1e308}}), "costs.per_km.car: must be at most 1000000000"),
    (lambda d: d.update(promise={"margin_rate": 1e308}), "promise.margin_rate: must be at most 100"),
    (lambda d: d.update(promise={"express_model": {"constant_s": 60.0, "picking": 1.0, "courier_wait": 1.0,
                                                   "road": -1.0}}), "promise.express_model.road: must be at least 0"),
    (lambda d: d.update(promise={"express_model": {"constant_s": 60.0}}), "promise.express_model.picking: "),
    (lambda d: d.update(policy={"objective": "speed"}), "policy.objective: must be one of 'click_to_door' or "
                                                         "'lateness'"),
])
def test_bad_scenario_names_the_key(tmp_path: Path, mutate: Any, message: str) -> None:
    """A bad value or unknown key raises ScenarioError whose message starts with the key path."""
    data = tiny_data()
    mutate(data)
    with pytest.raises(ScenarioError) as err:
        load_with(tmp_path, data)
    assert str(err.value).startswith(message)


def test_reoptimize_knobs_and_a_quote_model_load(tmp_path: Path) -> None:
    """The reoptimize knobs and a fitted express model (integers where floats are meant, too) reach the domain."""
    data = tiny_data()
    data["policy"] = {"name": "reoptimize", "objective": "lateness", "minute_cost_m": 500, "backend": "hybrid",
                      "warm_start": False, "room_factor": 0, "co2_cost_m_per_kg": 2500}
    data["promise"] = {"express_model": {"constant_s": 60, "picking": 1, "courier_wait": 0.5, "road": 1.2,
                                         "plan": 0.25}}
    sc = scenario_from_dict(data, base=SCENARIOS, path=tmp_path / "x.toml")
    assert (sc.policy.objective, sc.policy.minute_cost_m, sc.policy.backend, sc.policy.warm_start,
            sc.policy.room_factor, sc.policy.co2_cost_m_per_kg) == ("lateness", 500, "hybrid", False, 0, 2500)
    assert sc.promise.express_model == ExpressModel(constant_s=60.0, picking=1.0, courier_wait=0.5, road=1.2,
                                                    plan=0.25)


@pytest.mark.parametrize("backend", ["ortools", "hybrid"])
def test_a_policy_the_run_could_not_build_names_the_file_and_the_backend(
        tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    """reoptimize keeping quotes on a backend that cannot price them fails at load (file and policy.backend), not
    when the run builds its policy; without quotes, or under batch, the same backend loads."""
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.read_text().replace('name = "batch"', f'name = "reoptimize"\nbackend = "{backend}"', 1)
                   .replace('file = "maps/', f'file = "{SCENARIOS}/maps/'))
    with pytest.raises(ScenarioError) as err:
        load_scenario(bad)
    assert str(err.value).startswith(f"{bad}: policy.backend: {backend} cannot price both click-to-door and lateness")
    assert (err.value.file, err.value.key) == (str(bad), "policy.backend")
    assert main(["simulate", str(bad), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith(f"lastmile: error: {bad}: policy.backend: {backend} cannot price")
    data = tiny_data()
    data["policy"] = {"name": "reoptimize", "backend": backend, "quote_minute_cost_m": 0}
    assert scenario_from_dict(data, base=SCENARIOS).policy.backend == backend
    data["policy"] = {"name": "batch", "backend": backend}
    assert scenario_from_dict(data, base=SCENARIOS).policy.backend == backend


def test_error_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """load_scenario puts the file name in front of the key; the CLI prints that one line and exits 2."""
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.read_text().replace("count = 1\n", "count = -3\n", 1)
                   .replace('file = "maps/', f'file = "{SCENARIOS}/maps/'))
    with pytest.raises(ScenarioError) as err:
        load_scenario(bad)
    assert str(err.value) == f"{bad}: fleet[1].count: must be at least 0, got -3"
    assert main(["simulate", str(bad), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert capsys.readouterr().err == f"lastmile: error: {bad}: fleet[1].count: must be at least 0, got -3\n"


def test_not_toml_and_missing(tmp_path: Path) -> None:
    """A missing file or broken TOML is one readable error naming the file."""
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "none.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[map\nfile=")
    with pytest.raises(ScenarioError, match=r"broken\.toml: not valid TOML"):
        load_scenario(broken)


def test_times_go_up_to_48_hours() -> None:
    """Scenario times are HH:MM, HH:MM:SS or seconds up to 48:00 (a day may run past midnight); junk is refused."""
    assert day_time("08:30") == 8 * 3600 + 1800
    assert day_time("23:59:59") == 86_399
    assert day_time("47:30") == 47 * 3600 + 1800 and day_time("48:00") == 2 * 86_400
    assert day_time(600) == 600
    for bad in ("8h", "12:60", "48:01", True, 1.5, -1, 2 * 86_400 + 1):
        with pytest.raises(ValueError, match=r"^must"):
            day_time(bad)


# --- --set knobs: the file's own bounds ---------------------------------------------------------------------------

SETTING_KEYS = {"policy.max_orders": ("Policy", "max_orders"), "policy.hold_s": ("Policy", "hold_s"),
                "policy.radius_s": ("Policy", "radius_s"), "policy.iterations": ("Policy", "iterations"),
                "policy.minute_cost_m": ("Policy", "minute_cost_m"),
                "policy.quote_minute_cost_m": ("Policy", "quote_minute_cost_m"),
                "policy.room_factor": ("Policy", "room_factor"),
                "policy.co2_cost_m_per_kg": ("Policy", "co2_cost_m_per_kg"),
                "allocation.max_detour_s": ("Allocation", "max_detour_s"), "demand.orders": ("Demand", "orders"),
                "clock.decision_latency_s": ("Clock", "decision_latency_s"), "seed": (None, "seed"),
                "fleet.<profile>": ("FleetGroup", "count"), "stores.pickers": ("Store", "pickers"),
                "stores.picking_s": ("Store", "picking_s")}
"""The scenario file's key each integer `--set` setting changes."""


@pytest.mark.parametrize("setting", sorted(INT_SETTINGS))
def test_set_takes_the_bounds_of_the_file(setting: str) -> None:
    """`--set KEY=N` accepts exactly the integers the scenario file's key accepts: the bounds are the model's,
    and one beyond either is refused naming `--set KEY`."""
    table, field = SETTING_KEYS[setting]
    schema = json_schema()
    prop = (schema["$defs"][table] if table else schema)["properties"][field]
    assert INT_SETTINGS[setting] == (prop["minimum"], prop["maximum"])
    key = setting.replace("<profile>", "bike")
    sc = load_scenario(TINY)
    low, high = INT_SETTINGS[setting]
    for ok in (low, high):
        apply_setting(sc, key, str(ok))
    for bad in (low - 1, high + 1):
        with pytest.raises(ScenarioError, match=re.escape(f"--set {key}: must be at")):
            apply_setting(sc, key, str(bad))


def test_set_changes_the_pickers_of_every_store_or_of_one() -> None:
    """`stores.pickers` and `stores.picking_s` change every dark store, `stores.<id>.pickers` only that one,
    `stores.pickers_scale` scales each store's own (rounded, at least one); a store the scenario does not have, or a
    factor that is not a number >= 0, is refused naming the setting."""
    sc = load_scenario(TINY)
    assert [(s.pickers, s.picking_s) for s in sc.stores] == [(2, 180), (2, 240)]
    every = apply_setting(apply_setting(sc, "stores.pickers", "5"), "stores.picking_s", "90")
    assert [(s.pickers, s.picking_s) for s in every.stores] == [(5, 90), (5, 90)]
    one = apply_setting(sc, "stores.vdnh.pickers", "7")
    assert [(s.id, s.pickers) for s in one.stores] == [("ostankino", 2), ("vdnh", 7)]
    for key in ("stores.nowhere.pickers", "stores..pickers"):
        with pytest.raises(ScenarioError, match=re.escape(f"--set {key}: the scenario has no store")):
            apply_setting(sc, key, "3")
    with pytest.raises(ScenarioError, match=re.escape("--set stores.vdnh.pickers: must be at least 1")):
        apply_setting(sc, "stores.vdnh.pickers", "0")
    with pytest.raises(ScenarioError, match=re.escape("--set stores.zone_radius_m: unknown setting")):
        apply_setting(sc, "stores.zone_radius_m", "3")
    ostankino = apply_setting(sc, "stores.ostankino.pickers", "3")
    assert [s.pickers for s in apply_setting(ostankino, "stores.pickers_scale", "2.5").stores] == [8, 5]
    assert [s.pickers for s in apply_setting(ostankino, "stores.pickers_scale", "0").stores] == [1, 1]
    for bad in ("-1", "x", "inf"):
        with pytest.raises(ScenarioError, match=re.escape("--set stores.pickers_scale: must be a number >= 0")):
            apply_setting(sc, "stores.pickers_scale", bad)
    with pytest.raises(ScenarioError, match=re.escape("--set stores.pickers_scale: would give a store more than")):
        apply_setting(sc, "stores.pickers_scale", "1e9")


def test_set_scales_the_lockers_and_the_pickup_points() -> None:
    """`lockers.compartments_scale` scales each locker's compartments of each size (rounded, at least one in all, of
    the size it has most of) and `pickup_points.capacity_scale` each pickup point's places (rounded, down to none);
    a factor that is not a number >= 0, or one too large, is refused naming the setting."""
    sc = load_scenario(TINY)
    assert [dict(lk.compartments) for lk in sc.lockers] == [{"S": 4, "M": 4, "L": 2}]
    assert [p.capacity for p in sc.pickup_points] == [20]
    grown = apply_setting(apply_setting(sc, "lockers.compartments_scale", "2.5"), "pickup_points.capacity_scale", "4")
    assert [dict(lk.compartments) for lk in grown.lockers] == [{"S": 10, "M": 10, "L": 5}]
    assert [p.capacity for p in grown.pickup_points] == [80]
    assert grown.stores == sc.stores and grown.fleet == sc.fleet
    assert [dict(lk.compartments) for lk in apply_setting(sc, "lockers.compartments_scale", "0").lockers] == [
        {"S": 1, "M": 0, "L": 0}]
    assert [p.capacity for p in apply_setting(sc, "pickup_points.capacity_scale", "0").pickup_points] == [0]
    for key in ("lockers.compartments_scale", "pickup_points.capacity_scale"):
        for bad in ("-1", "x", "nan"):
            with pytest.raises(ScenarioError, match=re.escape(f"--set {key}: must be a number >= 0")):
                apply_setting(sc, key, bad)
        with pytest.raises(ScenarioError, match=re.escape(f"--set {key}: would give a")):
            apply_setting(sc, key, "1e9")
        bare = replace(sc, lockers=(), pickup_points=())
        assert apply_setting(bare, key, "2") == bare
        with pytest.raises(ScenarioError, match=re.escape(f"--set {key}: must be a number >= 0")):
            apply_setting(bare, key, "x")


def test_simulate_json_prints_the_days_figures_as_one_object(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`lastmile simulate SCENARIO --json` prints one JSON object: kpis.json's figures, the run's seconds and the
    report it wrote."""
    out = tmp_path / "out"
    assert main(["simulate", str(TINY), "--out", str(out), "--json", "--set", "demand.orders=60"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["report"] == str(out / "report.html") and (out / "report.html").is_file()
    assert printed["runtime_s"] > 0
    kpis = json.loads((out / "kpis.json").read_text())
    assert {k: printed[k] for k in kpis} == kpis and kpis["orders"] == 60


# --- the JSON Schema ------------------------------------------------------------------------------------------------

def test_committed_schema_is_up_to_date() -> None:
    """docs/schemas/scenario.schema.json is exactly what the models generate (`lastmile schema scenario`)."""
    assert SCHEMA_FILE.read_text(encoding="utf-8") == json_schema_text(), (
        "docs/schemas/scenario.schema.json is stale: run `lastmile schema scenario > "
        "docs/schemas/scenario.schema.json`")


def test_schema_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """`lastmile schema scenario` prints the committed docs/schemas/scenario.schema.json byte for byte."""
    assert main(["schema", "scenario"]) == 0
    out = capsys.readouterr().out
    assert out == SCHEMA_FILE.read_text(encoding="utf-8")
    assert json.loads(out)["required"] == ["map", "stores"]


def test_schema_is_draft_2020_12_closed_and_documented() -> None:
    """Every table the schema defines forbids unknown keys and documents itself and each of its keys."""
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    objects = [schema, *schema["$defs"].values()]
    assert {o["title"] for o in objects} == {"ScenarioFile", "Map", "Clock", "Policy", "Allocation", "Promise",
                                             "Store", "Locker", "PickupPoint", "FleetGroup", "Demand", "Sku",
                                             "Delivery", "CostTable", "ExpressModel"}
    for obj in objects:
        assert obj["additionalProperties"] is False and obj["description"]
        undocumented = [field for field, prop in obj["properties"].items() if not prop.get("description")]
        assert undocumented == [], obj["title"]


def test_models_are_closed() -> None:
    """Every model of the document forbids extra keys (the schema says additionalProperties: false because of it)."""
    models: list[type[BaseModel]] = [ScenarioFile]
    seen: set[type[BaseModel]] = set()
    while models:
        model = models.pop()
        seen.add(model)
        assert model.model_config.get("extra") == "forbid" and model.__doc__, model.__name__
        for field in model.model_fields.values():
            models += [t for t in _models_in(field.annotation) if t not in seen]
    assert len(seen) == 15


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_scenarios_pass_an_independent_validator(path: Path) -> None:
    """Every scenarios/*.toml, parsed, is valid under the committed schema checked by `jsonschema`, not pydantic."""
    document = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(document)
    errors = list(jsonschema.Draft202012Validator(document).iter_errors(tomllib.loads(path.read_text())))
    assert errors == []


def test_independent_validator_rejects_what_the_models_reject() -> None:
    """The committed schema itself rejects a negative count, an unknown key, a time past 48:00 and a bad profile."""
    document = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(document)
    for mutate in (lambda d: d["fleet"][2].update(count=-3), lambda d: d.update(colour="red"),
                   lambda d: d["fleet"][0].update(shift=["10:00", "48:30"]),
                   lambda d: d["fleet"][0].update(profile="rocket"), lambda d: d.pop("stores")):
        data = tiny_data()
        mutate(data)
        assert not validator.is_valid(data)


def test_schema_example_is_a_valid_scenario() -> None:
    """The schema's example document loads (against the scenarios folder, for its map)."""
    assert json_schema()["examples"] == [EXAMPLE]
    sc = scenario_from_dict(copy.deepcopy(EXAMPLE), base=SCENARIOS)
    assert sc.name == "tiny" and sc.couriers == 3


def test_time_pattern_in_schema_matches_the_validator() -> None:
    """The schema's time pattern accepts exactly the strings day_time accepts (the two cannot drift)."""
    candidates = [f"{h}:{m:02d}" for h in range(50) for m in range(0, 62)]
    candidates += [f"{h:02d}:{m:02d}:{s:02d}" for h in (0, 9, 23, 24, 47, 48, 49) for m in (0, 59, 60)
                   for s in (0, 1, 59, 60)]
    candidates += ["", "1:5", "123:00", "12:00:", "12-00", "48:00:00", "48:00:01", "٤٧:٠٠"]

    def valid(text: str) -> bool:
        try:
            day_time(text)
        except ValueError:
            return False
        return True

    disagree = [c for c in candidates if bool(re.search(TIME_PATTERN, c)) != valid(c)]
    assert disagree == [] and sum(map(valid, candidates)) > 2000

