"""MDRP benchmark: every shared Grubhub instance replayed with each meal policy; averages against the paper."""

from __future__ import annotations

import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from benchmarks import SHARED

INSTANCES = SHARED / "mdrp" / "public_instances"
POLICIES = ("greedy", "rolling")
PAPER = {"click_to_door_mean": 32.74, "click_to_door_p90": 49.3, "undelivered_pct": 0.25, "cost_per_order": 11.42,
         "orders_per_bundle": 1.09}
AVERAGED = ("ctd_lower_bound", "click_to_door_mean", "ctd_excess", "click_to_door_p90", "undelivered_pct",
            "ready_to_pickup_mean", "utilisation_mean", "cost_per_order", "orders_per_bundle")


def replay(task: tuple[str, str]) -> dict[str, Any]:
    """Replay one instance with one policy (in a worker process)."""
    from dispatch.meal import GreedyMealPolicy, MealPolicy, RollingHorizonMealPolicy
    from simulator.mdrp import compute_metrics, read_instance, simulate

    folder, policy_name = task
    started = time.perf_counter()
    instance = read_instance(folder)
    rules = instance.parameters.rules
    policy: MealPolicy = RollingHorizonMealPolicy(rules=rules) if policy_name == "rolling" else GreedyMealPolicy(
        rules=rules)
    metrics = compute_metrics(instance, simulate(instance, policy)).as_dict()
    return {"instance": instance.name, "policy": policy_name, "orders": len(instance.orders),
            "runtime_s": time.perf_counter() - started, **metrics}


def run(results: dict[str, Any], jobs: int = 2) -> None:
    if not INSTANCES.is_dir():
        results["mdrp"] = {"skipped": f"no MDRP instances at {INSTANCES}"}
        return
    tasks = [(str(d), p) for d in sorted(INSTANCES.iterdir()) if d.is_dir() for p in POLICIES]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        rows = list(pool.map(replay, tasks))
    summary: dict[str, Any] = {"instances": len(tasks) // len(POLICIES)}
    for policy in POLICIES:
        mine = [r for r in rows if r["policy"] == policy]
        for key in AVERAGED:
            summary[f"{policy}_{key}"] = round(statistics.fmean(r[key] for r in mine), 3)
        summary[f"{policy}_runtime_max_s"] = round(max(r["runtime_s"] for r in mine), 3)
        largest = max(mine, key=lambda r: r["orders"])
        summary[f"{policy}_runtime_largest_s"] = round(largest["runtime_s"], 3)
    for key, value in PAPER.items():
        summary[f"paper_{key}"] = value
    results["mdrp"] = summary
    results["mdrp_runs"] = rows


if __name__ == "__main__":
    out: dict[str, Any] = {}
    run(out)
    print(json.dumps(out["mdrp"], indent=1))
