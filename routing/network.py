"""Compact road networks loaded offline from OSM files, with travel profiles and time-of-day factors."""

import hashlib
import math
import os
import zipfile
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse

from routing.errors import InvalidProblemError, NetworkLoadError

FORMAT_VERSION = 2
CAR_FALLBACK_SPEED_KMH = 30.0
CACHE_DIR_ENV = "LASTMILE_CACHE_DIR"
HOURS_PER_DAY = 24

HIGHWAY_CLASSES: tuple[str, ...] = (
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
    "unclassified",
    "residential",
    "living_street",
    "road",
    "service",
    "other",
)
HIGHWAY_CODE: dict[str, int] = {name: code for code, name in enumerate(HIGHWAY_CLASSES)}

Metric = Literal["time", "distance"]
T = TypeVar("T")


def check_hour(hour: int | None) -> None:
    if hour is None:
        return
    if isinstance(hour, bool) or not isinstance(hour, int | np.integer) or not 0 <= hour < HOURS_PER_DAY:
        raise InvalidProblemError(f"hour must be an integer in 0..23 or None, got {hour!r}")


def _check_highway_names(field_name: str, pairs: tuple[tuple[str, float], ...]) -> None:
    for name, _ in pairs:
        if name not in HIGHWAY_CODE:
            raise InvalidProblemError(f"{field_name}: unknown highway class {name!r}")


def _highway_table(pairs: tuple[tuple[str, float], ...], default: float) -> npt.NDArray[np.float64]:
    table = np.full(len(HIGHWAY_CLASSES), default, dtype=np.float64)
    for name, value in pairs:
        table[HIGHWAY_CODE[name]] = value
    return table


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeOfDayFactors:
    """Hourly multipliers (>= 1) on free-flow travel time, optionally damped per highway class."""

    hourly: tuple[float, ...]
    highway_sensitivity: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if len(self.hourly) != HOURS_PER_DAY:
            raise InvalidProblemError(f"hourly must have 24 factors, got {len(self.hourly)}")
        for hour, factor in enumerate(self.hourly):
            if not (math.isfinite(factor) and factor >= 1.0):
                raise InvalidProblemError(f"hourly[{hour}] must be a finite factor >= 1.0, got {factor!r}")
        _check_highway_names("highway_sensitivity", self.highway_sensitivity)
        for name, sensitivity in self.highway_sensitivity:
            if not 0.0 <= sensitivity <= 1.0:
                raise InvalidProblemError(
                    f"highway_sensitivity[{name!r}] must be in [0, 1], got {sensitivity!r}"
                )

    def edge_factors(self, hour: int | None, highway: npt.NDArray[np.int8]) -> npt.NDArray[np.float64]:
        check_hour(hour)
        if hour is None:
            return np.ones(highway.shape, dtype=np.float64)
        sensitivity = _highway_table(self.highway_sensitivity, 1.0)
        return 1.0 + (self.hourly[hour] - 1.0) * sensitivity[highway]


FLAT_DAY = TimeOfDayFactors(hourly=(1.0,) * HOURS_PER_DAY)
CAR_CONGESTION = TimeOfDayFactors(
    hourly=(
        1.0, 1.0, 1.0, 1.0, 1.0, 1.05, 1.2, 1.4, 1.5, 1.35, 1.2, 1.2,
        1.25, 1.25, 1.2, 1.25, 1.4, 1.55, 1.6, 1.4, 1.2, 1.1, 1.05, 1.0,
    ),
    highway_sensitivity=(("motorway", 0.5), ("motorway_link", 0.6), ("trunk", 0.6), ("trunk_link", 0.7)),
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """How one mode travels: speeds (OSM car speeds, per-highway defaults or flat), one-way rules, traffic."""

    name: str
    speed_kmh: float | None = None
    highway_speeds_kmh: tuple[tuple[str, float], ...] = ()
    capped_by_car_speed: bool = False
    oneway: bool = True
    max_speed_kmh: float
    time_of_day: TimeOfDayFactors = FLAT_DAY

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidProblemError("profile name must not be empty")
        if self.speed_kmh is not None and not (math.isfinite(self.speed_kmh) and self.speed_kmh > 0):
            raise InvalidProblemError(f"profile {self.name!r}: speed_kmh must be > 0, got {self.speed_kmh!r}")
        if not (math.isfinite(self.max_speed_kmh) and self.max_speed_kmh > 0):
            raise InvalidProblemError(
                f"profile {self.name!r}: max_speed_kmh must be > 0, got {self.max_speed_kmh!r}"
            )
        _check_highway_names(f"profile {self.name!r}: highway_speeds_kmh", self.highway_speeds_kmh)
        for name, speed in self.highway_speeds_kmh:
            if not (math.isfinite(speed) and speed > 0):
                raise InvalidProblemError(
                    f"profile {self.name!r}: highway_speeds_kmh[{name!r}] must be > 0, got {speed!r}"
                )

    def edge_speeds_kmh(self, network: "RoadNetwork") -> npt.NDArray[np.float64]:
        car = network.car_speed_kmh
        if self.highway_speeds_kmh:
            defaults = _highway_table(self.highway_speeds_kmh, np.nan)[network.highway]
            car = np.where(~network.has_maxspeed & ~np.isnan(defaults), defaults, car)
        if self.speed_kmh is None:
            speed = car
        elif self.capped_by_car_speed:
            speed = np.minimum(self.speed_kmh, car)
        else:
            speed = np.full(car.shape, self.speed_kmh, dtype=np.float64)
        return np.minimum(speed, self.max_speed_kmh)


PROFILES: dict[str, Profile] = {
    "car": Profile(name="car", oneway=True, max_speed_kmh=130.0, time_of_day=CAR_CONGESTION),
    "bike": Profile(name="bike", speed_kmh=15.0, capped_by_car_speed=True, oneway=True, max_speed_kmh=25.0),
    "ebike": Profile(name="ebike", speed_kmh=20.0, capped_by_car_speed=True, oneway=True, max_speed_kmh=25.0),
    "foot": Profile(name="foot", speed_kmh=5.0, oneway=False, max_speed_kmh=6.0),
}


def get_profile(profile: "str | Profile") -> Profile:
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise InvalidProblemError(
            f"profile {profile!r} is unknown; expected one of {sorted(PROFILES)}"
        ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Arcs:
    """Directed arcs a profile may use: dense tail/head node indices and the network edge each comes from."""

    tail: npt.NDArray[np.int32]
    head: npt.NDArray[np.int32]
    edge: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        if not self.tail.shape == self.head.shape == self.edge.shape or self.tail.ndim != 1:
            raise NetworkLoadError(
                f"arcs: tail, head and edge must be 1-D of equal length, got shapes "
                f"{self.tail.shape}, {self.head.shape}, {self.edge.shape}"
            )


_ARRAY_DTYPES: dict[str, type[np.generic]] = {
    "osm_ids": np.int64,
    "lon": np.float64,
    "lat": np.float64,
    "tail": np.int32,
    "head": np.int32,
    "length_m": np.float64,
    "car_speed_kmh": np.float64,
    "has_maxspeed": np.bool_,
    "highway": np.int8,
}


def _frozen_array(name: str, value: Any, dtype: type[np.generic]) -> npt.NDArray[Any]:
    try:
        array = np.array(value, dtype=dtype, copy=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise NetworkLoadError(f"{name}: cannot convert to {np.dtype(dtype).name}: {exc}") from exc
    if array.ndim != 1:
        raise NetworkLoadError(f"{name}: must be 1-D, got shape {array.shape}")
    array.flags.writeable = False
    return array


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RoadNetwork:
    """Directed road graph (largest strongly connected car component) as flat numpy arrays.

    Nodes are dense indices 0..N-1 ordered by OSM id; edges are car-legal directed road segments.
    """

    osm_ids: npt.NDArray[np.int64]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    tail: npt.NDArray[np.int32]
    head: npt.NDArray[np.int32]
    length_m: npt.NDArray[np.float64]
    car_speed_kmh: npt.NDArray[np.float64]
    has_maxspeed: npt.NDArray[np.bool_]
    highway: npt.NDArray[np.int8]
    source: str = ""
    source_sha256: str = ""
    from_cache: bool = False
    _memo: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for name, dtype in _ARRAY_DTYPES.items():
            object.__setattr__(self, name, _frozen_array(name, getattr(self, name), dtype))
        n, e = len(self.osm_ids), len(self.tail)
        if n == 0:
            raise NetworkLoadError("osm_ids: a road network needs at least one node")
        if np.any(np.diff(self.osm_ids) <= 0):
            raise NetworkLoadError("osm_ids: must be strictly increasing (unique, sorted)")
        for name in ("lon", "lat"):
            if len(getattr(self, name)) != n:
                raise NetworkLoadError(
                    f"{name}: expected {n} values (one per node), got {len(getattr(self, name))}"
                )
        for name in ("head", "length_m", "car_speed_kmh", "has_maxspeed", "highway"):
            if len(getattr(self, name)) != e:
                raise NetworkLoadError(
                    f"{name}: expected {e} values (one per edge), got {len(getattr(self, name))}"
                )
        bad = np.flatnonzero(~np.isfinite(self.lon) | (np.abs(self.lon) > 180))
        if bad.size:
            raise NetworkLoadError(f"lon[{bad[0]}]: invalid longitude {self.lon[bad[0]]!r}")
        bad = np.flatnonzero(~np.isfinite(self.lat) | (np.abs(self.lat) > 90))
        if bad.size:
            raise NetworkLoadError(f"lat[{bad[0]}]: invalid latitude {self.lat[bad[0]]!r}")
        for name in ("tail", "head"):
            idx = getattr(self, name)
            bad = np.flatnonzero((idx < 0) | (idx >= n))
            if bad.size:
                raise NetworkLoadError(f"{name}[{bad[0]}]: node index {idx[bad[0]]} outside 0..{n - 1}")
        for name in ("length_m", "car_speed_kmh"):
            values = getattr(self, name)
            bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
            if bad.size:
                raise NetworkLoadError(f"{name}[{bad[0]}]: must be finite and > 0, got {values[bad[0]]!r}")
        bad = np.flatnonzero((self.highway < 0) | (self.highway >= len(HIGHWAY_CLASSES)))
        if bad.size:
            raise NetworkLoadError(f"highway[{bad[0]}]: unknown highway class code {self.highway[bad[0]]}")

    @classmethod
    def from_osm(
        cls, path: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None
    ) -> "RoadNetwork":
        source = Path(path)
        if source.is_dir():
            raise NetworkLoadError(f"{str(source)!r} is a folder, not an OSM file (.osm, .osm.bz2 or .osm.gz)")
        if not source.is_file():
            raise NetworkLoadError(f"OSM file {str(source)!r} does not exist")
        digest = _sha256(source)
        cache_file = _cache_dir(cache_dir) / f"{source.name}.{digest[:24]}.v{FORMAT_VERSION}.npz"
        if cache_file.is_file():
            try:
                return cls._from_npz(cache_file, source=source, digest=digest)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                pass
        network = cls._from_xml(source, digest)
        network._save_npz(cache_file)
        return network

    @classmethod
    def _from_xml(cls, source: Path, digest: str) -> "RoadNetwork":
        import osmnx as ox

        try:
            graph = ox.graph_from_xml(source, simplify=True, retain_all=False)
            for _, _, data in graph.edges(data=True):
                _canonical_tags(data)
            graph = ox.routing.add_edge_speeds(graph, fallback=CAR_FALLBACK_SPEED_KMH)
            graph = ox.truncate.largest_component(graph, strongly=True)
        except Exception as exc:
            raise NetworkLoadError(
                f"OSM file {str(source)!r} could not be read as a road graph: {exc}"
            ) from exc
        osm_ids = np.array(sorted(graph.nodes), dtype=np.int64)
        lon = np.array([graph.nodes[n]["x"] for n in osm_ids.tolist()], dtype=np.float64)
        lat = np.array([graph.nodes[n]["y"] for n in osm_ids.tolist()], dtype=np.float64)
        rows = [
            (u, v, float(d["length"]), float(d["speed_kph"]), d.get("maxspeed") is not None, _highway_code(d))
            for u, v, d in graph.edges(data=True)
            if u != v
        ]
        if not rows:
            raise NetworkLoadError(f"OSM file {str(source)!r} contains no routable road")
        us, vs, length, speed, has_maxspeed, highway = (list(column) for column in zip(*rows, strict=True))
        tail = np.searchsorted(osm_ids, np.array(us, dtype=np.int64)).astype(np.int32)
        head = np.searchsorted(osm_ids, np.array(vs, dtype=np.int64)).astype(np.int32)
        length_m = np.maximum(np.array(length, dtype=np.float64), 0.01)
        order = np.lexsort((length_m, head, tail))
        return cls(
            osm_ids=osm_ids,
            lon=lon,
            lat=lat,
            tail=tail[order],
            head=head[order],
            length_m=length_m[order],
            car_speed_kmh=np.array(speed, dtype=np.float64)[order],
            has_maxspeed=np.array(has_maxspeed, dtype=np.bool_)[order],
            highway=np.array(highway, dtype=np.int8)[order],
            source=str(source),
            source_sha256=digest,
        )

    @classmethod
    def _from_npz(cls, cache_file: Path, *, source: Path, digest: str) -> "RoadNetwork":
        with np.load(cache_file, allow_pickle=False) as data:
            if int(data["format_version"]) != FORMAT_VERSION or str(data["source_sha256"]) != digest:
                raise ValueError(f"stale cache file {cache_file}")
            arrays = {name: data[name] for name in _ARRAY_DTYPES}
        return cls(**arrays, source=str(source), source_sha256=digest, from_cache=True)

    def _save_npz(self, cache_file: Path) -> None:
        tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    format_version=np.int64(FORMAT_VERSION),
                    source_sha256=np.str_(self.source_sha256),
                    **{name: getattr(self, name) for name in _ARRAY_DTYPES},
                )
            os.replace(tmp, cache_file)
        except OSError:
            tmp.unlink(missing_ok=True)

    @property
    def n_nodes(self) -> int:
        return len(self.osm_ids)

    @property
    def n_edges(self) -> int:
        return len(self.tail)

    @property
    def lonlat(self) -> npt.NDArray[np.float64]:
        return self.cached("lonlat", self._build_lonlat)

    def _build_lonlat(self) -> npt.NDArray[np.float64]:
        lonlat = np.column_stack((self.lon, self.lat))
        lonlat.flags.writeable = False
        return lonlat

    def cached(self, key: Hashable, build: Callable[[], T]) -> T:
        if key not in self._memo:
            self._memo[key] = build()
        value: T = self._memo[key]
        return value

    def node_index(self, osm_ids: npt.ArrayLike) -> npt.NDArray[np.int64]:
        wanted = np.asarray(osm_ids, dtype=np.int64)
        index = np.searchsorted(self.osm_ids, wanted).clip(0, self.n_nodes - 1)
        missing = np.flatnonzero(self.osm_ids[index] != wanted)
        if missing.size:
            raise InvalidProblemError(
                f"osm_ids[{missing[0]}]: OSM node {wanted.flat[missing[0]]} is not in the road network"
            )
        return index.astype(np.int64)

    def arcs(self, profile: str | Profile) -> Arcs:
        oneway = get_profile(profile).oneway
        return self.cached(("arcs", oneway), lambda: self._build_arcs(oneway))

    def _build_arcs(self, oneway: bool) -> Arcs:
        edge = np.arange(self.n_edges, dtype=np.int64)
        if oneway:
            return Arcs(tail=self.tail, head=self.head, edge=edge)
        return Arcs(
            tail=np.concatenate((self.tail, self.head)),
            head=np.concatenate((self.head, self.tail)),
            edge=np.concatenate((edge, edge)),
        )

    def edge_times(self, profile: str | Profile, hour: int | None = None) -> npt.NDArray[np.float64]:
        spec = get_profile(profile)
        factors = spec.time_of_day.edge_factors(hour, self.highway)
        return self.length_m / (spec.edge_speeds_kmh(self) / 3.6) * factors

    def csr(
        self, profile: str | Profile, hour: int | None = None, metric: Metric = "time"
    ) -> scipy.sparse.csr_matrix:
        spec = get_profile(profile)
        check_hour(hour)
        if metric not in ("time", "distance"):
            raise InvalidProblemError(f"metric must be 'time' or 'distance', got {metric!r}")
        key = ("csr", spec, None if metric == "distance" else hour, metric)
        return self.cached(key, lambda: self._build_csr(spec, hour, metric))

    def _build_csr(self, spec: Profile, hour: int | None, metric: Metric) -> scipy.sparse.csr_matrix:
        arcs = self.arcs(spec)
        per_edge = self.length_m if metric == "distance" else self.edge_times(spec, hour)
        tail, head, weight = min_parallel(arcs.tail, arcs.head, per_edge[arcs.edge])
        return scipy.sparse.csr_matrix((weight, (tail, head)), shape=(self.n_nodes, self.n_nodes))


def min_parallel(
    tail: npt.NDArray[np.integer[Any]], head: npt.NDArray[np.integer[Any]], weight: npt.NDArray[Any]
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[Any]]:
    order = np.lexsort((weight, head, tail))
    tail, head, weight = tail[order], head[order], weight[order]
    first = np.ones(len(tail), dtype=np.bool_)
    first[1:] = (tail[1:] != tail[:-1]) | (head[1:] != head[:-1])
    return tail[first].astype(np.int32), head[first].astype(np.int32), weight[first]


def _canonical_tags(data: dict[str, Any]) -> None:
    """Put the tag lists of an edge in one order on every machine.

    Simplification joins OSM ways into one edge and keeps each differing tag as a list in set order, which follows
    Python's per-process string hash seed; osmnx then imputes a missing car speed from the list's first highway
    class, so the cached network (and every result on it) changed with the process that built the cache. The most
    important highway class comes first (the one `_highway_code` keeps); any other list is sorted.
    """
    for key, value in data.items():
        if not isinstance(value, list):
            continue
        if key == "highway":
            data[key] = sorted(value, key=lambda name: (HIGHWAY_CODE.get(name, len(HIGHWAY_CODE)), str(name)))
        else:
            data[key] = sorted(value, key=str)


def _highway_code(data: dict[str, Any]) -> int:
    value = data.get("highway")
    names = value if isinstance(value, list) else [value]
    codes = [HIGHWAY_CODE[name] for name in names if name in HIGHWAY_CODE]
    return min(codes, default=HIGHWAY_CODE["other"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is not None:
        directory = Path(cache_dir)
    elif os.environ.get(CACHE_DIR_ENV):
        directory = Path(os.environ[CACHE_DIR_ENV])
    else:
        directory = Path.home() / ".cache" / "lastmile"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
