"""MDRP benchmark: every shared Grubhub instance replayed with each meal policy; averages against the paper.

Each replay's deliveries also go through the independent checker `../shared/tools/mdrp_check.py` (a second
opinion on the physics and the metrics); the excess click-to-door over the *delivered* orders' own direct-delivery
bound and the share of orders no courier could deliver at all (the structural floor) are reported as it counts them,
and the days where the simulator's own figures differ from it are counted (`disagreeing_days`). Averages are
reported over all days and, separately, over the days of seeds 0-2 (where knobs may be tuned) and seeds 3-4 (for
validation only: nothing is tuned on them).
"""

from __future__ import annotations

import json
import re
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from benchmarks import SHARED
from simulator.mdrp import PEAK_MIN

INSTANCES = SHARED / "mdrp" / "public_instances"
CHECKER = SHARED / "tools" / "mdrp_check.py"
SPLITS = {"tune": frozenset("012"), "validate": frozenset("34")}
"""Days by their seed (the first character of the instance name)."""
SHIFTS = {"s1": "historical shifts", "s2": "optimised shifts"}
"""The instances' courier shift schedules by the code in their names: the shifts as they were on the day, or shifts
re-planned by the instances' authors with about the same (never more) courier hours; the orders are the same."""
CHECKED = ("ctd_excess_delivered", "structurally_undeliverable_pct")
POLICIES = ("greedy", "rolling-stay", "rolling")
PAPER = {"click_to_door_mean": 32.74, "click_to_door_p90": 49.3, "undelivered_pct": 0.25, "cost_per_order": 11.42,
         "orders_per_bundle": 1.09}
KNOB_STEPS: tuple[tuple[str, object], ...] = (
    ("horizon", 15), ("horizon", 35), ("courier_horizon", 20), ("courier_horizon", 45), ("max_bundle", 3),
    ("max_bundle", 5), ("pending_weight", 0.2), ("pending_weight", 0.8), ("urgency_weight", 1.0),
    ("urgency_weight", 2.5), ("late_penalty", 120.0), ("travel_weight", 0.3), ("trip_weight", 0.0),
    ("trip_weight", 0.5), ("trip_weight", 1.5), ("join_wait", -1), ("join_wait", 6), ("join_ratio", 1.0),
    ("join_ratio", 2.0), ("bundle_window", 4), ("bundle_window", 12),
    ("bundle_max_delay", 15.0), ("bundle_max_delay", 40.0), ("size_window", 2), ("size_window", 10),
    ("size_orders_window", 10), ("size_orders_window", 25), ("shift_weight", 0.05), ("shift_weight", 0.1),
    ("move_to_match", False), ("move_to_demand", False), ("demand_window", 60), ("demand_window", 240),
    ("split_idle", False), ("split_bonus", 0.0), ("split_bonus", 6.0), ("end_join", False),
    ("commit_ride", -1), ("commit_ride", 3), ("bind_margin", 10.0), ("bind_margin", 40.0),
)
"""Each knob of the rolling policy moved one step down and up from its default, one at a time (tuning days only)."""
SPEEDUPS = (1.05, 1.1)
"""What-if rows (tuning days only): the rolling policy at its defaults with couriers riding this many times as fast,
to show how much of the excess is the fleet's capacity at the peak rather than the policy's decisions."""
EXTRA_COURIERS = (2,)
"""What-if rows (tuning days only): the rolling policy at its defaults with this many more couriers over each day's
busiest `PEAK_MIN` minutes of orders placed (`simulator.mdrp.with_extra_couriers`): a planner's lever on the
shifts, what `lastmile simulate --mdrp DAY --extra-couriers 2` replays."""
LEADS = (5, 10)
"""What-if rows (tuning days only): the rolling policy at its defaults told of every order this many minutes before
it is placed (`simulator.mdrp.announced_early`), to show how much of the excess is what no live policy can know."""
AVERAGED = ("ctd_lower_bound", "click_to_door_mean", "ctd_excess", "click_to_door_p90", "undelivered_pct",
            "ready_to_pickup_mean", "utilisation_mean", "repositioning_share", "cost_per_order", "orders_per_bundle")


def replay(task: tuple[str, str]) -> dict[str, Any]:
    """Replay one instance with one policy (in a worker process)."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from dispatch.meal import meal_policy
    from simulator.mdrp import compute_metrics, deliveries_csv, read_instance, simulate

    folder, policy_name = task
    started = time.perf_counter()
    instance = read_instance(folder)
    recorder = simulate(instance, meal_policy(policy_name, instance.parameters.rules))
    metrics = compute_metrics(instance, recorder).as_dict()
    runtime = time.perf_counter() - started
    checked: dict[str, Any] = {}
    if CHECKER.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            csv_path = Path(tmp) / "deliveries.csv"
            csv_path.write_text(deliveries_csv(instance, recorder))
            done = subprocess.run([sys.executable, str(CHECKER), folder, str(csv_path)], capture_output=True, text=True,
                                  check=False)
        verdict = json.loads(done.stdout)
        checked = {"check_valid": verdict["valid"], **{k: verdict[k] for k in CHECKED},
                   "check_undelivered_pct": verdict["undelivered_pct"],
                   "check_agrees": all(metrics[k] == verdict[k] for k in (*CHECKED, "undelivered_pct"))}
    return {"instance": instance.name, "policy": policy_name, "orders": len(instance.orders), "runtime_s": runtime,
            **metrics, **checked}


def replay_knob(task: tuple[str, str, object, float, int, int]) -> dict[str, Any]:
    """Replay one tuning day with the rolling policy, one knob changed (none for `""`), the couriers' meters per
    minute scaled by `speed` (a what-if on the fleet), every order known `lead` minutes before it is placed (a
    what-if on foresight) and `extra` more couriers over the day's busiest `PEAK_MIN` minutes (a what-if on the
    shifts): the excess over the delivered orders' own direct-delivery bound and the undelivered share, as
    `mdrp_check.py` counts them."""
    from dataclasses import replace

    from dispatch.meal import RollingHorizonMealPolicy, RollingHorizonOptions
    from simulator.mdrp import (
        announced_early,
        busiest_window,
        delivered,
        excess_over_own_bound,
        read_instance,
        simulate,
        sped_up,
        with_extra_couriers,
    )

    folder, knob, value, speed, lead, extra = task
    instance = read_instance(folder)
    if extra:
        instance = with_extra_couriers(instance, extra, *busiest_window(instance))
    instance = sped_up(announced_early(instance, lead), speed)
    options = RollingHorizonOptions() if not knob else replace(RollingHorizonOptions(), **{knob: value})
    recorder = simulate(instance, RollingHorizonMealPolicy(rules=instance.parameters.rules, options=options))
    done = delivered(instance, recorder)
    excess = sum(excess_over_own_bound(instance, done))
    n = len(instance.orders)
    return {"ctd_excess_delivered": excess / max(len(done), 1), "undelivered_pct": 100 * (n - len(done)) / n}


Means = dict[str, dict[str, float]]


def knob_steps(folders: list[str], jobs: int) -> tuple[Means, Means, Means]:
    """The rolling policy's averages on `folders` at its defaults and with each step of `KNOB_STEPS`; then, apart,
    at its defaults with the couriers sped up by each of `SPEEDUPS` or more of them at the peak (`EXTRA_COURIERS`),
    and with the orders known early by each of `LEADS` (the defaults row first in all three)."""
    variants: list[tuple[str, str, str, object, float, int, int]] = [  # (table, row, knob, value, speed, lead, extra)
        ("", "defaults", "", None, 1.0, 0, 0), *(("knobs", f"{k}={v}", k, v, 1.0, 0, 0) for k, v in KNOB_STEPS),
        *(("fleet", f"couriers {f}x as fast", "", None, f, 0, 0) for f in SPEEDUPS),
        *(("fleet", f"{n} more couriers over the busiest {PEAK_MIN} min", "", None, 1.0, 0, n)
          for n in EXTRA_COURIERS),
        *(("foresight", f"orders known {m} min before placement", "", None, 1.0, m, 0) for m in LEADS)]
    tasks = [(f, knob, value, speed, lead, extra) for _, _, knob, value, speed, lead, extra in variants
             for f in folders]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        rows = list(pool.map(replay_knob, tasks, chunksize=4))  # in task order: len(folders) rows per variant
    tables: dict[str, Means] = {"knobs": {}, "fleet": {}, "foresight": {}}
    for k, (table, name, *_) in enumerate(variants):
        mine = rows[k * len(folders):(k + 1) * len(folders)]
        means = {key: round(statistics.fmean(r[key] for r in mine), 3) for key in mine[0]}
        for t in [table] if table else tables:  # the defaults row heads every table
            tables[t][name] = means
    return tables["knobs"], tables["fleet"], tables["foresight"]


def _day_averages(days: list[dict[str, Any]]) -> dict[str, Any]:
    """The number of days and their mean excess and undelivered share (with the checker's figures when present)."""
    keys = [k for k in ("ctd_excess", "undelivered_pct", *CHECKED) if k in days[0]]
    return {"days": len(days), **{k: round(statistics.fmean(r[k] for r in days), 3) for k in keys}}


def by_seed(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One policy's day averages per seed (the first character of the instance name), seeds in order."""
    out: dict[str, dict[str, Any]] = {}
    for seed in sorted({r["instance"][0] for r in rows}):
        split = next((name for name, seeds in SPLITS.items() if seed in seeds), "")
        out[f"seed {seed} ({split})"] = _day_averages([r for r in rows if r["instance"][0] == seed])
    return out


def by_shifts(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One policy's day averages per split (tuning, validation) and courier shift schedule (the `s` part of the
    instance name, `SHIFTS`); a split or schedule without days is left out."""
    out: dict[str, dict[str, Any]] = {}
    for split, seeds in SPLITS.items():
        for code in SHIFTS:
            mine = [r for r in rows if r["instance"][0] in seeds and _shifts(r["instance"]) == code]
            if mine:
                out[shift_label(split, code)] = _day_averages(mine)
    return out


def shift_label(split: str, code: str) -> str:
    """The row name of a split's days with one shift schedule in `by_shifts` (e.g. "validate, historical shifts
    (s1)")."""
    return f"{split}, {SHIFTS[code]} ({code})"


def _shifts(instance: str) -> str:
    """The shift schedule code of an instance name such as `3o50t75s2p125` (`s2`), or `""` for another name."""
    found = re.search(r"t\d+(s\d)p\d+$", instance)
    return found.group(1) if found else ""


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
    splits: dict[str, Any] = {}
    for split, seeds in SPLITS.items():
        for policy in POLICIES:
            mine = [r for r in rows if r["policy"] == policy and r["instance"][0] in seeds]
            if not mine:
                continue
            splits[f"{split}_{policy}"] = {**_day_averages(mine),
                                           "invalid_days": sum(1 for r in mine if r.get("check_valid") is False),
                                           "disagreeing_days": sum(1 for r in mine if r.get("check_agrees") is False)}
    summary["splits"] = splits
    summary["seeds"] = by_seed([r for r in rows if r["policy"] == "rolling"])
    summary["shifts"] = by_shifts([r for r in rows if r["policy"] == "rolling"])
    tuning = [str(d) for d in sorted(INSTANCES.iterdir()) if d.is_dir() and d.name[0] in SPLITS["tune"]]
    summary["knobs"], summary["fleet"], summary["foresight"] = knob_steps(tuning, jobs)
    results["mdrp"] = summary
    results["mdrp_runs"] = rows


if __name__ == "__main__":
    out: dict[str, Any] = {}
    run(out)
    print(json.dumps(out["mdrp"], indent=1))
