"""`make bench`: solver gaps on Solomon and CVRPLIB X, dispatch policies on whole days, city days, matrix timings,
the live API; writes JSON and a Markdown table per group of suites."""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks import ROOT, SHARED

RESULTS = ROOT / "benchmarks" / "results"


def _hybrid_by_arc_cost() -> Any:
    """The hybrid backend whose granular search picks insertion neighbours by arc cost alone (no time weights)."""
    from routing.solvers.lns import LnsOptions
    from routing.solvers.ortools import HybridBackend, OrToolsOptions

    return HybridBackend(OrToolsOptions(string_removal=LnsOptions(wait_weight=0.0, warp_weight=0.0)))


ABLATIONS = {"hybrid, neighbours by arc cost": _hybrid_by_arc_cost}
"""Bench-only variants of a backend (suite `gh`, run beside `hybrid`): the share of one part of it."""


def solve_one(task: dict[str, Any]) -> dict[str, Any]:
    """Solve one instance with one backend (run in a worker process)."""
    from routing.io import read_instance
    from routing.solvers.auto import choose_backend, solve
    from routing.solvers.base import SolveParams

    if task["suite"] == "gh":
        import tempfile

        import numpy as np

        from benchmarks.gh import dimacs_distance, to_solomon

        text = to_solomon(Path(task["path"]))
        with tempfile.TemporaryDirectory() as folder:
            converted = Path(folder) / (Path(task["path"]).stem + ".txt")
            converted.write_text(text)
            instance = read_instance(converted)
    else:
        instance = read_instance(task["path"])
    params = SolveParams(time_limit=task["time_limit"], seed=0)
    if task["backend"] in ABLATIONS:
        from routing.solvers.base import run_backend

        result = run_backend(ABLATIONS[task["backend"]](), instance.problem, params)
    else:
        result = solve(instance.problem, params, backend=task["backend"])
    distance = instance.exact_distance(result.plan)
    if task["suite"] == "gh":
        coords = np.array([[float(x) for x in row.split()[1:3]] for row in text.splitlines()[6:]])
        labels = instance.job_labels
        routes = [[labels[x.index] for x in r.visits if x.kind == "job"] for r in result.plan.routes]
        distance = dimacs_distance(coords, routes)
    feasible = result.evaluation.feasible and not result.plan.unassigned
    return {
        "instance": instance.name,
        "backend": task["backend"],
        "time_limit": task["time_limit"],
        "distance": round(distance, 4),
        "vehicles": result.evaluation.vehicles_used,
        "feasible": feasible,
        "runtime_s": round(result.runtime_s, 3),
        "bks": task["bks"],
        "gap_pct": round(100.0 * (distance - task["bks"]) / task["bks"], 4),
        "auto_choice": choose_backend(instance.problem).name,
        "phases": [{"algorithm": ph.algorithm, "seconds": round(ph.seconds, 3), "cost": ph.cost,
                    "unassigned": ph.unassigned} for ph in result.phases],
    }


def _bks(path: Path, column: str) -> dict[str, float]:
    with path.open() as f:
        return {row["instance"]: float(row[column]) for row in csv.DictReader(f) if row[column]}


def solomon_tasks(backends: Iterable[str], time_limit: float, names: list[str] | None) -> list[dict[str, Any]]:
    folder = SHARED / "benchmarks" / "solomon"
    bks = _bks(folder / "bks.csv", "dist_only_distance")
    chosen = sorted(bks) if not names else [n for n in sorted(bks) if n in names]
    return [{"path": str(folder / f"{n}.txt"), "backend": b, "time_limit": time_limit, "bks": bks[n],
             "suite": "solomon"} for n in chosen for b in backends]


def cvrp_tasks(backends: Iterable[str], small_limit: float, large_limit: float,
               names: list[str] | None) -> list[dict[str, Any]]:
    folder = SHARED / "benchmarks" / "cvrp"
    bks = _bks(folder / "bks.csv", "distance")
    chosen = sorted(bks, key=lambda n: int(n.split("-")[1][1:]))
    if names:
        chosen = [n for n in chosen if n in names]
    tasks = []
    for n in chosen:
        customers = int(n.split("-")[1][1:]) - 1
        limit = large_limit if customers >= 500 else small_limit
        tasks += [{"path": str(folder / f"{n}.vrp"), "backend": b, "time_limit": limit, "bks": bks[n],
                   "suite": "cvrp"} for b in backends]
    return tasks


def gh_tasks(backends: Iterable[str], time_limit: float, names: list[str] | None) -> list[dict[str, Any]]:
    from benchmarks.gh import DEFAULT, GH_DIR, best_known

    chosen = names or list(DEFAULT)
    paths = [GH_DIR / f"{n}.vrp" for n in chosen]
    run_backends = list(backends)
    variants = [*run_backends, *(ABLATIONS if "hybrid" in run_backends else ())]
    return [{"path": str(p), "backend": b, "time_limit": time_limit, "bks": best_known(p), "suite": "gh"}
            for p in paths if p.exists() for b in variants]


def run_tasks(tasks: list[dict[str, Any]], jobs: int, label: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    longest_first = sorted(tasks, key=lambda t: -t["time_limit"])
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(solve_one, t): t for t in longest_first}
        for fut in tqdm(futures, desc=label, unit="run"):
            row = fut.result()
            row["suite"] = futures[fut]["suite"]
            results.append(row)
    return sorted(results, key=lambda r: (r["backend"], r["instance"]))


def _phase_shares(mine: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per algorithm of a backend: its median share of the run's seconds, and the mean share of the cost of the
    first phase's plan that it removed (the first phase: none; a phase that made the plan worse: a negative share)."""
    shares: dict[str, list[float]] = {}
    gains: dict[str, list[float]] = {}
    for r in mine:
        phases = [ph for ph in r.get("phases", []) if ph["unassigned"] == 0]
        total = sum(ph["seconds"] for ph in r.get("phases", [])) or 1.0
        for k, ph in enumerate(phases):
            shares.setdefault(ph["algorithm"], []).append(ph["seconds"] / total)
            prev = min(p["cost"] for p in phases[:k]) if k else ph["cost"]
            gains.setdefault(ph["algorithm"], []).append(100.0 * (prev - ph["cost"]) / max(1, phases[0]["cost"]))
    return {a: {"time_share": round(statistics.median(shares[a]), 3),
                "gain_pct": round(statistics.fmean(gains[a]), 3)} for a in shares}


def _gap_summary(mine: list[dict[str, Any]]) -> dict[str, Any]:
    gaps = [r["gap_pct"] for r in mine if r["feasible"]]
    return {
        "instances": len(mine),
        "infeasible": sum(not r["feasible"] for r in mine),
        "mean_gap_pct": round(statistics.fmean(gaps), 3) if gaps else None,
        "median_gap_pct": round(statistics.median(gaps), 3) if gaps else None,
        "max_gap_pct": round(max(gaps), 3) if gaps else None,
        "median_runtime_s": round(statistics.median(r["runtime_s"] for r in mine), 2),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for backend in sorted({r["backend"] for r in rows}):
        mine = [r for r in rows if r["backend"] == backend]
        out[backend] = _gap_summary(mine) | {"phases": _phase_shares(mine)}
    instances = {r["instance"] for r in rows}
    chosen = [r for r in rows if r["backend"] == r.get("auto_choice")]
    if chosen and {r["instance"] for r in chosen} == instances:
        out["auto"] = _gap_summary(chosen) | {"chooses": dict(sorted(
            {b: sum(1 for r in chosen if r["backend"] == b) for b in {r["backend"] for r in chosen}}.items()))}
    best = {}
    for r in rows:
        if r["backend"] in ABLATIONS:
            continue
        if r["feasible"] and (r["instance"] not in best or r["gap_pct"] < best[r["instance"]]):
            best[r["instance"]] = r["gap_pct"]
    if best and len({r["backend"] for r in rows} - set(ABLATIONS)) > 1:
        out["best of backends"] = {"instances": len(best), "mean_gap_pct": round(statistics.fmean(best.values()), 3),
                                   "max_gap_pct": round(max(best.values()), 3)}
    return out


def _named_rows(label: str, rows: dict[str, dict[str, Any]]) -> list[str]:
    """A Markdown table of `rows` (name → columns, the first row's columns for all), then a blank line."""
    columns = list(next(iter(rows.values())))
    return ["| " + label + " | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|",
            *(f"| {name} | " + " | ".join(str(v[c]) for c in columns) + " |" for name, v in rows.items()), ""]


NAMED_TABLES = (
    ("knobs", "knob", "The rolling policy with one knob moved one step from its default, days of seeds 0-2 only "
                      "(where knobs may be tuned):"),
    ("seeds", "seed", "The rolling policy per seed (each seed's days average the same way as the splits):"),
    ("shifts", "split, shifts", "The rolling policy per courier shift schedule: the shifts as they were on the day "
                                "(`s1` in the instance name) or re-planned by the instances' authors with about the "
                                "same courier hours (`s2`), the same orders (each group's days average the same way "
                                "as the splits):"),
    ("fleet", "fleet", "What-if on the fleet, days of seeds 0-2: the rolling policy at its defaults with every courier "
                       "riding faster (only meters per minute changes), or with more couriers on shift over each "
                       "day's busiest two hours of orders placed, each starting at a restaurant busy then "
                       "(`--extra-couriers`); the same orders and policy:"),
    ("foresight", "foresight", "What-if on foresight, days of seeds 0-2: the rolling policy at its defaults told of "
                               "every order some minutes before it is placed (the same orders, shifts and policy; no "
                               "live policy knows this):"),
)
"""The MDRP report's tables of named rows, in order: (key in the suite's results, first column, caption)."""


def markdown(report: dict[str, Any]) -> str:
    speed = f", 10^7 Python additions in {report['speed_s']} s" if "speed_s" in report else ""
    lines = [f"# lastmile benchmarks ({report['started']}, {report['machine']}{speed})", ""]
    for suite in ("solomon", "cvrp", "gh"):
        if suite not in report:
            continue
        lines += [f"## {suite}", "", "| backend | instances | infeasible | mean gap % | median gap % | max gap % |",
                  "|---|---|---|---|---|---|"]
        for backend, s in report[suite]["summary"].items():
            lines.append(f"| {backend} | {s['instances']} | {s.get('infeasible', '')} | {s['mean_gap_pct']} | "
                         f"{s.get('median_gap_pct', '')} | {s['max_gap_pct']} |")
        lines += ["", "Which algorithm did what (median share of the run's time; mean share of the first plan's cost "
                  "it removed):", "", "| backend | algorithm | time share | cost removed % |", "|---|---|---|---|"]
        for backend, s in report[suite]["summary"].items():
            for algorithm, ph in s.get("phases", {}).items():
                lines.append(f"| {backend} | {algorithm} | {ph['time_share']} | {ph['gain_pct']} |")
        lines.append("")
        if suite in ("cvrp", "gh"):
            lines += ["| instance | backend | time limit s | distance | BKS | gap % |", "|---|---|---|---|---|---|"]
            for r in report[suite]["runs"]:
                lines.append(f"| {r['instance']} | {r['backend']} | {r['time_limit']} | {r['distance']} | "
                             f"{r['bks']} | {r['gap_pct']} |")
            lines.append("")
    if "city" in report:
        city = report["city"]
        days = [k for k, v in city.items() if isinstance(v, dict) and "wall_s" in v]
        lines += ["## city: whole days, one process each", "",
                  "| day | wall s | peak RSS MB | orders | delivered | on time | click-to-door min | "
                  "km / order | cost / order | g CO2 / order |", "|---|---|---|---|---|---|---|---|---|---|"]
        for k in days:
            d = city[k]
            lines.append(f"| {k} | {d['wall_s']} | {d['peak_rss_mb']} | {d['orders']} | {d['delivered']} | "
                         f"{d['on_time_rate']} | {d['click_to_door_mean_min']} | {d['km_per_order']} | "
                         f"{d['cost_per_order']} | {d['co2_g_per_order']} |")
        lines += ["", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in city.items() if k not in days]
        lines.append("")
    if "policies" in report:
        from benchmarks import bench_policies

        lines += bench_policies.markdown(report["policies"])
    if "api" in report:
        from benchmarks import bench_api

        lines += bench_api.markdown(report["api"])
    if "demo" in report:
        from benchmarks import bench_demo

        lines += bench_demo.markdown(report["demo"])
    for key, title in (("matrix", "travel-time matrices (Porto metro)"),
                       ("dispatch", "dispatch (one store, 60 open orders, 20 couriers)"),
                       ("allocation", "allocation (Porto metro, 50 facilities)"),
                       ("mdrp", "Grubhub MDRP, averages over the shared instances"),
                       ("sweep", "sweep throughput on Dask (8 scenario days, 1 vs 2 workers)")):
        if key in report:
            lines += [f"## {title}", "", "| figure | value |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in report[key].items() if not isinstance(v, dict)]
            lines.append("")
            if "splits" in report[key]:
                rows = report[key]["splits"]
                columns = sorted({c for v in rows.values() for c in v}, key=list(next(iter(rows.values()))).index)
                lines += ["| days, policy | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
                lines += [f"| {b} | " + " | ".join(str(v.get(c, "")) for c in columns) + " |" for b, v in rows.items()]
                lines.append("")
            for table, label, caption in NAMED_TABLES:
                if table in report[key]:
                    lines += [caption, ""]
                    lines += _named_rows(label, report[key][table])
            if "ablation" in report[key]:
                lines += _named_rows("backend", report[key]["ablation"])
    return "\n".join(lines)


def machine_speed() -> float:
    """Seconds for 10^7 Python additions (the median of three): how fast this machine was, so that time-limited
    figures from different runs can be read side by side."""
    times = []
    for _ in range(3):
        start, total = time.perf_counter(), 0
        for i in range(10**7):
            total += i
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suites",
                        default="api,demo,city,policies,matrix,allocation,dispatch,mdrp,sweep,solomon,cvrp,gh")
    parser.add_argument("--backends", default="pyvrp,ortools,sisr,hybrid")
    parser.add_argument("--solomon-time", type=float, default=10.0)
    parser.add_argument("--cvrp-time", type=float, default=20.0, help="seconds for X instances below 500 customers")
    parser.add_argument("--cvrp-large-time", type=float, default=60.0, help="seconds for 500 customers and more")
    parser.add_argument("--gh-time", type=float, default=60.0, help="seconds per Gehring-Homberger instance")
    parser.add_argument("--instances", default="", help="comma-separated subset of instance names")
    parser.add_argument("--jobs", type=int, default=2, help="solver runs in parallel (one core each)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write one JSON + Markdown pair here (default: benchmarks/results/latest-GROUP.* for "
                             "each group of suites run, then README.md's figures re-rendered)")
    args = parser.parse_args()
    suites = args.suites.split(",")
    backends = args.backends.split(",")
    names = [n for n in args.instances.split(",") if n] or None
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, "
                              f"{os.cpu_count()} cores", "speed_s": machine_speed(),
                              "args": vars(args) | {"out": str(args.out or RESULTS)}}
    if "matrix" in suites:
        from benchmarks import bench_matrix

        bench_matrix.run(report)
    if "mdrp" in suites:
        from benchmarks import bench_mdrp

        bench_mdrp.run(report, jobs=args.jobs)
    if "dispatch" in suites:
        from benchmarks import bench_dispatch

        bench_dispatch.run(report)
    if "policies" in suites:
        from benchmarks import bench_policies

        bench_policies.run(report, jobs=args.jobs)
    if "allocation" in suites:
        from benchmarks import bench_allocation

        bench_allocation.run(report)
    if "sweep" in suites:
        from benchmarks import bench_sweep

        bench_sweep.run(report)
    if "city" in suites:
        from benchmarks import bench_city

        bench_city.run(report)
    if "api" in suites:
        from benchmarks import bench_api

        bench_api.run(report)
    if "demo" in suites:
        from benchmarks import bench_demo

        bench_demo.run(report)
    if "gh" in suites:
        from benchmarks.gh import GH_DIR

        tasks = gh_tasks(backends, args.gh_time, names)
        if tasks:
            rows = run_tasks(tasks, args.jobs, "gh")
            report["gh"] = {"summary": summarise(rows), "runs": rows}
        else:
            report["gh_skipped"] = f"no Gehring-Homberger instances at {GH_DIR} (set LASTMILE_GH_DIR)"
    if not (SHARED / "benchmarks").is_dir():
        report["skipped"] = f"no benchmark instances at {SHARED / 'benchmarks'}"
    else:
        for suite in ("solomon", "cvrp"):
            if suite not in suites:
                continue
            if suite == "solomon":
                tasks = solomon_tasks(backends, args.solomon_time, names)
            else:
                tasks = cvrp_tasks(backends, args.cvrp_time, args.cvrp_large_time, names)
            if tasks:
                rows = run_tasks(tasks, args.jobs, suite)
                report[suite] = {"summary": summarise(rows), "runs": rows}
    if args.out is not None:
        _write(report, args.out)
        return
    head = {k: report[k] for k in ("started", "machine", "speed_s", "args")}
    for group, members in GROUPS.items():
        part = {k: v for k, v in report.items() if k in members}
        if part:
            _write(head | part, RESULTS / f"latest-{group}")
    from benchmarks import figures

    figures.main([])


GROUPS = {
    "solvers": ("solomon", "cvrp", "skipped"),
    "gh": ("gh", "gh_skipped"),
    "fast": ("matrix", "allocation", "dispatch"),
    "mdrp": ("mdrp", "mdrp_runs"),
    "sweep": ("sweep",),
    "city": ("city",),
    "policies": ("policies",),
    "api": ("api",),
    "demo": ("demo",),
}
"""Which suites share a result file (`benchmarks/results/latest-GROUP.{json,md}`)."""


def _write(report: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    table = markdown(report)
    out.with_suffix(".md").write_text(table)
    print(table)
    print(f"written {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
