"""Instance readers: Solomon, VRPLIB and VROOM-shaped JSON become valid problems; bad files name the fault."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from routing.errors import InvalidProblemError
from routing.io import SOLOMON_SCALE, read_instance
from routing.problem import Plan, Route, Visit

DATA = Path(__file__).resolve().parent.parent / "data"


def test_solomon_scaled_and_rounded_up() -> None:
    """Solomon travel times are scaled and rounded up (never optimistic), windows and service scaled exactly."""
    inst = read_instance(DATA / "solomon_c101_9_customers.txt")
    p = inst.problem
    assert inst.job_labels == tuple(range(1, 10))
    assert len(p.vehicles) == 25 and p.vehicles[0].capacity == (200,)
    exact = np.hypot(45 - 40, 68 - 50) * SOLOMON_SCALE
    assert p.durations["car"][0, 1] == int(np.ceil(exact)) >= exact
    assert p.jobs[0].stop.time_windows[0].start == 912 * SOLOMON_SCALE
    assert p.jobs[0].stop.service == 90 * SOLOMON_SCALE
    assert p.vehicles[0].shift.end == 1236 * SOLOMON_SCALE


def test_solomon_exact_distance() -> None:
    """The reported distance of a plan is the unrounded Euclidean length."""
    inst = read_instance(DATA / "solomon_c101_9_customers.txt")
    plan = Plan(routes=(Route(vehicle=0, visits=(Visit(kind="job", index=0),)),))
    assert inst.exact_distance(plan) == pytest.approx(2 * np.hypot(5, 18))


def test_vrplib_rounds_each_arc() -> None:
    """VRPLIB EUC_2D rounds each arc to the nearest integer; customers keep the file's numbers minus one."""
    inst = read_instance(DATA / "vrplib_6_customers.vrp")
    assert inst.job_labels == (1, 2, 3, 4, 5, 6)
    assert inst.problem.distances["car"][0, 6] == round(np.hypot(20, 3))
    plan = Plan(routes=(Route(vehicle=0, visits=(Visit(kind="job", index=5),)),))
    assert inst.exact_distance(plan) == 2 * round(np.hypot(20, 3))


def test_vroom_json() -> None:
    """A VROOM-shaped file brings jobs, shipments, skills, windows and per-profile matrices."""
    inst = read_instance(DATA / "vroom_two_vehicles.json")
    p = inst.problem
    assert [j.id for j in p.jobs] == ["10", "11", "12"]
    assert p.jobs[2].skills == frozenset({"7"})
    assert p.shipments[0].pickup.location == 1 and p.shipments[0].delivery.location == 3
    assert p.distances["car"][0, 3] == 300 and p.durations["car"][0, 3] == 30


@pytest.mark.parametrize(("name", "message"), [
    ("solomon_negative_demand.txt", "customer 3: demand must not be negative"),
    ("solomon_window_closes_before_open.txt", "customer 5: time window closes at 67 before it opens at 150"),
    ("unknown_format.csv", "unknown format '.csv'"),
    ("missing.txt", "no such file"),
])
def test_bad_files_name_the_fault(name: str, message: str) -> None:
    """Each broken input raises InvalidProblemError whose message names the file and the bad field."""
    with pytest.raises(InvalidProblemError, match=message):
        read_instance(DATA / name)


def test_vroom_vehicle_without_end_index_ends_at_its_last_stop() -> None:
    """As in VROOM, a vehicle without end_index has an open route: no leg back, so no distance for it."""
    inst = read_instance(DATA / "vroom_two_vehicles.json")
    p = inst.problem
    assert p.vehicles[0].end_location == 0
    open_end = p.vehicles[1].end_location
    assert open_end == p.n_locations - 1 and (p.distances["car"][:, open_end] == 0).all()
    plan = Plan(routes=(Route(vehicle=1, visits=(Visit(kind="job", index=2),)),))
    assert inst.exact_distance(plan) == 300
