"""`lastmile sweep`, `fleet-size`, `calibrate-quotes` end to end on the tiny scenario; bad input: one line, exit 2."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

import api.sweep
import simulator.sweep
from api.cli import main
from api.scenario_file import load_scenario
from api.sweep import parse_target

TINY = Path(__file__).resolve().parents[2] / "scenarios" / "moscow-ostankino-tiny.toml"


def test_sweep_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """sweep on one local worker writes results.csv (one row per run) and a PNG per varying knob, prints paths."""
    out = tmp_path / "sweep"
    code = main(["sweep", str(TINY), "--set", "policy=greedy,batch", "--set", "policy.hold_s=120",
                 "--seed-list", "1", "--workers", "1", "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["policy"], r["policy.hold_s"], r["seed"]) for r in rows] == [("greedy", "120", "1"),
                                                                            ("batch", "120", "1")]
    assert all(0.0 <= float(r["on_time_rate"]) <= 1.0 for r in rows)
    assert (out / "kpi_vs_policy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "kpi_vs_policy.hold_s.png").exists()
    assert "greedy" in printed and str(out / "results.csv") in printed


@pytest.mark.parametrize(("argv", "names"), [
    (["sweep", str(TINY), "--set", "fleet.bike=10,lots"], "--set fleet.bike: must be an integer, got 'lots'"),
    (["sweep", str(TINY), "--set", "fleet.bike"], "--set fleet.bike: must be KEY=VALUE"),
    (["sweep", str(TINY), "--set", "warp.speed=9"], "--set warp.speed: unknown setting"),
    (["sweep", str(TINY), "--seeds", "2", "--seed-list", "1,2"], "--seed-list: not allowed with argument --seeds"),
    (["sweep", str(TINY), "--seed-list", "1,x"], "--seed-list: must be integers separated by commas, got '1,x'"),
    (["fleet-size", str(TINY), "--target", "happiness=0.9"], "--target: unknown metric 'happiness'"),
    (["fleet-size", str(TINY), "--target", "on_time=high"], "on_time_rate must be compared with a number, got 'high'"),
    (["fleet-size", str(TINY), "--target", "on_time"], "--target: must be METRIC=VALUE"),
    (["fleet-size", str(TINY), "--target", "on_time=95"], "--target: on_time_rate is a share from 0 to 1 (0.95 for 95"),
    (["fleet-size", str(TINY), "--target", "express_met=-0.1"], "express_met_rate is a share from 0 to 1"),
    (["fleet-size", str(TINY), "--target", "click_to_door=-2"], "--target: click_to_door_mean_min is never negative, "
                                                                "got -2"),
    (["fleet-size", str(TINY), "--target", "utilisation=0.7"], "--target: courier_utilisation rises as the fleet "
                                                               "shrinks"),
    (["fleet-size", str(TINY), "--target", "orders_per_courier_hour=4"], "orders_per_courier_hour rises as the "
                                                                         "fleet shrinks"),
    (["fleet-size", str(TINY), "--target", "cost_per_order=3"], "cost_per_order falls as the fleet shrinks"),
    (["calibrate-quotes", str(TINY), "--seeds", "11", "--rounds", "21"], "--rounds: must be from 1 to 20, got 21"),
    (["fleet-size", str(TINY)], "required: --target"),
    (["fleet-size", str(TINY), "--target", "on_time=0.9", "--policy", "magic"], "policy: must be one of"),
    (["fleet-size", str(TINY), "--target", "on_time=0.9", "--set", "fleet.bike=1,2"], "--set fleet.bike: takes one"),
    (["calibrate-quotes", str(TINY), "--seeds", "1,x"], "--seeds: must be integers separated by commas, got '1,x'"),
    (["calibrate-quotes", str(TINY), "--seeds", "1", "--quantile", "1.5"], "--quantile: must be in (0, 1), got 1.5"),
    (["calibrate-quotes", str(TINY)], "required: --seeds"),
    (["calibrate-quotes", str(TINY), "--seeds", "1,99999999999"], "--seeds: seeds must be at most 2147483647, got "
                                                                   "99999999999"),
    (["sweep", str(TINY), "--set", "fleet.scale=1,1e308"], "--set fleet.scale: would make a fleet group larger "
                                                           "than 1000000 couriers"),
    (["sweep", str(TINY), "--set", "stores.pickers_scale=1e308"], "--set stores.pickers_scale: would give a store"),
    (["sweep", str(TINY), "--set", "lockers.compartments_scale=1e308"], "--set lockers.compartments_scale: would"),
    (["sweep", str(TINY), "--set", "pickup_points.capacity_scale=1e308"], "--set pickup_points.capacity_scale: "),
    (["sweep", str(TINY), "--set", "policy=batch", "--seed-list", "1,2147483648"], "--seed-list: seeds must be at "
                                                                                   "most 2147483647"),
    (["sweep", str(TINY), "--set", "policy=batch", "--out", ""], "argument --out: must name a folder, got ''"),
    (["fleet-size", str(TINY), "--target", "on_time=0.9", "--set", "fleet.bike=2", "--set", "fleet.bike=8"],
     "--set fleet.bike: is given twice"),
    (["fleet-size", str(TINY), "--target", "on_time=0.9", "--set", "fleet.scale=1e308"], "--set fleet.scale: would"),
    (["fleet-size", str(TINY), "--target", "on_time=0.9", "--policy", "reoptimize", "--set",
      "policy.backend=ortools"], "--set policy.backend: ortools cannot price both click-to-door and lateness"),
])
def test_bad_input_is_one_line_exit_2(argv: list[str], names: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad --set, seeds, rounds, metric (one more couriers do not improve too) or target value: exit status 2 and one
    line on stderr naming the fault."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lastmile: error: ") and err.count("\n") == 1
    assert names in err


def test_fleet_size_json_accepts_on_time_alias(capsys: pytest.CaptureFixture[str]) -> None:
    """fleet-size --target on_time=0.9 --json sizes on_time_rate and prints couriers per shift and the value."""
    assert parse_target("on_time=0.95") == ("on_time_rate", 0.95)
    assert main(["fleet-size", str(TINY), "--target", "on_time=0.9", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metric"] == "on_time_rate" and out["direction"] == ">=" and out["feasible"]
    assert out["value"] >= 0.9 and out["policy"] == "batch"
    assert set(out["couriers_per_shift"]) == set(out["original_per_shift"])
    assert all(out["couriers_per_shift"][s] <= n for s, n in out["original_per_shift"].items())


def test_calibrate_quotes_fits_a_model_that_loads_into_the_scenario(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """calibrate-quotes fits on the given days and prints a [promise.express_model] table that, pasted into the
    scenario, is read back as the same model; --json says what it was fitted on and how it does there."""
    assert main(["calibrate-quotes", str(TINY), "--seeds", "11,12", "--no-progress", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    table = printed[printed.index("[promise.express_model]"):]
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(TINY.read_text().replace('file = "maps/', f'file = "{TINY.parent}/maps/') + "\n" + table)
    model = load_scenario(scenario).promise.express_model
    assert model is not None and model.quantile == 0.95
    assert f"constant_s = {model.constant_s}" in table and f"plan = {model.plan}" in table
    assert main(["calibrate-quotes", str(TINY), "--seeds", "11,12", "--json", "--workers", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["seeds"] == [11, 12] and out["samples"] > 100 and out["express_model"] == asdict(model)
    assert 0.9 <= out["met_rate"] <= 1.0 and out["slack_mean_min"] > 0


def test_fleet_size_sizes_the_fleet_under_the_policy_and_settings_given(capsys: pytest.CaptureFixture[str]) -> None:
    """fleet-size --policy and --set change the scenario before the search, as in simulate: the JSON names the
    policy, and the starting fleet is the one --set made."""
    assert main(["fleet-size", str(TINY), "--target", "on_time=0.9", "--policy", "greedy", "--set", "fleet.scale=2",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["policy"] == "greedy" and out["feasible"] and out["value"] >= 0.9
    assert sum(out["original_per_shift"].values()) == 2 * 7


def test_a_sweep_whose_policy_cannot_be_built_is_refused_before_any_run(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A grid with one combination the policy refuses (reoptimize on ortools keeping quotes) exits 2 with one line
    naming `--set policy.backend` before a cluster starts: no runs, no results.csv, no traceback."""
    out = tmp_path / "sweep"
    code = main(["sweep", str(TINY), "--set", "policy=batch,reoptimize", "--set", "policy.backend=sisr,ortools",
                 "--workers", "1", "--out", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err == ("lastmile: error: --set policy.backend: ortools cannot price both click-to-door and "
                            "lateness past the quote: use sisr or auto, or set quote_minute_cost_m=0\n")
    assert not out.exists()


def test_fleet_size_refusal_lists_the_metrics_it_takes(capsys: pytest.CaptureFixture[str]) -> None:
    """A metric fleet-size cannot size for is refused with every metric it takes, aliases beside their keys."""
    assert main(["fleet-size", str(TINY), "--target", "utilisation=0.7"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "fleet-size takes on_time_rate (on_time), express_met_rate (express_met), delivered, open_at_end, " in err
    assert "click_to_door_p90_min (click_to_door_p90)" in err and "express_quote_mean_min" in err


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    """TINY with `old` replaced by `new` and its map named by absolute path, written to tmp_path."""
    text = TINY.read_text().replace('file = "maps/', f'file = "{TINY.parent}/maps/')
    assert old in text
    path = tmp_path / "variant.toml"
    path.write_text(text.replace(old, new))
    return path


def _offmap(tmp_path: Path) -> Path:
    return _variant(tmp_path, "location = [37.6145, 55.8217]", "location = [37.70, 55.90]")


def _bad_replay(tmp_path: Path) -> Path:
    text = TINY.read_text()
    demand = text[text.index("[demand]"):text.index("[delivery]")]
    data = TINY.parents[1] / "tests" / "data" / "demand_bad_row.csv"
    return _variant(tmp_path, demand, f'[demand]\nkind = "replay"\nfile = "{data}"\n\n')


@pytest.mark.parametrize(("make", "argv", "names"), [
    (_offmap, ["sweep", "--set", "policy=batch,greedy", "--no-progress"], "stores[1].location: 'vdnh' at (37.700000"),
    (_offmap, ["calibrate-quotes", "--seeds", "1", "--no-progress"], "stores[1].location: 'vdnh' at (37.700000"),
    (_offmap, ["fleet-size", "--target", "on_time=0.9", "--workers", "2"], "stores[1].location: 'vdnh' at (37.7"),
    (_bad_replay, ["sweep", "--set", "policy=batch,greedy", "--no-progress"],
     "demand_bad_row.csv row 3: items: qty of 'bread' must be a positive integer, got '0'"),
    (_bad_replay, ["calibrate-quotes", "--seeds", "1", "--no-progress"], "demand_bad_row.csv row 3: items: qty of"),
])
def test_a_run_that_cannot_start_is_refused_before_any_cluster(make: Callable[[Path], Path], argv: list[str],
                                                               names: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capfd: pytest.CaptureFixture[str]) -> None:
    """A facility off the map or a bad row of the replayed demand file: exit 2, one line naming it, and no cluster
    started (so no worker traceback before it)."""
    def no_cluster(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(simulator.sweep, "dask_client", no_cluster)
    monkeypatch.setattr(api.sweep, "dask_client", no_cluster)
    scenario = make(tmp_path)
    assert main([argv[0], str(scenario), *argv[1:], *(["--out", str(tmp_path / "out")] if argv[0] == "sweep"
                                                      else [])]) == 2
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err.startswith("lastmile: error: ") and captured.err.count("\n") == 1
    assert names in captured.err


def test_calibrate_quotes_on_too_few_orders_names_the_demand(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Days with too few express orders to fit on exit 2 naming demand.orders and --seeds, not an inner `samples`."""
    scenario = _variant(tmp_path, "orders = 120", "orders = 0")
    assert main(["calibrate-quotes", str(scenario), "--seeds", "1", "--no-progress", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err == (f"lastmile: error: {scenario}: demand.orders: the days of seeds 1 delivered 0 express orders, too "
                   "few to fit the quote model on (it needs 20): raise demand.orders (now 0) or give more --seeds\n")


def test_sweep_reports_the_workers_it_started(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--workers 1000 for one run starts one local worker, and the summary says so."""
    assert main(["sweep", str(TINY), "--workers", "1000", "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert ": 1 run on 1 local worker, " in capsys.readouterr().out
