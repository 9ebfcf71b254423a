"""Vectorised snapping of (lon, lat) points to the nearest road-network node, reporting far-off points."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from routing.errors import RoutingError, SnapError
from routing.network import RoadNetwork

EARTH_RADIUS_M = 6_371_008.8
NO_NODE = -1


@dataclass(frozen=True, slots=True, kw_only=True)
class _Projection:
    lon0: float
    lat0: float
    x_scale: float

    def project(self, lonlat: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x = np.radians(lonlat[:, 0] - self.lon0) * self.x_scale
        y = np.radians(lonlat[:, 1] - self.lat0) * EARTH_RADIUS_M
        return np.column_stack((x, y))

    def project_point(self, lon: float, lat: float) -> tuple[float, float]:
        """`project` of one point, in scalars (the same operations, so the same result)."""
        return math.radians(lon - self.lon0) * self.x_scale, math.radians(lat - self.lat0) * EARTH_RADIUS_M


@dataclass(frozen=True, slots=True, kw_only=True)
class _NodeIndex:
    projection: _Projection
    tree: cKDTree
    grid: "_Grid"
    first: npt.NDArray[np.int64] | None
    """Of each node, the lowest node at the same place (None when no two share one): the k-d tree may answer
    any of them, the grid the lowest, so both answer it."""

    def query(self, xy: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """The nearest node of each projected point (a K×2 array), by the tree."""
        _, nearest = self.tree.query(xy)
        nearest = np.asarray(nearest, dtype=np.int64)
        return nearest if self.first is None else self.first[nearest]


_RINGS = tuple(((0, 0),) if r == 0 else (
    *((i, -r) for i in range(-r, r + 1)), *((i, r) for i in range(-r, r + 1)),
    *((-r, j) for j in range(-r + 1, r)), *((r, j) for j in range(-r + 1, r))) for r in range(6))
"""Cell offsets by ring (Chebyshev distance from the centre cell)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Grid:
    """The nodes' projected positions bucketed by square cells of `cell_m`: the nearest node of one point near the
    roads in a few µs of plain Python (a k-d tree query of one point costs tens of µs of call overhead; an API
    process snaps every order it admits)."""

    cell_m: float
    cells: dict[tuple[int, int], tuple[tuple[float, float, int], ...]]

    @classmethod
    def build(cls, xy: npt.NDArray[np.float64]) -> "_Grid":
        area = float(np.ptp(xy[:, 0]) * np.ptp(xy[:, 1])) if len(xy) else 0.0
        cell = max(10.0, 0.5 * math.sqrt(area / max(len(xy), 1)))  # about a node per 4 cells on the whole map
        cells: dict[tuple[int, int], list[tuple[float, float, int]]] = {}
        for k, (x, y) in enumerate(xy.tolist()):
            cells.setdefault((math.floor(x / cell), math.floor(y / cell)), []).append((x, y, k))
        return cls(cell_m=cell, cells={c: tuple(v) for c, v in cells.items()})

    def nearest(self, x: float, y: float) -> int | None:
        """The node nearest to (x, y) (the lowest index among equally near ones), or None when it is not within
        the rings searched (then ask the tree). Ring r is searched only while a node may lie nearer than what was
        found: every node outside rings 0..r is at least r cells away."""
        cell = self.cell_m
        cx, cy = math.floor(x / cell), math.floor(y / cell)
        get = self.cells.get
        best, best_d2 = -1, math.inf
        for r, ring in enumerate(_RINGS):
            for i, j in ring:
                for nx, ny, k in get((cx + i, cy + j), ()):
                    d2 = (nx - x) ** 2 + (ny - y) ** 2
                    if d2 < best_d2 or (d2 == best_d2 and k < best):
                        best, best_d2 = k, d2
            if best_d2 < (r * cell) ** 2:
                return best
        return None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SnapResult:
    """Nearest network node per point (NO_NODE where the point is farther than max_distance_m)."""

    nodes: npt.NDArray[np.int64]
    distance_m: npt.NDArray[np.float64]
    too_far: npt.NDArray[np.bool_]
    points_lonlat: npt.NDArray[np.float64]
    max_distance_m: float

    def __post_init__(self) -> None:
        k = len(self.nodes)
        for name in ("nodes", "distance_m", "too_far"):
            array = getattr(self, name)
            if array.shape != (k,):
                raise SnapError(f"{name}: expected shape ({k},), got {array.shape}")
        if self.points_lonlat.shape != (k, 2):
            raise SnapError(f"points_lonlat: expected shape ({k}, 2), got {self.points_lonlat.shape}")
        if not self.max_distance_m >= 0:
            raise SnapError(f"max_distance_m must be >= 0, got {self.max_distance_m!r}")
        if np.any(self.too_far != (self.nodes == NO_NODE)):
            raise SnapError("nodes: must be NO_NODE exactly where too_far is set")

    def raise_if_too_far(self, labels: Sequence[str] | None = None) -> None:
        if labels is not None and len(labels) != len(self.nodes):
            raise SnapError(f"labels: expected {len(self.nodes)} labels, got {len(labels)}")
        bad = np.flatnonzero(self.too_far)
        if bad.size == 0:
            return
        i = int(bad[0])
        label = labels[i] if labels is not None else f"#{i}"
        lon, lat = self.points_lonlat[i]
        raise SnapError(
            f"point {label!r} at (lon, lat) = ({lon:.6f}, {lat:.6f}) is {self.distance_m[i]:.0f} m from the "
            f"nearest road node (limit {self.max_distance_m:.0f} m); {bad.size} point(s) too far in total"
        )


def snap(network: RoadNetwork, points_lonlat: npt.ArrayLike, *, max_distance_m: float = 500.0) -> SnapResult:
    points = as_lonlat(points_lonlat)
    if not max_distance_m >= 0:
        raise SnapError(f"max_distance_m must be >= 0, got {max_distance_m!r}")
    if len(points) == 1:  # one point (an order placed, a courier's position): scalars cost a third of arrays
        node, metres = snap_point(network, float(points[0, 0]), float(points[0, 1]), max_distance_m=max_distance_m)
        too_far = np.array([node == NO_NODE])
        return SnapResult(nodes=np.array([node], dtype=np.int64), distance_m=np.array([metres]), too_far=too_far,
                          points_lonlat=points, max_distance_m=float(max_distance_m))
    index = network.cached("snap_kdtree", lambda: _build_index(network))
    nearest = index.query(index.projection.project(points)) if len(points) else np.empty(0, dtype=np.int64)
    distance = haversine_m(points, network.lonlat[nearest])
    too_far = distance > max_distance_m
    return SnapResult(
        nodes=np.where(too_far, NO_NODE, nearest),
        distance_m=distance,
        too_far=too_far,
        points_lonlat=points,
        max_distance_m=float(max_distance_m),
    )


def snap_point(network: RoadNetwork, lon: float, lat: float, *, max_distance_m: float = 500.0) -> tuple[int, float]:
    """`snap` of one point, in scalars (what `snap` does for a single point): its nearest node (NO_NODE if farther
    than `max_distance_m`) and the distance in metres."""
    if not (math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
        raise SnapError(f"points_lonlat[0]: invalid (lon, lat) = ({lon!r}, {lat!r})")
    index = network.cached("snap_kdtree", lambda: _build_index(network))
    x, y = index.projection.project_point(lon, lat)
    found = index.grid.nearest(x, y)
    node = int(index.query(np.array([[x, y]]))[0]) if found is None else found
    lon2, lat2 = (float(v) for v in network.lonlat[node])
    la1, la2 = math.radians(lat), math.radians(lat2)
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin(
        (math.radians(lon2) - math.radians(lon)) / 2) ** 2
    distance = 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(max(h, 0.0), 1.0)))
    return (NO_NODE if distance > max_distance_m else node), distance


def haversine_m(
    a_lonlat: npt.NDArray[np.float64], b_lonlat: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    lon1, lat1 = np.radians(a_lonlat[..., 0]), np.radians(a_lonlat[..., 1])
    lon2, lat2 = np.radians(b_lonlat[..., 0]), np.radians(b_lonlat[..., 1])
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def as_lonlat(
    points_lonlat: npt.ArrayLike, *, name: str = "points_lonlat", error: type[RoutingError] = SnapError
) -> npt.NDArray[np.float64]:
    try:
        points = np.array(points_lonlat, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise error(f"{name}: expected a K×2 array of (lon, lat), got {points_lonlat!r}") from exc
    if points.size == 0:
        points = points.reshape(0, 2)
    if points.ndim != 2 or points.shape[1] != 2:
        raise error(f"{name}: expected a K×2 array of (lon, lat), got shape {points.shape}")
    bad = np.flatnonzero(
        ~np.isfinite(points).all(axis=1) | (np.abs(points[:, 0]) > 180) | (np.abs(points[:, 1]) > 90)
    )
    if bad.size:
        i = int(bad[0])
        raise error(f"{name}[{i}]: invalid (lon, lat) = ({points[i, 0]!r}, {points[i, 1]!r})")
    points.flags.writeable = False
    return points


def _build_index(network: RoadNetwork) -> _NodeIndex:
    lat0 = float(np.mean(network.lat))
    projection = _Projection(
        lon0=float(np.mean(network.lon)),
        lat0=lat0,
        x_scale=EARTH_RADIUS_M * float(np.cos(np.radians(lat0))),
    )
    xy = projection.project(network.lonlat)
    _, first, same = np.unique(xy, axis=0, return_index=True, return_inverse=True)
    shared = len(first) < len(xy)
    return _NodeIndex(projection=projection, tree=cKDTree(xy), grid=_Grid.build(xy),
                      first=first[same.ravel()].astype(np.int64) if shared else None)
