"""Readers of benchmark and foreign instance files (Solomon, VRPLIB, VROOM-shaped JSON) into Problems."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import vrplib

from routing.errors import InvalidProblemError
from routing.evaluate import evaluate
from routing.problem import HORIZON, UNREACHABLE, Job, Plan, Problem, Shipment, Stop, TimeWindow, Vehicle

SOLOMON_SCALE = 1000
"""Solomon times and distances are multiplied by this and travel times rounded up, so no route is late."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Instance:
    """A problem read from a file, with the file's own names for its jobs and its own distance rule."""

    name: str
    problem: Problem
    job_labels: tuple[str | int, ...]
    exact_distance: Callable[[Plan], float]


def _bad(path: Path, message: str) -> InvalidProblemError:
    return InvalidProblemError(f"{path.name}: {message}")


def read_instance(path: str | Path) -> Instance:
    """Read a Solomon `.txt`, VRPLIB `.vrp` or VROOM-shaped `.json` instance."""
    path = Path(path)
    if not path.is_file():
        raise InvalidProblemError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return read_solomon(path)
    if suffix == ".vrp":
        return read_vrplib(path)
    if suffix == ".json":
        return read_vroom(path)
    raise InvalidProblemError(f"{path.name}: unknown format {suffix or '(no suffix)'!r}, "
                              "expected a Solomon .txt, VRPLIB .vrp or VROOM-shaped .json file")


def _read_vrplib_dict(path: Path, instance_format: str) -> dict[str, Any]:
    try:
        data = vrplib.read_instance(path, instance_format=instance_format)
    except (ValueError, IndexError, KeyError) as exc:
        raise _bad(path, f"not a readable {instance_format} file ({exc})") from exc
    for key in ("node_coord", "demand", "capacity"):
        if key not in data:
            raise _bad(path, f"missing {key}")
    return data


def _euclidean(coords: np.ndarray) -> np.ndarray:
    diff = coords[:, None, :] - coords[None, :, :]
    return np.sqrt((diff**2).sum(axis=-1))


def _check_demand(path: Path, demand: np.ndarray, labels: list[int]) -> None:
    for d, label in zip(demand, labels, strict=True):
        if d < 0:
            raise _bad(path, f"customer {label}: demand must not be negative, got {d}")


def _plan_distance(euclid: np.ndarray, problem: Problem, plan: Plan) -> float:
    total = 0.0
    for route in plan.routes:
        v = problem.vehicles[route.vehicle]
        path = [v.start]
        for x in route.visits:
            if x.kind != "break":
                path.append(v.reload_location if x.kind == "reload" else problem.jobs[x.index].stop.location)
        path.append(v.end_location)
        total += float(sum(euclid[a, b] for a, b in itertools.pairwise(path)))
    return total


def read_solomon(path: Path) -> Instance:
    data = _read_vrplib_dict(path, "solomon")
    coords = np.asarray(data["node_coord"], dtype=float)
    n = len(coords)
    demand = np.asarray(data["demand"]).astype(int)
    windows = np.asarray(data["time_window"]).astype(int)
    service = np.asarray(data["service_time"]).astype(int)
    _check_demand(path, demand, list(range(n)))
    for i in range(n):
        if windows[i, 1] < windows[i, 0]:
            raise _bad(path, f"customer {i}: time window closes at {windows[i, 1]} before it opens at "
                             f"{windows[i, 0]}")
        if service[i] < 0:
            raise _bad(path, f"customer {i}: service time must not be negative")
    euclid = _euclidean(coords)
    s = SOLOMON_SCALE
    durations = np.ceil(euclid * s - 1e-9).astype(np.int64)
    distances = np.rint(euclid * s).astype(np.int64)
    jobs = tuple(
        Job(id=str(i), stop=Stop(location=i, service=int(service[i]) * s,
                                 time_windows=(TimeWindow(start=int(windows[i, 0]) * s,
                                                          end=int(windows[i, 1]) * s),)),
            delivery=(int(demand[i]),))
        for i in range(1, n)
    )
    shift = TimeWindow(start=int(windows[0, 0]) * s, end=int(windows[0, 1]) * s)
    vehicles = tuple(Vehicle(id=f"v{k}", start=0, shift=shift, capacity=(int(data["capacity"]),))
                     for k in range(int(data.get("vehicles", n - 1))))
    problem = Problem(durations={"car": durations}, distances={"car": distances}, jobs=jobs, vehicles=vehicles)
    return Instance(name=str(data.get("name", path.stem)), problem=problem, job_labels=tuple(range(1, n)),
                    exact_distance=lambda plan: _plan_distance(euclid, problem, plan))


def read_vrplib(path: Path) -> Instance:
    data = _read_vrplib_dict(path, "vrplib")
    coords = np.asarray(data["node_coord"], dtype=float)
    n = len(coords)
    demand = np.asarray(data["demand"]).astype(int)
    _check_demand(path, demand, list(range(n)))
    depot = int(np.asarray(data.get("depot", [0]))[0])
    kind = str(data.get("edge_weight_type", "EUC_2D")).upper()
    euclid = _euclidean(coords)
    if kind == "EUC_2D":
        arcs = np.floor(euclid + 0.5)
    elif kind == "EXACT_2D":
        arcs = euclid
    elif kind == "EXPLICIT":
        arcs = np.asarray(data["edge_weight"], dtype=float)
    else:
        raise _bad(path, f"EDGE_WEIGHT_TYPE {kind} is not supported (EUC_2D, EXACT_2D, EXPLICIT are)")
    ints = np.rint(arcs).astype(np.int64) if kind != "EXACT_2D" else np.rint(arcs * 1000).astype(np.int64)
    capacity = int(data["capacity"])
    customers = [i for i in range(n) if i != depot]
    for i in customers:
        if demand[i] > capacity:
            raise _bad(path, f"customer {i}: demand {demand[i]} exceeds the vehicle capacity {capacity}")
    jobs = tuple(Job(id=str(i), stop=Stop(location=i), delivery=(int(demand[i]),)) for i in customers)
    lower = math.ceil(demand.sum() / capacity) if capacity else 1
    fleet = int(data.get("vehicles", min(len(customers), 2 * lower + 5)))
    vehicles = tuple(Vehicle(id=f"v{k}", start=depot, capacity=(capacity,)) for k in range(fleet))
    problem = Problem(durations={"car": ints}, distances={"car": ints}, jobs=jobs, vehicles=vehicles)
    return Instance(name=str(data.get("name", path.stem)), problem=problem,
                    job_labels=tuple(customers),
                    exact_distance=lambda plan: _plan_distance(arcs, problem, plan))


def _windows(raw: Any, where: str) -> tuple[TimeWindow, ...]:
    if raw is None:
        return ()
    try:
        return tuple(TimeWindow(start=int(a), end=int(b)) for a, b in raw)
    except (TypeError, ValueError) as exc:
        raise InvalidProblemError(f"{where}: time_windows must be a list of [start, end] pairs") from exc


def _amount(raw: Any, where: str) -> tuple[int, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(a, int) for a in raw):
        raise InvalidProblemError(f"{where}: must be a list of integers")
    return tuple(raw)


def _vroom_stop(raw: dict[str, Any], where: str) -> Stop:
    if "location_index" not in raw:
        raise InvalidProblemError(f"{where}: location_index is required (give travel times in `matrices`)")
    return Stop(location=int(raw["location_index"]), service=int(raw.get("service", 0)),
                time_windows=_windows(raw.get("time_windows"), where))


def _skills(raw: Any) -> frozenset[str]:
    return frozenset(str(s) for s in raw or ())


def _with_open_end(matrix: np.ndarray) -> np.ndarray:
    """The matrix plus one last location reached from anywhere at no cost and left for nowhere: a route that
    ends there ends at its last stop (VROOM's vehicles without `end_index`)."""
    n = matrix.shape[0]
    out = np.full((n + 1, n + 1), UNREACHABLE, dtype=np.int64)
    out[:n, :n] = matrix
    out[:, n] = 0
    return out


def read_vroom(path: Path) -> Instance:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _bad(path, f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or "vehicles" not in data or "matrices" not in data:
        raise _bad(path, "a VROOM-shaped file needs `vehicles` and `matrices`")
    durations: dict[str, np.ndarray] = {}
    distances: dict[str, np.ndarray] = {}
    for profile, m in data["matrices"].items():
        if "durations" not in m:
            raise _bad(path, f"matrices.{profile}.durations is required")
        durations[profile] = np.asarray(m["durations"], dtype=np.int64)
        distances[profile] = np.asarray(m.get("distances", m["durations"]), dtype=np.int64)
    jobs = []
    labels: list[str | int] = []
    for k, raw in enumerate(data.get("jobs", [])):
        where = f"jobs[{k}]"
        jobs.append(Job(id=str(raw.get("id", k)), stop=_vroom_stop(raw, where),
                        delivery=_amount(raw.get("delivery"), f"{where}.delivery"),
                        pickup=_amount(raw.get("pickup"), f"{where}.pickup"),
                        skills=_skills(raw.get("skills"))))
        labels.append(raw.get("id", k))
    shipments = []
    for k, raw in enumerate(data.get("shipments", [])):
        where = f"shipments[{k}]"
        if "pickup" not in raw or "delivery" not in raw:
            raise InvalidProblemError(f"{where}: needs `pickup` and `delivery`")
        shipments.append(Shipment(id=str(raw["pickup"].get("id", f"s{k}")),
                                  pickup=_vroom_stop(raw["pickup"], f"{where}.pickup"),
                                  delivery=_vroom_stop(raw["delivery"], f"{where}.delivery"),
                                  amount=_amount(raw.get("amount"), f"{where}.amount"),
                                  skills=_skills(raw.get("skills"))))
    open_end = next(iter(durations.values())).shape[0] if durations else 0
    if any("end_index" not in raw for raw in data["vehicles"] if isinstance(raw, dict)):
        durations = {pr: _with_open_end(m) for pr, m in durations.items()}
        distances = {pr: _with_open_end(m) for pr, m in distances.items()}
    vehicles = []
    for k, raw in enumerate(data["vehicles"]):
        where = f"vehicles[{k}]"
        if "start_index" not in raw:
            raise InvalidProblemError(f"{where}: start_index is required")
        tw = raw.get("time_window", [0, HORIZON])
        costs = raw.get("costs", {})
        vehicles.append(Vehicle(id=str(raw.get("id", k)), start=int(raw["start_index"]),
                                end=int(raw["end_index"]) if "end_index" in raw else open_end,
                                shift=TimeWindow(start=int(tw[0]), end=int(tw[1])),
                                capacity=_amount(raw.get("capacity"), f"{where}.capacity"),
                                profile=str(raw.get("profile", "car")),
                                fixed_cost=int(costs.get("fixed", 0)),
                                max_duration=raw.get("max_travel_time"), max_stops=raw.get("max_tasks"),
                                skills=_skills(raw.get("skills"))))
    problem = Problem(durations=durations, distances=distances, jobs=tuple(jobs), shipments=tuple(shipments),
                      vehicles=tuple(vehicles))

    def matrix_distance(plan: Plan) -> float:
        return float(evaluate(problem, plan).distance)

    return Instance(name=path.stem, problem=problem, job_labels=tuple(labels), exact_distance=matrix_distance)
