"""Road geometry of fastest paths, for maps and courier apps (not for routing: matrices come from routing.matrix).

`path_nodes` runs one Dijkstra from the source on the profile's float edge times at `hour` and walks the
predecessors back from the target; `leg_lines` turns a sequence of stops into one polyline of (lon, lat) per leg,
optionally simplified (Douglas-Peucker, `tolerance_m`) to keep a phone's payload small.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse.csgraph
import shapely

from routing.network import Profile, RoadNetwork
from routing.snap import EARTH_RADIUS_M, snap

_NO_PREDECESSOR = -9999
_M_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180


def path_nodes(network: RoadNetwork, profile: str | Profile, source: int, target: int, *,
               hour: int | None = None) -> list[int]:
    """The road nodes of a fastest path from `source` to `target` (both included); [] when none leads there."""
    if source == target:
        return [int(source)]
    _, predecessors = scipy.sparse.csgraph.dijkstra(network.csr(profile, hour), directed=True, indices=int(source),
                                                    return_predecessors=True)
    if predecessors[target] == _NO_PREDECESSOR:
        return []
    nodes = [int(target)]
    while nodes[-1] != source:
        nodes.append(int(predecessors[nodes[-1]]))
    return nodes[::-1]


def leg_lines(network: RoadNetwork, profile: str | Profile, stops: Sequence[int], *, hour: int | None = None,
              tolerance_m: float = 0.0) -> list[list[tuple[float, float]]]:
    """One (lon, lat) polyline per leg between consecutive `stops` (road nodes), rounded to 6 decimals (0.1 m);
    a leg with no road between its stops is the straight segment."""
    lonlat = network.lonlat
    lines: list[list[tuple[float, float]]] = []
    for a, b in itertools.pairwise(stops):
        nodes = path_nodes(network, profile, a, b, hour=hour) or [a, b]
        points = lonlat[nodes]
        if tolerance_m > 0 and len(points) > 2:
            simple = shapely.simplify(shapely.LineString(points), tolerance_m / _M_PER_DEGREE)
            points = np.asarray(shapely.get_coordinates(simple))
        elif len(points) == 1:
            points = np.vstack([points, points])
        lines.append([(round(float(x), 6), round(float(y), 6)) for x, y in points])
    return lines


Lines = list[list[tuple[float, float]]]


class StopLines:
    """`leg_lines` of stop sequences given as (lon, lat) points, snapped to `network`'s nearest nodes, cached by
    (profile, hour, stops): the courier app's route and the map console draw the same routes from one cache."""

    def __init__(self, network: RoadNetwork, *, tolerance_m: float = 3.0, size: int = 4096) -> None:
        self.network = network
        self.tolerance_m = tolerance_m
        self.size = size
        self._lines: dict[tuple[str, int | None, tuple[tuple[float, ...], ...]], Lines] = {}

    def cached(self, profile: str, hour: int | None,
               stops: tuple[tuple[float, ...], ...]) -> Lines | None:
        """The lines if already computed, else None (nothing is computed)."""
        return self._lines.get((profile, hour, stops))

    def __call__(self, profile: str, hour: int | None, stops: tuple[tuple[float, ...], ...]) -> Lines:
        """The lines, computed on the first call for these stops."""
        key = (profile, hour, stops)
        lines = self._lines.get(key)
        if lines is None:
            nodes = snap(self.network, np.array(stops, dtype=np.float64), max_distance_m=math.inf).nodes
            lines = leg_lines(self.network, profile, [int(n) for n in nodes], hour=hour, tolerance_m=self.tolerance_m)
            if len(self._lines) >= self.size:
                self._lines.clear()
            self._lines[key] = lines
        return lines
