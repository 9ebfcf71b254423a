"""Sweep throughput on Dask: the same RUNS scenario days on a LocalCluster of 1 worker process, then of 2.

The scenario is scenarios/moscow-ostankino-tiny.toml with `demand.orders` raised to ORDERS and the fleet scaled
by FLEET_SCALE, so that one run takes a few seconds and the tasks dominate Dask's overhead; the RUNS runs differ
by seed only. Each cluster is started and warmed up (every worker loads the road network once) before the clock
starts, so the figures are steady-state runs per second of `simulator.sweep.run_one` tasks submitted and gathered
through the client (the machine's 1-minute load average before each is recorded: other processes on the
cores distort the ratio). The target is a 2-worker / 1-worker throughput ratio of at least 1.7 on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from benchmarks import ROOT

SCENARIO = ROOT / "scenarios" / "moscow-ostankino-tiny.toml"
RUNS = 8
ORDERS = 1000
FLEET_SCALE = "4"
WORKERS = (1, 2)
TARGET_RATIO = 1.7


def _throughput(workers: int) -> tuple[float, list[float]]:
    """Seconds for RUNS runs on `workers` warmed-up worker processes, and each run's on-time rate."""
    from distributed import as_completed

    from simulator.scenario import load_scenario
    from simulator.sweep import configure, dask_client, network_for, run_one

    scenario = configure(load_scenario(SCENARIO), {"demand.orders": str(ORDERS), "fleet.scale": FLEET_SCALE})
    combos = [{"seed": str(seed)} for seed in range(RUNS)]
    with dask_client(None, workers=workers) as client:
        client.wait_for_workers(workers)
        client.run(network_for, scenario)
        started = time.perf_counter()
        futures = [client.submit(run_one, scenario, combo, pure=False) for combo in combos]
        rows = [f.result() for f in as_completed(futures)]
        elapsed = time.perf_counter() - started
    return elapsed, [r["on_time_rate"] for r in rows]


def run(results: dict[str, Any]) -> None:
    figures: dict[str, Any] = {"runs": RUNS, "orders_per_run": ORDERS}
    rates: dict[int, float] = {}
    for workers in WORKERS:
        figures[f"load_avg_before_{workers}w"] = round(os.getloadavg()[0], 2)
        elapsed, _ = _throughput(workers)
        rates[workers] = RUNS / elapsed
        figures[f"seconds_{workers}w"] = round(elapsed, 2)
        figures[f"runs_per_s_{workers}w"] = round(rates[workers], 3)
    figures["seconds_per_run_1w"] = round(1.0 / rates[1], 2)
    figures["speedup_2w_over_1w"] = round(rates[2] / rates[1], 3)
    figures["target_speedup"] = TARGET_RATIO
    figures["meets_target"] = rates[2] / rates[1] >= TARGET_RATIO
    results["sweep"] = figures


if __name__ == "__main__":
    out: dict[str, Any] = {}
    run(out)
    print(json.dumps(out["sweep"], indent=1))
