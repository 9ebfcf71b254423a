"""VROOM documents: read as problems (matrices or coordinates), solved plans rendered in VROOM's output shape, every
fault named by its field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routing.errors import InvalidProblemError
from routing.matrix import HaversineEngine
from routing.network import RoadNetwork
from routing.solvers.auto import solve
from routing.solvers.base import SolveParams
from routing.vroom import ROUTING_ERROR, RoadMatrices, Router, VroomError, VroomInput, loads, parse, render

DATA = Path(__file__).resolve().parent.parent / "data"
FAST = SolveParams(iterations=30, seed=1)
LINE = [[abs(i - j) * 10 for j in range(5)] for i in range(5)]
"""Five places on a line, 10 s apart."""


class Haversine:
    """A made-up map: straight lines at 60 km/h, for documents that give coordinates."""

    profiles = ("car", "bike")

    def __call__(self, points: np.ndarray, fields: Sequence[str],
                 profiles: Sequence[str]) -> Mapping[str, tuple[np.ndarray, np.ndarray]]:
        everywhere = np.arange(len(points))
        m = HaversineEngine(points, 60.0).matrix(everywhere, everywhere)
        return {p: (m.durations, m.distances) for p in profiles}


def line_doc(**change: Any) -> dict[str, Any]:
    """One vehicle at 0 and a job at each of 1..4, on LINE."""
    doc: dict[str, Any] = {
        "vehicles": [{"id": 1, "start_index": 0, "end_index": 0, "capacity": [4]}],
        "jobs": [{"id": 10 + i, "location_index": i, "service": 5, "delivery": [1]} for i in range(1, 5)],
        "matrices": {"car": {"durations": copy.deepcopy(LINE)}},
    }
    doc.update(change)
    return doc


def solved(doc: Mapping[str, Any], router: Router | None = None,
           params: SolveParams = FAST) -> tuple[VroomInput, dict[str, Any]]:
    parsed = parse(json.loads(json.dumps(doc)), router=router)
    return parsed, render(parsed, solve(parsed.problem, params))


def route_ids(out: Mapping[str, Any]) -> dict[Any, list[tuple[str, Any]]]:
    return {r["vehicle"]: [(s["type"], s.get("id")) for s in r["steps"]] for r in out["routes"]}


def test_the_docs_example_is_read_unchanged_and_solved_on_a_map() -> None:
    """The Example of VROOM's docs/API.md (coordinates, no matrices) reads unchanged and, given travel between its
    points, comes back as one round trip through both jobs with VROOM's keys."""
    doc = json.loads((DATA / "vroom_docs_example.json").read_text())
    _, out = solved(doc, Haversine())
    assert out["code"] == 0 and out["unassigned"] == []
    (route,) = out["routes"]
    assert route["vehicle"] == 0
    assert [s["type"] for s in route["steps"]] == ["start", "job", "job", "end"]
    assert sorted(s["id"] for s in route["steps"][1:3]) == [0, 1]
    assert route["steps"][0]["location"] == route["steps"][-1]["location"] == [2.3526, 48.8604]
    assert route["steps"][-1]["distance"] == route["distance"] == out["summary"]["distance"] > 0
    assert route["cost"] == route["duration"] == route["steps"][-1]["arrival"]  # cost: travel time, from 0
    assert {"cost", "routes", "unassigned", "service", "duration", "waiting_time", "computing_times"} <= set(
        out["summary"])


def test_the_docs_example_1_is_read_unchanged() -> None:
    """docs/example_1.json of VROOM (Unix times, skills, a break, a shipment, delivering and picking-up jobs) reads
    unchanged; the routing layer has no backend for loads both on delivering and picking-up jobs and shipments, so
    solving it names `backend`. With loads on delivering jobs only, it solves: skills kept, the break taken in its
    window, times reported as the document's Unix times."""
    doc = json.loads((DATA / "vroom_docs_example_1.json").read_text())
    parsed = parse(copy.deepcopy(doc), router=Haversine())
    assert parsed.origin == 1600416000
    assert [v.shift.end for v in parsed.problem.vehicles] == [14400, 14400]
    assert parsed.problem.vehicles[1].breaks[0].window.start == 7200
    with pytest.raises(InvalidProblemError, match=r"^backend: no backend supports"):
        solve(parsed.problem, FAST)
    del doc["jobs"][1]["pickup"]
    del doc["shipments"][0]["amount"]
    _, out = solved(doc, Haversine())
    assert out["unassigned"] == []
    ids = route_ids(out)
    assert {i for _, i in ids[1]} >= {1, 2} and ("pickup", 4) in ids[2] and ("delivery", 3) in ids[2]
    (brk,) = [s for s in out["routes"][1]["steps"] if s["type"] == "break"]
    assert brk["id"] == 2 and 1600423200 <= brk["arrival"] + brk["waiting_time"] <= 1600425000
    job1 = next(s for s in out["routes"][0]["steps"] if s.get("id") == 1)
    assert 1600419600 <= job1["arrival"] + job1["waiting_time"] <= 1600423200


def test_a_matrix_document_renders_vroom_steps_and_an_open_end() -> None:
    """A vehicle without end_index ends at its last task (no leg back), the cost is travel time while distances
    come from `distances`, and loads follow VROOM: deliveries on board at the start."""
    doc = json.loads((DATA / "vroom_two_vehicles.json").read_text())
    doc["vehicles"] = [doc["vehicles"][1]]
    _, out = solved(doc)
    (route,) = out["routes"]
    steps = route["steps"]
    last = steps[-2]
    assert steps[-1]["location_index"] == last["location_index"] and steps[-1]["distance"] == last["distance"]
    assert route["distance"] == 10 * route["duration"] and route["cost"] == route["duration"]
    assert steps[0]["load"] == [4] and steps[-1]["load"] == [0]
    assert out["summary"]["delivery"] == [4] and out["summary"]["unassigned"] == 0


def test_executed_steps_stay_first_in_their_order() -> None:
    """Jobs listed in a vehicle's `steps` come first on it, in that order, however poor; the rest is optimised."""
    doc = line_doc(vehicles=[{"id": 1, "start_index": 0, "end_index": 0, "capacity": [4],
                              "steps": [{"type": "start"}, {"type": "job", "id": 14}, {"type": "job", "id": 11}]}])
    _, out = solved(doc)
    assert route_ids(out)[1][1:3] == [("job", 14), ("job", 11)]
    assert {i for _, i in route_ids(out)[1]} == {None, 11, 12, 13, 14}


def test_an_executed_pickup_keeps_its_delivery_on_that_vehicle() -> None:
    """A shipment whose pickup a vehicle has executed is delivered by that vehicle, even when another stands at the
    delivery; the load shows the amount on board until then."""
    doc = line_doc(jobs=[], shipments=[{"amount": [2], "pickup": {"id": 7, "location_index": 2},
                                        "delivery": {"id": 8, "location_index": 4}}],
                   vehicles=[{"id": 1, "start_index": 0, "end_index": 0, "capacity": [4],
                              "steps": [{"type": "pickup", "id": 7}]},
                             {"id": 2, "start_index": 4, "end_index": 4, "capacity": [4]}])
    _, out = solved(doc)
    assert route_ids(out) == {1: [("start", None), ("pickup", 7), ("delivery", 8), ("end", None)]}
    assert [s["load"] for s in out["routes"][0]["steps"]] == [[2], [2], [0], [0]]


def test_unassigned_tasks_carry_the_solvers_reason() -> None:
    """Each task left out names why: a skill no vehicle has, too heavy, a window closed before any arrival; both
    halves of a shipment are listed, in document order."""
    doc = line_doc()
    doc["jobs"][0]["skills"] = [9]
    doc["jobs"][1]["delivery"] = [5]
    doc["jobs"][2]["time_windows"] = [[0, 5]]
    doc["shipments"] = [{"amount": [9], "pickup": {"id": 1, "location_index": 1},
                         "delivery": {"id": 2, "location_index": 2}}]
    _, out = solved(doc)
    assert [(u["type"], u["id"], u["reason"]) for u in out["unassigned"]] == [
        ("job", 11, "no_vehicle_with_skill: 9"), ("job", 12, "over_capacity"), ("job", 13, "window_closed"),
        ("pickup", 1, "over_capacity"), ("delivery", 2, "over_capacity")]
    assert out["unassigned"][0]["location_index"] == 1 and out["summary"]["unassigned"] == 5
    assert route_ids(out)[1][1:-1] == [("job", 14)]


def test_unix_timestamps_come_back_as_given() -> None:
    """Windows given as Unix times are solved relative to the earliest one and reported back as Unix times."""
    t0 = 1_700_000_000
    doc = line_doc(vehicles=[{"id": 1, "start_index": 0, "end_index": 0, "capacity": [4],
                              "time_window": [t0, t0 + 3600]}])
    doc["jobs"][3]["time_windows"] = [[t0 + 600, t0 + 700]]
    _, out = solved(doc)
    job = next(s for s in out["routes"][0]["steps"] if s.get("id") == 14)
    assert t0 + 600 <= job["arrival"] + job["waiting_time"] <= t0 + 700
    assert out["routes"][0]["steps"][0]["arrival"] >= t0


def test_the_objective_is_vroom_travel_cost() -> None:
    """By default the cheapest plan is the quickest (per_hour 3600), not the shortest; per_km alone makes it the
    shortest; speed_factor 2 halves travel times; fixed costs add to the route cost."""
    durations = [[0, 10, 50], [10, 0, 10], [50, 10, 0]]
    distances = [[0, 100, 100], [100, 0, 900], [100, 900, 0]]
    doc: dict[str, Any] = {"vehicles": [{"id": 1, "start_index": 0, "end_index": 0}],
                           "jobs": [{"id": 1, "location_index": 1}, {"id": 2, "location_index": 2}],
                           "matrices": {"car": {"durations": durations, "distances": distances}}}
    _, quick = solved(doc)
    assert quick["routes"][0]["cost"] == quick["routes"][0]["duration"] == 70
    doc["vehicles"][0]["costs"] = {"per_hour": 0, "per_km": 1000, "fixed": 5}
    _, short = solved(doc)
    assert short["routes"][0]["distance"] == 1100 and short["routes"][0]["cost"] == 1100 + 5
    doc["vehicles"][0]["costs"] = {}
    doc["vehicles"][0]["speed_factor"] = 2
    _, fast = solved(doc)
    assert fast["routes"][0]["duration"] == 35


ERRORS: list[tuple[str, Callable[[dict[str, Any]], object], str, str]] = [
    ("window", lambda d: d["jobs"][2].update(time_windows=[[0, 10], [30, 20]]), "jobs[2].time_windows[1]",
     "closes at 20 before it opens at 30"),
    ("setup", lambda d: d["jobs"][0].update(setup=5), "jobs[0].setup", "not supported"),
    ("dims", lambda d: d["jobs"][1].update(delivery=[1, 1]), "jobs[1].delivery", "has 2 dimensions"),
    ("duplicate", lambda d: d["jobs"][3].update(id=11), "jobs[3].id", "duplicate id 11 (also jobs[0])"),
    ("index", lambda d: d["jobs"][0].update(location_index=9), "jobs[0].location_index", "must lie in [0, 4]"),
    ("no start or end", lambda d: d["vehicles"][0].clear() or d["vehicles"][0].update(id=1), "vehicles[0].start",
     "needs `start` or `end`"),
    ("profile", lambda d: d["vehicles"][0].update(profile="bike"), "vehicles[0].profile", "no matrices for profile"),
    ("costs", lambda d: (d["matrices"]["car"].update(costs=LINE), d["vehicles"][0].update(costs={"per_km": 1})),
     "vehicles[0].costs", "cannot be combined"),
    ("speed", lambda d: d["vehicles"][0].update(speed_factor=7), "vehicles[0].speed_factor", "(0, 5]"),
    ("breaks", lambda d: d["vehicles"][0].update(breaks=[{"id": 1, "time_windows": [[0, 5], [9, 12]]}]),
     "vehicles[0].breaks[0].time_windows", "one window per break"),
    ("max_distance", lambda d: d["vehicles"][0].update(max_distance=10), "vehicles[0].max_distance",
     "not supported"),
    ("shipment", lambda d: d.update(shipments=[{"pickup": {"id": 1, "location_index": 1}}]),
     "shipments[0].delivery", "missing"),
    ("step id", lambda d: d["vehicles"][0].update(steps=[{"type": "job", "id": 99}]), "vehicles[0].steps[0].id",
     "no job has id 99"),
    ("step order", lambda d: (d.update(shipments=[{"pickup": {"id": 1, "location_index": 1},
                                                   "delivery": {"id": 2, "location_index": 2}}]),
                              d["vehicles"][0].update(steps=[{"type": "delivery", "id": 2}])),
     "vehicles[0].steps[0].id", "needs its shipment's pickup before it"),
    ("step late", lambda d: (d["jobs"][3].update(time_windows=[[0, 15]]),
                             d["vehicles"][0].update(steps=[{"type": "job", "id": 13}, {"type": "job", "id": 14}])),
     "vehicles[0].steps", "job 14 reached at"),
    ("coordinates", lambda d: d.pop("matrices"), "matrices", "missing"),
    ("negative service", lambda d: d["jobs"][0].update(service=-5), "jobs[0].service", "must lie in [0, "),
    ("service NaN", lambda d: d["jobs"][1].update(service=float("nan")), "jobs[1].service", "must be an integer"),
    ("pickup service", lambda d: d.update(shipments=[{"pickup": {"id": 1, "location_index": 1, "service": 1.5},
                                                      "delivery": {"id": 2, "location_index": 2}}]),
     "shipments[0].pickup.service", "must be an integer"),
    ("delivery service", lambda d: d.update(shipments=[{"pickup": {"id": 1, "location_index": 1},
                                                        "delivery": {"id": 2, "location_index": 2, "service": -1}}]),
     "shipments[0].delivery.service", "must lie in [0, "),
    ("overlapping windows", lambda d: d["jobs"][0].update(time_windows=[[0, 20], [10, 30]]),
     "jobs[0].time_windows", "must not overlap"),
    ("break after the shift", lambda d: d["vehicles"][0].update(time_window=[0, 100], breaks=[
        {"id": 1, "service": 10, "time_windows": [[500, 600]]}]), "vehicles[0].breaks[0]",
     "cannot be over within the vehicle's time_window [0, 100]"),
    ("break before the shift", lambda d: d["vehicles"][0].update(time_window=[100, 200], breaks=[
        {"id": 1, "service": 10, "time_windows": [[0, 50]]}]), "vehicles[0].breaks[0]", "closes at 50, before"),
    ("break longer than the shift", lambda d: d["vehicles"][0].update(time_window=[0, 100], breaks=[
        {"id": 1, "service": 101}]), "vehicles[0].breaks[0]", "lasts 101 s, longer than"),
    ("break ends too late", lambda d: d["vehicles"][0].update(time_window=[0, 100], breaks=[
        {"id": 1, "service": 30, "time_windows": [[80, 90]]}]), "vehicles[0].breaks[0]", "at 80 at the earliest"),
    ("json types", lambda d: d["vehicles"][0].update(capacity="4"), "vehicles[0].capacity", "must be a list"),
    ("negative id", lambda d: d["jobs"][0].update(id=-1), "jobs[0].id", "from 0 to 2^64 - 1"),
    ("id past uint64", lambda d: d["vehicles"][0].update(id=2 ** 70), "vehicles[0].id", "from 0 to 2^64 - 1"),
]


@pytest.mark.parametrize(("change", "field", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_documents_name_the_field(change: Callable[[dict[str, Any]], object], field: str, message: str) -> None:
    """Each fault of a document raises VroomError with the field (as `jobs[3].time_windows[0]`) and a message
    saying what is wrong; VROOM features the solvers do not model are refused, not ignored."""
    doc = line_doc()
    change(doc)
    with pytest.raises(VroomError) as err:
        parse(doc)
    assert err.value.field == field and message in err.value.message, str(err.value)


def test_coordinates_off_the_map_are_a_routing_error(moscow: RoadNetwork) -> None:
    """On a road map, points snap to its roads (matrices per profile); a point off the map is VROOM's routing
    error naming the point's field."""
    doc = {"vehicles": [{"id": 1, "start": [37.6020, 55.8177], "profile": "bike"}],
           "jobs": [{"id": 1, "location": [37.6145, 55.8217]}, {"id": 2, "location": [37.6029, 55.8215]}]}
    _, out = solved(doc, RoadMatrices(moscow, max_snap_m=300))
    assert out["unassigned"] == [] and out["routes"][0]["duration"] > 0
    doc["jobs"][1]["location"] = [2.3691, 48.8532]
    with pytest.raises(VroomError) as err:
        parse(doc, router=RoadMatrices(moscow, max_snap_m=300))
    assert err.value.field == "jobs[1].location" and err.value.code == ROUTING_ERROR
    assert "off the map" in err.value.message


def test_a_break_that_fits_the_shift_only_at_its_end_is_accepted() -> None:
    """A break whose only fit ends exactly when the vehicle's time_window closes is read, not refused."""
    doc = line_doc()
    doc["vehicles"][0].update(time_window=[0, 100], breaks=[{"id": 1, "service": 30, "time_windows": [[70, 90]]}])
    assert parse(doc).problem.vehicles[0].breaks[0].duration == 30


def test_an_integer_too_long_to_read_is_a_json_error() -> None:
    """An integer of more digits than Python converts (4300) is a VroomError on the whole document, not a bare
    ValueError."""
    with pytest.raises(VroomError) as err:
        loads('{"vehicles": [{"id": ' + "9" * 5000 + "}]}")
    assert err.value.field == "" and "more than 4300 digits" in err.value.message


MTT = {"vehicles": [{"id": 1, "start_index": 0, "end_index": 0, "max_travel_time": 100}],
       "jobs": [{"id": 1, "location_index": 1, "time_windows": [[100, 200]]},
                {"id": 2, "location_index": 2, "time_windows": [[250, 300]]}],
       "matrices": {"car": {"durations": [[0, 10, 20], [10, 0, 10], [20, 10, 0]]}}}
"""/tmp/probe_a/mtt.json: leaving at the earliest, the route waits 140 s at job 2 and spans 180 s."""


@pytest.mark.parametrize("backend", ["pyvrp", "ortools", "hybrid"])
def test_the_reported_schedule_keeps_max_travel_time(backend: str) -> None:
    """The answer's route leaves as late as its windows allow (at 190, not 90), so its start-to-end span keeps
    the vehicle's max_travel_time and no violation is hidden."""
    doc = parse(json.loads(json.dumps(MTT)))
    out = render(doc, solve(doc.problem, FAST, backend=backend))
    (route,) = out["routes"]
    steps = route["steps"]
    assert [(s["type"], s.get("id")) for s in steps] == [("start", None), ("job", 1), ("job", 2), ("end", None)]
    assert steps[0]["arrival"] == 190 and steps[-1]["arrival"] == 270
    assert steps[-1]["arrival"] - steps[0]["arrival"] <= 100
    assert [s["waiting_time"] for s in steps] == [0, 0, 40, 0] and route["waiting_time"] == 40
    assert route["violations"] == [] and out["summary"]["violations"] == []


def test_unix_times_keep_the_late_departure() -> None:
    """With Unix timestamps the late departure is reported in the document's own times."""
    base = 1_700_000_000
    doc = json.loads(json.dumps(MTT))
    for k, (a, b) in enumerate(([100, 200], [250, 300])):
        doc["jobs"][k]["time_windows"] = [[base + a, base + b]]
    _, out = solved(doc)
    steps = out["routes"][0]["steps"]
    assert steps[0]["arrival"] == base + 190 and steps[-1]["arrival"] == base + 270
