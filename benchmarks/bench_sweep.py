"""Sweep throughput on Dask: the same RUNS scenario days on a LocalCluster of 1 worker process, then of 2.

The scenario is scenarios/moscow-ostankino-tiny.toml with `demand.orders` raised to ORDERS and the fleet scaled
by FLEET_SCALE, so that one run takes a few seconds and the tasks dominate Dask's overhead; the RUNS runs differ
by seed only. Both clusters are started and warmed up (every worker loads the road network once) before the clock
starts, so the figures are steady-state runs per second of `simulator.sweep.run_one` tasks submitted and gathered
through the client, in ROUNDS paired rounds (the machine's 1-minute load average before is recorded: other
processes on the cores distort the ratio). The target is a 2-worker / 1-worker throughput ratio of at least
1.7 on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import pickle
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import ROOT

SCENARIO = ROOT / "scenarios" / "moscow-ostankino-tiny.toml"
RUNS = 8
ORDERS = 1000
FLEET_SCALE = "4"
WORKERS = (1, 2)
ROUNDS = 3
TARGET_RATIO = 1.7


_LOAD = ("import pickle, sys; from api.scenario_file import load_scenario; "
         "sys.stdout.buffer.write(pickle.dumps(load_scenario(sys.argv[1])))")


def load_scenario(path: Path) -> Any:
    """The `simulator.scenario.Scenario` of a scenario file, read by `lastmile`'s own loader
    (`api.scenario_file.load_scenario`) in a child process: the benchmarks do not import api
    (tests/test_architecture.py), and a Scenario pickles (a sweep ships it to its Dask workers that way)."""
    done = subprocess.run([sys.executable, "-c", _LOAD, str(path)], capture_output=True, check=True, cwd=ROOT)
    return pickle.loads(done.stdout)


def _batch(client: Any, scenario: Any) -> float:
    """Seconds for RUNS runs of `scenario` (seeds 0..RUNS-1) through `client`."""
    from distributed import as_completed

    from simulator.sweep import run_one

    started = time.perf_counter()
    futures = [client.submit(run_one, scenario, {"seed": str(seed)}, pure=False) for seed in range(RUNS)]
    for f in as_completed(futures):
        f.result()
    return time.perf_counter() - started


def run(results: dict[str, Any]) -> None:
    """ROUNDS rounds, each one batch on the warmed-up 1-worker cluster then one on the 2-worker cluster; the
    speedup is the median over rounds of the paired ratio (a round on a busy machine does not decide alone)."""
    from simulator.sweep import configure, dask_client, network_for

    scenario = configure(load_scenario(SCENARIO), {"demand.orders": str(ORDERS), "fleet.scale": FLEET_SCALE})
    figures: dict[str, Any] = {"runs": RUNS, "orders_per_run": ORDERS, "rounds": ROUNDS}
    seconds: dict[int, list[float]] = {w: [] for w in WORKERS}
    with dask_client(None, workers=1) as one, dask_client(None, workers=2) as two:
        clients = {1: one, 2: two}
        for workers, client in clients.items():
            client.wait_for_workers(workers)
            client.run(network_for, scenario)
        figures["load_avg_before"] = round(os.getloadavg()[0], 2)
        for _ in range(ROUNDS):
            for workers, client in clients.items():
                seconds[workers].append(_batch(client, scenario))
    ratios = [a / b for a, b in zip(seconds[1], seconds[2], strict=True)]
    for workers in WORKERS:
        figures[f"seconds_{workers}w_median"] = round(statistics.median(seconds[workers]), 2)
        figures[f"runs_per_s_{workers}w_median"] = round(RUNS / statistics.median(seconds[workers]), 3)
    figures["seconds_per_run_1w"] = round(statistics.median(seconds[1]) / RUNS, 2)
    figures["speedup_per_round"] = [round(r, 3) for r in ratios]
    figures["speedup_2w_over_1w_median"] = round(statistics.median(ratios), 3)
    figures["target_speedup"] = TARGET_RATIO
    figures["meets_target"] = statistics.median(ratios) >= TARGET_RATIO
    results["sweep"] = figures


if __name__ == "__main__":
    out: dict[str, Any] = {}
    run(out)
    print(json.dumps(out["sweep"], indent=1))
