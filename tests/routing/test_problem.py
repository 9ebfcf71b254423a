"""Problem types reject bad input with an error naming the field."""

from __future__ import annotations

import numpy as np
import pytest

from routing.errors import InvalidProblemError
from routing.problem import Job, Problem, Stop, TimeWindow, Vehicle
from tests.routing.lines import job, line_matrix

M = line_matrix([0, 10, 20])


def make(jobs: tuple[Job, ...] = (), vehicles: tuple[Vehicle, ...] = (Vehicle(id="v", start=0),),
         m: np.ndarray = M) -> Problem:
    return Problem(durations={"car": m}, distances={"car": m}, jobs=jobs, vehicles=vehicles)


@pytest.mark.parametrize(("build", "message"), [
    (lambda: TimeWindow(start=10, end=5), "time_window: closes at 5 before it opens at 10"),
    (lambda: Stop(location=-1), "location: must be a matrix index"),
    (lambda: Stop(location=0, service=-3), "service: must not be negative"),
    (lambda: job(1, delivery=(-1,)), "job j1: delivery: must not be negative"),
    (lambda: Vehicle(id="v", start=0, max_trips=0), "vehicle v: max_trips"),
    (lambda: make(jobs=(job(7),)), "job j7: location: 7 is outside the 3x3 matrix"),
    (lambda: make(jobs=(job(1), job(1))), "job.id: duplicate id 'j1'"),
    (lambda: make(vehicles=()), "vehicles: at least one vehicle"),
    (lambda: make(vehicles=(Vehicle(id="v", start=0, profile="bike"),)), "no matrices for profile 'bike'"),
    (lambda: make(m=M.astype(float)), r"durations\[car\]: must hold integers"),
    (lambda: make(jobs=(job(1, delivery=(1, 2)),), vehicles=(Vehicle(id="v", start=0, capacity=(3,)),)),
     "job j1: delivery: has 2 dimensions, vehicles have 1"),
    (lambda: make(jobs=(job(1),), vehicles=(Vehicle(id="v", start=0, locked=("j9",)),)), "unknown job 'j9'"),
    (lambda: Stop(location=0, time_windows=(TimeWindow(start=0, end=10), TimeWindow(start=5, end=20))),
     "time_windows: must not overlap"),
])
def test_invalid_input_names_field(build: object, message: str) -> None:
    """Each invalid value raises InvalidProblemError (a ValueError) whose message names the field."""
    with pytest.raises(InvalidProblemError, match=message):
        build()  # type: ignore[operator]


def test_matrices_frozen() -> None:
    """A problem's matrices cannot be changed behind the solver's back."""
    p = make()
    with pytest.raises(ValueError, match="read-only"):
        p.durations["car"][0, 1] = 5


def test_windows_sorted_and_service_start() -> None:
    """Windows are kept in time order; service starts in the first window still open."""
    s = Stop(location=0, time_windows=(TimeWindow(start=50, end=60), TimeWindow(start=0, end=10)))
    assert [w.start for w in s.time_windows] == [0, 50]
    assert (s.service_start(5), s.service_start(20), s.service_start(61)) == (5, 50, None)
