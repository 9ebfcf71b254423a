"""Vehicle-routing problem and plan types: jobs, shipments, vehicles over integer matrices (dense indices)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from routing.errors import InvalidProblemError

HORIZON = 10**9
"""An end of time far beyond any real shift, in the problem's time unit."""

UNREACHABLE = 2**31 - 1
"""Matrix entry of a pair that no road connects."""

VisitKind = Literal["job", "pickup", "delivery", "reload", "break"]


def _fail(field_name: str, message: str) -> None:
    raise InvalidProblemError(f"{field_name}: {message}")


def _check_amounts(field_name: str, amounts: tuple[int, ...]) -> None:
    if any(a < 0 for a in amounts):
        _fail(field_name, f"must not be negative, got {list(amounts)}")


def _check_task(task: Job | Shipment, kind: str) -> None:
    if not task.id:
        _fail(f"{kind}.id", "must not be empty")
    if task.lateness_cost < 0:
        _fail(f"{kind} {task.id}: lateness_cost", f"must not be negative, got {task.lateness_cost}")
    if task.penalty is not None and task.penalty < 0:
        _fail(f"{kind} {task.id}: penalty", f"must not be negative, got {task.penalty}")
    object.__setattr__(task, "skills", frozenset(task.skills))


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeWindow:
    """When service may start: `start <= t <= end`."""

    start: int = 0
    end: int = HORIZON

    def __post_init__(self) -> None:
        if self.end < self.start:
            _fail("time_window", f"closes at {self.end} before it opens at {self.start}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    """One place to serve: a matrix index, a service time and the windows its service may start in."""

    location: int
    service: int = 0
    time_windows: tuple[TimeWindow, ...] = ()

    def __post_init__(self) -> None:
        if self.location < 0:
            _fail("location", f"must be a matrix index >= 0, got {self.location}")
        if self.service < 0:
            _fail("service", f"must not be negative, got {self.service}")
        ordered = sorted(self.time_windows, key=lambda w: w.start)
        for a, b in itertools.pairwise(ordered):
            if b.start <= a.end:
                _fail("time_windows", "must not overlap")
        object.__setattr__(self, "time_windows", tuple(ordered))

    @property
    def earliest(self) -> int:
        return self.time_windows[0].start if self.time_windows else 0

    @property
    def latest(self) -> int:
        return self.time_windows[-1].end if self.time_windows else HORIZON

    def service_start(self, arrival: int) -> int | None:
        """The first moment at or after `arrival` that a window allows, or None when all have closed."""
        if not self.time_windows:
            return arrival
        for w in self.time_windows:
            if arrival <= w.end:
                return max(arrival, w.start)
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A single stop served from the vehicle's depot: a delivery (and/or a pickup brought back to the depot).

    Time costs (per second of service start, both soft): `lateness_cost` past `deadline`, and `wait_cost` from
    `wait_from` (e.g. the customer's click-to-door from placement), which may be given together.
    """

    id: str
    stop: Stop
    delivery: tuple[int, ...] = ()
    pickup: tuple[int, ...] = ()
    release: int = 0
    deadline: int | None = None
    lateness_cost: int = 0
    wait_from: int | None = None
    wait_cost: int = 0
    penalty: int | None = None
    skills: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _check_task(self, "job")
        if self.wait_cost < 0:
            _fail(f"job {self.id}: wait_cost", f"must not be negative, got {self.wait_cost}")
        _check_amounts(f"job {self.id}: delivery", self.delivery)
        _check_amounts(f"job {self.id}: pickup", self.pickup)
        if self.release < 0:
            _fail(f"job {self.id}: release", f"must not be negative, got {self.release}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Shipment:
    """A pickup-and-delivery pair carried by one vehicle, pickup first."""

    id: str
    pickup: Stop
    delivery: Stop
    amount: tuple[int, ...] = ()
    deadline: int | None = None
    lateness_cost: int = 0
    penalty: int | None = None
    skills: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _check_task(self, "shipment")
        _check_amounts(f"shipment {self.id}: amount", self.amount)


@dataclass(frozen=True, slots=True, kw_only=True)
class Break:
    """A rest of `duration` that must start inside `window`, taken on the road or while waiting, not mid-service."""

    window: TimeWindow
    duration: int

    def __post_init__(self) -> None:
        if self.duration < 0:
            _fail("break.duration", f"must not be negative, got {self.duration}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Vehicle:
    """A vehicle, its shift and limits; `locked` job ids are served first, in this order, whatever happens.

    `end` defaults to `start`; `depot` (where a multi-trip vehicle reloads) defaults to `start` too.
    """

    id: str
    start: int
    end: int | None = None
    depot: int | None = None
    shift: TimeWindow = TimeWindow()
    capacity: tuple[int, ...] = ()
    profile: str = "car"
    fixed_cost: int = 0
    max_duration: int | None = None
    max_stops: int | None = None
    max_trips: int = 1
    breaks: tuple[Break, ...] = ()
    skills: frozenset[str] = frozenset()
    locked: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.id:
            _fail("vehicle.id", "must not be empty")
        if min(self.start, self.end_location, self.reload_location) < 0:
            _fail(f"vehicle {self.id}: start/end/depot", "must be matrix indices >= 0")
        _check_amounts(f"vehicle {self.id}: capacity", self.capacity)
        for name in ("fixed_cost", "max_duration", "max_stops"):
            value = getattr(self, name)
            if value is not None and value < 0:
                _fail(f"vehicle {self.id}: {name}", f"must not be negative, got {value}")
        if self.max_trips < 1:
            _fail(f"vehicle {self.id}: max_trips", f"must be at least 1, got {self.max_trips}")
        object.__setattr__(self, "skills", frozenset(self.skills))

    @property
    def end_location(self) -> int:
        return self.start if self.end is None else self.end

    @property
    def reload_location(self) -> int:
        return self.start if self.depot is None else self.depot


@dataclass(frozen=True, slots=True, kw_only=True)
class Visit:
    """One step of a route: a job, a shipment's pickup or delivery, a reload at the depot, or break number `index`."""

    kind: VisitKind
    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """The ordered visits of one vehicle (depot start and end are implicit)."""

    vehicle: int
    visits: tuple[Visit, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Unassigned:
    """A job or shipment left off every route, with the reason a user can act on."""

    kind: Literal["job", "shipment"]
    index: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A solution: routes of the vehicles used and what stayed unassigned."""

    routes: tuple[Route, ...] = ()
    unassigned: tuple[Unassigned, ...] = ()


def _as_matrix(name: str, matrix: np.ndarray, size: int | None) -> np.ndarray:
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        _fail(name, f"must be a square matrix, got shape {m.shape}")
    if size is not None and m.shape[0] != size:
        _fail(name, f"must be {size}x{size} like the others, got {m.shape}")
    if not np.issubdtype(m.dtype, np.integer):
        _fail(name, f"must hold integers, got {m.dtype}")
    if (m < 0).any():
        _fail(name, "must not hold negative values")
    m = m.astype(np.int64, copy=False)
    m.flags.writeable = False
    return m


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """A routing problem over per-profile integer duration and distance matrices (locations = matrix indices)."""

    durations: Mapping[str, np.ndarray]
    distances: Mapping[str, np.ndarray]
    jobs: tuple[Job, ...] = ()
    shipments: tuple[Shipment, ...] = ()
    vehicles: tuple[Vehicle, ...] = ()
    distance_cost: int = 1
    duration_cost: int = 0
    initial: Plan | None = None
    _job_index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.vehicles:
            _fail("vehicles", "at least one vehicle is needed")
        size: int | None = None
        durations: dict[str, np.ndarray] = {}
        distances: dict[str, np.ndarray] = {}
        for profile, m in self.durations.items():
            durations[profile] = _as_matrix(f"durations[{profile}]", m, size)
            size = durations[profile].shape[0]
        for profile, m in self.distances.items():
            distances[profile] = _as_matrix(f"distances[{profile}]", m, size)
        object.__setattr__(self, "durations", durations)
        object.__setattr__(self, "distances", distances)
        n = self.n_locations
        ids: set[str] = set()
        for kind, items in (("job", self.jobs), ("shipment", self.shipments), ("vehicle", self.vehicles)):
            for item in items:
                if item.id in ids:
                    _fail(f"{kind}.id", f"duplicate id {item.id!r}")
                ids.add(item.id)
        dims = {len(v.capacity) for v in self.vehicles}
        if len(dims) > 1:
            _fail("vehicles.capacity", f"all vehicles need the same number of dimensions, got {sorted(dims)}")
        n_dims = dims.pop()
        for job in self.jobs:
            self._check_stop(f"job {job.id}", job.stop, n)
            for name, amounts in (("delivery", job.delivery), ("pickup", job.pickup)):
                if amounts and len(amounts) != n_dims:
                    _fail(f"job {job.id}: {name}", f"has {len(amounts)} dimensions, vehicles have {n_dims}")
        for s in self.shipments:
            self._check_stop(f"shipment {s.id}: pickup", s.pickup, n)
            self._check_stop(f"shipment {s.id}: delivery", s.delivery, n)
            if s.amount and len(s.amount) != n_dims:
                _fail(f"shipment {s.id}: amount", f"has {len(s.amount)} dimensions, vehicles have {n_dims}")
        job_index = {job.id: i for i, job in enumerate(self.jobs)}
        object.__setattr__(self, "_job_index", job_index)
        locked_by: dict[str, str] = {}
        for v in self.vehicles:
            if v.profile not in self.durations or v.profile not in self.distances:
                _fail(f"vehicle {v.id}: profile", f"no matrices for profile {v.profile!r}")
            for loc in (v.start, v.end_location, v.reload_location):
                if loc >= n:
                    _fail(f"vehicle {v.id}: start/end", f"location {loc} is outside the {n}x{n} matrix")
            for job_id in v.locked:
                if job_id not in job_index:
                    _fail(f"vehicle {v.id}: locked", f"unknown job {job_id!r}")
                if job_id in locked_by:
                    _fail(f"vehicle {v.id}: locked", f"job {job_id!r} is locked to {locked_by[job_id]} too")
                locked_by[job_id] = v.id

    @staticmethod
    def _check_stop(name: str, stop: Stop, n: int) -> None:
        if stop.location >= n:
            _fail(f"{name}: location", f"{stop.location} is outside the {n}x{n} matrix")

    @property
    def n_locations(self) -> int:
        return next(iter(self.durations.values())).shape[0]

    @property
    def n_dims(self) -> int:
        return len(self.vehicles[0].capacity)

    def job_index(self, job_id: str) -> int:
        return self._job_index[job_id]

    def locked_jobs(self) -> dict[int, int]:
        """Job index -> vehicle index for every locked job."""
        return {self._job_index[j]: vi for vi, v in enumerate(self.vehicles) for j in v.locked}
