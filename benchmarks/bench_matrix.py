"""Porto-metro matrix benchmark: load and cache times, scipy vs CCH 2005×2005 matrices, re-weighting.

CCH matrix figures are medians of REPEATS runs, durations only (cch_durations_s, CCHEngine.durations) and
durations + distances (cch_matrix_s, CCHEngine.matrix), with the engine's default thread count and, when that
is above one, with a single thread too (the *_1thread_s figures). Scipy's figure is the median of REPEATS
runs, or a single run (scipy_matrix_runs = 1, with scipy_note) when the first takes over
SCIPY_SINGLE_RUN_ABOVE_S. Figures are wall-clock times: on a shared machine they vary with its load.
"""

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import numpy as np

from benchmarks import PORTO_METRO
from routing.matrix import UNREACHABLE, CCHEngine, MatrixResult, ScipyEngine
from routing.network import RoadNetwork

SEED = 20240601
DEPOTS = 5
CUSTOMERS = 2000
REPEATS = 3
SCIPY_SINGLE_RUN_ABOVE_S = 10.0
MATRIX_HOUR = 8
REWEIGHT_HOURS = (0, 6, 7, 9, 12, 17, 18)

T = TypeVar("T")
Figures = dict[str, float | int | str]


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
    figures: Figures = {}
    with tempfile.TemporaryDirectory(prefix="lastmile-bench-") as cache_dir:
        load = partial(RoadNetwork.from_osm, PORTO_METRO, cache_dir=cache_dir)
        figures["load_cold_s"], network = _timed(load)
        figures["load_cached_s"], cached = _timed(load)
    assert cached.from_cache and not network.from_cache
    figures["nodes"] = network.n_nodes
    figures["edges"] = network.n_edges

    points = np.random.default_rng(SEED).choice(network.n_nodes, DEPOTS + CUSTOMERS, replace=False)
    figures["matrix_size"] = len(points)

    scipy_engine = ScipyEngine(network, "car")
    figures["scipy_prepare_s"], _ = _timed(lambda: scipy_engine.prepare(MATRIX_HOUR))
    scipy_matrix = partial(scipy_engine.matrix, points, points, hour=MATRIX_HOUR)
    first_s, exact = _timed(scipy_matrix)
    scipy_times = [first_s]
    if first_s > SCIPY_SINGLE_RUN_ABOVE_S:
        figures["scipy_note"] = f"scipy timed once: its first run took more than {SCIPY_SINGLE_RUN_ABOVE_S:g} s"
    else:
        scipy_times += [_timed(scipy_matrix)[0] for _ in range(REPEATS - 1)]
    figures["scipy_matrix_s"] = statistics.median(scipy_times)
    figures["scipy_matrix_runs"] = len(scipy_times)

    figures["cch_preprocess_s"], cch_engine = _timed(lambda: CCHEngine(network, "car"))
    figures["cch_customize_first_s"], _ = _timed(lambda: cch_engine.customize(MATRIX_HOUR))
    figures["cch_threads"] = cch_engine.threads
    fast = _cch_matrix_figures(cch_engine, points, "", figures)
    if cch_engine.threads > 1:
        single = CCHEngine(network, "car", threads=1)
        single.customize(MATRIX_HOUR)
        _cch_matrix_figures(single, points, "_1thread", figures)
    figures["cch_over_scipy"] = float(figures["cch_matrix_s"]) / float(figures["scipy_matrix_s"])
    figures["cch_durations_over_scipy"] = float(figures["cch_durations_s"]) / float(figures["scipy_matrix_s"])

    cch_reweights = [_timed(partial(cch_engine.customize, hour))[0] for hour in REWEIGHT_HOURS]
    scipy_reweights = [_timed(partial(scipy_engine.prepare, hour))[0] for hour in REWEIGHT_HOURS]
    figures["cch_reweight_median_ms"] = 1000.0 * statistics.median(cch_reweights)
    figures["cch_reweight_max_ms"] = 1000.0 * max(cch_reweights)
    figures["scipy_reweight_median_ms"] = 1000.0 * statistics.median(scipy_reweights)

    shortest_engine = CCHEngine(network, "car", distances="shortest")
    shortest_engine.customize(MATRIX_HOUR)
    figures["cch_matrix_shortest_s"], shortest = _median_run(
        lambda: shortest_engine.matrix(points, points, hour=MATRIX_HOUR), REPEATS)
    figures.update(_cross_check(exact, fast, shortest))
    results["matrix"] = figures


def _cch_matrix_figures(engine: CCHEngine, points: np.ndarray, suffix: str, figures: Figures) -> MatrixResult:
    """Median of REPEATS runs of durations() (durations only), then of matrix() (durations and the distances of
    the fastest paths)."""
    figures[f"cch_durations{suffix}_s"], durations = _median_run(
        lambda: engine.durations(points, points, hour=MATRIX_HOUR), REPEATS
    )
    figures[f"cch_matrix{suffix}_s"], both = _median_run(
        lambda: engine.matrix(points, points, hour=MATRIX_HOUR), REPEATS
    )
    assert np.array_equal(durations, both.durations)
    return both


def _cross_check(exact: MatrixResult, fast: MatrixResult, shortest: MatrixResult) -> Figures:
    reachable = exact.durations != UNREACHABLE
    detour = exact.distances[reachable] - shortest.distances[reachable]
    return {
        "unreachable_pairs": int((~reachable).sum()),
        "unreachable_mismatch": int((reachable != (fast.durations != UNREACHABLE)).sum()),
        "cch_vs_scipy_duration_mismatches": int((exact.durations != fast.durations).sum()),
        "cch_vs_scipy_duration_max_abs_diff_s": int(np.abs(exact.durations - fast.durations).max()),
        "cch_vs_scipy_distance_max_abs_diff_m": int(np.abs(exact.distances - fast.distances)[reachable].max()),
        "mean_duration_s": float(exact.durations[reachable].mean()),
        "fastest_minus_shortest_distance_median_m": float(np.median(detour)),
        "fastest_minus_shortest_distance_min_m": float(detour.min()),
    }


if __name__ == "__main__":
    report: dict[str, Any] = {}
    run(report)
    print(json.dumps(report, indent=1))
