"""The README's figures, rendered from the committed result files (never typed by hand).

`python -m benchmarks.figures` rewrites the marked blocks of README.md from `benchmarks/results/*.json`;
`--check` only says whether they are up to date (exit 1 when not). `make bench` runs it after the benchmarks.
Blocks are delimited by `<!-- figures:NAME -->` and `<!-- /figures:NAME -->`; NAME is a key of `BLOCKS`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import ROOT

RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"

Results = dict[str, dict[str, Any]]
"""Result files by stem (`latest-solvers`), each as loaded from its JSON."""


def load_results(folder: Path = RESULTS) -> Results:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def _pct(x: float | None, signed: bool = True) -> str:
    if x is None:
        return "-"
    return f"{x:+.2f} %" if signed else f"{x:.2f} %"


def _num(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def _gaps(s: dict[str, Any]) -> str:
    return (f"{_pct(s['mean_gap_pct'])} / {_pct(s['median_gap_pct'])} / {_pct(s['max_gap_pct'])}, "
            f"{s['infeasible']} infeasible")


BACKEND_LABELS = {
    "auto": "`auto`",
    "hybrid": "hybrid (OR-Tools, then the compiled search, then OR-Tools)",
    "pyvrp": "PyVRP",
    "ortools": "OR-Tools' own search alone",
    "sisr": "the compiled string-removal search alone",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One line of the figures table: what, the measured value (rendered from `source`), the target."""

    figure: str
    source: str
    measured: Callable[[dict[str, Any]], str]
    target: str = ""


def _solver_rows() -> list[Row]:
    rows = []
    for backend in ("auto", "hybrid", "pyvrp", "ortools", "sisr"):
        target = {"auto": "≤ 1.0 % mean, 0 infeasible", "pyvrp": "≤ 0.3 % mean, 0 infeasible"}.get(backend, "")
        rows.append(Row(
            figure=f"Solomon, 56 instances, 10 s each: {BACKEND_LABELS[backend]}, mean / median / max gap",
            source="latest-solvers", target=target,
            measured=lambda r, b=backend: _gaps(r["solomon"]["summary"][b]) + (
                f" (chooses {', '.join(f'{k} × {v}' for k, v in r['solomon']['summary'][b]['chooses'].items())})"
                if b == "auto" else "")))
    rows.append(Row(
        figure="Solomon, hybrid: share of the OR-Tools plan's cost each later phase removed (share of the time; "
               "an ablation at one budget is the table's rows above)",
        source="latest-solvers",
        measured=lambda r: "; ".join(
            f"{a}: {'the first plan' if k == 0 else _pct(-p['gain_pct'])} ({p['time_share']:.0%} of the time)"
            for k, (a, p) in enumerate(r["solomon"]["summary"]["hybrid"]["phases"].items()))))
    for backend in ("auto", "hybrid", "pyvrp", "ortools", "sisr"):
        rows.append(Row(
            figure=f"CVRP X, 11 instances (20 s below 500 customers, 60 s above): {BACKEND_LABELS[backend]}, "
                   "mean / median / max gap",
            source="latest-solvers", target="≤ 3 % worst" if backend == "auto" else "",
            measured=lambda r, b=backend: _gaps(r["cvrp"]["summary"][b])))
    for backend in ("auto", "hybrid", "pyvrp"):
        rows.append(Row(
            figure=f"Gehring–Homberger VRPTW, 1000 customers, the first two instances of each of the 6 classes, 60 s "
                   f"(suite `gh`, data from `$LASTMILE_GH_DIR`): {BACKEND_LABELS[backend]}, mean / median / max gap",
            source="latest-gh", target="≤ 3.0 % mean" if backend == "auto" else "",
            measured=lambda r, b=backend: _gaps(r["gh"]["summary"][b]) + (
                f" (chooses {', '.join(f'{k} × {v}' for k, v in r['gh']['summary'][b]['chooses'].items())})"
                if b == "auto" else "")))
    rows.append(Row(
        figure="Gehring–Homberger, the same runs: hybrid with the granular search's insertion neighbours by arc cost "
               "alone (no wait or lateness weights; the share of the time-aware neighbours), mean / median / max gap",
        source="latest-gh", measured=lambda r: _gaps(r["gh"]["summary"]["hybrid, neighbours by arc cost"])))
    return rows


def _city(name: str) -> Callable[[dict[str, Any]], str]:
    def render(r: dict[str, Any]) -> str:
        d = r["city"][name]
        return (f"{d['wall_s']:.1f} s, peak RSS {d['peak_rss_mb']:.0f} MB; {d['on_time_rate']:.1%} on time, "
                f"click-to-door {d['click_to_door_mean_min']:.1f} min, {d['km_per_order']:.2f} km per order")
    return render


def _overloaded(name: str) -> Callable[[dict[str, Any]], str]:
    def render(r: dict[str, Any]) -> str:
        d = r["city"][name]
        k = d["kpis"]
        return (f"{d['wall_s']:.1f} s; {k['delivered']:,} of {k['orders']:,} orders delivered, "
                f"{k['open_at_end']:,} still open at the end; {k['on_time_rate']:.1%} on time (an order open past its "
                f"promise counts as late), "
                f"click-to-door {k['click_to_door_mean_min']:.1f} min, {k['km_per_order']:.2f} km per order")
    return render


def _scaled(name: str) -> Callable[[dict[str, Any]], str]:
    def render(r: dict[str, Any]) -> str:
        k = r["city"][name]["kpis"]
        return (_city(name)(r) + f", express quotes {k['express_quote_met_rate']:.1%} met; "
                f"{k['rejected']:,} of {k['orders']:,} orders rejected")
    return render


def _add_place(r: dict[str, Any]) -> str:
    c = r["city"]
    a, b, s = c["add_place_car_bike_foot"], c["add_place_bike"], c["add_place_car_bike_foot_shortest"]
    return (f"p50 {a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms (bike alone p99 {b['p99_ms']:.2f} ms; "
            f"`distances=\"shortest\"`, all CCH: p99 {s['p99_ms']:.1f} ms)")


LIGHT = 50.0
"""The light POST rate of the api suite (`benchmarks.bench_api.LIGHT_RATE`)."""


def _rewrites(phase: dict[str, Any]) -> str:
    """How many times Redis rewrote its AOF during an api phase ("" where not counted)."""
    n = phase.get("aof_rewrites")
    return "" if n is None else f"{n} AOF rewrite{'' if n == 1 else 's'} of Redis"


def _api(key: str) -> Callable[[dict[str, Any]], str]:
    def render(r: dict[str, Any]) -> str:
        a = r["api"]
        if key == "light":
            p, light, anchor = a["post_orders"], a["post_orders_light"], a["anchor_post"]
            runs = a.get("post_orders_runs", [])
            span = f" for {a['burst_seconds']:.0f} s" if "burst_seconds" in a else ""
            if rewrites := _rewrites(p):
                span += f" with {rewrites} in them"
            return (f"p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms, {p['errors']} errors at "
                    f"{a['rate_per_s']:.0f}/s offered{span} ({p['per_s']:.0f}/s answered"
                    + (f"; p99 of its {len(runs)} parts: {', '.join(format(r['p99_ms'], '.1f') for r in runs)} ms"
                       if runs else "") + f"); at {LIGHT:.0f}/s p99 "
                    f"{light['p99_ms']:.1f} ms (bare FastAPI + one Redis transaction at {a['rate_per_s']:.0f}/s in "
                    f"the same run: p99 {anchor['p99_ms']:.1f} ms)")
        if key == "sustained":
            alone = a.get("post_orders_api_alone")
            sustained = a["post_orders_sustained"]

            def noted(phase: dict[str, Any]) -> str:
                return f" ({rewrites})" if (rewrites := _rewrites(phase)) else ""
            runs = len(a.get("post_orders_sustained_runs", [])) or 1
            return (f"{sustained['per_s']:.0f} orders/s with the worker dispatching on the same 2 cores"
                    + (f" (median of {runs} runs)" if runs > 1 else "")
                    + noted(sustained) + ("" if alone is None else f"; the API process alone (worker paused): "
                                          f"{alone['per_s']:.0f} orders/s{noted(alone)}, the worker caught "
                                          f"up in {a['drain_s_api_alone']} s"))
        if key == "lag":
            lag = a["post_orders"].get("worker_lag")
            if lag is None:
                return "not measured"
            return (f"p50 {lag['p50_s']} s, p99 {lag['p99_s']} s, max {lag['max_s']} s (`/health` every "
                    f"{lag['sample_every_s']} s)")
        g, anchor = a["get_route"], a["anchor_get"]
        return (f"p50 {g['p50_ms']:.1f} ms, p99 {g['p99_ms']:.0f} ms (bare GET: p50 {anchor['p50_ms']:.1f} ms, "
                f"p99 {anchor['p99_ms']:.1f} ms)")
    return render


def _dispatch(r: dict[str, Any]) -> str:
    d = r["dispatch"]
    others = "; ".join(f"{BACKEND_LABELS.get(b, b)}: {v['late_orders_mean']:.1f} late, {v['km_mean']:.1f} km"
                       for b, v in d["ablation"].items() if b != d["backend"])
    return (f"{d['backend']}: p50 {d['latency_p50_s']:.2f} s, p95 {d['latency_p95_s']:.2f} s; "
            f"{d['late_orders_mean']:.1f} late orders, {d['km_mean']:.1f} km per plan ({others})")


def _policies(day: str) -> Callable[[dict[str, Any]], str]:
    def render(r: dict[str, Any]) -> str:
        rows = r["policies"][day]
        return "; ".join(f"{p}: {v['click_to_door_mean_min']:.1f} min, {v['km_per_order']:.2f} km/order, "
                         f"{v['on_time_rate']:.1%} on time" + _co2(v) for p, v in rows.items())
    return render


def _co2(v: dict[str, Any]) -> str:
    """`, N g CO2/order` when the run reported it (result files before the CO2 price lack it)."""
    return "" if v.get("co2_g_per_order") is None else f", {v['co2_g_per_order']:.0f} g CO₂/order"


def _ablation(r: dict[str, Any]) -> str:
    return "; ".join(f"{name}: {v['click_to_door_mean_min']:.1f} min, {v['km_per_order']:.2f} km/order"
                     f"{_co2(v)}, {v['wall_s']:.0f} s" for name, v in r["policies"]["ablation"].items())


def _co2_prices(r: dict[str, Any]) -> str:
    p = r["policies"]
    rows = {k.split("=")[1]: v for k, v in p["tuning"].items() if k.startswith("reoptimize, co2_cost_m_per_kg=")}
    best = {k: p["tuning"][k]["co2_g_per_order"] for k in ("batch", "greedy")}
    return ("; ".join(f"{price}: {v['click_to_door_mean_min']:.1f} min, {v['co2_g_per_order']:.0f} g"
                      for price, v in rows.items())
            + f" (batch {best['batch']:.0f} g, greedy {best['greedy']:.0f} g); default "
              f"{p['tuned_co2_cost_m_per_kg']}")


def _quotes(r: dict[str, Any]) -> str:
    return "; ".join(f"{name}: {q['met_rate']:.1%} met, {q['slack_mean_min']:.2f} min slack"
                     for name, q in r["policies"]["quotes"].items())


def _mdrp(r: dict[str, Any]) -> str:
    m = r["mdrp"]
    return (f"{m['rolling_ctd_excess']:.3f} min / {m['rolling_undelivered_pct']:.3f} % "
            f"(greedy {m['greedy_ctd_excess']:.2f} min / {m['greedy_undelivered_pct']:.1f} %)")


def _mdrp_splits(r: dict[str, Any]) -> str:
    s = r["mdrp"]["splits"]

    def split(name: str, days: str) -> str:
        moving, stay = s[f"{days}_rolling"], s[f"{days}_rolling-stay"]
        return (f"{name}: {moving['ctd_excess_delivered']:.3f} min / {moving['undelivered_pct']:.3f} % "
                f"({moving['structurally_undeliverable_pct']:.3f} %), {moving['days']} days (couriers staying where "
                f"they stop: {stay['ctd_excess_delivered']:.3f} min / {stay['undelivered_pct']:.3f} %)")

    return " ; ".join((split("seeds 0–2", "tune"), split("seeds 3–4", "validate")))


def _mdrp_hard(r: dict[str, Any]) -> str:
    seeds = r["mdrp"]["seeds"]
    per_seed = ", ".join(f"{name.split(' (')[0]}: {v['ctd_excess_delivered']:.2f}" for name, v in seeds.items())
    what_if = ", ".join(f"{name}: {v['ctd_excess_delivered']:.3f} min / {v['undelivered_pct']:.3f} %"
                        for table in ("fleet", "foresight") for name, v in r["mdrp"].get(table, {}).items()
                        if name != "defaults")
    from benchmarks.bench_mdrp import SHIFTS, shift_label

    shifts = r["mdrp"].get("shifts", {})
    schedules = ", ".join(f"with {name}: {shifts[label]['ctd_excess_delivered']:.2f} min"
                          for code, name in SHIFTS.items() if (label := shift_label("validate", code)) in shifts)
    by_shifts = f"; seeds 3–4 days {schedules}" if schedules else ""
    return f"{per_seed} min{by_shifts}; seeds 0–2 days, {what_if}"


ROWS: list[Row] = [
    *_solver_rows(),
    Row(figure="Porto metro cached load", source="latest-fast", target="< 2 s",
        measured=lambda r: f"{r['matrix']['load_cached_s'] * 1000:.0f} ms (cold osmnx load "
                           f"{r['matrix']['load_cold_s']:.0f} s)"),
    Row(figure="2005×2005 car travel times, CCH, 2 threads", source="latest-fast", target="≤ 1 s",
        measured=lambda r: f"{r['matrix']['cch_durations_s']:.2f} s (scipy {r['matrix']['scipy_matrix_s']:.1f} s)"),
    Row(figure="the same with fastest-path distances (exact, the default) / shortest-road distances",
        source="latest-fast",
        measured=lambda r: f"{r['matrix']['cch_matrix_s']:.1f} s / {r['matrix']['cch_matrix_shortest_s']:.2f} s; "
                           f"fastest-path distances are a median "
                           f"{r['matrix']['fastest_minus_shortest_distance_median_m'] / 1000:.1f} km longer"),
    Row(figure="re-weighting for another hour (CCH customisation)", source="latest-fast", target="≤ 20 ms",
        measured=lambda r: f"{r['matrix']['cch_reweight_median_ms']:.1f} ms median"),
    Row(figure="allocation, Porto metro, 50 facilities, 20,000 orders", source="latest-fast", target="≥ 20,000",
        measured=lambda r: f"{_num(r['allocation']['orders_per_s_median'])} orders/s median"),
    Row(figure="re-optimising 60 open orders and 20 couriers, 0.3 s budget (`auto`), beside each backend alone at "
               "the same budget", source="latest-fast", target="p95 ≤ 0.5 s", measured=_dispatch),
    Row(figure="dispatch policies, Ostankino day, mean of seeds 1–5: click-to-door, km per order, on time, CO₂ "
               "per order",
        source="latest-policies", target="reoptimize ≤ the better of batch and greedy on each",
        measured=_policies("ostankino")),
    Row(figure="dispatch policies, Porto centre day (5,000 orders)", source="latest-policies",
        target="reoptimize ≤ the better of batch and greedy on each, ≤ 10 min",
        measured=lambda r: (_policies("porto")(r)
                            + f"; reoptimize's day {r['policies']['porto_reoptimize_wall_s']:.0f} s")),
    Row(figure="reoptimize, what each part adds (Ostankino, seeds 1–5)", source="latest-policies",
        measured=_ablation),
    Row(figure="reoptimize's CO₂ price (`co2_cost_m_per_kg`, metres per kg) on the tuning seeds 11–15: "
               "click-to-door, g CO₂ per order", source="latest-policies",
        target="the smallest ≥ 5 % below the better of batch and greedy", measured=_co2_prices),
    Row(figure="express quotes from a model fitted on other seeds (`lastmile calibrate-quotes`): met, mean slack "
               "(quoted − actual click-to-door)", source="latest-policies", target="≥ 95 % met, ≤ 7 min slack",
        measured=_quotes),
    Row(figure="MDRP, 120 shared days, rolling: excess over the lower bound / undelivered", source="latest-mdrp",
        target="≤ 1.2 min / ≤ 0.25 %", measured=_mdrp),
    Row(figure="MDRP rolling, days of seeds 0–2 / of seeds 3–4 (validation): excess over the delivered orders' own "
               "bound (`mdrp_check.py`) / undelivered (structural floor)", source="latest-mdrp",
        target="seeds 3–4: ≤ 1.0 min / ≤ the floor + 0.05 pp", measured=_mdrp_splits),
    Row(figure="MDRP rolling, excess over the delivered orders' own bound per seed (the peak-hour queues of seeds 1 "
               "and 4) and per courier shift schedule, and what-ifs on the fleet and on foresight",
        source="latest-mdrp", measured=_mdrp_hard),
    Row(figure="MDRP, largest shared day (1,185 orders), rolling", source="latest-mdrp", target="≤ 25 s",
        measured=lambda r: f"{r['mdrp']['rolling_runtime_largest_s']:.2f} s (slowest day "
                           f"{r['mdrp']['rolling_runtime_max_s']:.2f} s)"),
    Row(figure="sweep on Dask, 8 scenario days, 2 workers / 1 worker", source="latest-sweep", target="≥ 1.7×",
        measured=lambda r: f"{r['sweep']['speedup_2w_over_1w_median']:.2f}× (median of "
                           f"{r['sweep']['rounds']} paired rounds: "
                           f"{', '.join(f'{x:.2f}' for x in r['sweep']['speedup_per_round'])})"),
    Row(figure="Porto day (5,000 orders, 163 couriers), `make simulate` (reoptimize, the scenario's policy)",
        source="latest-city", target="≤ 3 min, ≤ 500 MB", measured=_city("porto_centre_5k")),
    Row(figure="Porto day under batch (`--policy batch`)", source="latest-city", target="≤ 3 min, ≤ 500 MB",
        measured=_city("porto_centre_5k_batch")),
    Row(figure="Porto day × 4 under batch (`--policy batch --set demand.orders=20000 --set fleet.scale=4`)",
        source="latest-city", target="≤ 4 × the 5,000-order batch day, ≤ 1 GB",
        measured=lambda r: _city("porto_centre_20k_fleet_x4")(r) + f"; {r['city']['time_20k_over_5k']:.1f} × the "
                           "5,000-order batch day's time (median of the ratios of "
                           f"{len(r['city'].get('time_20k_over_5k_pairs', [0]))} runs of the two in turn)"),
    Row(figure="Porto day × 4 under reoptimize, pickers, lockers and pickup points scaled too (`--set "
               "demand.orders=20000 --set fleet.scale=4 --set stores.pickers_scale=4 --set "
               "lockers.compartments_scale=4 --set pickup_points.capacity_scale=4`)", source="latest-city",
        measured=_scaled("porto_centre_20k_x4_scaled")),
    Row(figure="Porto day with half its couriers (`--set fleet.scale=0.5`, reoptimize): an overloaded what-if",
        source="latest-city", measured=_overloaded("porto_centre_5k_half_fleet")),
    Row(figure="the same with `--set policy.room_factor=2` (each decision sees at most twice what the couriers' "
               "next trips hold)", source="latest-city",
        measured=_overloaded("porto_centre_5k_half_fleet_room_factor_2")),
    Row(figure="Porto metro day (50,000 orders, 44 stores, 1,275 couriers)", source="latest-city",
        target="≤ 15 min, ≤ 2 GB, ≥ 95 % on time", measured=_city("porto_metro_50k")),
    Row(figure="adding a place to a store with 300 live places, Porto metro (car + bike + foot, exact fastest-path "
               "distances)", source="latest-city", target="p99 ≤ 2 ms", measured=_add_place),
    Row(figure="`make run`: the Porto day through the live HTTP API (orders posted, courier apps), beside "
               "`make simulate`", source="latest-demo", target="about 5 min",
        measured=lambda r: (f"{r['demo']['demo']['wall_s'] / 60:.1f} min, peak RSS "
                            f"{r['demo']['demo']['peak_rss_mb']:.0f} MB; "
                            f"{r['demo']['demo']['kpis']['on_time_rate']:.1%} on time, click-to-door "
                            f"{r['demo']['demo']['kpis']['click_to_door_min']:.1f} min (simulate: "
                            f"{r['demo']['simulate']['on_time_rate']:.1%}, "
                            f"{r['demo']['simulate']['click_to_door_mean_min']:.1f} min)")),
    Row(figure="live API, `POST /v1/orders` at 500/s on the Porto scenario under batch (one API process admitting, "
               "one worker dispatching at idle priority, Redis `appendfsync always`)", source="latest-api",
        target="p99 ≤ 8 ms at 500/s", measured=_api("light")),
    Row(figure="live API, sustained `POST /v1/orders` per API process (allocation and reservation per order)",
        source="latest-api", target="≥ 1,500/s", measured=_api("sustained")),
    Row(figure="live API, order accepted → applied by the dispatch worker, at 500 orders/s", source="latest-api",
        target="p99 ≤ 2 s", measured=_api("lag")),
    Row(figure="live API, `GET /v1/couriers/{id}/route` at 500/s, worker dispatching beside it", source="latest-api",
        target="p99 ≤ 4 ms", measured=_api("get")),
]


def table(results: Results) -> str:
    lines = ["| figure | measured | target | from |", "|---|---|---|---|"]
    for row in ROWS:
        data = results.get(row.source)
        if data is None:
            lines.append(f"| {row.figure} | not measured yet | {row.target} | `{row.source}.md` |")
            continue
        try:
            measured = row.measured(data)
        except KeyError as missing:
            measured = f"not measured yet ({row.source} has no {missing})"
        lines.append(f"| {row.figure} | {measured} | {row.target} | `{row.source}.md` ({data['started'][:10]}) |")
    return "\n".join(lines)


def make_run(results: Results) -> str:
    """What `make run` prints for the Porto day, as the city suite's run of the same scenario and seed printed it."""
    from simulator.report import kpi_table

    city = results.get("latest-city", {}).get("city", {}).get("porto_centre_5k", {})
    kpis = city.get("kpis")
    if kpis is None:
        return "(not measured yet: `python -m benchmarks.run --suites city`)"
    shown = {k: v for k, v in kpis.items() if k not in ("scenario", "seed", "policy")}
    return (f"`make simulate` prints (seed {kpis['seed']}, policy {kpis['policy']}; "
            f"`benchmarks/results/latest-city.json`, {results['latest-city']['started'][:10]}, "
            f"{results['latest-city']['machine']}):\n\n```\n{kpi_table(shown)}\n```")


BLOCKS: dict[str, Callable[[Results], str]] = {"table": table, "make-run": make_run}


def render(text: str, results: Results) -> str:
    """`text` with every marked block replaced by its rendering from `results`."""
    for name, block in BLOCKS.items():
        pattern = re.compile(rf"(<!-- figures:{name} -->\n)(?:.*?\n)?(<!-- /figures:{name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"README.md: no <!-- figures:{name} --> block")
        text = pattern.sub(lambda m, b=block: m.group(1) + b(results) + "\n" + m.group(2), text)  # type: ignore[misc]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md is not up to date")
    args = parser.parse_args(argv)
    text = README.read_text()
    fresh = render(text, load_results())
    if args.check:
        if fresh != text:
            print("README.md figures are out of date: run python -m benchmarks.figures", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh)
    print("README.md figures rendered from benchmarks/results/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
