"""Demo suite: `make run`'s live demo (the Porto day through the real HTTP API) beside `make simulate`'s day.

Both in child processes, one after the other, on the same scenario and seed:
- `lastmile serve --demo scenarios/porto-centre-day.toml --exit` (default speed: the day in about five minutes):
  wall time, peak RSS and the KPIs it prints on its last line (`kpis: {...}`: what the order system reads back
  from `GET /v1/orders/{id}`);
- `lastmile simulate scenarios/porto-centre-day.toml`: the same day offline.

The gap between the two is what the live path costs: orders posted and couriers' stops reported over HTTP at a
clock ×180, courier apps polling their routes, all in one process with the API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import ROOT
from benchmarks.bench_api import _free_port
from benchmarks.bench_city import simulate_day

SCENARIO = "scenarios/porto-centre-day.toml"


def demo_day(scenario: str = SCENARIO) -> dict[str, Any]:
    """One `lastmile serve --demo SCENARIO --exit` in a child process: wall s, peak RSS MB, its final KPIs."""
    lastmile = Path(sys.executable).parent / "lastmile"
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen([str(lastmile), "serve", "--demo", str(ROOT / scenario), "--exit", "--port",
                                  str(_free_port())], stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        printed, errors = out.read(), err.read()
    if status != 0:
        raise RuntimeError(f"demo {scenario}: exit status {status}: {errors[-2000:]}")
    lines = printed.splitlines()
    kpis = [line.removeprefix("kpis: ") for line in lines if line.startswith("kpis: ")]
    if not kpis:
        raise RuntimeError(f"demo {scenario}: no 'kpis:' line in its output: {printed[-2000:]}")
    banner = next((line for line in lines if line.startswith("lastmile demo:")), "")
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1),
            "kpis": json.loads(kpis[-1]), "banner": banner}


def run(report: dict[str, Any]) -> None:
    demo = demo_day()
    offline = simulate_day(SCENARIO, [])
    k = demo["kpis"]
    report["demo"] = {
        "scenario": SCENARIO,
        "demo": demo,
        "simulate": {key: offline[key] for key in ("wall_s", "peak_rss_mb", "orders", "delivered", "on_time_rate",
                                                   "click_to_door_mean_min")},
        "on_time_gap_pp": None if k["on_time_rate"] is None else
        round(100 * (offline["on_time_rate"] - k["on_time_rate"]), 2),
        "click_to_door_gap_min": None if k["click_to_door_min"] is None else
        round(k["click_to_door_min"] - offline["click_to_door_mean_min"], 2),
    }


def markdown(demo: dict[str, Any]) -> list[str]:
    d, k, o = demo["demo"], demo["demo"]["kpis"], demo["simulate"]
    return ["## demo: `make run`'s live day over HTTP beside `make simulate`", "", d["banner"], "",
            "| run | wall s | peak RSS MB | placed | delivered | on time | click-to-door min |",
            "|---|---|---|---|---|---|---|",
            f"| `lastmile serve --demo {demo['scenario']} --exit` | {d['wall_s']} | {d['peak_rss_mb']} | "
            f"{k['placed']} | {k['delivered']} | {k['on_time_rate']} | {k['click_to_door_min']} |",
            f"| `lastmile simulate {demo['scenario']}` | {o['wall_s']} | {o['peak_rss_mb']} | {o['orders']} | "
            f"{o['delivered']} | {o['on_time_rate']} | {o['click_to_door_mean_min']} |", "",
            f"Demo against simulate: on time {-demo['on_time_gap_pp']:+.2f} pp, click-to-door "
            f"{demo['click_to_door_gap_min']:+.2f} min; the demo's own errors: {k['errors'] or 'none'}; orders open "
            f"at the end: {k['open']}; the clock waited {k.get('clock_held_s', 0):g} s of the wall time for the "
            "dispatch worker and the apps to catch up.", ""]
