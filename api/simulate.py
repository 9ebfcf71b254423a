"""`lastmile simulate SCENARIO --out DIR`: run a scenario day with a progress bar, write KPIs, events and report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from api.scenario_file import load_scenario
from routing.network import RoadNetwork
from simulator.errors import ScenarioError
from simulator.model import SimulationResult, simulate
from simulator.report import KPI_LABELS as REPORT_LABELS
from simulator.report import kpi_table, write_report
from simulator.scenario import Scenario, apply_setting, check_policy

KPI_LABELS = {key: label for key, (label, _) in REPORT_LABELS.items()}


def parse_settings(pairs: Sequence[str]) -> list[tuple[str, list[str]]]:
    """`KEY=V1,V2` strings as (key, values); a malformed one is a ScenarioError naming it."""
    out: list[tuple[str, list[str]]] = []
    for pair in pairs:
        key, sep, values = pair.partition("=")
        if not sep or not key or not values or any(not v for v in values.split(",")):
            raise ScenarioError(f"--set {pair}", "must be KEY=VALUE[,VALUE...], e.g. fleet.bike=10,20")
        out.append((key.strip(), [v.strip() for v in values.split(",")]))
    return out


def configured(path: Path, settings: Sequence[str], *, seed: int | None = None,
               policy: str | None = None) -> Scenario:
    """The scenario file with `--set KEY=VALUE` (one value each, each key once), `--policy` and `--seed` applied,
    and the policy they give checked as the run will build it (`simulator.scenario.check_policy`)."""
    scenario = load_scenario(path)
    given: dict[str, str] = {}
    for key, values in parse_settings(settings):
        if len(values) != 1:
            raise ScenarioError(f"--set {key}", "takes one value here (lists are for `lastmile sweep`)")
        if key in given:
            raise ScenarioError(f"--set {key}", "is given twice")
        scenario = apply_setting(scenario, key, values[0])
        given[key] = f"--set {key}"
    for flag, key, value in (("--policy", "policy", policy), ("--seed", "seed", None if seed is None else str(seed))):
        if value is not None:
            try:
                scenario = apply_setting(scenario, key, value)
            except ScenarioError as exc:
                raise ScenarioError(flag, exc.message) from None
            given[key] = flag
    return check_policy(scenario, given)


def kpis_record(result: SimulationResult) -> dict[str, Any]:
    """What kpis.json holds: the scenario, seed and policy, then the day's KPIs."""
    return {"scenario": result.scenario.name, "seed": result.scenario.seed, "policy": result.scenario.policy.name,
            **result.kpis}


def write_outputs(out: Path, result: SimulationResult, network: RoadNetwork) -> Path:
    """kpis.json, events.jsonl (one line per order event), couriers.json and report.html with its plots."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "kpis.json").write_text(json.dumps(kpis_record(result), indent=2) + "\n")
    with (out / "events.jsonl").open("w") as f:
        for line in result.recorder.event_lines():
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
    (out / "couriers.json").write_text(json.dumps(result.recorder.courier_rows(), indent=1) + "\n")
    return write_report(out, scenario=result.scenario, network=network, recorder=result.recorder,
                        kpis=result.kpis, seed=result.scenario.seed)


def run_simulation(scenario: Scenario, out: Path, *, progress: bool, echo: Callable[[str], object],
                   as_json: bool = False) -> Path:
    """Simulate the day, write its outputs into `out` and echo the KPI table, or with `as_json` one JSON object:
    kpis.json's figures, the run's seconds and the report's path."""
    started = time.perf_counter()
    network = RoadNetwork.from_osm(scenario.map_file)
    clock = scenario.clock
    bar = tqdm(total=(clock.end - clock.start) // 60, unit="sim-min", desc=scenario.name, disable=not progress,
               leave=False)

    def advance(now: int) -> None:
        bar.update(max(0, min(now, clock.end) - clock.start) // 60 - bar.n)

    try:
        result = simulate(scenario, network=network, progress=advance)
    finally:
        bar.close()
    report = write_outputs(out, result, network)
    if as_json:
        echo(json.dumps({**kpis_record(result), "runtime_s": round(time.perf_counter() - started, 3),
                         "report": str(report)}))
        return report
    echo(f"{scenario.name}: policy {scenario.policy.name}, seed {scenario.seed}, {scenario.couriers} couriers, "
         f"{time.perf_counter() - started:.1f} s")
    echo(kpi_table(result.kpis))
    echo(f"report: {report}")
    return report
