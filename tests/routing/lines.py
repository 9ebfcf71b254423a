"""Small routing problems on a line, shared by the solver and evaluator tests."""

from __future__ import annotations

import numpy as np

from routing.problem import Job, Problem, Stop, TimeWindow, Vehicle


def line_matrix(positions: list[int]) -> np.ndarray:
    """Travel times (= distances) between points on a line: |a - b|."""
    p = np.asarray(positions)
    return np.abs(p[:, None] - p[None, :]).astype(np.int64)


def line_problem(positions: list[int], jobs: list[Job], vehicles: list[Vehicle], **kw: object) -> Problem:
    m = line_matrix(positions)
    return Problem(durations={"car": m}, distances={"car": m}, jobs=tuple(jobs), vehicles=tuple(vehicles), **kw)


def job(i: int, location: int | None = None, **kw: object) -> Job:
    stop_kw = {k: kw.pop(k) for k in ("service", "time_windows") if k in kw}
    return Job(id=f"j{i}", stop=Stop(location=i if location is None else location, **stop_kw), **kw)  # type: ignore[arg-type]


def tw(a: int, b: int) -> tuple[TimeWindow, ...]:
    return (TimeWindow(start=a, end=b),)


def random_cvrp(seed: int, customers: int, vehicles: int, capacity: int, *, max_demand: int = 1,
                side: int = 1000) -> Problem:
    """A seeded CVRP on random integer points: depot at location 0, Euclidean distances rounded."""
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, side, size=(customers + 1, 2))
    m = np.rint(np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))).astype(np.int64)
    jobs = tuple(Job(id=f"j{i}", stop=Stop(location=i), delivery=(int(rng.integers(1, max_demand + 1)),))
                 for i in range(1, customers + 1))
    return Problem(durations={"car": m}, distances={"car": m}, jobs=jobs,
                   vehicles=tuple(Vehicle(id=f"v{k}", start=0, capacity=(capacity,)) for k in range(vehicles)))
