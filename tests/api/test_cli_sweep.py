"""`lastmile sweep`, `fleet-size`, `calibrate-quotes` end to end on the tiny scenario; bad input: one line, exit 2."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import pytest

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
    (["fleet-size", str(TINY), "--target", "utilisation=-0.1"], "courier_utilisation is a share from 0 to 1"),
    (["fleet-size", str(TINY), "--target", "km_per_order=-2"], "--target: km_per_order is never negative, got -2"),
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
    """Bad --set, seeds, metric or target value: exit status 2 and one line on stderr naming the fault."""
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
