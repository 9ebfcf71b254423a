"""What-if grids of scenario runs on Dask distributed, and fleet sizing by simulation.

A sweep is a grid of `--set KEY=VALUE` settings (see `simulator.scenario.apply_setting`) times seeds; each
combination is one `simulate` run on a Dask worker (a `LocalCluster` of processes, or a scheduler you name), and
its KPIs become one row of `results.csv`, with a plot of the main KPIs against every knob that varies.

`fleet_size` finds the fewest couriers per shift that still meet a KPI target, by binary search on each shift's
head count with the simulator as the oracle.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import product
from pathlib import Path
from typing import Any, TypeVar

from dispatch.errors import DispatchError
from routing.errors import RoutingError
from routing.network import RoadNetwork
from simulator.errors import ScenarioError, SimulatorError
from simulator.model import build_day, simulate
from simulator.recorder import Recorder, kpis
from simulator.scenario import FleetGroup, Scenario, apply_setting, spread_count

MAIN_KPIS = ("on_time_rate", "click_to_door_mean_min", "click_to_door_p90_min", "cost_per_order",
             "courier_utilisation", "orders_per_courier_hour")
"""The KPIs plotted against each knob of a sweep."""

KPI_TITLES = {"on_time_rate": "on time (share)", "click_to_door_mean_min": "click-to-door mean (min)",
              "click_to_door_p90_min": "click-to-door p90 (min)", "cost_per_order": "cost per order",
              "courier_utilisation": "courier utilisation", "orders_per_courier_hour": "orders per courier-hour"}

KPI_KEYS: tuple[str, ...] = tuple(kpis(Recorder(), courier_hour_cost={}, per_km_cost={}, co2_g_per_km={}))
"""Every KPI a run reports (the keys of `SimulationResult.kpis`)."""

LOWER_IS_BETTER = frozenset({"rejected", "cancelled", "failed", "open_at_end", "km", "km_per_order", "cost",
                             "cost_per_order", "co2_g", "co2_g_per_order"})
"""KPIs (besides the `*_min` times) where smaller is better: a fleet-size target on them is met at <= target."""

FLEET_SIZE_KPIS = ("on_time_rate", "express_met_rate", "delivered", "open_at_end", "click_to_door_mean_min",
                   "click_to_door_p50_min", "click_to_door_p90_min", "click_to_door_p99_min",
                   "ready_to_pickup_mean_min", "express_quote_mean_min")
"""The KPIs `fleet_size` takes: those more couriers make better (or leave alone), so the fewest couriers meeting
a target is the answer the binary search finds. The others (utilisation, orders per courier-hour, costs, km,
CO2, trips, the share of quotes met...) get better as the fleet shrinks or do not follow it at all."""

_SHRINK = {**dict.fromkeys(("courier_utilisation", "orders_per_courier_hour", "orders_per_trip"),
                           "rises as the fleet shrinks"),
           **dict.fromkeys(("couriers", "courier_hours", "cost", "cost_per_order", "km", "km_per_order"),
                           "falls as the fleet shrinks")}


def not_a_fleet_size_kpi(metric: str) -> str | None:
    """Why `fleet_size` refuses `metric` (None for the `FLEET_SIZE_KPIS`): a metric that rises, or falls, as the fleet
    shrinks, or does not follow its size, has no fewest fleet meeting a target."""
    if metric in FLEET_SIZE_KPIS:
        return None
    how = _SHRINK.get(metric, "does not follow the fleet's size")
    return f"{metric} {how}, so the fewest couriers meeting a target on it is no fleet to size"


INPUT_ERRORS: tuple[type[Exception], ...] = (SimulatorError, DispatchError, RoutingError)
"""The project's own errors about its input (a scenario, its map or demand file, a setting): a run on a Dask
worker returns them as a `TaskError` instead of raising (a raised one the worker logs with its traceback)."""

T = TypeVar("T")
Kpis = Mapping[str, Any]
RunFn = Callable[[Scenario], Kpis]
RunManyFn = Callable[[Sequence[Scenario]], Sequence[Kpis]]

_NETWORKS: dict[Path, RoadNetwork] = {}


def network_for(scenario: Scenario) -> RoadNetwork:
    """The scenario's road network, loaded once per process (`RoadNetwork.from_osm` caches on disk too)."""
    key = Path(scenario.map_file).resolve()
    if key not in _NETWORKS:
        _NETWORKS[key] = RoadNetwork.from_osm(key)
    return _NETWORKS[key]


def grid(settings: Sequence[tuple[str, Sequence[str]]], seeds: Sequence[int]) -> list[dict[str, str]]:
    """Every combination of the settings' values (cartesian product, first key slowest) times every seed
    (fastest), as `{key: value, ..., "seed": str(seed)}`. Seeds are given here, not as a `seed` setting."""
    keys = [key for key, _ in settings]
    for key in keys:
        if key == "seed":
            raise ScenarioError("--set seed", "seeds of a sweep are given by --seeds or --seed-list")
        if keys.count(key) > 1:
            raise ScenarioError(f"--set {key}", "is given twice")
    if not seeds:
        raise ScenarioError("seeds", "a sweep needs at least one seed")
    return [{**dict(zip(keys, values, strict=True)), "seed": str(seed)}
            for values in product(*(list(v) for _, v in settings)) for seed in seeds]


def configure(scenario: Scenario, combo: Mapping[str, str]) -> Scenario:
    """`scenario` with every setting of `combo` applied in order (a bad one raises ScenarioError)."""
    for key, value in combo.items():
        scenario = apply_setting(scenario, key, value)
    return scenario


def run_one(scenario: Scenario, combo: Mapping[str, str]) -> dict[str, Any]:
    """Simulate `scenario` with `combo` applied: `{**combo, **kpis}` (runs on a Dask worker, hence module level)."""
    configured = configure(scenario, combo)
    result = simulate(configured, network=network_for(configured))
    return {**combo, **result.kpis}


@dataclass(frozen=True, slots=True)
class TaskError:
    """An input error (`INPUT_ERRORS`) a task on a Dask worker returned in place of its value."""

    error: Exception


def guarded(fn: Callable[..., T], *args: Any) -> T | TaskError:
    """`fn(*args)` on a Dask worker, an input error returned as a `TaskError` (see `INPUT_ERRORS`): the worker logs
    a raised error with its traceback, and the command line owes the user one line. Other errors (bugs) raise."""
    try:
        return fn(*args)
    except INPUT_ERRORS as exc:
        return TaskError(exc)


def unguarded(value: T | TaskError) -> T:
    """A `guarded` task's value, or its input error raised here."""
    if isinstance(value, TaskError):
        raise value.error
    return value


def check_builds(scenarios: Iterable[Scenario]) -> None:
    """Build the day of each distinct scenario (seeds aside: one day per scenario that differs in anything else)
    in this process, as its run will (`simulator.model.build_day` on `network_for`: the map, the demand, the
    operations core), without simulating it: whatever a run would raise before its day starts (a facility off the
    map, a bad row of a replayed demand file, a facility or policy the core refuses) raises here, before a cluster
    starts."""
    seen: set[str] = set()
    for scenario in scenarios:
        key = repr(replace(scenario, seed=0))
        if key not in seen:
            seen.add(key)
            build_day(scenario, network_for(scenario))


def run_local(scenario: Scenario) -> dict[str, Any]:
    """The KPIs of one run of `scenario` in this process (the default oracle of `fleet_size`)."""
    return dict(simulate(scenario, network=network_for(scenario)).kpis)


def local_workers(workers: int, tasks: int) -> int:
    """Worker processes a local cluster starts for `tasks` runs at once: never more than the runs (500 asked for two
    runs start two); a count below one stays, for `dask_client` to refuse."""
    return min(workers, max(1, tasks))


@contextmanager
def dask_client(scheduler: str | None = None, *, workers: int = 2, tasks: int | None = None) -> Iterator[Any]:
    """A `distributed.Client` on `scheduler` (an address such as tcp://host:8786), else on a fresh LocalCluster
    of `workers` single-threaded processes without a dashboard, no more than `tasks` runs at once when given
    (`local_workers`); closed (cluster too) on exit."""
    from distributed import Client, LocalCluster

    if scheduler is None and workers < 1:
        raise ScenarioError("--workers", f"must be at least 1, got {workers}")
    cluster = None
    client = None
    try:
        if scheduler is None:
            import dask

            # The workers' statistical profiler samples the task thread every 10 ms: a real cost to pure-Python
            # simulation tasks and of no use here.
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                # the scheduler's HTTP routes on a free loopback port: with dashboard_address=None it still takes
                # 8787, and a second cluster on the machine would warn that the port is in use
                n = workers if tasks is None else local_workers(workers, tasks)
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False},
                                       silence_logs=logging.ERROR)
            client = Client(cluster)
        else:
            client = Client(scheduler)
        yield client
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


class DaskRunner:
    """A `fleet_size` oracle on a Dask client: `runner(scenario)` runs one, `runner.map(scenarios)` several at once."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __call__(self, scenario: Scenario) -> Kpis:
        return self.map([scenario])[0]

    def map(self, scenarios: Sequence[Scenario]) -> list[Kpis]:
        futures = [self.client.submit(guarded, run_one, sc, {}, pure=False) for sc in scenarios]
        return [unguarded(f.result()) for f in futures]


def run_sweep(scenario: Scenario, combos: Sequence[Mapping[str, str]], *, scheduler: str | None = None,
              workers: int = 2, progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Run every combination on Dask (see `dask_client`) and return `run_one`'s rows in the order of `combos`.

    Every combination is applied on this side first and its day built without running it (`check_builds`), so a
    bad setting, a facility off the map or a bad replayed demand row raises its error here before any cluster
    starts. `progress(done, total)` is called as runs finish.
    """
    check_builds([configure(scenario, combo) for combo in combos])
    total = len(combos)
    if total == 0:
        return []
    from distributed import as_completed

    rows: list[dict[str, Any] | None] = [None] * total
    with dask_client(scheduler, workers=workers, tasks=total) as client:
        futures = [client.submit(guarded, run_one, scenario, dict(combo), pure=False) for combo in combos]
        index = {f.key: i for i, f in enumerate(futures)}
        if progress is not None:
            progress(0, total)
        for done, future in enumerate(as_completed(futures), 1):
            rows[index[future.key]] = unguarded(future.result())
            if progress is not None:
                progress(done, total)
    return [r for r in rows if r is not None]


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _cell(value: Any) -> Any:
    return "" if value is None else value


def write_sweep(out: Path, rows: Sequence[Mapping[str, Any]], knobs: Sequence[str]) -> list[Path]:
    """`results.csv` (knob columns, seed, then the KPIs; one row per run) and `kpi_vs_<knob>.png` for every knob
    with more than one value: one panel per main KPI, mean over seeds and the other knobs, min–max bars."""
    out.mkdir(parents=True, exist_ok=True)
    fixed = [*knobs, "seed"]
    kpi_cols = [k for k in (rows[0] if rows else {}) if k not in fixed]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*fixed, *kpi_cols])
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in (*fixed, *kpi_cols)])
    csv_path = out / "results.csv"
    csv_path.write_text(buf.getvalue())
    written = [csv_path]
    for knob in knobs:
        values = list(dict.fromkeys(str(r[knob]) for r in rows))
        if len(values) > 1:
            written.append(_plot_knob(out / f"kpi_vs_{_safe(knob)}.png", rows, knob, values))
    return written


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _plot_knob(path: Path, rows: Sequence[Mapping[str, Any]], knob: str, values: list[str]) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    numeric = all(_is_number(v) for v in values)
    if numeric:
        values = sorted(values, key=float)
    xs = [float(v) for v in values] if numeric else list(range(len(values)))
    fig = Figure(figsize=(12, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    for ax, kpi in zip(axes.flat, MAIN_KPIS, strict=True):
        px, mean, low, high = [], [], [], []
        for x, v in zip(xs, values, strict=True):
            ys = [float(r[kpi]) for r in rows if str(r[knob]) == v and r.get(kpi) is not None]
            if ys:
                m = sum(ys) / len(ys)
                px.append(x)
                mean.append(m)
                low.append(m - min(ys))
                high.append(max(ys) - m)
        if px:
            ax.errorbar(px, mean, yerr=[low, high], marker="o", capsize=3, linestyle="-" if numeric else "none")
        ax.set_title(KPI_TITLES.get(kpi, kpi), fontsize=10)
        ax.set_xlabel(knob)
        if not numeric:
            ax.set_xticks(xs)
            ax.set_xticklabels(values)
        ax.grid(alpha=0.3)
    fig.suptitle(f"KPIs against {knob} (mean over seeds and other knobs; bars: min–max)")
    fig.savefig(path, dpi=80)
    return path


# --- fleet sizing ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetSizing:
    """The result of `fleet_size`: couriers per shift ("HH:MM-HH:MM"), the fleet itself, the metric's mean over
    seeds with that fleet (nan when it was undefined, e.g. nothing delivered), whether the target was met, and
    how many evaluations (one per distinct fleet, each over all seeds) it took."""

    counts: dict[str, int]
    fleet: tuple[FleetGroup, ...]
    value: float
    feasible: bool
    evaluations: int


def lower_is_better(metric: str) -> bool:
    """True for KPIs where a smaller value is better: times (`*_min`), costs, km, CO2 and lost orders."""
    return metric.endswith("_min") or metric in LOWER_IS_BETTER


def meets(metric: str, value: float, target: float) -> bool:
    """Whether `value` of `metric` meets `target` (>= target, or <= target when lower is better; nan never)."""
    if math.isnan(value):
        return False
    return value <= target if lower_is_better(metric) else value >= target


def shift_label(shift: tuple[int, int]) -> str:
    """A shift as "HH:MM-HH:MM" (hours may pass 24 for overnight shifts)."""
    return "-".join(f"{s // 3600:02d}:{s % 3600 // 60:02d}" for s in shift)


def shift_counts(fleet: Sequence[FleetGroup]) -> dict[str, int]:
    """Couriers per shift label, shifts in time order."""
    out: dict[str, int] = {}
    for shift in sorted({g.shift for g in fleet}):
        out[shift_label(shift)] = sum(g.count for g in fleet if g.shift == shift)
    return out


def set_shift_count(fleet: tuple[FleetGroup, ...], shift: tuple[int, int], total: int) -> tuple[FleetGroup, ...]:
    """`fleet` with `total` couriers on `shift` in all, shared among that shift's groups in proportion to their
    counts (largest remainder; equal shares when every group is empty); other groups unchanged."""
    idx = [i for i, g in enumerate(fleet) if g.shift == shift]
    if not idx:
        raise ScenarioError("fleet", f"no courier group works the shift {shift_label(shift)}")
    return spread_count(fleet, idx, total)


def fleet_size(scenario: Scenario, *, metric: str, target: float, seeds: Sequence[int] = (0,),
               run: RunFn = run_local, run_many: RunManyFn | None = None) -> FleetSizing:
    """The fewest couriers per shift for which the mean of `metric` over `seeds` meets `target`.

    A target is met when the metric is >= target, or <= target for metrics where lower is better (names ending
    in `_min`, costs, km, CO2 and lost orders; see `lower_is_better`); an undefined value (None, e.g. no order
    delivered) never meets it. Only the `FLEET_SIZE_KPIS` are taken (more couriers make them no worse); another
    metric raises ScenarioError. The scenario's own fleet must meet the target; if it does not, the fleet doubled
    (a group of no couriers given one) is tried once, and if that fails too the result is `feasible=False` with
    the doubled fleet and its value.
    Then each shift in time order is binary-searched for its smallest head count in [0, current] (spread over the
    shift's groups in proportion, the other shifts at their current counts), which assumes the metric improves
    with more couriers. `run(scenario) -> kpis` is the oracle (default: simulate here); `run_many(scenarios)`,
    when given, runs the seeds of one evaluation at once (e.g. `DaskRunner.map`).
    """
    if metric not in KPI_KEYS:
        raise ScenarioError("--target", f"unknown metric {metric!r}; expected one of {list(KPI_KEYS)}")
    refusal = not_a_fleet_size_kpi(metric)
    if refusal is not None:
        raise ScenarioError("--target", f"{refusal}; expected one of {list(FLEET_SIZE_KPIS)}")
    if not math.isfinite(target):
        raise ScenarioError("--target", f"must be a finite number, got {target!r}")
    if not seeds:
        raise ScenarioError("seeds", "fleet sizing needs at least one seed")
    if not scenario.fleet:
        raise ScenarioError("fleet", "the scenario has no couriers to size")
    cache: dict[tuple[int, ...], float] = {}

    def evaluate(fleet: tuple[FleetGroup, ...]) -> float:
        key = tuple(g.count for g in fleet)
        if key not in cache:
            runs = [replace(scenario, fleet=fleet, seed=seed) for seed in seeds]
            results = run_many(runs) if run_many is not None else [run(sc) for sc in runs]
            values = [r.get(metric) for r in results]
            numbers = [float(v) for v in values if v is not None]
            cache[key] = sum(numbers) / len(numbers) if len(numbers) == len(values) else math.nan
        return cache[key]

    fleet = scenario.fleet
    value = evaluate(fleet)
    if not meets(metric, value, target):
        fleet = tuple(replace(g, count=max(g.count * 2, 1)) for g in fleet)  # a group of none gets one
        value = evaluate(fleet)
        if not meets(metric, value, target):
            return FleetSizing(counts=shift_counts(fleet), fleet=fleet, value=value, feasible=False,
                               evaluations=len(cache))
    for shift in sorted({g.shift for g in fleet}):
        lo, hi = 0, sum(g.count for g in fleet if g.shift == shift)
        while lo < hi:
            mid = (lo + hi) // 2
            if meets(metric, evaluate(set_shift_count(fleet, shift, mid)), target):
                hi = mid
            else:
                lo = mid + 1
        fleet = set_shift_count(fleet, shift, hi)
        value = evaluate(fleet)
    return FleetSizing(counts=shift_counts(fleet), fleet=fleet, value=value, feasible=True, evaluations=len(cache))
