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
