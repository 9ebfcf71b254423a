"""Instance readers: Solomon, VRPLIB and VROOM-shaped JSON become valid problems; bad files name the fault."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from routing.errors import InvalidProblemError
from routing.io import SOLOMON_SCALE, read_instance
from routing.problem import Plan, Route, Visit
from routing.solvers.auto import solve
from routing.solvers.base import SolveParams

DATA = Path(__file__).resolve().parent.parent / "data"


def test_solomon_scaled_and_rounded_up() -> None:
    """Solomon travel times are scaled and rounded up (never optimistic), windows and service scaled exactly."""
    inst = read_instance(DATA / "solomon_c101_9_customers.txt")
    p = inst.problem
    assert inst.job_labels == tuple(range(1, 10))
    assert len(p.vehicles) == 9 and p.vehicles[0].capacity == (200,)  # 25 in the file, one per customer is enough
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


def test_vrplib_customers_are_numbered_1_to_n_minus_1_wherever_the_depot_is(tmp_path: Path) -> None:
    """With DEPOT_SECTION on node 3, customers are still numbered 1..n-1 (the file's order, the depot left out):
    nodes 1 and 2 are customers 1 and 2, node 4 customer 3; no route names a customer 0."""
    path = tmp_path / "depot3.vrp"
    path.write_text(VRPLIB.replace("DEPOT_SECTION\n1\n", "DEPOT_SECTION\n3\n"))
    inst = read_instance(path)
    assert inst.job_labels == (1, 2, 3, 4, 5, 6)
    assert [j.stop.location for j in inst.problem.jobs] == [0, 1, 3, 4, 5, 6]
    assert [j.id for j in inst.problem.jobs] == ["1", "2", "3", "4", "5", "6"]
    assert inst.problem.vehicles[0].start == 2
    result = solve(inst.problem, SolveParams(iterations=20))
    stops = sorted(inst.stop_label(x) for r in result.plan.routes for x in r.visits if x.kind == "job")
    assert stops == [1, 2, 3, 4, 5, 6]


def test_vroom_stops_are_named_by_kind() -> None:
    """A VROOM file's jobs are named by their ids and a shipment's stops as {"pickup": id} and {"delivery": id};
    an executed pickup (held as a job) keeps its kind."""
    inst = read_instance(DATA / "vroom_two_vehicles.json")
    assert inst.stop_label(Visit(kind="job", index=1)) == 11
    assert inst.stop_label(Visit(kind="pickup", index=0)) == {"pickup": 20}
    assert inst.stop_label(Visit(kind="delivery", index=0)) == {"delivery": 21}


def test_vroom_executed_pickup_keeps_its_kind(tmp_path: Path) -> None:
    """A shipment whose pickup a vehicle's `steps` list becomes two jobs; they are still named as its pickup and
    delivery."""
    path = tmp_path / "steps.json"
    path.write_text(VROOM.replace('"capacity": [4], "time_window"',
                                  '"steps": [{"type": "pickup", "id": 20}], "capacity": [4], "time_window"'))
    inst = read_instance(path)
    labels = [inst.stop_label(Visit(kind="job", index=i)) for i in range(len(inst.problem.jobs))]
    assert labels == [10, 11, 12, {"pickup": 20}, {"delivery": 21}] and inst.shipment_labels == ()


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


SOLOMON = (DATA / "solomon_c101_9_customers.txt").read_text()
VRPLIB = (DATA / "vrplib_6_customers.vrp").read_text()
VROOM = (DATA / "vroom_two_vehicles.json").read_text()


@pytest.mark.parametrize(("name", "text", "message"), [
    ("nan.txt", SOLOMON.replace(" 45         68 ", " nan        68 "),
     "line 11, XCOORD.: must be an integer, got 'nan'"),
    ("decimal.txt", SOLOMON.replace(" 45         68 ", " 4.5        68 "),
     "line 11, XCOORD.: must be an integer, got '4.5'"),
    ("decimal_y.txt", SOLOMON.replace(" 45         68 ", " 45         6.8"),
     "line 11, YCOORD.: must be an integer, got '6.8'"),
    ("wide.txt", SOLOMON.replace(" 45         68 ", " 45      99999999 "), "line 11, YCOORD.: must lie in"),
    ("fraction.txt", SOLOMON.replace("10        912", "1.5       912"),
     "line 11, DEMAND: must be an integer, got '1.5'"),
    ("huge.txt", SOLOMON.replace("10        912", "99999999999999999999999 912"), "line 11, DEMAND: must lie in"),
    ("far.txt", SOLOMON.replace(" 45         68 ", " 9999999    68 "), "does not fit the solvers' range"),
    ("cut.txt", SOLOMON[:120], "expected the column headings"),
    ("short.txt", SOLOMON.replace("  25         200", "  25"), "line 5: expected the vehicle NUMBER and CAPACITY"),
    ("renumbered.txt", SOLOMON.replace("\n    2 ", "\n    7 "), "line 12, CUST NO.: customers must be numbered"),
    ("empty.txt", "", "empty file"),
    ("nan.vrp", VRPLIB.replace("5 0 20", "5 nan 20"), "line 12, NODE_COORD_SECTION: must be a finite number"),
    ("cut.vrp", VRPLIB[:VRPLIB.index("DEPOT") - 8], "line 15, DEMAND_SECTION: expected 7 rows (DIMENSION), got 5"),
    ("header.vrp", VRPLIB[:40], "DIMENSION: missing"),
    ("junk.vrp", "NAME : x\nnot a spec\n", "line 2: expected `KEY : VALUE` or a NAME_SECTION heading"),
    ("capacity.vrp", VRPLIB.replace("CAPACITY : 10", "CAPACITY : 99999999999999999999999"), "line 6, CAPACITY"),
    ("nodepot.vrp", VRPLIB.replace("DEPOT_SECTION\n1\n-1", "DEPOT_SECTION\n-1"), "expected one depot node"),
    ("type.vrp", VRPLIB.replace("EUC_2D", "GEO"), "EDGE_WEIGHT_TYPE GEO is not supported"),
    ("null.json", VROOM.replace('"start_index": 0, "end', '"start_index": null, "end'),
     "vehicles[0].start_index: must be an integer, got null"),
    ("huge.json", VROOM.replace("[0, 10, 20, 30]", "[0, 10, 20, 1e999]"), "matrices.car.durations[0][3]"),
    ("digits.json", VROOM.replace("[0, 10, 20, 30]", "[0, 10, 20, " + "3" * 5000 + "]"),
     "an integer has more than 4300 digits"),
    ("service.json", VROOM.replace('"service": 5, "delivery": [1]}', '"service": -5, "delivery": [1]}', 1),
     "jobs[0].service: must lie in [0, "),
    ("depot_demand.vrp", VRPLIB.replace("DEPOT_SECTION\n1\n", "DEPOT_SECTION\n3\n").replace("\n3 4\n", "\n3 -4\n"),
     "the depot (node 3): demand must not be negative, got -4"),
    ("over.vrp", VRPLIB.replace("\n7 4\n", "\n7 11\n"), "customer 6 (node 7): demand 11 exceeds the vehicle"),
    ("outside.json", VROOM.replace('"location_index": 3, "service"', '"location_index": 9, "service"'),
     "jobs[2].location_index: must lie in [0, 3], got 9"),
    ("shape.json", VROOM.replace("[30, 20, 10, 0]]", "[30, 20, 10]]"), "matrices.car.durations[3]: must have 4"),
    ("jobs.json", VROOM.replace('"jobs": [', '"jobs": [7, '), "jobs[0]: must be an object, got 7"),
    ("deep.json", "[" * 100_000, "nested too deeply"),
    ("list.json", "[]", "the file: must be an object"),
])
def test_broken_files_name_the_file_and_field(tmp_path: Path, name: str, text: str, message: str) -> None:
    """A broken value, a cut-off file or a wrong type raises InvalidProblemError naming the file, the line (text
    formats) and the field; nothing is read as a made-up number."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InvalidProblemError) as err:
        read_instance(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", "caf\u00e9".encode("latin-1"), "x".encode("utf-16")])
def test_not_utf8_names_the_file(tmp_path: Path, content: bytes) -> None:
    """Bytes that are not UTF-8 text raise InvalidProblemError naming the file, whatever the format."""
    for suffix in (".txt", ".vrp", ".json"):
        path = tmp_path / f"bad{suffix}"
        path.write_bytes(content)
        with pytest.raises(InvalidProblemError, match=f"^{re.escape(str(path))}: not UTF-8 text"):
            read_instance(path)


def test_folder_is_not_an_instance(tmp_path: Path) -> None:
    """A folder named like an instance is refused as a folder, not as a missing file."""
    (tmp_path / "c101.txt").mkdir()
    with pytest.raises(InvalidProblemError, match=r"c101\.txt: is a folder"):
        read_instance(tmp_path / "c101.txt")


VRPLIB_FILES = [DATA / "vrplib_6_customers.vrp",
                *sorted((Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "cvrp").glob("X-n1*.vrp"))]


@pytest.mark.parametrize("path", VRPLIB_FILES, ids=lambda p: p.stem)
def test_vrplib_reader_agrees_with_the_vrplib_library(path: Path) -> None:
    """Our VRPLIB parser (which names every fault) reads the arcs (EUC_2D: the library's exact lengths rounded
    half up, VRPLIB's nint), demands and capacity the `vrplib` library reads: a second opinion on each file
    (shared X instances when present)."""
    vrplib = pytest.importorskip("vrplib")
    theirs = vrplib.read_instance(str(path))
    p = read_instance(path).problem
    depot = int(theirs["depot"][0])
    order = [depot, *[i for i in range(int(theirs["dimension"])) if i != depot]]
    nint = np.floor(theirs["edge_weight"][np.ix_(order, order)] + 0.5)
    np.testing.assert_array_equal(p.distances["car"], nint)
    assert [j.delivery[0] for j in p.jobs] == [int(d) for d in theirs["demand"][order[1:]]]
    assert p.vehicles[0].capacity == (int(theirs["capacity"]),)
