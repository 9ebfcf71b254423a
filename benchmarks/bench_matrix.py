"""Porto-metro matrix benchmark: load and cache times, scipy vs CCH 2005×2005 matrices, re-weighting."""

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from routing.matrix import UNREACHABLE, CCHEngine, MatrixResult, ScipyEngine
from routing.network import RoadNetwork

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LASTMILE_SHARED", ROOT.parent / "shared"))
PORTO_METRO = SHARED / "osm" / "porto_drive.osm.bz2"

SEED = 20240601
DEPOTS = 5
CUSTOMERS = 2000
REPEATS = 3
MATRIX_HOUR = 8
REWEIGHT_HOURS = (0, 6, 7, 9, 12, 17, 18)

T = TypeVar("T")


def _timed(action: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = action()
    return time.perf_counter() - start, value


def _median_run(action: Callable[[], T], repeats: int) -> tuple[float, T]:
    times, value = [], None
    for _ in range(repeats):
        elapsed, value = _timed(action)
        times.append(elapsed)
    assert value is not None
    return statistics.median(times), value


def run(results: dict[str, Any]) -> None:
    if not PORTO_METRO.is_file():
        results["matrix"] = {"skipped": f"Porto metro map not found at {PORTO_METRO}"}
        return
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="lastmile-bench-") as cache_dir:
        load = partial(RoadNetwork.from_osm, PORTO_METRO, cache_dir=cache_dir)
        figures["load_cold_s"], network = _timed(load)
        figures["load_cached_s"], cached = _timed(load)
    assert cached.from_cache and not network.from_cache
    figures["nodes"] = float(network.n_nodes)
    figures["edges"] = float(network.n_edges)

    points = np.random.default_rng(SEED).choice(network.n_nodes, DEPOTS + CUSTOMERS, replace=False)
    figures["matrix_size"] = float(len(points))

    scipy_engine = ScipyEngine(network, "car")
    figures["scipy_prepare_s"], _ = _timed(lambda: scipy_engine.prepare(MATRIX_HOUR))
    figures["scipy_matrix_s"], exact = _median_run(
        lambda: scipy_engine.matrix(points, points, hour=MATRIX_HOUR), REPEATS
    )

    figures["cch_preprocess_s"], cch_engine = _timed(lambda: CCHEngine(network, "car"))
    figures["cch_customize_first_s"], _ = _timed(lambda: cch_engine.customize(MATRIX_HOUR))
    figures["cch_matrix_s"], fast = _median_run(
        lambda: cch_engine.matrix(points, points, hour=MATRIX_HOUR), REPEATS
    )
    figures["cch_over_scipy"] = figures["cch_matrix_s"] / figures["scipy_matrix_s"]

    cch_reweights = [_timed(partial(cch_engine.customize, hour))[0] for hour in REWEIGHT_HOURS]
    scipy_reweights = [_timed(partial(scipy_engine.prepare, hour))[0] for hour in REWEIGHT_HOURS]
    figures["cch_reweight_median_ms"] = 1000.0 * statistics.median(cch_reweights)
    figures["cch_reweight_max_ms"] = 1000.0 * max(cch_reweights)
    figures["scipy_reweight_median_ms"] = 1000.0 * statistics.median(scipy_reweights)

    figures.update(_cross_check(exact, fast))
    results["matrix"] = figures


def _cross_check(exact: MatrixResult, fast: MatrixResult) -> dict[str, float]:
    reachable = exact.durations != UNREACHABLE
    detour = exact.distances[reachable] - fast.distances[reachable]
    return {
        "unreachable_pairs": float((~reachable).sum()),
        "unreachable_mismatch": float((reachable != (fast.durations != UNREACHABLE)).sum()),
        "cch_vs_scipy_duration_max_abs_diff_s": float(np.abs(exact.durations - fast.durations).max()),
        "mean_duration_s": float(exact.durations[reachable].mean()),
        "fastest_minus_shortest_distance_median_m": float(np.median(detour)),
        "fastest_minus_shortest_distance_min_m": float(detour.min()),
    }


if __name__ == "__main__":
    report: dict[str, Any] = {}
    run(report)
    print(json.dumps(report, indent=1))
