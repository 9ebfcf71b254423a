"""Travel between the places that are live now: rows computed when a place appears, slots recycled when it goes.

A live service never knows tomorrow's addresses, and a day of orders is too many places for n×n matrices. A
`TravelOracle` holds what one road network needs to answer travel queries per vehicle profile; each
`PlacePool` (one per dark store, say) holds the places that matter to its owner now, as dense indices into
per-profile duration (s) and distance (m) matrices. When a place appears (`place(node)`), its row and column
are computed against the live places only. The pool asks its owner which indices are still referred to
(`collect`) and frees the others when it runs out of slots (growing only if it must) and before it recomputes
an hour (every live place's rows). Memory is proportional to the live places, never to the day.

Distances are those of the fastest path, the one whose duration is reported, at the pool's hour: what a
courier rides. Two ways to compute rows, chosen per profile and network:

- `cch`: where a profile's arc speed is the same on every arc at every hour in use (bike, foot on most maps),
  the fastest path is the shortest path; two CCH sweeps (time, length) answer a row.
- `cch_checked`: where at most 1 % of arcs are slower than the top speed (bikes on Porto metro: 2 of 122,006
  arcs), the same sweeps, and a row whose fastest times do not prove, pair by pair, that the fastest path is no
  longer than the shortest (to within a few metres, `routing.fastest.fastest_is_shortest`) is searched exactly.
- `cch_exact`: otherwise (cars: road classes, congestion by class), the project's own CCH on arc weights that
  pack (ms, cm) lexicographically (`routing.fastest.ExactCCH`) gives the fastest time and that path's exact
  length: the same numbers as a one-to-many Dijkstra on those weights (`routing.fastest.FastestPaths`, which the
  tests compare it with), in a fraction of its time. `TravelOracle(..., distances="shortest")` uses routingkit's
  CCH for every profile instead: exact durations, but shortest-road distances, which under-count what a car
  rides (an explicit choice, never a silent one).

Hours: a time-dependent profile (car with traffic) is recomputed for the live places when `set_hour` changes
the hour; the others are computed once per place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import routingkit_cch as rk

from routing.errors import InvalidProblemError
from routing.fastest import ExactCCH, all_hours, fastest_is_shortest, speeds, time_dependent
from routing.matrix import NO_PATH, UNREACHABLE, CCHDistances, CCHEngine, round_weights
from routing.network import RoadNetwork, check_hour, get_profile

IntArray = npt.NDArray[np.int64]
RowMethod = Literal["cch", "cch_checked", "cch_exact"]
NEARLY_UNIFORM = 0.01
"""A profile with at most this share of arcs below its top speed is answered by CCH, pair by pair checked."""


class TravelOracle:
    """Per-profile travel on one road network for pools of live places (see the module doc).

    `profiles` are the vehicle profiles pools may ask for; `traffic` makes time-dependent profiles (those with
    hourly factors, e.g. car) follow the pool's hour; without it every profile uses free-flow times.
    """

    def __init__(self, network: RoadNetwork, profiles: Sequence[str], *, traffic: bool = False,
                 distances: CCHDistances = "fastest_path", threads: int = 2) -> None:
        if not profiles:
            raise InvalidProblemError("profiles: at least one profile is needed")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise InvalidProblemError(f"threads must be a positive integer, got {threads!r}")
        self.threads = threads
        """Threads that recompute a pool's exact (`cch_exact`) rows when its hour changes (rows are independent:
        the result does not depend on how many)."""
        self.network = network
        self.profiles = tuple(dict.fromkeys(profiles))
        self.traffic = traffic
        self.time_dependent = {p: traffic and time_dependent(p) for p in self.profiles}
        if distances not in ("fastest_path", "shortest"):
            raise InvalidProblemError(f"distances must be 'fastest_path' or 'shortest', got {distances!r}")
        self.distances = distances
        self.method: dict[str, RowMethod] = {}
        self.top_speed: dict[str, float] = {}
        for p in self.profiles:
            self.top_speed[p], slow = speeds(network, p, all_hours(p, traffic))
            if distances == "shortest" or slow == 0.0:
                self.method[p] = "cch"
            else:
                self.method[p] = "cch_checked" if slow <= NEARLY_UNIFORM else "cch_exact"
        self._cch: dict[str, CCHEngine] = {}
        self._fastest = {p: ExactCCH(network, p) for p in self.profiles}
        self._same_as: dict[str, list[int]] = {}
        for p in self.profiles:
            factors = get_profile(p).time_of_day.hourly
            self._same_as[p] = [factors.index(f) for f in factors]

    def hour_for(self, profile: str, hour: int | None) -> int | None:
        """The hour whose times `profile` uses when a pool is at `hour` (None: free flow): the first hour of the
        day with the same factors, so that hours of equal traffic share their times and need no recompute."""
        if hour is None or not self.time_dependent[profile]:
            return None
        return self._same_as[profile][hour]

    def pool(self, *, pinned: Iterable[int] = (), hour: int | None = None, capacity: int = 32,
             profiles: Sequence[str] | None = None,
             collect: Callable[[], Iterable[int]] | None = None) -> PlacePool:
        """A new pool of live places over `profiles` (default: all), with `pinned` road nodes that never go."""
        return PlacePool(self, pinned=pinned, hour=hour, capacity=capacity,
                         profiles=self.profiles if profiles is None else profiles, collect=collect)

    # --- rows ----------------------------------------------------------------------------------------------

    def _engine(self, profile: str) -> CCHEngine:
        if profile not in self._cch:
            self._cch[profile] = CCHEngine(self.network, profile, threads=1)
        return self._cch[profile]

    def search(self, profile: str, hour: int | None, source: int, targets: IntArray, *,
               backward: bool = False) -> tuple[IntArray, IntArray]:
        """Durations (s) and fastest-path distances (m) from `source` to each of `targets` (distinct nodes),
        or from each of them to `source` when `backward` (see `routing.fastest.FastestPaths.search`: the same
        numbers, from `routing.fastest.ExactCCH`)."""
        return self._fastest[profile].search(source, targets, hour=hour, backward=backward)

    def matrix(self, profile: str, hour: int | None, nodes: IntArray) -> tuple[IntArray, IntArray]:
        """`search` from each of `nodes` to all of them, as rows, on the oracle's `threads`."""
        return self._fastest[profile].matrix(nodes, nodes, hour=hour, threads=self.threads)


def _sweep_values(values: list[int | None]) -> IntArray:
    try:
        return np.array(values, dtype=np.int64)
    except TypeError:
        return np.array([NO_PATH if v is None else v for v in values], dtype=np.int64)


class _CCHRows:
    """One pool's CCH sweeps of one profile between a new place and the pool's live places.

    With `speed` (m/s: the profile's one speed on every arc) distances are the fastest time × speed, one sweep a
    direction (per-arc rounding of ms moves them by at most half a ms of riding an arc: millimetres); without
    it, a second sweep on the length metric gives the shortest distance. Query objects are made and dropped
    within each call: routingkit's may only be freed by the thread that made them (making one costs what
    re-pinning a kept one would).
    """

    def __init__(self, engine: CCHEngine, hour: int | None, speed: float | None) -> None:
        self.engine = engine
        self.speed = speed
        self.metrics = [engine._time_metric(hour)] + ([] if speed is not None else [engine._distance_metric()])

    def rows(self, node: int, targets: list[int]) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        """(out durations, out distances, in durations, in distances) between `node` and each target."""
        if not targets:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty, empty
        sweeps = []
        for metric in self.metrics:
            out, into = rk.CCHOneToMany(metric, targets), rk.CCHManyToOne(metric, targets)
            sweeps.append((_sweep_values(out.distances_from(node)), _sweep_values(into.distances_to(node))))
            del out, into
        (ms_out, ms_in) = sweeps[0]
        if self.speed is not None:
            m_out, m_in = _metres(ms_out, self.speed), _metres(ms_in, self.speed)
            return round_weights(ms_out, 1000), m_out, round_weights(ms_in, 1000), m_in
        (cm_out, cm_in) = sweeps[1]
        return (round_weights(ms_out, 1000), round_weights(cm_out, 100), round_weights(ms_in, 1000),
                round_weights(cm_in, 100))


def _metres(ms: IntArray, speed: float) -> IntArray:
    out = np.rint(ms * (speed / 1000.0)).astype(np.int64)
    out[ms == NO_PATH] = UNREACHABLE
    return out


class PlacePool:
    """Live places of one owner as dense indices into per-profile matrices (see the module doc).

    `durations(profile)` and `distances(profile)` are read-only views of `capacity`×`capacity` arrays, filled
    for live places (free slots hold UNREACHABLE, a place to itself 0). They change in place when places come
    and when the hour changes; `version` changes when they are reallocated (the pool grew).
    """

    def __init__(self, oracle: TravelOracle, *, pinned: Iterable[int], hour: int | None, capacity: int,
                 profiles: Sequence[str], collect: Callable[[], Iterable[int]] | None) -> None:
        check_hour(hour)
        if capacity < 1:
            raise InvalidProblemError(f"capacity must be at least 1, got {capacity}")
        unknown = [p for p in profiles if p not in oracle.profiles]
        if unknown or not profiles:
            raise InvalidProblemError(f"profiles: {unknown or 'none'} not among the oracle's {list(oracle.profiles)}")
        self.oracle = oracle
        self.profiles = tuple(dict.fromkeys(profiles))
        self.hour = hour
        self.collect = collect
        self.version = 0
        self._node = np.full(capacity, -1, dtype=np.int64)
        self._slot: dict[int, int] = {}
        self._free = list(range(capacity - 1, -1, -1))
        self._dur = {p: self._blank(capacity) for p in self.profiles}
        self._dist = {p: self._blank(capacity) for p in self.profiles}
        self._cch = {p: self._cch_rows(p, hour) for p in self.profiles if oracle.method[p] != "cch_exact"}
        self._pinned: set[int] = set()
        for node in pinned:
            self._pinned.add(self.place(node))

    def _cch_rows(self, profile: str, hour: int | None) -> _CCHRows:
        o = self.oracle
        speed = o.top_speed[profile] if o.method[profile] == "cch" and o.distances == "fastest_path" else None
        return _CCHRows(o._engine(profile), o.hour_for(profile, hour), speed)

    @staticmethod
    def _blank(capacity: int) -> IntArray:
        a = np.full((capacity, capacity), UNREACHABLE, dtype=np.int64)
        np.fill_diagonal(a, 0)
        return a

    # --- what the pool holds -------------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return len(self._node)

    @property
    def n_live(self) -> int:
        return len(self._slot)

    @property
    def pinned(self) -> frozenset[int]:
        return frozenset(self._pinned)

    def node(self, index: int) -> int:
        """The road node at live index `index`."""
        node = int(self._node[index]) if 0 <= index < len(self._node) else -1
        if node < 0:
            raise InvalidProblemError(f"index {index} is not a live place of this pool")
        return node

    def live(self) -> dict[int, int]:
        """Live index -> road node."""
        return {slot: node for node, slot in self._slot.items()}

    def durations(self, profile: str) -> IntArray:
        return self._view(self._dur[profile])

    def distances(self, profile: str) -> IntArray:
        return self._view(self._dist[profile])

    @staticmethod
    def _view(a: IntArray) -> IntArray:
        v = a.view()
        v.flags.writeable = False
        return v

    # --- places come and go --------------------------------------------------------------------------------

    def place(self, node: int) -> int:
        """The live index of road node `node`, computing its rows if it is new here."""
        node = int(node)
        slot = self._slot.get(node)
        if slot is not None:
            return slot
        if not 0 <= node < self.oracle.network.n_nodes:
            raise InvalidProblemError(f"node {node} is outside the network's {self.oracle.network.n_nodes} nodes")
        if not self._free:
            self._make_room()
        slot = self._free.pop()
        others = np.fromiter(self._slot.values(), dtype=np.int64, count=len(self._slot))  # any order: pairs are exact
        other_nodes = self._node[others]
        for p in self.profiles:
            out_d, out_m, in_d, in_m = self._rows(p, node, other_nodes)
            dur, dist = self._dur[p], self._dist[p]
            dur[slot, others], dist[slot, others] = out_d, out_m
            dur[others, slot], dist[others, slot] = in_d, in_m
            dur[slot, slot] = dist[slot, slot] = 0
        self._node[slot] = node
        self._slot[node] = slot
        return slot

    def _rows(self, profile: str, node: int, targets: IntArray) -> tuple[IntArray, IntArray, IntArray, IntArray]:
        method = self.oracle.method[profile]
        hour = self.oracle.hour_for(profile, self.hour)
        if method != "cch_exact":
            out_d, out_m, in_d, in_m = self._cch[profile].rows(node, targets.tolist())
            if method == "cch":
                return out_d, out_m, in_d, in_m
            top = self.oracle.top_speed[profile]
            if not fastest_is_shortest(out_d, out_m, top).all():
                out_d, out_m = self.oracle.search(profile, hour, node, targets)
            if not fastest_is_shortest(in_d, in_m, top).all():
                in_d, in_m = self.oracle.search(profile, hour, node, targets, backward=True)
            return out_d, out_m, in_d, in_m
        out_d, out_m = self.oracle.search(profile, hour, node, targets)
        in_d, in_m = self.oracle.search(profile, hour, node, targets, backward=True)
        return out_d, out_m, in_d, in_m

    def retain(self, keep: Iterable[int]) -> int:
        """Free every live index but the pinned ones and `keep`; returns how many were freed."""
        keep_set = set(int(k) for k in keep) | self._pinned
        gone = [slot for slot in self._slot.values() if slot not in keep_set]
        for slot in gone:
            node = int(self._node[slot])
            del self._slot[node]
            self._node[slot] = -1
            for p in self.profiles:
                for a in (self._dur[p], self._dist[p]):
                    a[slot, :] = UNREACHABLE
                    a[:, slot] = UNREACHABLE
                    a[slot, slot] = 0
            self._free.append(slot)
        self._free.sort(reverse=True)
        return len(gone)

    def _make_room(self) -> None:
        if self.collect is not None:
            self.retain(self.collect())
        if self._free and len(self._free) >= self.capacity // 4:
            return
        old = self.capacity
        new = old * 2
        for table in (self._dur, self._dist):
            for p, a in table.items():
                b = self._blank(new)
                b[:old, :old] = a
                table[p] = b
        node = np.full(new, -1, dtype=np.int64)
        node[:old] = self._node
        self._node = node
        self._free = sorted([*self._free, *range(old, new)], reverse=True)
        self.version += 1

    def snapshot(self) -> dict[str, Any]:
        """Which node each live slot holds, the free slots in the order they are reused, the hour: JSON-ready."""
        return {"hour": self.hour, "capacity": self.capacity,
                "slots": [[slot, node] for node, slot in self._slot.items()], "free": list(self._free),
                "pinned": sorted(self._pinned)}

    def restore(self, data: Mapping[str, Any]) -> None:
        """Take the places of `snapshot()`: the same nodes in the same slots, rows computed anew at its hour."""
        hour = data["hour"]
        check_hour(hour)
        capacity = int(data["capacity"])
        self.hour = hour
        self._cch = {p: self._cch_rows(p, hour) for p in self._cch}
        self._node = np.full(capacity, -1, dtype=np.int64)
        self._slot = {}
        self._dur = {p: self._blank(capacity) for p in self.profiles}
        self._dist = {p: self._blank(capacity) for p in self.profiles}
        self.version += 1
        slots = [(int(slot), int(node)) for slot, node in data["slots"]]
        wanted = dict(slots)
        self._free = [slot for slot in range(capacity - 1, -1, -1) if slot not in wanted]
        for slot, node in slots:
            self._free.append(slot)
            if self.place(node) != slot:
                raise InvalidProblemError(f"snapshot.slots: node {node} did not land in slot {slot}")
        self._free = [int(s) for s in data["free"]]
        self._pinned = {int(s) for s in data["pinned"]}

    def set_hour(self, hour: int | None) -> None:
        """Move the pool to `hour`: time-dependent profiles are recomputed for the live places."""
        check_hour(hour)
        if hour == self.hour:
            return
        before, self.hour = self.hour, hour
        if self.collect is not None:
            self.retain(self.collect())
        slots = np.array(sorted(self._slot.values()), dtype=np.int64)
        nodes = self._node[slots]
        for p in self.profiles:
            if self.oracle.hour_for(p, before) == self.oracle.hour_for(p, hour):
                continue
            if p in self._cch:
                self._cch[p] = self._cch_rows(p, hour)
            dur, dist = self._dur[p], self._dist[p]
            if self.oracle.method[p] == "cch_exact":  # every row at once, on the oracle's threads
                rows_d, rows_m = self.oracle.matrix(p, self.oracle.hour_for(p, hour), nodes)
                dur[np.ix_(slots, slots)], dist[np.ix_(slots, slots)] = rows_d, rows_m
            else:
                for k, slot in enumerate(slots):
                    out_d, out_m, _, _ = self._rows(p, int(nodes[k]), nodes)
                    dur[slot, slots], dist[slot, slots] = out_d, out_m
            dur[slots, slots] = dist[slots, slots] = 0
