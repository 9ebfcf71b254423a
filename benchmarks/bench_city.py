"""City suite: whole simulated days as separate processes (wall time, peak RSS, KPIs) and the live travel oracle's
cost of adding a place.

Days (each `lastmile simulate` in its own process; peak RSS from the kernel's accounting of that process):
- the Porto centre day (5,000 orders) as the scenario gives it (the reoptimize policy), with the whole of its
  `kpis.json` (what `make simulate` prints; the README shows it);
- the same day under the batch policy (`--policy batch`), median of `repeats` runs, and under batch with
  `demand.orders=20000` and `fleet.scale=4`, run in turn with it (`repeats` pairs, so that a slow spell of the
  machine falls on both): its time as the median of the pairs' ratios to the 5,000-order batch day's (the picking
  staff is not scaled, so this day queues orders for picking: it measures how the engine copes with long queues,
  not a healthy day; batch, so that the ratio is the engine's and not the optimizer's search);
- the Porto centre day with four times the orders, couriers, pickers, locker compartments and pickup-point places
  under the scenario's reoptimize policy (`demand.orders=20000`, `fleet.scale=4`, `stores.pickers_scale=4`,
  `lockers.compartments_scale=4`, `pickup_points.capacity_scale=4`): a what-if the stores and the pickup places keep
  up with, so it measures the optimizer on four times the work;
- the Porto centre day with half its couriers (`fleet.scale=0.5`, the scenario's reoptimize policy): a fleet far
  too small, so orders pile up at the stores; it measures what a planner's what-if on an overloaded day costs
  under the optimizer and how many orders that fleet still delivers, and the same with `policy.room_factor=2`
  (each decision sees at most twice what the couriers' next trips hold: see `dispatch.reoptimize`);
- the Porto metro day (`scenarios/porto-metro-day.toml`, 50,000 orders, 44 stores).

Each scenario first runs a ten-order day (not timed), so that every timed day finds its map parsed and cached
as a user's second run does (the first parse of an OSM file is `load_cold_s` in the fast suite: on the metro
map it added 50 s and, at its peak, 0.9 GB in one run).

Adding a place: a store pool on the Porto metro map with bike, foot and car rows at 18:00 and 300 live places
around the store; each added place (a random node within 4 km) is timed, and the oldest place is freed to keep
300 live. p50, p99 and max over 500 adds (each the median of 3 fresh pools), for car + bike + foot, bike + car
and bike alone with exact fastest-path distances, and for car + bike + foot with `distances="shortest"` (CCH
only).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import ROOT

DAYS = {
    "porto_centre_5k": ("scenarios/porto-centre-day.toml", []),
    "porto_centre_5k_batch": ("scenarios/porto-centre-day.toml", ["--policy", "batch"]),
    "porto_centre_20k_fleet_x4": ("scenarios/porto-centre-day.toml",
                                  ["--policy", "batch", "--set", "demand.orders=20000", "--set", "fleet.scale=4"]),
    "porto_centre_20k_x4_scaled": ("scenarios/porto-centre-day.toml",
                                   ["--set", "demand.orders=20000", "--set", "fleet.scale=4", "--set",
                                    "stores.pickers_scale=4", "--set", "lockers.compartments_scale=4", "--set",
                                    "pickup_points.capacity_scale=4"]),
    "porto_centre_5k_half_fleet": ("scenarios/porto-centre-day.toml", ["--set", "fleet.scale=0.5"]),
    "porto_centre_5k_half_fleet_room_factor_2": ("scenarios/porto-centre-day.toml",
                                                 ["--set", "fleet.scale=0.5", "--set", "policy.room_factor=2"]),
    "porto_metro_50k": ("scenarios/porto-metro-day.toml", []),
}
PAIRED = ("porto_centre_5k_batch", "porto_centre_20k_fleet_x4")
"""Days run in turn, `repeats` times: the second's time is reported as a ratio to the first's."""
KPIS = ("orders", "delivered", "on_time_rate", "click_to_door_mean_min", "express_quote_met_rate", "km_per_order",
        "cost_per_order", "co2_g_per_order")
LIVE = 300
ADDS = 500


def simulate_day(scenario: str, extra: list[str], *, read: Callable[[Path], Any] | None = None) -> dict[str, Any]:
    """One `lastmile simulate` run in a child process: wall seconds, peak RSS (MB), its KPIs (and, with `read`,
    what it reads from the run's output folder, under "read")."""
    lastmile = Path(sys.executable).parent / "lastmile"
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        child = subprocess.Popen([str(lastmile), "simulate", str(ROOT / scenario), *extra, "--out", out,
                                  "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            raise RuntimeError(f"{scenario} {extra}: exit {status}: {child.stderr.read().decode()[-2000:]}"
                               if child.stderr else f"{scenario}: exit {status}")
        kpis = json.loads((Path(out) / "kpis.json").read_text())
        extras = {} if read is None else {"read": read(Path(out))}
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1),
            **{k: kpis.get(k) for k in KPIS}, "kpis": kpis, **extras}


def add_place_latency(profiles: list[str], distances: str = "fastest_path", rounds: int = 3) -> dict[str, Any]:
    """p50 / p99 / max milliseconds to add one place to a store pool holding LIVE places (see the module doc):
    the median over `rounds` fresh pools of each figure."""
    rows = [_add_place_round(profiles, distances) for _ in range(rounds)]
    return {**{k: round(statistics.median(r[k] for r in rows), 3) for k in ("p50_ms", "p99_ms", "max_ms")},
            "rounds": rounds, "live_places": LIVE, "adds": ADDS, "methods": rows[0]["methods"]}


def _add_place_round(profiles: list[str], distances: str) -> dict[str, Any]:
    from routing.network import RoadNetwork
    from routing.oracle import TravelOracle

    network = RoadNetwork.from_osm(ROOT / "scenarios" / "maps" / "porto_drive.osm.bz2")
    store = (-8.611, 41.149)
    dx = (network.lon - store[0]) * 83_900.0
    dy = (network.lat - store[1]) * 111_200.0
    near = np.flatnonzero(dx**2 + dy**2 < 4000.0**2)
    rng = np.random.default_rng(0)
    nodes = rng.choice(near, LIVE + ADDS, replace=False)
    oracle = TravelOracle(network, profiles, traffic=True, distances=distances)  # type: ignore[arg-type]
    live: list[int] = []
    pool = oracle.pool(pinned=[int(nodes[0])], hour=18, collect=lambda: live)
    for n in nodes[1:LIVE]:
        live.append(pool.place(int(n)))
    times = []
    for n in nodes[LIVE:]:
        t = time.perf_counter()
        live.append(pool.place(int(n)))
        times.append(1000.0 * (time.perf_counter() - t))
        pool.retain(live[1:])
        del live[0]
    return {"p50_ms": statistics.median(times), "p99_ms": float(np.percentile(times, 99)), "max_ms": max(times),
            "methods": ",".join(f"{p}:{oracle.method[p]}" for p in profiles)}


def run(report: dict[str, Any], *, repeats: int = 3, days: list[str] | None = None) -> None:
    figures: dict[str, Any] = {}
    chosen = days or list(DAYS)
    paired = [name for name in PAIRED if name in chosen]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
    for scenario in dict.fromkeys(DAYS[name][0] for name in chosen):  # maps parsed and cached before timing
        simulate_day(scenario, ["--set", "demand.orders=10"])
    for _ in range(repeats if paired else 0):  # the paired days in turn
        for name in paired:
            runs[name].append(simulate_day(*DAYS[name]))
    for name in chosen:
        if not runs[name]:
            runs[name] = [simulate_day(*DAYS[name])]
        best = dict(runs[name][0])
        best["wall_s"] = statistics.median(r["wall_s"] for r in runs[name])
        best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs[name])
        best["runs"] = len(runs[name])
        figures[name] = best
    if len(paired) == 2:
        ratios = [big["wall_s"] / small["wall_s"] for small, big in zip(runs[PAIRED[0]], runs[PAIRED[1]],
                                                                         strict=True)]
        figures["time_20k_over_5k"] = round(statistics.median(ratios), 2)
        figures["time_20k_over_5k_pairs"] = [round(r, 2) for r in ratios]
    figures["add_place_car_bike_foot"] = add_place_latency(["car", "bike", "foot"])
    figures["add_place_bike_car"] = add_place_latency(["bike", "car"])
    figures["add_place_bike"] = add_place_latency(["bike"])
    figures["add_place_car_bike_foot_shortest"] = add_place_latency(["car", "bike", "foot"], "shortest")
    report["city"] = figures


if __name__ == "__main__":
    out: dict[str, Any] = {}
    run(out, repeats=1, days=sys.argv[1:] or None)
    print(json.dumps(out, indent=1))
