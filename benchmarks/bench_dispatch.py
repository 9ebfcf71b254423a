"""Dispatch latency benchmark: one dark store, 60 open orders, 20 couriers, re-optimised REPEATS times.

Synthetic city around Porto centre: customers within ~2 km of the store, haversine × 1.3 detour at 15 km/h
(bike, 0 g CO2/km) and 25 km/h (scooter, 70 g/km, a quarter of the fleet). Each repeat draws a new scenario
(orders placed over the last 20 minutes, picking 2–8 minutes, promised 30–45 minutes after placing; 12 couriers
idle at the store, 5 on their way with 1–3 parcels, 3 riding back) and re-optimises it with ReoptimizePolicy
under its default time budget, seed = the repeat number and the lateness objective (`OBJECTIVE`).
late_orders counts open orders planned past their promise, late_carried those already on couriers (fixed),
late_unavoidable open orders that would be late even alone on a scooter leaving now (or once picked). Latency is
the wall-clock time of `decide` (problem building, solving, evaluation and decisions), so it varies with the
machine's load. The target is p95 <= 0.5 s.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import numpy as np

from dispatch.policy import ReoptimizeOptions, ReoptimizePolicy
from dispatch.state import Courier, Decisions, DispatchOrder, DispatchState, TravelMatrices
from routing.matrix import HaversineEngine

SEED = 20240620
REPEATS = 30
ORDERS = 60
COURIERS = 20
STORE_LONLAT = (-8.6110, 41.1486)
RADIUS_DEG = 0.02
NOW = 12 * 3600
STORE = "porto-centre"

def make_travel(rng: np.random.Generator, n_customers: int) -> TravelMatrices:
    """Location 0 is the store, 1..n customers (and courier positions on the way)."""
    offsets = rng.uniform(-RADIUS_DEG, RADIUS_DEG, size=(n_customers, 2)) * np.array([1.3, 1.0])
    points = np.vstack([np.array(STORE_LONLAT), np.array(STORE_LONLAT) + offsets])
    idx = np.arange(len(points))
    bike = HaversineEngine(points, speed_kmh=15.0).matrix(idx, idx)
    scooter = HaversineEngine(points, speed_kmh=25.0).matrix(idx, idx)
    return TravelMatrices(durations={"bike": bike.durations, "scooter": scooter.durations},
                          distances={"bike": bike.distances, "scooter": scooter.distances})


def make_state(rng: np.random.Generator) -> DispatchState:
    """One store at NOW: ORDERS open orders, COURIERS couriers (some busy with orders of their own)."""
    busy = [int(k) for k in rng.integers(1, 4, size=5)]
    n_customers = ORDERS + sum(busy)
    travel = make_travel(rng, n_customers)
    orders: list[DispatchOrder] = []
    for i in range(n_customers):
        placed = NOW - int(rng.integers(0, 20 * 60))
        orders.append(DispatchOrder(id=f"o{i:03d}", store=STORE, location=i + 1, placed_at=placed,
                                    ready_at=placed + int(rng.integers(120, 480)),
                                    promise_by=placed + int(rng.integers(30 * 60, 45 * 60)),
                                    load=int(rng.choice([1, 1, 1, 2])), service_s=60))
    couriers: list[Courier] = []
    carried = iter(orders[ORDERS:])
    for k in range(COURIERS):
        profile = "scooter" if k % 4 == 3 else "bike"
        common: dict[str, Any] = {"id": f"c{k:02d}", "capacity": 4, "profile": profile, "home_store": STORE,
                                  "shift_start": NOW - 3600, "shift_end": NOW + 4 * 3600}
        if k < 12:
            couriers.append(Courier(position=0, status="idle", available_at=NOW - int(rng.integers(0, 600)),
                                    **common))
        elif k < 17:
            on_board = tuple(next(carried).id for _ in range(busy[k - 12]))
            couriers.append(Courier(position=int(rng.integers(1, n_customers + 1)), status="en_route",
                                    available_at=NOW - int(rng.integers(0, 300)), carrying=on_board, **common))
        else:
            couriers.append(Courier(position=int(rng.integers(1, n_customers + 1)), status="returning",
                                    available_at=NOW, **common))
    return DispatchState(now=NOW, store_id=STORE, store_location=0, orders=tuple(orders),
                         couriers=tuple(couriers), travel=travel, tick_s=60)


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _unavoidably_late(state: DispatchState) -> int:
    """Open orders late even if a scooter left the store with them alone, now or once picked."""
    dur = state.travel.durations["scooter"]
    return sum(1 for o in state.open_orders
               if max(state.now, o.ready_at) + int(dur[state.store_location, o.location]) > o.promise_by)


OBJECTIVE: dict[str, Any] = {"objective": "lateness", "minute_cost_m": 1000}
"""The objective these figures have always measured: metres, and a minute late weighing like 1 km."""
ABLATION = ("ortools", "sisr")
"""Backends run on the same states at the same budget beside `auto` (which picks the hybrid here)."""


def _solve_all(states: list[DispatchState], backend: str, time_limit_s: float | None) -> tuple[list[float],
                                                                                              list[Decisions]]:
    latencies: list[float] = []
    runs: list[Decisions] = []
    for repeat, state in enumerate(states):
        policy = ReoptimizePolicy(options=ReoptimizeOptions(time_limit_s=time_limit_s, seed=repeat, backend=backend,
                                                            **OBJECTIVE))
        start = time.perf_counter()
        decisions = policy.decide(state)
        latencies.append(time.perf_counter() - start)
        planned = {oid for t in decisions.all_trips for oid in t.order_ids}
        if len(planned) + len(decisions.unassigned) != len(state.orders):
            raise AssertionError("an order is neither planned nor unassigned")
        runs.append(decisions)
    return latencies, runs


def _late(runs: list[Decisions]) -> float:
    return statistics.fmean(sum(1 for t in d.trips + d.tentative for s in t.lateness_s if s) for d in runs)


def run(results: dict[str, Any]) -> None:
    rng = np.random.default_rng(SEED)
    options = ReoptimizeOptions()
    states = [make_state(rng) for _ in range(REPEATS)]
    latencies, runs = _solve_all(states, "auto", options.time_limit_s)  # auto: the hybrid on these states
    figures: dict[str, Any] = {
        "open_orders": ORDERS,
        "couriers": COURIERS,
        "repeats": REPEATS,
        "time_limit_s": float(options.time_limit_s or 0.0),
        "backend": runs[0].backend or "",
        "latency_p50_s": round(_percentile(latencies, 50), 4),
        "latency_p95_s": round(_percentile(latencies, 95), 4),
        "latency_max_s": round(max(latencies), 4),
        "trips_started_mean": statistics.fmean(len(d.trips) for d in runs),
        "trips_tentative_mean": statistics.fmean(len(d.tentative) for d in runs),
        "orders_per_new_trip_mean": statistics.fmean(
            sum(len(t.order_ids) for t in d.trips + d.tentative) / max(1, len(d.trips + d.tentative)) for d in runs),
        "unassigned_mean": statistics.fmean(len(d.unassigned) for d in runs),
        "late_orders_mean": _late(runs),
        "late_carried_mean": statistics.fmean(sum(1 for t in d.carried for s in t.lateness_s if s) for d in runs),
        "late_unavoidable_mean": statistics.fmean(_unavoidably_late(s) for s in states),
        "km_mean": round(statistics.fmean(d.km for d in runs), 3),
        "co2_g_mean": round(statistics.fmean(d.co2_g for d in runs), 1),
    }
    ablation = {figures["backend"]: {"late_orders_mean": figures["late_orders_mean"], "km_mean": figures["km_mean"],
                                     "latency_p50_s": figures["latency_p50_s"]}}
    for backend in ABLATION:
        lat, other = _solve_all(states, backend, options.time_limit_s)
        ablation[backend] = {"late_orders_mean": _late(other),
                             "km_mean": round(statistics.fmean(d.km for d in other), 3),
                             "latency_p50_s": round(_percentile(lat, 50), 4)}
    figures["ablation"] = ablation
    results["dispatch"] = figures


if __name__ == "__main__":
    report: dict[str, Any] = {}
    run(report)
    print(json.dumps(report, indent=1))
