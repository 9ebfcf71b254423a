"""Sweeps: the grid, runs on a Dask LocalCluster equal local runs, CSV and plots, fleet sizing by simulation."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from api.scenario_file import load_scenario
from simulator import sweep
from simulator.errors import ScenarioError
from simulator.scenario import FleetGroup, Scenario
from simulator.sweep import (
    FLEET_SIZE_KPIS,
    MAIN_KPIS,
    TaskError,
    check_builds,
    configure,
    fleet_size,
    grid,
    guarded,
    local_workers,
    meets,
    run_one,
    run_sweep,
    set_shift_count,
    shift_counts,
    unguarded,
    write_sweep,
)

TINY = Path(__file__).resolve().parents[2] / "scenarios" / "moscow-ostankino-tiny.toml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny() -> Scenario:
    return load_scenario(TINY)


def test_grid_is_the_product_in_order() -> None:
    """grid() yields every combination times every seed, first key slowest and seeds fastest."""
    combos = grid([("fleet.bike", ["10", "20"]), ("policy", ["greedy", "batch", "reoptimize"])], [4, 7])
    assert len(combos) == 2 * 3 * 2
    assert combos[:3] == [{"fleet.bike": "10", "policy": "greedy", "seed": "4"},
                          {"fleet.bike": "10", "policy": "greedy", "seed": "7"},
                          {"fleet.bike": "10", "policy": "batch", "seed": "4"}]
    assert combos[-1] == {"fleet.bike": "20", "policy": "reoptimize", "seed": "7"}
    assert len({tuple(c.items()) for c in combos}) == len(combos)
    assert grid([], [1, 2]) == [{"seed": "1"}, {"seed": "2"}]


def test_a_local_cluster_starts_no_more_workers_than_runs() -> None:
    """500 workers asked for 2 runs start 2; 2 asked for 12 start 2; an empty grid still gets one; 0 stays 0 (refused
    by dask_client)."""
    assert local_workers(500, 2) == 2 and local_workers(2, 12) == 2 and local_workers(4, 0) == 1
    assert local_workers(0, 5) == 0
    with pytest.raises(ScenarioError, match="--workers"), sweep.dask_client(None, workers=local_workers(0, 5)):
        pass


def test_run_sweep_on_two_workers_equals_local_runs(tiny: Scenario) -> None:
    """Rows from a 2-process LocalCluster come back in combo order and equal run_one in this process."""
    combos = grid([("policy", ["greedy", "batch"])], [1])
    seen: list[tuple[int, int]] = []
    rows = run_sweep(tiny, combos, workers=2, progress=lambda done, total: seen.append((done, total)))
    assert rows == [run_one(tiny, c) for c in combos]
    assert [r["policy"] for r in rows] == ["greedy", "batch"]
    assert seen[-1] == (2, 2)


def test_bad_setting_fails_before_any_cluster(tiny: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad --set raises ScenarioError naming it before a Dask cluster is started."""
    def no_cluster(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(sweep, "dask_client", no_cluster)
    with pytest.raises(ScenarioError, match=r"fleet\.bike"):
        run_sweep(tiny, [{"fleet.bike": "5", "seed": "1"}, {"fleet.bike": "many", "seed": "1"}])
    with pytest.raises(ScenarioError, match=r"fleet\.scooter"):
        run_sweep(tiny, grid([("fleet.scooter", ["3"])], [1]))


def test_write_sweep_csv_and_png(tmp_path: Path) -> None:
    """results.csv has knobs, seed, then KPIs, one row per run; a PNG per varying knob, none for fixed ones."""
    rows = []
    for bike in ("10", "20", "30"):
        for seed in ("1", "2"):
            kpis = {k: float(bike) / 100 + int(seed) for k in MAIN_KPIS}
            rows.append({"fleet.bike": bike, "policy": "batch", "seed": seed, **kpis, "decisions": 5,
                         "express_met_rate": None})
    paths = write_sweep(tmp_path / "out", rows, ["fleet.bike", "policy"])
    assert [p.name for p in paths] == ["results.csv", "kpi_vs_fleet.bike.png"]
    with paths[0].open() as f:
        table = list(csv.reader(f))
    assert table[0] == ["fleet.bike", "policy", "seed", *MAIN_KPIS, "decisions", "express_met_rate"]
    assert len(table) == 1 + len(rows)
    assert table[1][:3] == ["10", "batch", "1"] and table[1][-1] == ""
    assert paths[1].read_bytes()[:8] == PNG_SIGNATURE
    categorical = write_sweep(tmp_path / "cat", [*rows[:2], {**rows[2], "policy": "greedy"}], ["policy"])
    assert categorical[1].read_bytes()[:8] == PNG_SIGNATURE


def test_set_shift_count_spreads_in_proportion() -> None:
    """set_shift_count puts `total` couriers on one shift in proportion to its groups and leaves others alone."""
    day, late = (10 * 3600, 14 * 3600), (11 * 3600, 26 * 3600 + 30 * 60)
    fleet = (FleetGroup(store="a", profile="bike", count=3, shift=day),
             FleetGroup(store="a", profile="foot", count=1, shift=late),
             FleetGroup(store="b", profile="car", count=1, shift=day),
             FleetGroup(store="b", profile="bike", count=2, shift=day))
    assert shift_counts(fleet) == {"10:00-14:00": 6, "11:00-26:30": 1}
    smaller = set_shift_count(fleet, day, 3)
    assert shift_counts(smaller) == {"10:00-14:00": 3, "11:00-26:30": 1}
    assert [g.count for g in smaller] == [2, 1, 0, 1]
    assert [g.count for g in set_shift_count(set_shift_count(fleet, day, 0), day, 3)] == [1, 1, 1, 1]
    assert meets("click_to_door_mean_min", 20.0, 25.0) and not meets("on_time_rate", 0.5, 0.9)
    assert not meets("on_time_rate", math.nan, 0.0)


def test_fleet_size_meets_a_cheap_target_with_fewer_couriers(tiny: Scenario) -> None:
    """With a cheap target the sized fleet is no larger per shift and, re-simulated, meets the target."""
    target = 0.9
    sizing = fleet_size(tiny, metric="on_time_rate", target=target, seeds=(1,))
    assert sizing.feasible and sizing.evaluations >= 2
    original = shift_counts(tiny.fleet)
    assert all(sizing.counts[s] <= original[s] for s in original)
    assert sum(sizing.counts.values()) < tiny.couriers
    again = run_one(replace(tiny, fleet=sizing.fleet), {"seed": "1"})
    assert again["on_time_rate"] >= target and again["on_time_rate"] == sizing.value


def test_fleet_size_starts_from_a_fleet_of_empty_groups(tiny: Scenario) -> None:
    """Groups of no couriers are given one when the fleet is doubled, so a scenario sized from nothing finds a
    fleet (doubling none stayed none, and the search reported it infeasible)."""
    empty = replace(tiny, fleet=tuple(replace(g, count=0) for g in tiny.fleet))

    def run(sc: Scenario) -> dict[str, Any]:
        return {"on_time_rate": 1.0 if sc.couriers >= 2 else 0.0}

    sizing = fleet_size(empty, metric="on_time_rate", target=0.9, seeds=(1,), run=run)
    assert sizing.feasible and sum(sizing.counts.values()) == 2 and sizing.value == 1.0


def test_fleet_size_unreachable_target_is_infeasible(tiny: Scenario) -> None:
    """A target no fleet can meet gives feasible=False with the value achieved, after trying the doubled fleet."""
    calls: list[int] = []

    def run(sc: Scenario) -> dict[str, Any]:
        calls.append(sc.couriers)
        return {"click_to_door_mean_min": 12.0 + 10.0 / max(sc.couriers, 1)}

    sizing = fleet_size(tiny, metric="click_to_door_mean_min", target=5.0, seeds=(1,), run=run)
    assert not sizing.feasible and sizing.evaluations == 2
    assert calls == [tiny.couriers, 2 * tiny.couriers]
    assert sizing.value == pytest.approx(12.0 + 10.0 / (2 * tiny.couriers))
    with pytest.raises(ScenarioError, match="unknown metric"):
        fleet_size(tiny, metric="happiness", target=1.0, run=run)


def test_fleet_size_refuses_metrics_that_do_not_improve_with_more_couriers(tiny: Scenario) -> None:
    """Utilisation and orders per courier-hour rise, cost falls as the fleet shrinks: fleet_size refuses them
    (the search answered "not reachable even with the fleet doubled" when fewer couriers reached them)."""
    def run(sc: Scenario) -> dict[str, Any]:
        raise AssertionError("nothing is simulated for a refused metric")

    for metric, why in (("courier_utilisation", "rises"), ("orders_per_courier_hour", "rises"),
                        ("cost_per_order", "falls"), ("express_quote_met_rate", "does not follow")):
        with pytest.raises(ScenarioError, match=f"--target: {metric} {why}"):
            fleet_size(tiny, metric=metric, target=0.5, seeds=(1,), run=run)
    assert "on_time_rate" in FLEET_SIZE_KPIS and "click_to_door_p90_min" in FLEET_SIZE_KPIS


def _off_map(tiny: Scenario) -> Scenario:
    store = replace(tiny.stores[1], location=(37.70, 55.90))
    return replace(tiny, stores=(tiny.stores[0], store, *tiny.stores[2:]))


def test_check_builds_builds_each_distinct_day_once_and_raises_what_a_run_would(
        tiny: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    """check_builds builds one day per scenario that differs in more than its seed, with the run's own builder,
    and raises the run's error (here a store off the map) without simulating."""
    built: list[Scenario] = []
    real = sweep.build_day
    monkeypatch.setattr(sweep, "build_day", lambda sc, net: built.append(sc) or real(sc, net))
    check_builds([tiny, replace(tiny, seed=5), configure(tiny, {"policy": "greedy"})])
    assert [sc.policy.name for sc in built] == ["batch", "greedy"]
    with pytest.raises(ScenarioError, match=r"stores\[1\]\.location: 'vdnh'"):
        check_builds([tiny, _off_map(tiny)])


def test_a_run_that_raises_on_a_worker_prints_no_worker_traceback(tiny: Scenario, monkeypatch: pytest.MonkeyPatch,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    """Past the checks (skipped here), a run's input error comes back from its Dask worker as a value and is raised
    here: nothing of the worker's (no "Compute Failed" traceback) is printed."""
    assert isinstance(guarded(run_one, _off_map(tiny), {}), TaskError)
    with pytest.raises(ScenarioError, match="off the map"):
        unguarded(guarded(run_one, _off_map(tiny), {}))
    monkeypatch.setattr(sweep, "check_builds", lambda scenarios: None)
    capfd.readouterr()
    with pytest.raises(ScenarioError, match="off the map"):
        run_sweep(_off_map(tiny), [{"seed": "1"}], workers=1)
    captured = capfd.readouterr()
    assert "Compute Failed" not in captured.err and "Traceback" not in captured.err
