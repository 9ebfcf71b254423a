"""VROOM's JSON documents: its input (jobs, shipments, vehicles, per-profile matrices or coordinates) as a `Problem`,
and a solved plan in its output shape. `lastmile solve` reads VROOM-shaped `.json` files with `parse`, and
`POST /v1/solve` answers with `render`.

The format is VROOM's (https://github.com/VROOM-Project/vroom/blob/master/docs/API.md). What is honoured, what is
refused and how answers differ is listed in docs/routing.md ("VROOM documents"). In short:

- every fault raises `VroomError` naming the field, e.g. `jobs[3].time_windows[0]: closes at 10 before it opens at
  20`; a feature the solvers do not model (setup times, per-type service, `max_distance`, break `max_load`, several
  windows per break, `per_task_hour`) is refused the same way, never ignored;
- the objective is VROOM's: travel time (`costs.per_hour`, default 3600 per hour) plus `costs.per_km`, or
  `matrices.PROFILE.costs`, plus `costs.fixed`; `speed_factor` scales travel times;
- a vehicle's `steps` are steps already executed: its jobs, pickups and deliveries stay first on that vehicle, in
  that order, and the rest is re-optimised (`Vehicle.locked`);
- timestamps past `HORIZON` (Unix times) are taken relative to the earliest window start and reported back as given;
- every unassigned task carries the solvers' `reason`.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from routing.errors import InvalidProblemError
from routing.evaluate import RouteEvaluation, VisitTiming, evaluate, late_schedule
from routing.matrix import TravelTimes, make_engine
from routing.network import PROFILES, RoadNetwork
from routing.problem import (
    HORIZON,
    UNREACHABLE,
    Break,
    Job,
    Plan,
    Problem,
    Route,
    Shipment,
    Stop,
    TimeWindow,
    Vehicle,
    Visit,
)
from routing.snap import snap
from routing.solvers.base import SolveResult

INTERNAL_ERROR, INPUT_ERROR, ROUTING_ERROR = 1, 2, 3
"""VROOM's status codes (0 is success)."""

MAX_VALUE = HORIZON
"""The largest service time, amount, capacity or cost a document may give."""

MAX_TIME = 2**32 - 1
"""The largest time-window bound (VROOM's times are unsigned 32-bit, so Unix timestamps fit)."""

PER_HOUR = 3600
"""VROOM's default travel cost: 3600 per hour, one per second of travel."""

STEP_TYPES = ("start", "job", "pickup", "delivery", "break", "end")
TaskType = Literal["job", "pickup", "delivery"]


class VroomError(InvalidProblemError):
    """A document that cannot be solved: `field` says where (`jobs[3].time_windows[0]`, empty for the whole
    document), `code` is VROOM's status (2 input error, 3 routing error)."""

    def __init__(self, field: str, message: str, *, code: int = INPUT_ERROR) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.code = code


class Router(Protocol):
    """Travel between (lon, lat) points, for documents that give coordinates and no `matrices`."""

    @property
    def profiles(self) -> tuple[str, ...]:
        """The profiles it knows."""
        ...

    def __call__(self, points: np.ndarray, fields: Sequence[str],
                 profiles: Sequence[str]) -> Mapping[str, tuple[np.ndarray, np.ndarray]]:
        """{profile: (durations in s, distances in m)} between the K×2 `points`; a point off the map raises
        VroomError naming its field (`fields[i]`)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Place:
    """Where a task or a vehicle's start or end is, as the document gave it: coordinates and/or a matrix index."""

    location: tuple[float, float] | None = None
    location_index: int | None = None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.location is not None:
            out["location"] = list(self.location)
        if self.location_index is not None:
            out["location_index"] = self.location_index
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """A job, a shipment's pickup or its delivery, as the output names it; `rank` is its place in the document."""

    type: TaskType
    id: int | str
    place: Place
    rank: int
    description: str | None = None
    priority: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Fleet:
    """A vehicle as the output names it: id, description, start and end (None: open, the route starts or ends at
    its first or last task) and its breaks' ids and descriptions, in `Vehicle.breaks` order."""

    id: int | str
    description: str | None
    start: Place | None
    end: Place | None
    breaks: tuple[tuple[int | str, str | None], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class VroomInput:
    """A parsed document: the `Problem` and what the output needs to name its tasks and vehicles.

    `jobs` names each problem job (a job of the document, or the pickup or delivery of a shipment whose steps a
    vehicle has executed), `shipments` each problem shipment's pickup and delivery. `distances` holds the metres
    per problem profile (the `durations` where a document gave no distances: then `report_distances` is False).
    Times in the problem are `origin` seconds earlier than in the document.
    """

    problem: Problem
    jobs: tuple[Task, ...]
    shipments: tuple[tuple[Task, Task], ...]
    vehicles: tuple[Fleet, ...]
    distances: Mapping[str, np.ndarray]
    report_distances: bool
    origin: int = 0

    @property
    def job_labels(self) -> tuple[int | str, ...]:
        """The document's id of each problem job."""
        return tuple(t.id for t in self.jobs)

    @property
    def n_tasks(self) -> int:
        return len(self.jobs) + 2 * len(self.shipments)

    def task(self, visit: Visit) -> Task:
        if visit.kind == "job":
            return self.jobs[visit.index]
        return self.shipments[visit.index][0 if visit.kind == "pickup" else 1]

    def distance(self, plan: Plan) -> float:
        """Metres along the plan's routes (the durations' seconds where the document gave no distances)."""
        total = 0
        for route in plan.routes:
            v = self.problem.vehicles[route.vehicle]
            path = [v.start, *(_stop_location(self.problem, x) for x in route.visits
                               if x.kind not in ("break", "reload")), v.end_location]
            metres = self.distances[v.profile]
            total += sum(int(metres[a, b]) for a, b in itertools.pairwise(path))
        return float(total)


# --- JSON values ------------------------------------------------------------------------------------------------

def loads(text: str | bytes) -> Any:
    """The JSON value of `text`; VroomError (field empty) if it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise VroomError("", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise VroomError("", f"not UTF-8 text (byte at offset {exc.start})") from None
    except RecursionError:
        raise VroomError("", "not valid JSON: nested too deeply") from None
    except ValueError:  # an integer literal past Python's conversion limit (sys.get_int_max_str_digits)
        raise VroomError("", f"not readable JSON: an integer has more than {sys.get_int_max_str_digits()} "
                             "digits") from None


def _show(raw: Any) -> str:
    try:
        return json.dumps(raw)[:40]
    except (TypeError, ValueError, RecursionError):
        return repr(raw)[:40]


def _integral(raw: Any) -> bool:
    return (isinstance(raw, int) and not isinstance(raw, bool)) or (isinstance(raw, float) and raw.is_integer())


def _int(raw: Any, where: str, *, minimum: int = 0, maximum: int = MAX_VALUE) -> int:
    """A JSON integer (2.0 counts as 2) in [minimum, maximum]."""
    if not _integral(raw):
        raise VroomError(where, f"must be an integer, got {_show(raw)}")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise VroomError(where, f"must lie in [{minimum}, {maximum}], got {value}")
    return value


def _list(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise VroomError(where, f"must be a list, got {_show(raw)}")
    return raw


def _object(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise VroomError(where, f"must be an object, got {_show(raw)}")
    return raw


def _id(raw: Any, where: str) -> int | str:
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | str) or raw == "":
        raise VroomError(where, f"must be an integer or a non-empty string, got {_show(raw)}")
    if isinstance(raw, int) and not 0 <= raw < 2 ** 64:
        raise VroomError(where, f"an integer id must be from 0 to 2^64 - 1 (VROOM's ids), got {_show(raw)}")
    return raw


def _string(raw: Any, where: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise VroomError(where, f"must be a string, got {_show(raw)}")
    return raw


def _amount(raw: Any, where: str, dims: int | None = None, dims_of: str = "") -> tuple[int, ...]:
    if raw is None:
        return ()
    values = tuple(_int(a, f"{where}[{i}]") for i, a in enumerate(_list(raw, where)))
    if dims is not None and len(values) != dims:
        raise VroomError(where, f"has {len(values)} dimensions, {dims_of} has {dims}")
    return values


def _skills(raw: Any, where: str) -> frozenset[str]:
    if raw is None:
        return frozenset()
    return frozenset(str(_id(s, f"{where}[{i}]")) for i, s in enumerate(_list(raw, where)))


def _coordinates(raw: Any, where: str) -> tuple[float, float]:
    pair = _list(raw, where)
    if len(pair) != 2 or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in pair):
        raise VroomError(where, f"must be [lon, lat], got {_show(raw)}")
    lon, lat = float(pair[0]), float(pair[1])
    if not (math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
        raise VroomError(where, f"must be [lon, lat] with lon in [-180, 180] and lat in [-90, 90], got {_show(raw)}")
    return lon, lat


def _unsupported(raw: Mapping[str, Any], where: str, key: str, advice: str, *, default: Any = None) -> None:
    value = raw.get(key)
    if value is not None and value != default and value != {} and value != []:
        raise VroomError(f"{where}.{key}", f"not supported: {advice}")


def _origin(data: Mapping[str, Any]) -> int:
    """0, or the earliest window start when some window opens past HORIZON (Unix timestamps): then every time of
    the problem is relative to it."""
    starts: list[int] = []
    stack: list[Any] = [data.get(key) for key in ("jobs", "shipments", "vehicles")]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                pairs = [value] if key == "time_window" else value if key == "time_windows" else None
                if isinstance(pairs, list):
                    starts += [int(w[0]) for w in pairs if isinstance(w, list) and len(w) == 2 and _integral(w[0])]
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return min(starts) if any(s > HORIZON for s in starts) else 0


def _window(raw: Any, where: str, origin: int) -> TimeWindow:
    pair = _list(raw, where)
    if len(pair) != 2:
        raise VroomError(where, f"must be [start, end], got {len(pair)} numbers")
    start, end = _int(pair[0], f"{where}[0]", maximum=MAX_TIME), _int(pair[1], f"{where}[1]", maximum=MAX_TIME)
    if end < start:
        raise VroomError(where, f"closes at {end} before it opens at {start}")
    if start - origin > HORIZON:
        raise VroomError(f"{where}[0]", f"opens {start - origin} s after the earliest window of the document "
                                        f"(at {origin}); all windows must open within {HORIZON} s of it")
    return TimeWindow(start=start - origin, end=min(end - origin, HORIZON))


def _windows(raw: Any, where: str, origin: int) -> tuple[TimeWindow, ...]:
    if raw is None:
        return ()
    return tuple(_window(w, f"{where}[{i}]", origin) for i, w in enumerate(_list(raw, where)))


def _matrix(raw: Any, where: str, size: int | None) -> np.ndarray:
    rows = _list(raw, where)
    n = len(rows) if size is None else size
    if not rows or len(rows) != n:
        raise VroomError(where, f"must be a square matrix of {n or 'at least 1'} rows, got {len(rows)}")
    out = np.empty((n, n), dtype=np.int64)
    for i, row in enumerate(rows):
        cells = _list(row, f"{where}[{i}]")
        if len(cells) != n:
            raise VroomError(f"{where}[{i}]", f"must have {n} entries like the matrix has rows, got {len(cells)}")
        if all(type(c) is int and 0 <= c <= UNREACHABLE for c in cells):
            out[i] = cells
            continue
        for j, cell in enumerate(cells):
            out[i, j] = _int(cell, f"{where}[{i}][{j}]", maximum=UNREACHABLE)
    return out


# --- places -----------------------------------------------------------------------------------------------------

class _Places:
    """The locations of a document: the matrix indices it gives (with `matrices`, `size` rows), or its distinct
    coordinates numbered in order of appearance (without)."""

    def __init__(self, size: int | None) -> None:
        self.size = size
        self.points: dict[tuple[float, float], int] = {}
        self.fields: list[str] = []

    def _point(self, coords: tuple[float, float], where: str) -> int:
        if coords not in self.points:
            self.points[coords] = len(self.points)
            self.fields.append(where)
        return self.points[coords]

    def task(self, raw: Mapping[str, Any], where: str) -> tuple[int, Place]:
        coords = _coordinates(raw["location"], f"{where}.location") if raw.get("location") is not None else None
        if self.size is not None:
            if "location_index" not in raw:
                raise VroomError(f"{where}.location_index", "required (give travel times in `matrices`)")
            index = _int(raw["location_index"], f"{where}.location_index", maximum=self.size - 1)
            return index, Place(location=coords, location_index=index)
        if coords is None:
            raise VroomError(f"{where}.location", "required: [lon, lat] on the map (or give `matrices` and "
                                                  "`location_index`)")
        return self._point(coords, f"{where}.location"), Place(location=coords)

    def vehicle(self, raw: Mapping[str, Any], where: str, key: str) -> tuple[int, Place] | None:
        """The vehicle's `start` or `end` (None when it has none: an open route)."""
        coords = _coordinates(raw[key], f"{where}.{key}") if raw.get(key) is not None else None
        if self.size is not None:
            if f"{key}_index" not in raw:
                if coords is not None:
                    raise VroomError(f"{where}.{key}_index", f"required with `matrices` ({key} gives coordinates only)")
                return None
            index = _int(raw[f"{key}_index"], f"{where}.{key}_index", maximum=self.size - 1)
            return index, Place(location=coords, location_index=index)
        if coords is None:
            if raw.get(f"{key}_index") is not None:
                raise VroomError(f"{where}.{key}", f"required: [lon, lat] on the map ({key}_index needs `matrices`)")
            return None
        return self._point(coords, f"{where}.{key}"), Place(location=coords)


def _augment(matrix: np.ndarray, open_start: bool, open_end: bool) -> np.ndarray:
    """The matrix plus a location left for anywhere at no cost and reached from nowhere (`open_start`, index n) and
    one reached from anywhere at no cost and left for nowhere (`open_end`, the last index): a route that starts or
    ends there starts at its first task or ends at its last (VROOM's vehicles without `start` or `end`)."""
    if not (open_start or open_end):
        return matrix
    n = matrix.shape[0]
    size = n + open_start + open_end
    out = np.full((size, size), UNREACHABLE, dtype=np.int64)
    out[:n, :n] = matrix
    if open_start:
        out[n, :] = 0
    if open_end:
        out[:, size - 1] = 0
    return out


# --- the document -----------------------------------------------------------------------------------------------

_Base = dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]
"""{profile: (durations, distances or None, costs or None)}"""


@dataclass(frozen=True, slots=True, kw_only=True)
class _VehicleSpec:
    index: int
    id: int | str
    profile: str
    description: str | None
    start: tuple[int, Place] | None
    end: tuple[int, Place] | None
    capacity: tuple[int, ...]
    skills: frozenset[str]
    shift: TimeWindow
    breaks: tuple[Break, ...]
    break_ids: tuple[tuple[int | str, str | None], ...]
    fixed: int
    per_hour: int
    per_km: int
    speed: int
    max_tasks: int | None
    max_travel_time: int | None
    steps: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class _ShipmentSpec:
    pickup: Stop
    delivery: Stop
    amount: tuple[int, ...]
    skills: frozenset[str]
    tasks: tuple[Task, Task]


def parse(data: Any, *, router: Router | None = None, root: str = "the document") -> VroomInput:
    """The problem a VROOM document describes; `router` gives travel between coordinates when it has no
    `matrices`. Raises VroomError naming the field (`root` names the document itself)."""
    doc = _object(data, root)
    if "vehicles" not in doc:
        raise VroomError("vehicles", "missing (a VROOM document needs `vehicles`, and `jobs` or `shipments`)")
    raw_vehicles = [_object(raw, f"vehicles[{k}]") for k, raw in enumerate(_list(doc["vehicles"], "vehicles"))]
    if not raw_vehicles:
        raise VroomError("vehicles", "at least one vehicle is needed")
    raw_jobs = [_object(raw, f"jobs[{k}]") for k, raw in enumerate(_list(doc.get("jobs", []), "jobs"))]
    raw_shipments = [_object(raw, f"shipments[{k}]")
                     for k, raw in enumerate(_list(doc.get("shipments", []), "shipments"))]
    origin = _origin(doc)
    matrices = _given_matrices(doc)
    if matrices is None and router is None:
        raise VroomError("matrices", "missing: give per-profile `matrices` and `location_index`es, or send "
                                     "coordinates to a solver with a road map (`lastmile solve --network`, "
                                     "`POST /v1/solve`)")
    size = None if matrices is None else next(iter(matrices.values()))[0].shape[0]
    places = _Places(size)
    vehicles = [_vehicle(raw, k, places, origin) for k, raw in enumerate(raw_vehicles)]
    dims = len(vehicles[0].capacity)
    for v in vehicles[1:]:
        if len(v.capacity) != dims:
            raise VroomError(f"vehicles[{v.index}].capacity", f"has {len(v.capacity)} dimensions, vehicles[0] has "
                                                              f"{dims}")
    dims_of = "vehicles[0].capacity"
    jobs: list[Job] = []
    job_tasks: list[Task] = []
    for k, raw in enumerate(raw_jobs):
        job, task = _job(raw, f"jobs[{k}]", k, places, origin, dims, dims_of)
        jobs.append(job)
        job_tasks.append(task)
    shipments = [_shipment(raw, f"shipments[{k}]", len(raw_jobs) + 2 * k, places, origin, dims, dims_of)
                 for k, raw in enumerate(raw_shipments)]
    _check_unique("jobs", [t.id for t in job_tasks], ".id")
    _check_unique("shipments", [s.tasks[0].id for s in shipments], ".pickup.id")
    _check_unique("shipments", [s.tasks[1].id for s in shipments], ".delivery.id")
    _check_unique("vehicles", [v.id for v in vehicles], ".id")
    base = _base_matrices(matrices, places, vehicles, router)
    return _build(vehicles, jobs, job_tasks, shipments, base, origin, report=matrices is None or all(
        base[v.profile][1] is not None for v in vehicles))


def _given_matrices(doc: Mapping[str, Any]) -> _Base | None:
    """{profile: (durations, distances or None, costs or None)} of `matrices` (or the deprecated `matrix`, the
    durations of `car`), None when the document has neither."""
    if "matrices" not in doc:
        if doc.get("matrix") is None:
            return None
        return {"car": (_matrix(doc["matrix"], "matrix", None), None, None)}
    raw = _object(doc["matrices"], "matrices")
    if not raw:
        raise VroomError("matrices", "needs at least one profile")
    out: _Base = {}
    size: int | None = None
    for profile, entry in raw.items():
        where = f"matrices.{profile}"
        m = _object(entry, where)
        if "durations" not in m:
            raise VroomError(f"{where}.durations", "missing")
        durations = _matrix(m["durations"], f"{where}.durations", size)
        size = durations.shape[0]
        distances = None if m.get("distances") is None else _matrix(m["distances"], f"{where}.distances", size)
        costs = None if m.get("costs") is None else _matrix(m["costs"], f"{where}.costs", size)
        out[profile] = (durations, distances, costs)
    return out


def _check_unique(kind: str, ids: Sequence[int | str], key: str) -> None:
    seen: dict[str, int] = {}
    for k, value in enumerate(ids):
        if str(value) in seen:
            raise VroomError(f"{kind}[{k}]{key}", f"duplicate id {_show(value)} (also {kind}[{seen[str(value)]}])")
        seen[str(value)] = k


def _task_stop(raw: Mapping[str, Any], where: str, places: _Places, origin: int) -> tuple[Stop, Place]:
    for key, advice in (("setup", "add it to `service`"), ("setup_per_type", "give one `service`"),
                        ("service_per_type", "give one `service`")):
        _unsupported(raw, where, key, advice, default=0 if key == "setup" else None)
    index, place = places.task(raw, where)
    windows = _windows(raw.get("time_windows"), f"{where}.time_windows", origin)
    service = _int(raw.get("service", 0), f"{where}.service")
    try:
        stop = Stop(location=index, service=service, time_windows=windows)
    except InvalidProblemError as exc:  # only the windows are left to check: they overlap
        raise VroomError(f"{where}.time_windows", str(exc).removeprefix("time_windows: ")) from None
    return stop, place


def _priority(raw: Mapping[str, Any], where: str) -> int:
    return 0 if raw.get("priority") is None else _int(raw["priority"], f"{where}.priority", maximum=100)


def _job(raw: Mapping[str, Any], where: str, rank: int, places: _Places, origin: int, dims: int,
         dims_of: str) -> tuple[Job, Task]:
    if "id" not in raw:
        raise VroomError(f"{where}.id", "missing")
    label = _id(raw["id"], f"{where}.id")
    stop, place = _task_stop(raw, where, places, origin)
    legacy = raw.get("delivery") is None and raw.get("pickup") is None
    delivery = _amount(raw.get("amount") if legacy else raw.get("delivery"),
                       f"{where}.{'amount' if legacy else 'delivery'}", dims, dims_of)
    job = Job(id=str(label), stop=stop, delivery=delivery,
              pickup=_amount(raw.get("pickup"), f"{where}.pickup", dims, dims_of),
              skills=_skills(raw.get("skills"), f"{where}.skills"))
    task = Task(type="job", id=label, place=place, rank=rank,
                description=_string(raw.get("description"), f"{where}.description"), priority=_priority(raw, where))
    return job, task


def _shipment(raw: Mapping[str, Any], where: str, rank: int, places: _Places, origin: int, dims: int,
              dims_of: str) -> _ShipmentSpec:
    for part in ("pickup", "delivery"):
        if part not in raw:
            raise VroomError(f"{where}.{part}", "missing (a shipment needs `pickup` and `delivery`)")
    stops: list[Stop] = []
    tasks: list[Task] = []
    priority = _priority(raw, where)
    parts: tuple[TaskType, TaskType] = ("pickup", "delivery")
    for offset, part in enumerate(parts):
        step = _object(raw[part], f"{where}.{part}")
        if "id" not in step:
            raise VroomError(f"{where}.{part}.id", "missing")
        label = _id(step["id"], f"{where}.{part}.id")
        stop, place = _task_stop(step, f"{where}.{part}", places, origin)
        stops.append(stop)
        tasks.append(Task(type=part, id=label, place=place, rank=rank + offset, priority=priority,
                          description=_string(step.get("description"), f"{where}.{part}.description")))
    return _ShipmentSpec(pickup=stops[0], delivery=stops[1], amount=_amount(raw.get("amount"), f"{where}.amount",
                                                                            dims, dims_of),
                         skills=_skills(raw.get("skills"), f"{where}.skills"), tasks=(tasks[0], tasks[1]))


def _vehicle(raw: Mapping[str, Any], k: int, places: _Places, origin: int) -> _VehicleSpec:
    where = f"vehicles[{k}]"
    if "id" not in raw:
        raise VroomError(f"{where}.id", "missing")
    label = _id(raw["id"], f"{where}.id")
    profile = raw.get("profile", "car")
    if not isinstance(profile, str) or not profile:
        raise VroomError(f"{where}.profile", f"must be a non-empty string, got {_show(profile)}")
    start, end = places.vehicle(raw, where, "start"), places.vehicle(raw, where, "end")
    if start is None and end is None:
        raise VroomError(f"{where}.start", "a vehicle needs `start` or `end` (`start_index` or `end_index` with "
                                           "`matrices`)")
    costs = {} if raw.get("costs") is None else _object(raw["costs"], f"{where}.costs")
    _unsupported(costs, f"{where}.costs", "per_task_hour", "task time costs nothing here", default=0)
    for key, advice in (("max_distance", "bound `max_travel_time` or `max_tasks` instead"),):
        _unsupported(raw, where, key, advice)
    _string(raw.get("type"), f"{where}.type")
    breaks: list[Break] = []
    break_ids: list[tuple[int | str, str | None]] = []
    for b, braw in enumerate([] if raw.get("breaks") is None else _list(raw["breaks"], f"{where}.breaks")):
        bw = f"{where}.breaks[{b}]"
        brk = _object(braw, bw)
        if "id" not in brk:
            raise VroomError(f"{bw}.id", "missing")
        bid = _id(brk["id"], f"{bw}.id")
        _unsupported(brk, bw, "max_load", "breaks are taken whatever the load")
        windows = _windows(brk.get("time_windows"), f"{bw}.time_windows", origin)
        if len(windows) > 1:
            raise VroomError(f"{bw}.time_windows", f"not supported: one window per break, got {len(windows)}")
        breaks.append(Break(window=windows[0] if windows else TimeWindow(),
                            duration=_int(brk.get("service", 0), f"{bw}.service")))
        break_ids.append((bid, _string(brk.get("description"), f"{bw}.description")))
    _check_unique(f"{where}.breaks", [b for b, _ in break_ids], ".id")
    speed = 100
    if raw.get("speed_factor") is not None:
        factor = raw["speed_factor"]
        if not isinstance(factor, int | float) or isinstance(factor, bool) or not (0 < factor <= 5):
            raise VroomError(f"{where}.speed_factor", f"must be a number in (0, 5], got {_show(factor)}")
        speed = round(factor * 100)
        if speed == 0:
            raise VroomError(f"{where}.speed_factor", f"must be at least 0.01 (two decimals), got {factor}")
    limits = {key: None if raw.get(key) is None else _int(raw[key], f"{where}.{key}")
              for key in ("max_tasks", "max_travel_time")}
    shift = TimeWindow() if raw.get("time_window") is None else _window(raw["time_window"], f"{where}.time_window",
                                                                        origin)
    for b, taken in enumerate(breaks):
        _check_break(taken, f"{where}.breaks[{b}]", shift, origin)
    return _VehicleSpec(
        index=k, id=label, profile=profile, description=_string(raw.get("description"), f"{where}.description"),
        start=start, end=end, capacity=_amount(raw.get("capacity"), f"{where}.capacity"),
        skills=_skills(raw.get("skills"), f"{where}.skills"),
        shift=shift, breaks=tuple(breaks), break_ids=tuple(break_ids),
        fixed=_int(costs.get("fixed", 0), f"{where}.costs.fixed"),
        per_hour=_int(costs.get("per_hour", PER_HOUR), f"{where}.costs.per_hour"),
        per_km=_int(costs.get("per_km", 0), f"{where}.costs.per_km"), speed=speed,
        max_tasks=limits["max_tasks"], max_travel_time=limits["max_travel_time"], steps=raw.get("steps"))


def _check_break(brk: Break, where: str, shift: TimeWindow, origin: int) -> None:
    """A break the vehicle can take within its `time_window`: starting in its own window, not before the shift
    starts, and over by the time the shift ends (else every plan using the vehicle would break its shift)."""
    earliest = max(brk.window.start, shift.start)
    hours = f"the vehicle's time_window [{shift.start + origin}, {shift.end + origin}]"
    if brk.duration > shift.end - shift.start:
        raise VroomError(where, f"lasts {brk.duration} s, longer than {hours}")
    if earliest > brk.window.end:
        raise VroomError(where, f"its window closes at {brk.window.end + origin}, before {hours} opens")
    if earliest + brk.duration > shift.end:
        raise VroomError(where, f"cannot be over within {hours}: it starts at {earliest + origin} at the earliest "
                                f"and lasts {brk.duration} s")


def _base_matrices(given: _Base | None, places: _Places, vehicles: Sequence[_VehicleSpec],
                   router: Router | None) -> _Base:
    """{profile: (durations, distances or None, costs or None)} for every profile a vehicle uses."""
    if given is not None:
        for v in vehicles:
            if v.profile not in given:
                raise VroomError(f"vehicles[{v.index}].profile", f"no matrices for profile {v.profile!r} (matrices "
                                                                 f"has {', '.join(sorted(given))})")
        return given
    assert router is not None
    for v in vehicles:
        if v.profile not in router.profiles:
            raise VroomError(f"vehicles[{v.index}].profile", f"unknown profile {v.profile!r}; the map has "
                                                             f"{', '.join(router.profiles)}")
    points = np.array(list(places.points), dtype=np.float64).reshape(-1, 2)
    profiles = sorted({v.profile for v in vehicles})
    routed = router(points, places.fields, profiles)
    return {p: (routed[p][0], routed[p][1], None) for p in profiles}


def _objective(durations: np.ndarray, distances: np.ndarray | None, per_hour: int, per_km: int,
               where: str) -> np.ndarray:
    """VROOM's travel cost of each arc: per_hour per hour of travel plus per_km per km, rounded."""
    if per_hour == PER_HOUR and per_km == 0:
        return durations
    metres = np.zeros_like(durations) if distances is None else distances
    cost = np.rint(durations * (per_hour / 3600) + metres * (per_km / 1000))
    blocked = durations >= UNREACHABLE
    if (cost[~blocked] >= UNREACHABLE).any():
        raise VroomError(where, f"gives arc costs beyond the solvers' range (below {UNREACHABLE})")
    return np.where(blocked, UNREACHABLE, cost).astype(np.int64)


def _build(specs: Sequence[_VehicleSpec], jobs: list[Job], job_tasks: list[Task], shipments: list[_ShipmentSpec],
           base: _Base, origin: int, *, report: bool) -> VroomInput:
    open_start = any(v.start is None for v in specs)
    open_end = any(v.end is None for v in specs)
    n = next(iter(base.values()))[0].shape[0]
    durations: dict[str, np.ndarray] = {}
    distances: dict[str, np.ndarray] = {}
    metres: dict[str, np.ndarray] = {}
    costs: dict[str, np.ndarray | None] = {}
    for profile, (dur, dist, cost) in base.items():
        durations[profile] = _augment(dur, open_start, open_end)
        metres[profile] = distances[profile] = durations[profile] if dist is None else _augment(dist, open_start,
                                                                                             open_end)
        costs[profile] = None if cost is None else _augment(cost, open_start, open_end)
    keys: dict[tuple[str, int, int, int], str] = {}
    vehicle_keys: list[str] = []
    for v in specs:
        where = f"vehicles[{v.index}]"
        custom = costs[v.profile]
        if custom is not None and (v.per_hour != PER_HOUR or v.per_km):
            raise VroomError(f"{where}.costs", f"per_hour and per_km cannot be combined with matrices.{v.profile}"
                                               ".costs")
        if v.per_km and base[v.profile][1] is None:
            raise VroomError(f"{where}.costs.per_km", f"needs matrices.{v.profile}.distances")
        spec = (v.profile, v.speed, v.per_hour, v.per_km)
        if spec not in keys:
            dur = durations[v.profile]
            if v.speed != 100:
                dur = np.where(dur >= UNREACHABLE, UNREACHABLE,
                               np.minimum((dur * 100 + v.speed // 2) // v.speed, UNREACHABLE))
            objective = custom if custom is not None else _objective(dur, metres[v.profile], v.per_hour, v.per_km,
                                                                     f"{where}.costs")
            if dur is durations[v.profile] and np.array_equal(objective, distances[v.profile]):
                key = v.profile
            else:
                parts = [] if v.speed == 100 else [f"speed_factor {v.speed / 100:g}"]
                parts.append("costs" if custom is not None else f"per_hour {v.per_hour}, per_km {v.per_km}")
                key = f"{v.profile} ({', '.join(parts)})"
                durations[key], distances[key], metres[key] = dur, objective, metres[v.profile]
            keys[spec] = key
        vehicle_keys.append(keys[spec])
    vehicles, all_jobs, all_tasks, kept = _lock_steps(specs, jobs, job_tasks, shipments, vehicle_keys, n,
                                                      open_start, open_end)
    fleet = tuple(Fleet(id=v.id, description=v.description, start=None if v.start is None else v.start[1],
                        end=None if v.end is None else v.end[1], breaks=v.break_ids) for v in specs)
    _check_internal_ids(all_jobs, all_tasks, len(jobs), [shipments[i] for i in kept], specs)
    try:
        problem = Problem(durations=durations, distances=distances, jobs=tuple(all_jobs),
                          shipments=tuple(Shipment(id=_shipment_id(shipments[i]), pickup=shipments[i].pickup,
                                                   delivery=shipments[i].delivery, amount=shipments[i].amount,
                                                   skills=shipments[i].skills) for i in kept),
                          vehicles=tuple(vehicles))
    except InvalidProblemError as exc:
        raise VroomError("", str(exc)) from None
    out = VroomInput(problem=problem, jobs=tuple(all_tasks), shipments=tuple(shipments[i].tasks for i in kept),
                     vehicles=fleet, distances={k: metres[k] for k in durations}, report_distances=report,
                     origin=origin)
    _check_executed(out)
    return out


def _shipment_id(s: _ShipmentSpec) -> str:
    return f"{s.tasks[0].id}/{s.tasks[1].id}"


def _vehicle_id(v: _VehicleSpec) -> str:
    return f"#{v.id}"


def _check_internal_ids(jobs: Sequence[Job], tasks: Sequence[Task], n_jobs: int,
                        shipments: Sequence[_ShipmentSpec], specs: Sequence[_VehicleSpec]) -> None:
    """The problem's ids (a job's own, `pickup/delivery` of a shipment, `#id` of a vehicle) are distinct: only
    string ids of the document can make two alike."""

    def field(task: Task) -> str:
        if task.rank < n_jobs:
            return f"jobs[{task.rank}].id"
        return f"shipments[{(task.rank - n_jobs) // 2}].{task.type}.id"

    named = [(j.id, field(t)) for j, t in zip(jobs, tasks, strict=True)]
    named += [(_shipment_id(s), field(s.tasks[0])) for s in shipments]
    named += [(_vehicle_id(v), f"vehicles[{v.index}].id") for v in specs]
    seen: dict[str, str] = {}
    for key, where in named:
        if key in seen:
            raise VroomError(where, f"makes the id {key!r}, which {seen[key]} makes too; choose another")
        seen[key] = where


def _lock_steps(specs: Sequence[_VehicleSpec], jobs: list[Job], job_tasks: list[Task],
                shipments: list[_ShipmentSpec], keys: Sequence[str], n: int, open_start: bool,
                open_end: bool) -> tuple[list[Vehicle], list[Job], list[Task], list[int]]:
    """Vehicles with their executed `steps` locked first; a shipment with an executed pickup becomes two jobs
    (its pickup locked, its delivery locked too or left to that vehicle alone, carrying the amount)."""
    ids: dict[str, dict[str, int]] = {
        "job": {str(t.id): i for i, t in enumerate(job_tasks)},
        "pickup": {str(s.tasks[0].id): i for i, s in enumerate(shipments)},
        "delivery": {str(s.tasks[1].id): i for i, s in enumerate(shipments)},
    }
    claimed: dict[tuple[str, int], str] = {}
    executed: list[list[tuple[str, int]]] = []
    for v in specs:
        listed = [] if v.steps is None else _steps(v.steps, f"vehicles[{v.index}].steps",
                                                   {str(b) for b, _ in v.break_ids}, ids)
        picked: set[int] = set()
        for kind, index, where in listed:
            if (kind, index) in claimed:
                raise VroomError(f"{where}.id", f"the {kind} is in {claimed[(kind, index)]} too")
            claimed[(kind, index)] = where
            if kind == "pickup":
                picked.add(index)
            if kind == "delivery" and index not in picked:
                raise VroomError(f"{where}.id", "a delivery in `steps` needs its shipment's pickup before it, on the "
                                                "same vehicle")
        executed.append([(kind, index) for kind, index, _ in listed])
    all_jobs, all_tasks = list(jobs), list(job_tasks)
    derived: dict[tuple[str, int], str] = {}
    onboard: dict[int, set[str]] = {}
    for k, steps in enumerate(executed):
        for kind, index in steps:
            if kind != "pickup":
                continue
            s = shipments[index]
            derived[("pickup", index)] = f"pickup {s.tasks[0].id}"
            all_jobs.append(Job(id=derived[("pickup", index)], stop=s.pickup, skills=s.skills))
            all_tasks.append(s.tasks[0])
            derived[("delivery", index)] = f"delivery {s.tasks[1].id}"
            if ("delivery", index) in claimed:
                all_jobs.append(Job(id=derived[("delivery", index)], stop=s.delivery, skills=s.skills))
            else:
                skill = f"on board vehicles[{k}]"
                onboard.setdefault(k, set()).add(skill)
                all_jobs.append(Job(id=derived[("delivery", index)], stop=s.delivery, delivery=s.amount,
                                    skills=s.skills | {skill}))
            all_tasks.append(s.tasks[1])
    start_of, end_of = n, n + open_start + open_end - 1
    vehicles = []
    for k, v in enumerate(specs):
        locked = tuple(all_jobs[index].id if kind == "job" else derived[(kind, index)] for kind, index in executed[k])
        vehicles.append(Vehicle(
            id=_vehicle_id(v), start=start_of if v.start is None else v.start[0],
            end=end_of if v.end is None else v.end[0], shift=v.shift, capacity=v.capacity, profile=keys[k],
            fixed_cost=v.fixed, max_duration=v.max_travel_time, max_stops=v.max_tasks, breaks=v.breaks,
            skills=v.skills | onboard.get(k, set()), locked=locked))
    kept = [i for i in range(len(shipments)) if ("pickup", i) not in derived]
    return vehicles, all_jobs, all_tasks, kept


def _steps(raw: Any, where: str, breaks: set[str], ids: Mapping[str, Mapping[str, int]]) -> list[tuple[str, int, str]]:
    """The executed tasks of a vehicle's `steps`, in order, as (type, index in jobs or shipments, field); `start`,
    `end` and `break` steps place nothing (VROOM's solving mode), `service_*` bounds are checked and unused."""
    steps = _list(raw, where)
    out: list[tuple[str, int, str]] = []
    for i, sraw in enumerate(steps):
        w = f"{where}[{i}]"
        step = _object(sraw, w)
        kind = step.get("type")
        if kind not in STEP_TYPES:
            raise VroomError(f"{w}.type", f"must be one of {', '.join(STEP_TYPES)}, got {_show(kind)}")
        for key in ("service_at", "service_after", "service_before"):
            if step.get(key) is not None:
                _int(step[key], f"{w}.{key}", maximum=MAX_TIME)
        if (kind == "start" and i != 0) or (kind == "end" and i != len(steps) - 1):
            raise VroomError(f"{w}.type", f"a `{kind}` step must come {'first' if kind == 'start' else 'last'}")
        if kind in ("start", "end"):
            continue
        if "id" not in step:
            raise VroomError(f"{w}.id", f"missing (a {kind} step names its {kind})")
        label = str(_id(step["id"], f"{w}.id"))
        if kind == "break":
            if label not in breaks:
                raise VroomError(f"{w}.id", f"the vehicle has no break {label}")
            continue
        if label not in ids[kind]:
            raise VroomError(f"{w}.id", f"no {kind} has id {label}")
        out.append((kind, ids[kind][label], w))
    return out


def _check_executed(doc: VroomInput) -> None:
    """Every vehicle's executed steps, alone, keep its constraints (windows, capacity, skills, max_tasks, shift);
    as VROOM refuses steps that describe an invalid route."""
    p = doc.problem
    routes = tuple(Route(vehicle=k, visits=tuple(Visit(kind="job", index=p.job_index(j)) for j in v.locked))
                   for k, v in enumerate(p.vehicles) if v.locked)
    if not routes:
        return
    evaluation = evaluate(p, Plan(routes=routes))
    for route, rev in zip(routes, evaluation.routes, strict=True):
        for message in rev.violations:
            if "break" not in message:
                raise VroomError(f"vehicles[{route.vehicle}].steps", f"the executed steps alone break a constraint: "
                                                                     f"{message}")
    for message in evaluation.violations:
        if "needs skills" in message:
            vehicle = next(k for k, v in enumerate(p.vehicles) if message.startswith(f"vehicle {v.id}:"))
            raise VroomError(f"vehicles[{vehicle}].steps", f"the executed steps alone break a constraint: {message}")


# --- coordinates on a road map ----------------------------------------------------------------------------------

class RoadMatrices:
    """Travel between (lon, lat) points on a road map, for documents without `matrices`: each point snapped to its
    nearest road node (at most `max_snap_m` away, else a routing error naming the point's field), then the
    `engine`'s free-flow matrices per profile (no time of day). Engines are kept per profile; one call at a time."""

    def __init__(self, network: RoadNetwork, *, max_snap_m: float = 500.0, engine: Literal["cch", "scipy"] = "cch"):
        self.network = network
        self.max_snap_m = max_snap_m
        self.engine = engine
        self.profiles = tuple(sorted(PROFILES))
        self._engines: dict[str, TravelTimes] = {}
        self._lock = threading.Lock()

    def __call__(self, points: np.ndarray, fields: Sequence[str],
                 profiles: Sequence[str]) -> Mapping[str, tuple[np.ndarray, np.ndarray]]:
        hit = snap(self.network, points, max_distance_m=self.max_snap_m)
        far = np.flatnonzero(hit.too_far)
        if far.size:
            i = int(far[0])
            lon, lat = points[i]
            raise VroomError(fields[i], f"({lon:.6f}, {lat:.6f}) is {hit.distance_m[i]:.0f} m from the nearest road "
                                        f"of the map (limit {self.max_snap_m:.0f} m): off the map?",
                             code=ROUTING_ERROR)
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        with self._lock:
            for profile in profiles:
                if profile not in self._engines:
                    self._engines[profile] = make_engine(self.engine, self.network, profile)
                m = self._engines[profile].matrix(hit.nodes, hit.nodes)
                out[profile] = (m.durations, m.distances)
        return out


# --- the answer -------------------------------------------------------------------------------------------------

_CAUSES = (("window closed", "delay"), ("after its shift ends", "delay"), ("after its window closes", "delay"),
           ("exceeds capacity", "load"), ("max_stops", "max_tasks"), ("needs skills", "skills"),
           ("its pickup", "precedence"), ("must take each of its", "missing_break"),
           ("max_duration", "max_travel_time"))


def _violation(message: str) -> dict[str, str]:
    cause = next((c for text, c in _CAUSES if text in message), "other")
    return {"cause": cause, "description": message}


def _add(total: list[int], amounts: Sequence[int]) -> None:
    for d, a in enumerate(amounts):
        total[d] += a


def render(doc: VroomInput, result: SolveResult, *, loading_ms: int = 0) -> dict[str, Any]:
    """The solution in VROOM's output shape (`code` 0, `summary`, `unassigned` with a `reason` each, `routes` with
    their steps); times are the document's own (the problem's plus `doc.origin`)."""
    p = doc.problem
    dims = p.n_dims
    by_vehicle = {r.vehicle: r for r in result.evaluation.routes}
    routes = [_route(doc, route, by_vehicle[route.vehicle], late_schedule(p, route))
              for route in result.plan.routes if route.visits]
    unassigned: list[tuple[int, dict[str, Any]]] = []
    for u in result.plan.unassigned:
        tasks = [doc.jobs[u.index]] if u.kind == "job" else list(doc.shipments[u.index])
        for task in tasks:
            entry: dict[str, Any] = {"id": task.id, "type": task.type, **task.place.json()}
            if task.description is not None:
                entry["description"] = task.description
            entry["reason"] = u.reason
            unassigned.append((task.rank, entry))
    summary: dict[str, Any] = {"cost": sum(r["cost"] for r in routes), "routes": len(routes),
                               "unassigned": len(unassigned)}
    if dims:
        for key in ("delivery", "amount", "pickup"):
            total = [0] * dims
            for r in routes:
                _add(total, r[key])
            summary[key] = total
    for key in ("setup", "service", "duration", "waiting_time", "priority"):
        summary[key] = sum(r[key] for r in routes)
    if doc.report_distances:
        summary["distance"] = sum(r["distance"] for r in routes)
    summary["violations"] = [v for r in routes for v in r["violations"]]
    summary["computing_times"] = {"loading": loading_ms, "solving": round(result.runtime_s * 1000), "routing": 0}
    return {"code": 0, "summary": summary, "unassigned": [e for _, e in sorted(unassigned, key=lambda x: x[0])],
            "routes": routes}


def _route(doc: VroomInput, route: Route, rev: RouteEvaluation, schedule: RouteEvaluation) -> dict[str, Any]:
    """One route of the answer: its cost from the plan's evaluation `rev`, its steps, times and violations from
    the `schedule` it is driven on (`routing.evaluate.late_schedule`: leaving as late as the plan allows)."""
    p = doc.problem
    v = p.vehicles[route.vehicle]
    fleet = doc.vehicles[route.vehicle]
    dims, origin = p.n_dims, doc.origin
    dur, metres = p.durations[v.profile], doc.distances[v.profile]
    legs: list[tuple[list[VisitTiming], VisitTiming | None]] = []
    pending: list[VisitTiming] = []
    for t in schedule.timings:
        if t.visit.kind == "break":
            pending.append(t)
        elif t.visit.kind != "reload":
            legs.append((pending, t))
            pending = []
    legs.append((pending, None))
    tasks = [doc.task(t.visit) for _, t in legs if t is not None]
    load = [0] * dims
    for x in route.visits:
        if x.kind == "job":
            _add(load, p.jobs[x.index].delivery)
    clock = schedule.departure
    start_place = fleet.start if fleet.start is not None else tasks[0].place
    end_place = fleet.end if fleet.end is not None else tasks[-1].place
    steps: list[dict[str, Any]] = []
    totals = {"service": 0, "waiting_time": 0, "priority": sum(t.priority for t in tasks)}
    delivery, pickup = [0] * dims, [0] * dims

    def step(kind: str, place: Place | None, arrival: int, service: int, waiting: int, travel: int, distance: int,
             label: int | str | None = None, description: str | None = None) -> None:
        out: dict[str, Any] = {"type": kind, **(place.json() if place is not None else {})}
        if label is not None:
            out["id"] = label
        if description is not None:
            out["description"] = description
        out.update(setup=0, service=service, waiting_time=waiting)
        if dims:
            out["load"] = list(load)
        out.update(arrival=arrival + origin, duration=travel, violations=[])
        if doc.report_distances:
            out["distance"] = distance
        steps.append(out)
        totals["service"] += service
        totals["waiting_time"] += waiting

    step("start", start_place, clock, 0, 0, 0, 0)
    here, travel, distance = v.start, 0, 0
    for breaks, at in legs:
        dest = v.end_location if at is None else _stop_location(p, at.visit)
        leg, leg_m = int(dur[here, dest]), int(metres[here, dest])
        left = leg
        for b in breaks:
            driven = min(left, max(0, b.start - clock))
            left -= driven
            travel += driven
            part = distance + (leg_m * (leg - left) // leg if leg else 0)
            bid, bdesc = fleet.breaks[b.visit.index]
            step("break", None, clock + driven, b.departure - b.start, b.start - clock - driven, travel, part, bid,
                 bdesc)
            clock = b.departure
        travel += left
        distance += leg_m
        arrival = clock + left
        if at is None:
            step("end", end_place, arrival, 0, 0, travel, distance)
            break
        task = doc.task(at.visit)
        load = list(at.load)
        if at.visit.kind == "job":
            job = p.jobs[at.visit.index]
            _add(delivery, job.delivery)
            _add(pickup, job.pickup)
        else:
            _add(pickup if at.visit.kind == "pickup" else delivery, p.shipments[at.visit.index].amount)
        step(task.type, task.place, arrival, at.departure - at.start, at.start - arrival, travel, distance, task.id,
             task.description)
        clock, here = at.departure, dest
    cost = p.distance_cost * rev.distance + p.duration_cost * rev.duration + v.fixed_cost + rev.lateness_cost
    out: dict[str, Any] = {"vehicle": fleet.id, "cost": int(cost)}
    if fleet.description is not None:
        out["description"] = fleet.description
    if dims:
        out.update(delivery=delivery, amount=list(delivery), pickup=pickup)
    out.update(setup=0, service=totals["service"], duration=travel, waiting_time=totals["waiting_time"],
               priority=totals["priority"])
    if doc.report_distances:
        out["distance"] = distance
    out["steps"] = steps
    out["violations"] = [_violation(m) for m in schedule.violations]
    return out


def _stop_location(p: Problem, visit: Visit) -> int:
    if visit.kind == "job":
        return p.jobs[visit.index].stop.location
    s = p.shipments[visit.index]
    return (s.pickup if visit.kind == "pickup" else s.delivery).location
