"""`lastmile sweep` and `lastmile fleet-size`: what-if grids on Dask and fleet sizing, from the command line."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from api.scenario_file import load_scenario
from api.simulate import KPI_LABELS, configured, parse_settings
from simulator.errors import ScenarioError
from simulator.scenario import MAX_INT, Scenario, check_policy
from simulator.sweep import (
    FLEET_SIZE_KPIS,
    KPI_KEYS,
    MAIN_KPIS,
    DaskRunner,
    FleetSizing,
    check_builds,
    configure,
    dask_client,
    fleet_size,
    grid,
    local_workers,
    lower_is_better,
    not_a_fleet_size_kpi,
    run_local,
    run_sweep,
    shift_counts,
    write_sweep,
)

METRIC_ALIASES = {"on_time": "on_time_rate", "express_met": "express_met_rate",
                  "quote_met": "express_quote_met_rate", "utilisation": "courier_utilisation",
                  "click_to_door": "click_to_door_mean_min", "click_to_door_p90": "click_to_door_p90_min"}
"""Short names accepted by `fleet-size --target`."""

SHARE_KPIS = frozenset({"on_time_rate", "express_met_rate", "express_quote_met_rate", "courier_utilisation"})
"""The KPIs that are shares from 0 to 1 (a `--target` outside that range is refused)."""

SHORT = {"on_time_rate": "on time", "click_to_door_mean_min": "c2d mean", "click_to_door_p90_min": "c2d p90",
         "cost_per_order": "cost/order", "courier_utilisation": "util", "orders_per_courier_hour": "ord/c-h"}


def parse_seed_list(text: str, flag: str = "--seed-list") -> list[int]:
    """`1,2,5` as seeds, each from 0 to MAX_INT (as a scenario's seed); anything else is a ScenarioError naming
    `flag`."""
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise ScenarioError(flag, f"must be integers separated by commas, got {text!r}") from None
    if any(s < 0 for s in seeds):
        raise ScenarioError(flag, f"seeds must be >= 0, got {text!r}")
    if any(s > MAX_INT for s in seeds):
        raise ScenarioError(flag, f"seeds must be at most {MAX_INT}, got {max(seeds)}")
    return list(dict.fromkeys(seeds))


def sweep_seeds(scenario: Scenario, *, seeds: int | None, seed_list: str | None) -> list[int]:
    """`--seed-list` as given, else `--seeds N` consecutive seeds from the scenario's own (default 1)."""
    if seed_list is not None:
        return parse_seed_list(seed_list)
    n = 1 if seeds is None else seeds
    if n < 1:
        raise ScenarioError("--seeds", f"must be at least 1, got {n}")
    if scenario.seed + n - 1 > MAX_INT:
        raise ScenarioError("--seeds", f"{n} seeds from the scenario's {scenario.seed} would pass {MAX_INT}, the "
                                       "largest seed")
    return [scenario.seed + k for k in range(n)]


def check_combos(scenario: Scenario, combos: Sequence[Mapping[str, str]]) -> None:
    """Apply every combination of a sweep to `scenario` and check the policy each gives as its run will build it
    (`simulator.scenario.check_policy`), without simulating: a bad setting, or a combination of policy knobs the
    policy refuses (`policy=reoptimize` with `policy.backend=ortools`), raises ScenarioError naming the setting
    before any run starts."""
    for combo in combos:
        check_policy(configure(scenario, combo), [key for key in combo if key != "seed"])


def fleet_size_metrics() -> str:
    """The metrics `fleet-size --target` takes, each with its short alias if it has one."""
    short = {key: alias for alias, key in METRIC_ALIASES.items()}
    return ", ".join(f"{key} ({short[key]})" if key in short else key for key in FLEET_SIZE_KPIS)


def parse_target(text: str) -> tuple[str, float]:
    """`METRIC=VALUE` (METRIC a KPI key or a short alias such as on_time) as (kpi key, target)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ScenarioError("--target", f"must be METRIC=VALUE, e.g. on_time_rate=0.95, got {text!r}")
    metric = METRIC_ALIASES.get(name, name)
    if metric not in KPI_KEYS:
        raise ScenarioError("--target", f"unknown metric {name!r}; expected one of "
                                        f"{sorted([*KPI_KEYS, *METRIC_ALIASES])}")
    refusal = not_a_fleet_size_kpi(metric)
    if refusal is not None:
        raise ScenarioError("--target", f"{refusal}; fleet-size takes {fleet_size_metrics()}")
    try:
        target = float(value)
    except ValueError:
        target = math.nan
    if not math.isfinite(target):
        raise ScenarioError("--target", f"{metric} must be compared with a number, got {value.strip()!r}")
    if metric in SHARE_KPIS and not 0 <= target <= 1:
        raise ScenarioError("--target", f"{metric} is a share from 0 to 1 (0.95 for 95 %), got {value.strip()}")
    if target < 0:
        raise ScenarioError("--target", f"{metric} is never negative, got {value.strip()}")
    return metric, target


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key.endswith(("_rate", "utilisation")):
        return f"{value:.1%}"
    return f"{value:,.2f}"


def summary_table(rows: Sequence[dict[str, Any]], knobs: Sequence[str]) -> str:
    """One line per combination of knob values: runs and the mean of each main KPI over its seeds."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(str(row[k]) for k in knobs), []).append(row)
    head = [*knobs, "runs", *(SHORT[k] for k in MAIN_KPIS)]
    body = []
    for values, mine in groups.items():
        means = []
        for kpi in MAIN_KPIS:
            xs = [float(r[kpi]) for r in mine if r.get(kpi) is not None]
            means.append(_fmt(kpi, sum(xs) / len(xs) if xs else None))
        body.append([*values, str(len(mine)), *means])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *body]]
    return "\n".join("  " + line for line in lines)


def run_sweep_cli(path: Path, settings: Sequence[str], out: Path, *, seeds: int | None = None,
                  seed_list: str | None = None, scheduler: str | None = None, workers: int = 2,
                  progress: bool = True, echo: Callable[[str], object] = print) -> list[Path]:
    """Load, validate, run the grid on Dask, write results.csv and the plots, echo a table and the paths."""
    started = time.perf_counter()
    scenario = load_scenario(path)
    parsed = parse_settings(settings)
    knobs = [key for key, _ in parsed]
    combos = grid(parsed, sweep_seeds(scenario, seeds=seeds, seed_list=seed_list))
    check_combos(scenario, combos)
    bar = tqdm(total=len(combos), unit="run", desc=f"sweep {scenario.name}", disable=not progress, leave=False)

    def advance(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        rows = run_sweep(scenario, combos, scheduler=scheduler, workers=workers, progress=advance)
    finally:
        bar.close()
    paths = write_sweep(out, rows, knobs)
    started_workers = local_workers(workers, len(combos))
    where = scheduler or f"{started_workers} local worker{'s' if started_workers != 1 else ''}"
    echo(f"{scenario.name}: {len(rows)} run{'s' if len(rows) != 1 else ''} on {where}, "
         f"{time.perf_counter() - started:.1f} s")
    echo(summary_table(rows, knobs))
    for p in paths:
        echo(f"written {p}")
    return paths


def sizing_json(scenario: Scenario, metric: str, target: float, seeds: Sequence[int],
                sizing: FleetSizing) -> dict[str, Any]:
    return {"scenario": scenario.name, "policy": scenario.policy.name, "metric": metric, "target": target,
            "direction": "<=" if lower_is_better(metric) else ">=", "seeds": list(seeds),
            "feasible": sizing.feasible, "value": None if math.isnan(sizing.value) else sizing.value,
            "couriers_per_shift": sizing.counts, "couriers": sum(sizing.counts.values()),
            "original_per_shift": shift_counts(scenario.fleet), "evaluations": sizing.evaluations}


def run_fleet_size_cli(path: Path, target_text: str, *, seeds: int = 1, scheduler: str | None = None,
                       workers: int = 1, as_json: bool = False, settings: Sequence[str] = (),
                       policy: str | None = None, echo: Callable[[str], object] = print) -> FleetSizing:
    """Size the fleet of a scenario for `METRIC=VALUE` (with `--set KEY=VALUE` and `--policy` applied first, as
    `lastmile simulate` does); one worker runs here, more run on Dask (seeds at once)."""
    started = time.perf_counter()
    metric, target = parse_target(target_text)
    scenario = configured(path, settings, policy=policy)
    seed_values = sweep_seeds(scenario, seeds=seeds, seed_list=None)
    if scheduler is None and workers <= 1:
        sizing = fleet_size(scenario, metric=metric, target=target, seeds=seed_values, run=run_local)
    else:
        check_builds([replace(scenario, seed=seed_values[0])])  # an off-map facility or bad demand row: now
        with dask_client(scheduler, workers=workers, tasks=len(seed_values)) as client:
            runner = DaskRunner(client)
            sizing = fleet_size(scenario, metric=metric, target=target, seeds=seed_values, run=runner,
                                run_many=runner.map)
    out = sizing_json(scenario, metric, target, seed_values, sizing)
    if as_json:
        echo(json.dumps(out))
        return sizing
    label = KPI_LABELS.get(metric, metric)
    shown = _fmt(metric, out["value"])
    echo(f"{scenario.name} ({scenario.policy.name}): {label} {out['direction']} {_fmt(metric, target)} over "
         f"{len(seed_values)} seed(s), "
         f"{sizing.evaluations} evaluations, {time.perf_counter() - started:.1f} s")
    if not sizing.feasible:
        echo(f"  not reachable: {shown} even with the fleet doubled ({out['couriers']} couriers)")
        return sizing
    width = max(len(k) for k in sizing.counts)
    echo(f"  {'shift':<{width}}  couriers  (was)")
    for shift, n in sizing.counts.items():
        echo(f"  {shift:<{width}}  {n:>8}  ({out['original_per_shift'].get(shift, 0)})")
    echo(f"  {'total':<{width}}  {out['couriers']:>8}  ({scenario.couriers})")
    echo(f"  achieved {label}: {shown}")
    return sizing


def run_calibrate_cli(path: Path, seed_list: str, *, quantile: float = 0.95, rounds: int = 2,
                      scheduler: str | None = None,
                      workers: int = 2, as_json: bool = False, progress: bool = True,
                      echo: Callable[[str], object] = print) -> Any:
    """Fit the scenario's express quote model on the days of `seed_list`; print it as a `[promise.express_model]`
    table to paste into the scenario (or as JSON)."""
    from dataclasses import asdict

    from simulator.calibrate import MAX_ROUNDS, calibrate

    started = time.perf_counter()
    scenario = load_scenario(path)
    seeds = parse_seed_list(seed_list, "--seeds")
    if not 0 < quantile < 1:
        raise ScenarioError("--quantile", f"must be in (0, 1), got {quantile}")
    if not 1 <= rounds <= MAX_ROUNDS:
        raise ScenarioError("--rounds", f"must be from 1 to {MAX_ROUNDS}, got {rounds}")
    bar = tqdm(total=len(seeds) * rounds, unit="day", disable=not progress or as_json)

    def tick(done: int, total: int) -> None:
        bar.n = done
        bar.refresh()

    try:
        result = calibrate(scenario, seeds, quantile=quantile, rounds=rounds, workers=workers, scheduler=scheduler,
                           progress=tick)
    finally:
        bar.close()
    if as_json:
        echo(json.dumps({"scenario": scenario.name, "seeds": list(result.seeds), "rounds": result.rounds,
                         "samples": result.samples,
                         "met_rate": result.met_rate, "slack_mean_min": result.slack_mean_min,
                         "express_model": asdict(result.model)}))
        return result
    m = result.model
    echo(f"# {scenario.name}, policy {scenario.policy.name}: fitted on seeds {','.join(map(str, seeds))} "
         f"in {rounds} round(s) ({result.samples:,} delivered express orders in the last, "
         f"{time.perf_counter() - started:.0f} s); on them "
         f"{result.met_rate:.1%} delivered by the quote, {result.slack_mean_min:.2f} min mean slack")
    echo("[promise.express_model]")
    for key, value in asdict(m).items():
        echo(f"{key} = {value}")
    return result
