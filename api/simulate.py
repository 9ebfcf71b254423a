"""`lastmile simulate SCENARIO --out DIR`: run a scenario day with a progress bar, write KPIs, events and report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from routing.network import RoadNetwork
from simulator.errors import ScenarioError
from simulator.model import SimulationResult, simulate
from simulator.report import write_report
from simulator.scenario import Scenario, apply_setting, load_scenario

KPI_LABELS = {
    "orders": "orders", "delivered": "delivered", "rejected": "rejected", "cancelled": "cancelled",
    "failed": "failed (customer absent)", "open_at_end": "still open at the end",
    "on_time_rate": "on time (share)", "express_met_rate": "express promises met (share)",
    "click_to_door_mean_min": "click-to-door mean (min)", "click_to_door_p50_min": "click-to-door p50 (min)",
    "click_to_door_p90_min": "click-to-door p90 (min)", "click_to_door_p99_min": "click-to-door p99 (min)",
    "ready_to_pickup_mean_min": "ready-to-pickup mean (min)", "couriers": "couriers",
    "courier_hours": "courier hours", "courier_utilisation": "courier utilisation",
    "orders_per_courier_hour": "orders per courier-hour", "km": "km", "km_per_order": "km per order",
    "cost": "cost", "cost_per_order": "cost per order", "co2_g": "CO2 (g)", "co2_g_per_order": "CO2 per order (g)",
    "trips": "trips", "orders_per_trip": "orders per trip", "decisions": "dispatch decisions",
}


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
    """The scenario file with `--set KEY=VALUE` (one value each here), `--policy` and `--seed` applied."""
    scenario = load_scenario(path)
    for key, values in parse_settings(settings):
        if len(values) != 1:
            raise ScenarioError(f"--set {key}", "takes one value here (lists are for `lastmile sweep`)")
        scenario = apply_setting(scenario, key, values[0])
    if policy is not None:
        scenario = apply_setting(scenario, "policy", policy)
    if seed is not None:
        scenario = apply_setting(scenario, "seed", str(seed))
    return scenario


def kpi_table(kpis: dict[str, Any]) -> str:
    width = max(len(v) for v in KPI_LABELS.values())
    lines = []
    for key, value in kpis.items():
        label = KPI_LABELS.get(key, key)
        shown = "-" if value is None else (f"{value:.1%}" if key.endswith(("_rate", "utilisation"))
                                           else f"{value:,}" if isinstance(value, int) else f"{value:,.2f}")
        lines.append(f"  {label:<{width}}  {shown:>10}")
    return "\n".join(lines)


def write_outputs(out: Path, result: SimulationResult, network: RoadNetwork) -> Path:
    """kpis.json, events.jsonl (one line per order event), couriers.json and report.html with its plots."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "kpis.json").write_text(json.dumps({"scenario": result.scenario.name, "seed": result.scenario.seed,
                                               "policy": result.scenario.policy.name, **result.kpis}, indent=2)
                                   + "\n")
    with (out / "events.jsonl").open("w") as f:
        for line in result.recorder.event_lines():
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
    (out / "couriers.json").write_text(json.dumps(result.recorder.courier_rows(), indent=1) + "\n")
    return write_report(out, scenario=result.scenario, network=network, recorder=result.recorder,
                        kpis=result.kpis, seed=result.scenario.seed)


def run_simulation(scenario: Scenario, out: Path, *, progress: bool, echo: Callable[[str], object]) -> Path:
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
    echo(f"{scenario.name}: policy {scenario.policy.name}, seed {scenario.seed}, {scenario.couriers} couriers, "
         f"{time.perf_counter() - started:.1f} s")
    echo(kpi_table(result.kpis))
    echo(f"report: {report}")
    return report
