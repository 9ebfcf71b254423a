"""Porto-metro allocation benchmark: 20,000 orders over 50 facilities (40 dark stores, 5 pickup points, 5 lockers).

setup_s is the Allocator construction (snapping the facilities and one-to-all road times from each of them,
car, free flow). Throughput is allocate() on the whole batch, orders per second, the median of REPEATS runs,
each on the same Allocator with a fresh Inventory (setup and order construction excluded). Every run must give
the same allocations. Figures are wall-clock: on a shared machine they vary with its load.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from typing import Any

import numpy as np
from shapely.geometry import Point

from benchmarks import PORTO_METRO
from dispatch.allocation import Allocation, Allocator
from dispatch.inventory import Inventory
from dispatch.model import DarkStore, Facility, Item, Locker, Mode, Order, PickupPoint
from routing.network import RoadNetwork

SEED = 20240611
STORES = 40
PICKUP_POINTS = 5
LOCKERS = 5
SKUS = 50
ORDERS = 20_000
REPEATS = 3
NOISE_DEG = 0.0005
MODES: tuple[Mode, ...] = ("courier", "pickup_point", "locker", "store")
MODE_SHARES = (0.85, 0.06, 0.06, 0.03)
HOUR = 3600
TARGET_ORDERS_PER_S = 20_000

Figures = dict[str, float | int | str]


def _catalogue(rng: np.random.Generator) -> list[tuple[str, int, tuple[int, int, int]]]:
    """SKU, unit weight (g) and dimensions (mm): mostly groceries, a few bulky items needing a large box."""
    skus = []
    for k in range(SKUS):
        if k % 10 == 9:
            dims = (int(rng.integers(250, 380)), int(rng.integers(200, 300)), int(rng.integers(100, 180)))
            weight = int(rng.integers(1500, 6000))
        else:
            dims = (int(rng.integers(60, 200)), int(rng.integers(50, 120)), int(rng.integers(30, 90)))
            weight = int(rng.integers(50, 1200))
        skus.append((f"SKU-{k:02d}", weight, dims))
    return skus


def make_facilities(network: RoadNetwork, rng: np.random.Generator) -> list[Facility]:
    lonlat = network.lonlat
    nodes = rng.choice(network.n_nodes, STORES + PICKUP_POINTS + LOCKERS, replace=False)
    spots = [(float(lonlat[n, 0]), float(lonlat[n, 1])) for n in nodes]
    facilities: list[Facility] = []
    for s in range(STORES):
        listed = rng.random(SKUS) < 0.8
        stock = {f"SKU-{k:02d}": int(rng.integers(0, 200)) for k in range(SKUS) if listed[k]}
        zone = Point(spots[s]).buffer(float(rng.uniform(0.04, 0.09))) if s % 2 == 0 else None
        hours = ((8 * HOUR, 23 * HOUR), (7 * HOUR, 1 * HOUR), (10 * HOUR, 20 * HOUR), None)[s % 4]
        facilities.append(DarkStore(id=f"store-{s:02d}", location=spots[s], stock=stock, zone=zone, hours=hours))
    for p in range(PICKUP_POINTS):
        feeder = f"store-{p * 7:02d}" if p % 2 == 0 else None
        facilities.append(PickupPoint(id=f"pvz-{p}", location=spots[STORES + p], capacity=int(rng.integers(150, 400)),
                                      hours=(9 * HOUR, 21 * HOUR), store=feeder))
    for lk in range(LOCKERS):
        feeder = f"store-{lk * 5 + 1:02d}" if lk == 0 else None
        facilities.append(Locker(id=f"locker-{lk}", location=spots[STORES + PICKUP_POINTS + lk],
                                 compartments={"S": 120, "M": 60, "L": 15}, store=feeder))
    return facilities


def make_orders(network: RoadNetwork, rng: np.random.Generator) -> list[Order]:
    skus = _catalogue(rng)
    nodes = rng.integers(0, network.n_nodes, ORDERS)
    points = network.lonlat[nodes] + rng.normal(0.0, NOISE_DEG, (ORDERS, 2))
    modes = rng.choice(len(MODES), ORDERS, p=MODE_SHARES)
    placed = rng.integers(0, 24 * HOUR, ORDERS)
    orders = []
    for k in range(ORDERS):
        lines = rng.choice(SKUS, int(rng.integers(1, 5)), replace=False)
        items = tuple(Item(sku=skus[s][0], qty=int(rng.integers(1, 4)), weight_g=skus[s][1], dims_mm=skus[s][2])
                      for s in lines)
        orders.append(Order(id=f"o{k:05d}", location=(float(points[k, 0]), float(points[k, 1])),
                            mode=MODES[modes[k]], items=items, placed_at=int(placed[k])))
    return orders


def _allocate_fresh(allocator: Allocator, orders: list[Order]) -> tuple[float, tuple[Allocation, ...]]:
    allocator.inventory = Inventory(allocator.facilities)
    start = time.perf_counter()
    results = allocator.allocate(orders)
    return time.perf_counter() - start, results


def run(results: dict[str, Any]) -> None:
    if not PORTO_METRO.is_file():
        results["allocation"] = {"skipped": f"Porto metro map not found at {PORTO_METRO}"}
        return
    figures: Figures = {}
    start = time.perf_counter()
    network = RoadNetwork.from_osm(PORTO_METRO)
    figures["network_load_s"] = round(time.perf_counter() - start, 3)
    rng = np.random.default_rng(SEED)
    facilities = make_facilities(network, rng)
    orders = make_orders(network, rng)
    figures["n_nodes"] = network.n_nodes
    figures["n_facilities"] = len(facilities)
    figures["n_orders"] = len(orders)

    start = time.perf_counter()
    allocator = Allocator(network, facilities)
    figures["setup_s"] = round(time.perf_counter() - start, 3)

    times, first = [], None
    for _ in range(REPEATS):
        elapsed, allocations = _allocate_fresh(allocator, orders)
        times.append(elapsed)
        if first is None:
            first = allocations
        elif allocations != first:
            raise AssertionError("allocate() gave different results on a fresh inventory")
    assert first is not None
    figures["allocate_median_s"] = round(statistics.median(times), 4)
    figures["orders_per_s_median"] = round(len(orders) / statistics.median(times))
    figures["orders_per_s_best"] = round(len(orders) / min(times))
    figures["target_orders_per_s"] = TARGET_ORDERS_PER_S
    figures["allocated_share"] = round(sum(a.allocated for a in first) / len(first), 4)
    reasons = Counter((a.reason or "allocated").split(":")[0] for a in first)
    for reason, count in sorted(reasons.items()):
        figures[f"n_{reason}"] = count
    results["allocation"] = figures


if __name__ == "__main__":
    report: dict[str, Any] = {}
    run(report)
    print(json.dumps(report, indent=1))
