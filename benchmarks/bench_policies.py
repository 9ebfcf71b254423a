"""Policies suite: greedy, batch and reoptimize side by side on whole simulated days.

Every run is one `lastmile simulate` in a child process (two at a time), so each figure is what a user gets from
the command line with the same scenario, policy and seed:

- **scored**: the Ostankino day (`scenarios/moscow-ostankino-tiny.toml`) over seeds 1-5 (mean of the seeds'
  KPIs) and the Porto centre day (`scenarios/porto-centre-day.toml`, its own seed) with each policy at its
  defaults; reoptimize must be at least as good as the better of batch and greedy on both click-to-door and km
  per order, at the same or better on-time rate, and run the Porto day in at most 10 minutes.
- **tuning**: reoptimize's `minute_cost_m` and `co2_cost_m_per_kg` on the Ostankino day over seeds 11-15, which
  are not scored, each moved with the other at its default. The rules that set the defaults: the largest minute
  weight whose km per order stays at least 5 % below the better baseline's on those seeds (more weight buys
  click-to-door with metres), and the smallest CO2 price whose CO2 per order is at least 5 % below the better
  baseline's (a higher price buys CO2 with click-to-door: the car rides less).
- **ablation** (Ostankino, seeds 1-5): what each part of the default adds, from the optimizer as it was (objective
  `lateness` at 1,000 m a minute, the `hybrid` backend, every decision from nothing) through the click-to-door
  objective, the compiled search alone, the warm start and keeping quotes to the CO2 price (the default).
- **quotes**: for batch and reoptimize, the express quote model fitted with `lastmile calibrate-quotes` on
  training seeds (Ostankino 11-30, Porto 11-13; two rounds), pasted into the scenario and scored on the scored
  seeds: share of express quotes met, mean slack (quoted minus actual), and the calibration table by decile.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import scenario_text
from benchmarks.bench_city import simulate_day

OSTANKINO = "scenarios/moscow-ostankino-tiny.toml"
PORTO = "scenarios/porto-centre-day.toml"
SCORED_SEEDS = (1, 2, 3, 4, 5)
TUNING_SEEDS = (11, 12, 13, 14, 15)
WEIGHTS = (50, 100, 200, 400)
KM_MARGIN = 0.05
PRICES = (0, 1000, 2000, 5000, 10000)
CO2_MARGIN = 0.05
TUNED = {"minute_cost_m": WEIGHTS, "co2_cost_m_per_kg": PRICES}
"""The knobs tuned on the tuning seeds, each moved over its values with the others at their defaults."""
POLICIES = ("greedy", "batch", "reoptimize")
KPIS = ("click_to_door_mean_min", "km_per_order", "on_time_rate", "delivered", "express_quote_met_rate",
        "express_quote_mean_min", "co2_g_per_order", "cost_per_order")
NO_PRICE = "policy.co2_cost_m_per_kg=0"
ABLATION: dict[str, list[str]] = {
    "lateness objective, hybrid, cold start (as it was)": ["policy.objective=lateness", "policy.minute_cost_m=1000",
                                                           "policy.backend=hybrid", "policy.warm_start=false",
                                                           NO_PRICE],
    "+ click_to_door objective": ["policy.backend=hybrid", "policy.warm_start=false", "policy.quote_minute_cost_m=0",
                                  NO_PRICE],
    "+ compiled search alone (sisr)": ["policy.warm_start=false", "policy.quote_minute_cost_m=0", NO_PRICE],
    "+ warm start": ["policy.quote_minute_cost_m=0", NO_PRICE],
    "+ keeping quotes": [NO_PRICE],
    "+ a CO2 price (the default)": [],
}
QUOTES: dict[str, tuple[str, tuple[int, ...], tuple[int | None, ...]]] = {
    "ostankino": (OSTANKINO, tuple(range(11, 31)), SCORED_SEEDS),
    "porto": (PORTO, (11, 12, 13), (None,)),
}
"""Express quotes: the scenario, the seeds the model is fitted on, the seeds it is scored on (None: its own)."""
QUOTE_POLICIES = ("batch", "reoptimize")


def simulate(scenario: str | Path, policy: str, seed: int | None, sets: list[str],
             quotes: bool = False) -> dict[str, Any]:
    """One `lastmile simulate` in a child process (`bench_city.simulate_day`): its KPIs and wall seconds
    (`quotes`: and each delivered express order's quoted lead and click-to-door, seconds, from its events)."""
    extra = ["--policy", policy, *(arg for s in sets for arg in ("--set", s)),
             *([] if seed is None else ["--seed", str(seed)])]
    run = simulate_day(str(scenario), extra, read=_quoted if quotes else None)
    return {"wall_s": run["wall_s"], **{k: run["kpis"].get(k) for k in KPIS},
            **({"pairs": run["read"]} if quotes else {})}


def _quoted(out: Path) -> list[tuple[int, int]]:
    placed: dict[str, tuple[int, int]] = {}
    pairs = []
    for line in (out / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["event"] == "placed" and e.get("quoted_eta") is not None:
            placed[e["order"]] = (e["t"], e["quoted_eta"])
        elif e["event"] == "delivered" and e["order"] in placed:
            t, eta = placed[e["order"]]
            pairs.append((eta - t, e["t"] - t))
    return pairs


def calibrated(scenario: str, policy: str, seeds: tuple[int, ...], folder: Path) -> tuple[Path, dict[str, Any]]:
    """`lastmile calibrate-quotes` on the training seeds with `policy`, starting from the scenario's margins (a
    model the scenario ships is left out); the scenario with the fitted model."""
    lastmile = Path(sys.executable).parent / "lastmile"
    text = scenario_text(scenario, policy=policy, express_model=False)
    base = folder / f"{Path(scenario).stem}-{policy}.toml"
    base.write_text(text)
    done = subprocess.run([str(lastmile), "calibrate-quotes", str(base), "--seeds", ",".join(map(str, seeds)),
                           "--json"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"calibrate-quotes {scenario} {policy}: {done.stderr[-2000:]}")
    fit = json.loads(done.stdout)
    table = "\n[promise.express_model]\n" + "".join(f"{k} = {v}\n" for k, v in fit["express_model"].items())
    fitted = folder / f"{Path(scenario).stem}-{policy}-fitted.toml"
    fitted.write_text(text + table)
    return fitted, fit


def deciles(pairs: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Quoted vs delivered by decile of the quoted lead (minutes), as the report's calibration table."""
    rows = sorted(pairs)
    out = []
    for k in range(10):
        part = rows[k * len(rows) // 10:(k + 1) * len(rows) // 10]
        if part:
            out.append({"decile": k + 1, "orders": len(part),
                        "quoted_min": round(statistics.fmean(q for q, _ in part) / 60, 2),
                        "delivered_min": round(statistics.fmean(a for _, a in part) / 60, 2),
                        "met_rate": round(sum(a <= q for q, a in part) / len(part), 4)})
    return out


def quotes(jobs: int) -> dict[str, Any]:
    """Fit each quote model on its training seeds, then score it on the scored seeds (see `QUOTES`)."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for day, (scenario, train, scored) in QUOTES.items():
            for policy in QUOTE_POLICIES:
                fitted, fit = calibrated(scenario, policy, train, Path(folder))
                with ThreadPoolExecutor(max_workers=jobs) as pool:
                    runs = list(pool.map(lambda seed, f=fitted, p=policy: simulate(f, p, seed, [], quotes=True),
                                         scored))
                pairs = [pair for r in runs for pair in r["pairs"]]
                out[f"{day}, {policy}"] = {
                    "trained_on": list(train), "scored_on": [s for s in scored if s is not None] or "scenario's",
                    "model": fit["express_model"], "in_sample_met_rate": fit["met_rate"],
                    "in_sample_slack_min": fit["slack_mean_min"],
                    "met_rate": round(sum(a <= q for q, a in pairs) / len(pairs), 4),
                    "slack_mean_min": round(statistics.fmean(q - a for q, a in pairs) / 60, 2),
                    "quoted_lead_min": round(statistics.fmean(q for q, _ in pairs) / 60, 2),
                    "click_to_door_mean_min": round(statistics.fmean(a for _, a in pairs) / 60, 2),
                    "orders": len(pairs), "deciles": deciles(pairs)}
    return out


def _mean(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in (*(k for k in KPIS if k != "delivered"), "wall_s"):
        values = [r[k] for r in runs if r[k] is not None]
        out[k] = round(statistics.fmean(values), 4) if values else None
    out["delivered"] = sum(r["delivered"] for r in runs)
    return out


def verdict(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether reoptimize is at least as good as the better of batch and greedy on each criterion."""
    r, others = rows["reoptimize"], [rows["batch"], rows["greedy"]]
    return {"click_to_door": r["click_to_door_mean_min"] <= min(o["click_to_door_mean_min"] for o in others),
            "km_per_order": r["km_per_order"] <= min(o["km_per_order"] for o in others),
            "on_time": r["on_time_rate"] >= max(o["on_time_rate"] for o in others),
            "co2_per_order": r["co2_g_per_order"] <= min(o["co2_g_per_order"] for o in others)}


def run(results: dict[str, Any], jobs: int = 2) -> None:
    tasks: dict[tuple[str, str, str, int | None], tuple[str, str, int | None, list[str]]] = {}
    for policy in POLICIES:
        for seed in SCORED_SEEDS:
            tasks[("scored", policy, "", seed)] = (OSTANKINO, policy, seed, [])
        tasks[("porto", policy, "", None)] = (PORTO, policy, None, [])
        for seed in TUNING_SEEDS:
            if policy != "reoptimize":
                tasks[("tuning", policy, "", seed)] = (OSTANKINO, policy, seed, [])
    variants = [f"{knob}={value}" for knob, values in TUNED.items() for value in values]
    for variant in variants:
        for seed in TUNING_SEEDS:
            tasks[("tuning", "reoptimize", variant, seed)] = (OSTANKINO, "reoptimize", seed, [f"policy.{variant}"])
    for name, sets in ABLATION.items():
        if sets:
            for seed in SCORED_SEEDS:
                tasks[("ablation", "reoptimize", name, seed)] = (OSTANKINO, "reoptimize", seed, sets)
    order = sorted(tasks, key=lambda k: k[0] != "porto")  # the long Porto days first
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        done = dict(zip(order, pool.map(lambda k: simulate(*tasks[k]), order), strict=True))

    def runs(kind: str, policy: str, variant: str, seeds: tuple[int, ...]) -> list[dict[str, Any]]:
        return [done[(kind, policy, variant, s)] for s in seeds]

    scored = {p: _mean(runs("scored", p, "", SCORED_SEEDS)) for p in POLICIES}
    porto = {p: done[("porto", p, "", None)] for p in POLICIES}
    tuning = {p: _mean(runs("tuning", p, "", TUNING_SEEDS)) for p in ("greedy", "batch")}
    for variant in variants:
        tuning[f"reoptimize, {variant}"] = _mean(runs("tuning", "reoptimize", variant, TUNING_SEEDS))

    def below_baselines(knob: str, kpi: str, margin: float) -> list[int]:
        """The knob's values whose `kpi` is at least `margin` below the better of batch and greedy's."""
        best = min(tuning["batch"][kpi], tuning["greedy"][kpi])
        return [v for v in TUNED[knob] if tuning[f"reoptimize, {knob}={v}"][kpi] <= (1 - margin) * best]

    fits = below_baselines("minute_cost_m", "km_per_order", KM_MARGIN)
    priced = below_baselines("co2_cost_m_per_kg", "co2_g_per_order", CO2_MARGIN)
    ablation = {name: (scored["reoptimize"] if not sets else _mean(runs("ablation", "reoptimize", name, SCORED_SEEDS)))
                for name, sets in ABLATION.items()}
    results["policies"] = {
        "ostankino_seeds": list(SCORED_SEEDS),
        "ostankino_beats_both": verdict(scored),
        "porto_beats_both": verdict(porto),
        "porto_reoptimize_wall_s": porto["reoptimize"]["wall_s"],
        "tuned_minute_cost_m": max(fits) if fits else None,
        "tuned_co2_cost_m_per_kg": min(priced) if priced else None,
        "tuning_seeds": list(TUNING_SEEDS),
        "ostankino": scored,
        "porto": porto,
        "per_seed": {p: runs("scored", p, "", SCORED_SEEDS) for p in POLICIES},
        "tuning": tuning,
        "ablation": ablation,
        "quotes": quotes(jobs),
    }


def markdown(r: dict[str, Any]) -> list[str]:
    columns = ("click_to_door_mean_min", "km_per_order", "on_time_rate", "express_quote_met_rate",
               "express_quote_mean_min", "co2_g_per_order", "cost_per_order", "wall_s")
    head = ("| policy | click-to-door min | km / order | on time | express quote met | quoted lead min | g CO2 / order "
            "| cost / order | wall s |")
    lines = ["## policies: greedy, batch, reoptimize on whole days", ""]
    for key, title in (("ostankino", f"Ostankino day, mean of seeds {r['ostankino_seeds']}"),
                       ("porto", "Porto centre day (5,000 orders), the scenario's seed"),
                       ("tuning", f"tuning reoptimize's minute_cost_m and co2_cost_m_per_kg, Ostankino seeds "
                                  f"{r['tuning_seeds']} (not scored)"),
                       ("ablation", f"ablation of reoptimize, Ostankino seeds {r['ostankino_seeds']}")):
        lines += [f"{title}:", "", head, "|---" * len(columns) + "|---|"]
        lines += [f"| {name} | " + " | ".join(str(row.get(c)) for c in columns) + " |" for name, row in r[key].items()]
        lines.append("")
    lines += ["express quotes: a model fitted on some seeds (`lastmile calibrate-quotes`), scored on others:", "",
              "| day, policy | fitted on | met | slack min | quoted lead min | click-to-door min | orders |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {q['trained_on'][0]}–{q['trained_on'][-1]} | {q['met_rate']} | {q['slack_mean_min']} | "
              f"{q['quoted_lead_min']} | {q['click_to_door_mean_min']} | {q['orders']} |"
              for name, q in r["quotes"].items()]
    lines += ["", "calibration by decile of the quoted lead (quoted / delivered minutes, met):", ""]
    lines += [f"- {name}: " + "; ".join(f"{d['quoted_min']:.1f} / {d['delivered_min']:.1f}, {d['met_rate']:.0%}"
                                          for d in q["deciles"]) for name, q in r["quotes"].items()]
    lines.append("")
    lines += ["| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in r.items()
              if k in ("ostankino_beats_both", "porto_beats_both", "porto_reoptimize_wall_s", "tuned_minute_cost_m",
                       "tuned_co2_cost_m_per_kg")]
    lines.append("")
    return lines


if __name__ == "__main__":
    report: dict[str, Any] = {}
    run(report)
    print("\n".join(markdown(report["policies"])))
