"""Exact fastest paths with their lengths: one-to-many Dijkstra on lexicographic (time, length) arc weights.

Contraction hierarchies answer the fastest *time* quickly, but not the length of that path; the shortest road
distance is another path whenever speeds differ between roads (cars: road classes, congestion by class). Here
each arc weighs `ms << LENGTH_BITS | cm` (see `routing._dijkstra`), so one search gives the fastest time and the
exact length of the fastest path (ties: the shorter). A search stops once every target is settled.

Where a profile's arc speed is the same on every arc at every hour it is used (`uniform_speed`: bike and foot
on most maps), the fastest path is the shortest one and a CCH length sweep gives the same distance faster.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import routingkit_cch as rk

from routing.network import HOURS_PER_DAY, Profile, RoadNetwork, check_hour, get_profile, min_parallel

IntArray = npt.NDArray[np.int64]
UNREACHABLE = 2**31 - 1
"""Seconds and metres where no road joins two places (routing.matrix re-exports it)."""
_NOT_REACHED = -1
_Part = TypeVar("_Part")


def arc_time_ms(network: RoadNetwork, profile: Profile, hour: int | None, edge: IntArray) -> IntArray:
    """Whole milliseconds to ride each of `edge` (at least 1): the arc weights every engine sums."""
    return np.maximum(1, np.rint(network.edge_times(profile, hour)[edge] * 1000.0)).astype(np.int64)


def kernel() -> ModuleType:
    """The compiled kernel module, imported (and compiled, the first time on a machine) on first use."""
    from routing import _dijkstra

    return _dijkstra


def speeds(network: RoadNetwork, profile: str | Profile,
           hours: Sequence[int | None] = (None,)) -> tuple[float, float]:
    """The top arc speed (m/s) of `profile` over `hours`, and the largest share of arcs slower than it in any of
    those hours (0: time is length × one constant everywhere, and the fastest path is the shortest)."""
    length = network.length_m
    used = length > 0
    if not used.any():
        return 1.0, 0.0
    per_hour = [length[used] / network.edge_times(profile, hour)[used] for hour in hours]
    top = max(float(v.max()) for v in per_hour)
    return top, max(float(np.mean(v < top * (1.0 - 1e-9))) for v in per_hour)


def uniform_speed(network: RoadNetwork, profile: str | Profile, hours: Sequence[int | None] = (None,)) -> bool:
    """Whether `profile`'s arc time is the arc length × one constant on every arc at each of `hours`."""
    return speeds(network, profile, hours)[1] == 0.0


def fastest_is_shortest(durations: IntArray, distances: IntArray, top_speed: float) -> npt.NDArray[np.bool_]:
    """Where a fastest time (s) and a shortest distance (m) between the same places prove the fastest path is no
    longer than the shortest, to within `top_speed` × 1.5 s (a few metres): every arc takes at least its length
    over the top speed, so a fastest path of length L takes at least L / top_speed; if the fastest time is within
    rounding of the shortest distance over the top speed, L cannot exceed that distance by more. Unreachable
    pairs pass."""
    return (durations >= UNREACHABLE) | (durations <= distances / top_speed + 1.0 + 0.5 / top_speed)


def time_dependent(profile: str | Profile) -> bool:
    """Whether `profile` has hourly factors (its times differ by hour when traffic is on)."""
    return any(f != 1.0 for f in get_profile(profile).time_of_day.hourly)


def all_hours(profile: str | Profile, traffic: bool) -> list[int | None]:
    """The hours whose times `profile` may use: free flow, and every hour when it follows traffic."""
    return [None, *range(HOURS_PER_DAY)] if traffic and time_dependent(profile) else [None]


@dataclass(frozen=True, slots=True)
class _Csr:
    indptr: IntArray
    indices: IntArray
    weight: IntArray


def _csr(rows: npt.NDArray[np.int32], cols: npt.NDArray[np.int32], weight: IntArray, n: int) -> _Csr:
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return _Csr(indptr, cols[order].astype(np.int64), np.ascontiguousarray(weight[order], dtype=np.int64))


class _Scratch:
    """One searcher's work arrays: best packed weight per node (reset after each search) and a heap."""

    def __init__(self, n_nodes: int, n_arcs: int) -> None:
        self.best = np.full(n_nodes, _NOT_REACHED, dtype=np.int64)
        self.touched = np.empty(n_nodes, dtype=np.int64)
        self.heap_k = np.empty(n_arcs + 1, dtype=np.int64)
        self.heap_v = np.empty(n_arcs + 1, dtype=np.int64)


class FastestPaths:
    """Fastest times (s) and the lengths (m) of those paths on one network for one profile, per hour."""

    def __init__(self, network: RoadNetwork, profile: str | Profile) -> None:
        self.network = network
        self.profile = get_profile(profile)
        self._graphs: dict[tuple[int | None, bool], _Csr] = {}
        self._scratch = threading.local()
        self._lock = threading.Lock()

    def _graph(self, hour: int | None, backward: bool) -> _Csr:
        check_hour(hour)
        key = (hour, backward)
        with self._lock:
            if key not in self._graphs:
                arcs = self.network.arcs(self.profile)
                ms = arc_time_ms(self.network, self.profile, hour, arcs.edge)
                cm = np.rint(self.network.length_m[arcs.edge] * 100.0).astype(np.int64)
                tail, head, weight = min_parallel(arcs.tail, arcs.head, (ms << kernel().LENGTH_BITS) | cm)
                n = self.network.n_nodes
                self._graphs[(hour, False)] = _csr(tail, head, weight, n)
                self._graphs[(hour, True)] = _csr(head, tail, weight, n)
            return self._graphs[key]

    def _work(self, n_arcs: int) -> _Scratch:
        scratch: _Scratch | None = getattr(self._scratch, "arrays", None)
        if scratch is None or len(scratch.heap_k) < n_arcs + 1:
            scratch = self._scratch.arrays = _Scratch(self.network.n_nodes, n_arcs)
        return scratch

    def search(self, source: int, targets: IntArray, *, hour: int | None = None, backward: bool = False,
               is_target: npt.NDArray[np.bool_] | None = None) -> tuple[IntArray, IntArray]:
        """Durations and distances from `source` to each of `targets` (distinct nodes), or from each of them to
        `source` when `backward`; UNREACHABLE where no road joins them. `is_target`, if given, marks exactly
        `targets` among the network's nodes (callers that keep one save building it)."""
        if len(targets) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        g = self._graph(hour, backward)
        mask = is_target
        if mask is None:
            mask = np.zeros(self.network.n_nodes, dtype=np.bool_)
            mask[targets] = True
        w = self._work(len(g.weight))
        k = kernel()
        count = k.one_to_many(g.indptr, g.indices, g.weight, int(source), mask, len(targets), w.best, w.touched,
                              w.heap_k, w.heap_v)
        packed = w.best[targets]
        w.best[w.touched[:count]] = _NOT_REACHED
        return unpack(packed, k.LENGTH_BITS)

    def matrix(self, sources: IntArray, targets: IntArray, *, hour: int | None = None,
               threads: int = 1) -> tuple[IntArray, IntArray]:
        """Durations and fastest-path distances from each of `sources` to each of `targets` (distinct targets)."""
        mask = np.zeros(self.network.n_nodes, dtype=np.bool_)
        mask[targets] = True
        self._graph(hour, False)
        durations = np.empty((len(sources), len(targets)), dtype=np.int64)
        distances = np.empty_like(durations)

        def rows(chunk: range) -> None:
            for i in chunk:
                durations[i], distances[i] = self.search(int(sources[i]), targets, hour=hour, is_target=mask)

        _in_threads(rows, [range(k, len(sources), threads) for k in range(max(1, min(threads, len(sources))))])
        return durations, distances


class ExactCCH:
    """What `FastestPaths` answers (fastest times and the lengths of those paths, the same numbers), from an exact
    CCH of its own: routingkit's nested-dissection order made chordal once per network topology, customised per
    hour on the packed (time, length) weights in a few tens of ms (`routing._cch_exact`). A query walks the
    source's ancestors up and the targets' ancestors down, a few hundred nodes each, instead of settling every
    node closer than the farthest target: on a store's 300 live places of the Porto metro map both directions
    take a fraction of a millisecond where the Dijkstra takes milliseconds.
    """

    KEEP_HOURS = 4
    """Customised hours kept (each two int64 arrays of the hierarchy's edges); older ones are redone on demand."""

    def __init__(self, network: RoadNetwork, profile: str | Profile) -> None:
        self.network = network
        self.profile = get_profile(profile)
        self._hierarchy = network.cached(("cch_exact", self.profile.oneway), lambda: _Hierarchy.of(network,
                                                                                                  self.profile))
        self._metrics: dict[int | None, tuple[IntArray, IntArray]] = {}
        self._lock = threading.Lock()
        self._scratch = threading.local()

    def _metric(self, hour: int | None) -> tuple[IntArray, IntArray]:
        check_hour(hour)
        with self._lock:
            got = self._metrics.pop(hour, None)
            if got is None:
                h = self._hierarchy
                ms = arc_time_ms(self.network, self.profile, hour, h.edge)
                weight = (ms << kernel().LENGTH_BITS) | h.cm
                up, down = np.empty(len(h.indices), dtype=np.int64), np.empty(len(h.indices), dtype=np.int64)
                _cch_kernel().customize(h.indptr, h.indices, h.tail, h.head, weight, up, down)
                got = (up, down)
            self._metrics[hour] = got  # most recent last
            while len(self._metrics) > self.KEEP_HOURS:
                del self._metrics[next(iter(self._metrics))]
            return got

    def search(self, source: int, targets: IntArray, *, hour: int | None = None,
               backward: bool = False) -> tuple[IntArray, IntArray]:
        """As `FastestPaths.search` (no target mask is needed: the targets' ancestors are walked)."""
        if len(targets) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        h, k = self._hierarchy, _cch_kernel()
        up, down = self._metric(hour)
        if backward:
            up, down = down, up
        packed = k.one_to_many(h.indptr, h.indices, up, down, int(h.rank[int(source)]),
                               h.rank[np.asarray(targets, dtype=np.int64)], *self._arrays())
        return _unpacked(packed)

    def _arrays(self) -> tuple[IntArray, npt.NDArray[np.bool_], IntArray]:
        """This thread's scratch of the kernels (best, mark, selection)."""
        scratch = getattr(self._scratch, "arrays", None)
        if scratch is None:
            n = self.network.n_nodes
            scratch = self._scratch.arrays = (np.full(n, _cch_kernel().INF, dtype=np.int64),
                                              np.zeros(n, dtype=np.bool_), np.empty(n, dtype=np.int64))
        return scratch

    def matrix(self, sources: IntArray, targets: IntArray, *, hour: int | None = None,
               threads: int = 1) -> tuple[IntArray, IntArray]:
        """Durations and fastest-path distances from each of `sources` to each of `targets` (distinct targets):
        the targets' ancestors are selected once, and each of `threads` threads sweeps a share of the sources."""
        h, k = self._hierarchy, _cch_kernel()
        up, down = self._metric(hour)
        ranks = h.rank[np.asarray(sources, dtype=np.int64)]
        wanted = h.rank[np.asarray(targets, dtype=np.int64)]
        packed = np.empty((len(ranks), len(wanted)), dtype=np.int64)

        def rows(part: slice) -> None:
            k.many_to_many(h.indptr, h.indices, up, down, ranks[part], wanted, *self._arrays(), packed[part])

        if len(ranks) and len(wanted):
            step = -(-len(ranks) // max(1, min(threads, len(ranks))))
            _in_threads(rows, [slice(a, a + step) for a in range(0, len(ranks), step)])
        return _unpacked(packed)


@dataclass(frozen=True, slots=True)
class _Hierarchy:
    """An exact CCH's topology in rank space (see `routing._cch_exact`) and the arcs its metrics are made of."""

    rank: IntArray
    indptr: IntArray
    indices: IntArray
    tail: IntArray
    head: IntArray
    edge: IntArray
    cm: IntArray

    @classmethod
    def of(cls, network: RoadNetwork, profile: Profile) -> _Hierarchy:
        arcs = network.arcs(profile)
        n = network.n_nodes
        rank = np.empty(n, dtype=np.int64)
        rank[cch_order(network, profile)] = np.arange(n, dtype=np.int64)
        tail, head = rank[arcs.tail], rank[arcs.head]
        above: list[set[int]] = [set() for _ in range(n)]
        for a, b in zip(tail.tolist(), head.tolist(), strict=True):
            if a != b:
                above[min(a, b)].add(max(a, b))
        for r in range(n):  # eliminate in rank order: the upper neighbours of a node join its parent's
            ups = above[r]
            if len(ups) > 1:
                parent = min(ups)
                above[parent] |= ups
                above[parent].discard(parent)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum([len(a) for a in above], out=indptr[1:])
        indices = np.fromiter((x for a in above for x in sorted(a)), dtype=np.int64, count=int(indptr[-1]))
        cm = np.rint(network.length_m[arcs.edge] * 100.0).astype(np.int64)
        return cls(rank=rank, indptr=indptr, indices=indices, tail=tail, head=head, edge=arcs.edge, cm=cm)


def cch_order(network: RoadNetwork, profile: str | Profile) -> IntArray:
    """routingkit's nested-dissection (inertial flow) node order of `profile`'s arcs, kept on the network."""
    spec = get_profile(profile)

    def make() -> IntArray:
        arcs = network.arcs(spec)
        return np.asarray(rk.compute_order_inertial(network.n_nodes, arcs.tail.tolist(), arcs.head.tolist(),
                                                    network.lat.tolist(), network.lon.tolist()), dtype=np.int64)

    return network.cached(("cch_order", spec.oneway), make)


def _unpacked(packed: IntArray) -> tuple[IntArray, IntArray]:
    """Seconds and metres from the exact CCH's packed weights (`unpack`; its INF is not reached)."""
    return unpack(np.where(packed >= _cch_kernel().INF, _NOT_REACHED, packed), kernel().LENGTH_BITS)


def _cch_kernel() -> ModuleType:
    from routing import _cch_exact

    return _cch_exact


def _in_threads(work: Callable[[_Part], None], parts: list[_Part]) -> None:
    """`work` on each of `parts`, one thread each (in this thread when there is one part); errors propagate."""
    if len(parts) == 1:
        work(parts[0])
        return
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="fastest") as pool:
        for done in [pool.submit(work, part) for part in parts]:
            done.result()


def unpack(packed: IntArray, shift: int) -> tuple[IntArray, IntArray]:
    """Packed path weights to seconds and metres (each rounded half up); NOT_REACHED to UNREACHABLE."""
    reached = packed >= 0
    ms = packed >> shift
    cm = packed & ((1 << shift) - 1)
    durations = np.where(reached, (ms + 500) // 1000, UNREACHABLE)
    distances = np.where(reached, (cm + 50) // 100, UNREACHABLE)
    return durations.astype(np.int64), distances.astype(np.int64)
