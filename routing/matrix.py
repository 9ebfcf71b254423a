"""Travel-time/distance matrices between network nodes: exact scipy Dijkstra, routingkit CCH, haversine."""

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import numpy as np
import numpy.typing as npt
import routingkit_cch as rk
import scipy.sparse
from scipy.sparse.csgraph import dijkstra

from routing.errors import InvalidProblemError, RoutingError
from routing.fastest import UNREACHABLE, ExactCCH, arc_time_ms, cch_order, uniform_speed
from routing.network import (
    FLAT_DAY,
    Profile,
    RoadNetwork,
    TimeOfDayFactors,
    check_hour,
    get_profile,
    min_parallel,
)
from routing.snap import as_lonlat, haversine_m

CCH_INFINITY = 2**31 - 1
EngineKind = Literal["scipy", "cch"]
CCHDistances = Literal["shortest", "fastest_path"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class MatrixResult:
    """Durations (s) and distances (m) from each source (row) to each target (column); UNREACHABLE if none."""

    durations: IntArray
    distances: IntArray

    def __post_init__(self) -> None:
        for name in ("durations", "distances"):
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.dtype != np.int64 or array.ndim != 2:
                raise InvalidProblemError(f"{name}: expected a 2-D int64 array")
            if array.size and (array.min() < 0 or array.max() > UNREACHABLE):
                raise InvalidProblemError(f"{name}: values must lie in 0..UNREACHABLE")
        if self.durations.shape != self.distances.shape:
            raise InvalidProblemError(
                f"distances: shape {self.distances.shape} differs from durations shape {self.durations.shape}"
            )
        if np.any((self.durations == UNREACHABLE) != (self.distances == UNREACHABLE)):
            raise InvalidProblemError("distances: UNREACHABLE cells must match those of durations")


class TravelTimes(Protocol):
    """Anything that answers many-to-many travel-time queries between indexed locations."""

    def matrix(
        self, sources: np.ndarray, targets: np.ndarray, *, hour: int | None = None
    ) -> MatrixResult: ...


def _check_indices(name: str, values: npt.ArrayLike, count: int) -> IntArray:
    array = np.asarray(values)
    if array.size == 0:
        return np.empty(0, dtype=np.int64)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise InvalidProblemError(
            f"{name}: expected a 1-D integer array, got dtype {array.dtype} shape {array.shape}"
        )
    bad = np.flatnonzero((array < 0) | (array >= count))
    if bad.size:
        raise InvalidProblemError(f"{name}[{bad[0]}]: index {array[bad[0]]} outside 0..{count - 1}")
    return array.astype(np.int64)


def _ms_to_s(ms: IntArray) -> IntArray:
    return (ms + 500) // 1000


class ScipyEngine:
    """Exact many-to-many Dijkstra with scipy; distances are those of the fastest path (ties: shortest).

    Arc weights pack (time in ms, length) lexicographically into exact float64 integers, so one Dijkstra
    run yields both the fastest time and the length of that path.
    """

    LENGTH_BITS = 26
    CHUNK_CELLS = 1 << 23

    def __init__(self, network: RoadNetwork, profile: str | Profile = "car") -> None:
        self.network = network
        self.profile = get_profile(profile)
        self._arcs = network.arcs(self.profile)
        self._length_unit_m, self._arc_length_units = _pack_lengths(network.length_m[self._arcs.edge])
        self._graphs: dict[int | None, scipy.sparse.csr_matrix] = {}

    def prepare(self, hour: int | None = None) -> None:
        self._graph(hour)

    def _graph(self, hour: int | None) -> scipy.sparse.csr_matrix:
        check_hour(hour)
        if hour not in self._graphs:
            ms = arc_time_ms(self.network, self.profile, hour, self._arcs.edge)
            packed = ms.astype(np.float64) * float(1 << self.LENGTH_BITS) + self._arc_length_units
            tail, head, weight = min_parallel(self._arcs.tail, self._arcs.head, packed)
            n = self.network.n_nodes
            self._graphs[hour] = scipy.sparse.csr_matrix((weight, (tail, head)), shape=(n, n))
        return self._graphs[hour]

    def matrix(
        self, sources: npt.ArrayLike, targets: npt.ArrayLike, *, hour: int | None = None
    ) -> MatrixResult:
        n = self.network.n_nodes
        src = _check_indices("sources", sources, n)
        tgt = _check_indices("targets", targets, n)
        graph = self._graph(hour)
        uniq_src, src_pos = np.unique(src, return_inverse=True)
        uniq_tgt, tgt_pos = np.unique(tgt, return_inverse=True)
        packed = np.empty((len(uniq_src), len(uniq_tgt)), dtype=np.float64)
        chunk = max(1, self.CHUNK_CELLS // n)
        for start in range(0, len(uniq_src), chunk):
            block = dijkstra(graph, directed=True, indices=uniq_src[start : start + chunk])
            packed[start : start + chunk] = block[:, uniq_tgt]
        durations, distances = self._unpack(packed)
        return MatrixResult(
            durations=_expand(durations, src_pos, tgt_pos), distances=_expand(distances, src_pos, tgt_pos)
        )

    def _unpack(self, packed: FloatArray) -> tuple[IntArray, IntArray]:
        reachable = np.isfinite(packed)
        if reachable.any() and packed[reachable].max() >= 2.0**53:
            raise RoutingError("a path is too long (> 37 h) for exact time/length packing")
        exact = np.where(reachable, packed, 0.0).astype(np.int64)
        ms = exact >> self.LENGTH_BITS
        units = exact & ((1 << self.LENGTH_BITS) - 1)
        durations = np.where(reachable, _ms_to_s(ms), UNREACHABLE)
        distances = np.where(reachable, np.rint(units * self._length_unit_m).astype(np.int64), UNREACHABLE)
        return durations, distances


def _pack_lengths(arc_length_m: FloatArray) -> tuple[float, FloatArray]:
    budget = (1 << ScipyEngine.LENGTH_BITS) - len(arc_length_m)
    if budget <= 0:
        raise RoutingError(f"network too large for length packing: {len(arc_length_m)} arcs")
    unit = max(0.01, float(arc_length_m.sum()) / budget)
    units = np.rint(arc_length_m / unit)
    return unit, units


@dataclass(frozen=True, slots=True, kw_only=True)
class _CCHIndex:
    cch: rk.CCH
    tail: npt.NDArray[np.int32]
    head: npt.NDArray[np.int32]
    edge: IntArray


def _build_cch(network: RoadNetwork, profile: Profile) -> _CCHIndex:
    arcs = network.arcs(profile)
    tail, head = arcs.tail.tolist(), arcs.head.tolist()
    order = cch_order(network, profile).tolist()
    return _CCHIndex(cch=rk.CCH(order, tail, head, False), tail=arcs.tail, head=arcs.head, edge=arcs.edge)


class CCHEngine:
    """Customizable contraction hierarchies (routingkit_cch): one preprocessing per network topology,
    a cheap customisation per (profile, hour), many-to-many as repeated one-to-many sweeps.

    Durations use integer milliseconds per arc and round half up to seconds, exactly like ScipyEngine, so
    both engines return the same durations. Distances are, by default (distances="fastest_path"), the length of
    the fastest path, the one a courier rides: where the profile's speed is the same on every arc at that hour
    (bike, foot on most maps) that is the shortest path and a second CCH sweep gives it; otherwise (cars) the
    project's exact CCH on (time, length) weights does (`routing.fastest.ExactCCH`: the numbers of a Dijkstra on
    those weights). distances="shortest" reports the shortest road distance, which is shorter than what a car
    rides (9 % on Porto centre). durations() (durations only) takes one sweep a row.

    routingkit releases the GIL during each sweep, so rows are shared among `threads` threads (default:
    the usable CPUs, at most MAX_THREADS; this only pays off when cores are idle). Each thread owns its
    query objects; the customised metrics are shared read-only.
    """

    MAX_THREADS = 4
    CHUNK_ROWS = 32

    def __init__(
        self,
        network: RoadNetwork,
        profile: str | Profile = "car",
        *,
        distances: CCHDistances = "fastest_path",
        threads: int | None = None,
    ) -> None:
        if distances not in ("shortest", "fastest_path"):
            raise InvalidProblemError(f"distances must be 'shortest' or 'fastest_path', got {distances!r}")
        if threads is None:
            threads = min(self.MAX_THREADS, _usable_cpus())
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise InvalidProblemError(f"threads must be a positive integer, got {threads!r}")
        self.network = network
        self.profile = get_profile(profile)
        self.distances: CCHDistances = distances
        self.threads = threads
        self._index = network.cached(("cch", self.profile.oneway), lambda: _build_cch(network, self.profile))
        self._arc_length_cm = np.rint(network.length_m[self._index.edge] * 100.0).astype(np.int64)
        self._time_metrics: dict[int | None, rk.CCHMetric] = {}
        self._length_metric: rk.CCHMetric | None = None
        self._fastest: ExactCCH | None = None
        self._uniform_at: dict[int | None, bool] = {}

    def customize(self, hour: int | None = None) -> None:
        self._time_metric(hour)

    def _time_metric(self, hour: int | None) -> rk.CCHMetric:
        check_hour(hour)
        if hour not in self._time_metrics:
            ms = arc_time_ms(self.network, self.profile, hour, self._index.edge)
            self._time_metrics[hour] = self._metric(ms, "arc travel time (ms)")
        return self._time_metrics[hour]

    def _distance_metric(self) -> rk.CCHMetric:
        if self._length_metric is None:
            self._length_metric = self._metric(self._arc_length_cm, "arc length (cm)")
        return self._length_metric

    def _metric(self, weights: IntArray, what: str) -> rk.CCHMetric:
        too_big = np.flatnonzero(weights >= CCH_INFINITY)
        if too_big.size:
            raise RoutingError(f"arc {too_big[0]}: {what} {weights[too_big[0]]} exceeds the CCH weight range")
        return rk.CCHMetric(self._index.cch, weights.tolist())

    def durations(self, sources: npt.ArrayLike, targets: npt.ArrayLike, *, hour: int | None = None) -> IntArray:
        """Durations (s) only, UNREACHABLE if no path: what matrix() returns as .durations, at half the cost."""
        src, src_pos, tgt, tgt_pos = self._request(sources, targets)
        (ms,) = _sweep([self._time_metric(hour)], src, tgt, self.threads, self.CHUNK_ROWS)
        return _expand(round_weights(ms, 1000), src_pos, tgt_pos)

    def matrix(
        self, sources: npt.ArrayLike, targets: npt.ArrayLike, *, hour: int | None = None
    ) -> MatrixResult:
        src, src_pos, tgt, tgt_pos = self._request(sources, targets)
        metric = self._time_metric(hour)
        if self.distances == "fastest_path" and not self._uniform(hour):
            if self._fastest is None:
                self._fastest = ExactCCH(self.network, self.profile)
            durations, metres = self._fastest.matrix(src, tgt, hour=hour, threads=self.threads)
            return MatrixResult(durations=_expand(durations, src_pos, tgt_pos),
                                distances=_expand(metres, src_pos, tgt_pos))
        ms, cm = _sweep([metric, self._distance_metric()], src, tgt, self.threads, self.CHUNK_ROWS)
        return MatrixResult(
            durations=_expand(round_weights(ms, 1000), src_pos, tgt_pos),
            distances=_expand(round_weights(cm, 100), src_pos, tgt_pos),
        )

    def _uniform(self, hour: int | None) -> bool:
        """Whether the profile's speed is one constant on every arc at `hour` (fastest = shortest path)."""
        if hour not in self._uniform_at:
            self._uniform_at[hour] = uniform_speed(self.network, self.profile, [hour])
        return self._uniform_at[hour]

    def _request(
        self, sources: npt.ArrayLike, targets: npt.ArrayLike
    ) -> tuple[IntArray, IntArray | None, IntArray, IntArray | None]:
        n = self.network.n_nodes
        src, src_pos = _distinct(_check_indices("sources", sources, n))
        tgt, tgt_pos = _distinct(_check_indices("targets", targets, n))
        return src, src_pos, tgt, tgt_pos

NO_PATH = -1


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _distinct(values: IntArray) -> tuple[IntArray, IntArray | None]:
    """The distinct values to query and, only if there were duplicates, where each request finds its value."""
    unique, positions = np.unique(values, return_inverse=True)
    return (values, None) if len(unique) == len(values) else (unique, positions)


def _expand(values: IntArray, rows: IntArray | None, cols: IntArray | None) -> IntArray:
    if rows is not None:
        values = values[rows]
    if cols is not None:
        values = values[:, cols]
    return np.ascontiguousarray(values)


def round_weights(raw: IntArray, unit: int) -> IntArray:
    """Path weights (ms or cm) rounded half up to whole units (s or m), in place; NO_PATH becomes UNREACHABLE."""
    no_path = raw == NO_PATH
    raw += unit // 2
    raw //= unit
    raw[no_path] = UNREACHABLE
    return raw


def _sweep(
    metrics: list[rk.CCHMetric], src: IntArray, tgt: IntArray, threads: int, chunk_rows: int
) -> list[IntArray]:
    """Path weights from every source to every target under each metric (NO_PATH if none), C-ordered.

    One one-to-many sweep per source with the targets pinned, or one many-to-one sweep per target with the
    sources pinned when there are fewer targets (a sweep costs ~ c + pinned). Work goes in chunks of rows,
    metric after metric (kinder to the caches than alternating), to up to `threads` threads: routingkit
    releases the GIL during each sweep.
    """
    forward = len(src) <= len(tgt)
    rows, pinned = (src, tgt) if forward else (tgt, src)
    outs = [np.empty((len(rows), len(pinned)), dtype=np.int64) for _ in metrics]
    if len(rows) and len(pinned):
        chunks = [range(start, min(start + chunk_rows, len(rows))) for start in range(0, len(rows), chunk_rows)]
        work = [(k, chunk) for k in range(len(metrics)) for chunk in chunks]
        fill = _RowFiller(metrics, rows.tolist(), pinned.tolist(), forward, outs, work)
        workers = min(threads, len(chunks))
        if workers == 1:
            fill()
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cch-matrix") as pool:
                for done in [pool.submit(fill) for _ in range(workers)]:
                    done.result()
    return outs if forward else [np.ascontiguousarray(out.T) for out in outs]


class _RowFiller:
    """Work shared by the sweep threads: each call takes (metric, rows) items until none is left, with its own
    query objects (one per metric, made on first use); the outputs and metrics are shared."""

    def __init__(
        self,
        metrics: list[rk.CCHMetric],
        rows: list[int],
        pinned: list[int],
        forward: bool,
        outs: list[IntArray],
        work: list[tuple[int, range]],
    ) -> None:
        self.metrics, self.rows, self.pinned, self.forward, self.outs = metrics, rows, pinned, forward, outs
        self._work = iter(work)
        self._lock = threading.Lock()
        self._failed = False

    def _next(self) -> tuple[int, range] | None:
        with self._lock:
            return None if self._failed else next(self._work, None)

    def __call__(self) -> None:
        try:
            self._run()
        except BaseException:
            self._failed = True
            raise

    def _run(self) -> None:
        queries: dict[int, rk.CCHOneToMany | rk.CCHManyToOne] = {}
        sweeps: dict[int, Callable[[int], list[int | None]]] = {}
        rows = self.rows
        while (item := self._next()) is not None:
            k, chunk = item
            if k not in sweeps:
                if self.forward:
                    forward = queries[k] = rk.CCHOneToMany(self.metrics[k], self.pinned)
                    sweeps[k] = forward.distances_from
                else:
                    backward = queries[k] = rk.CCHManyToOne(self.metrics[k], self.pinned)
                    sweeps[k] = backward.distances_to
            sweep, out = sweeps[k], self.outs[k]
            for i in chunk:
                weights = sweep(rows[i])
                try:
                    out[i] = cast("list[int]", weights)  # fast path: numpy raises TypeError on a None
                except TypeError:
                    out[i] = [NO_PATH if w is None else w for w in weights]
        sweeps.clear()
        queries.clear()


class HaversineEngine:
    """Straight-line estimates for synthetic points: great-circle distance × detour at a fixed speed."""

    def __init__(
        self,
        points_lonlat: npt.ArrayLike,
        speed_kmh: float,
        detour_factor: float = 1.3,
        *,
        time_of_day: TimeOfDayFactors = FLAT_DAY,
    ) -> None:
        if not (math.isfinite(speed_kmh) and speed_kmh > 0):
            raise InvalidProblemError(f"speed_kmh must be > 0, got {speed_kmh!r}")
        if not (math.isfinite(detour_factor) and detour_factor >= 1.0):
            raise InvalidProblemError(f"detour_factor must be >= 1, got {detour_factor!r}")
        self.points_lonlat = as_lonlat(points_lonlat, error=InvalidProblemError)
        self.speed_kmh = float(speed_kmh)
        self.detour_factor = float(detour_factor)
        self.time_of_day = time_of_day

    def matrix(
        self, sources: npt.ArrayLike, targets: npt.ArrayLike, *, hour: int | None = None
    ) -> MatrixResult:
        check_hour(hour)
        k = len(self.points_lonlat)
        src = _check_indices("sources", sources, k)
        tgt = _check_indices("targets", targets, k)
        metres = self.detour_factor * haversine_m(
            self.points_lonlat[src][:, None, :], self.points_lonlat[tgt][None, :, :]
        )
        factor = 1.0 if hour is None else self.time_of_day.hourly[hour]
        seconds = metres / (self.speed_kmh / 3.6) * factor
        return MatrixResult(
            durations=np.rint(seconds).astype(np.int64), distances=np.rint(metres).astype(np.int64)
        )


def make_engine(
    kind: EngineKind, network: RoadNetwork, profile: str | Profile = "car", **options: Any
) -> TravelTimes:
    if kind == "scipy":
        return ScipyEngine(network, profile, **options)
    if kind == "cch":
        return CCHEngine(network, profile, **options)
    raise InvalidProblemError(f"engine kind must be 'scipy' or 'cch', got {kind!r}")
