"""`POST /v1/solve`: VROOM documents in, VROOM's output out (the same plans as `lastmile solve`), with reasons,
executed steps kept first, vroom-express's size limits and every input error named."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.cli import main
from api.service import Deployment, Service
from api.settings import Settings
from api.store import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
TINY = ROOT / "scenarios" / "moscow-ostankino-tiny.toml"
ADMIN = {"Authorization": "Bearer admin-secret"}
ON_MAP = [[37.6020, 55.8177], [37.6145, 55.8217], [37.6029, 55.8215], [37.5942, 55.8132], [37.6186, 55.8120],
          [37.5934, 55.8160], [37.6020, 55.8139]]
"""Points on the Ostankino test map."""


@pytest.fixture(scope="module")
def service() -> Service:
    return Service(Settings(admin_key=SecretStr("admin-secret"), rate_per_s=1e6), Deployment.load(TINY),
                   store=MemoryStore(), clock=lambda: 10 * 3600)


@pytest.fixture(scope="module")
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service, start_workers=False)) as c:
        yield c


def key(service: Service, role: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + service.mint_key(role, None)[0]}


def grid_doc() -> dict[str, Any]:
    """Twelve jobs on a 4×4 grid (60 s a block, 500 m), some with windows, three vehicles of capacity 5."""
    cells = [(x, y) for x in range(4) for y in range(4)][:13]
    durations = [[60 * (abs(a[0] - b[0]) + abs(a[1] - b[1])) for b in cells] for a in cells]
    return {
        "vehicles": [{"id": k, "start_index": 0, "end_index": 0, "capacity": [5], "time_window": [0, 3600]}
                     for k in range(3)],
        "jobs": [{"id": 100 + i, "location_index": i, "service": 30, "delivery": [1],
                  **({"time_windows": [[0, 600]]} if i % 4 == 0 else {})} for i in range(1, 13)],
        "matrices": {"car": {"durations": durations,
                             "distances": [[500 * d // 60 for d in row] for row in durations]}},
    }


def map_doc() -> dict[str, Any]:
    """Two bikes from a store on the Ostankino map and five jobs there, by coordinates."""
    return {"vehicles": [{"id": k, "profile": "bike", "start": ON_MAP[0], "end": ON_MAP[0], "capacity": [3]}
                         for k in (1, 2)],
            "jobs": [{"id": i, "location": ON_MAP[i], "service": 60, "delivery": [1]} for i in range(1, 7)]}


def job_ids(routes: list[dict[str, Any]]) -> list[list[Any]]:
    return [[s["id"] for s in r["steps"] if s["type"] == "job"] for r in routes]


def without_times(answer: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(answer)
    del out["summary"]["computing_times"]
    return out


def test_the_docs_example_off_the_map_is_a_named_422(client: TestClient) -> None:
    """VROOM's docs example (Paris coordinates) is read unchanged; off this Moscow map it gets a 422 naming the
    first point off it, with VROOM's routing-error code 3."""
    doc = json.loads((DATA / "vroom_docs_example.json").read_text())
    r = client.post("/v1/solve", json=doc, headers=ADMIN)
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == 3 and body["error"]["code"] == "routing"
    assert body["error"]["field"] == "vehicles[0].start" and "off the map" in body["error"]["message"]


def test_the_docs_example_moved_onto_the_map_is_solved(client: TestClient) -> None:
    """The docs example with its three points moved onto the map: one round trip through both jobs, in VROOM's
    output shape, on the deployment's road travel times and distances."""
    doc = json.loads((DATA / "vroom_docs_example.json").read_text())
    doc["vehicles"][0]["start"] = doc["vehicles"][0]["end"] = ON_MAP[0]
    doc["jobs"][0]["location"], doc["jobs"][1]["location"] = ON_MAP[1], ON_MAP[2]
    r = client.post("/v1/solve?iterations=10", json=doc, headers=ADMIN)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["code"] == 0 and out["unassigned"] == [] and out["summary"]["routes"] == 1
    steps = out["routes"][0]["steps"]
    assert [s["type"] for s in steps] == ["start", "job", "job", "end"] and steps[0]["location"] == ON_MAP[0]
    assert steps[-1]["duration"] == out["summary"]["duration"] > 0 and out["summary"]["distance"] > 0


@pytest.mark.parametrize("case", ["matrices", "coordinates"])
def test_cli_and_api_give_the_same_plans(case: str, client: TestClient, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The same document, seed and iteration limit give the same routes in the same order through `lastmile solve
    --json` and `/v1/solve`, and the same VROOM answer through `lastmile solve --vroom` (computing times aside),
    with matrices or with coordinates on the same map."""
    doc = grid_doc() if case == "matrices" else map_doc()
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(doc))
    extra = [] if case == "matrices" else ["--network", str(DATA / "moscow_ostankino_drive.osm.bz2"),
                                           "--max-snap-m", "300"]
    limits = ["--iterations", "40", "--seed", "3"]
    assert main(["solve", str(path), "--json", *limits, *extra]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert main(["solve", str(path), "--vroom", *limits, *extra]) == 0
    cli_vroom = json.loads(capsys.readouterr().out)
    r = client.post("/v1/solve?iterations=40&seed=3", json=doc, headers=ADMIN)
    assert r.status_code == 200, r.text
    api = r.json()
    assert job_ids(api["routes"]) == cli["routes"] and sum(map(len, cli["routes"])) == len(doc["jobs"])
    assert without_times(api) == without_times(cli_vroom)
    options = client.post("/v1/solve", json={**doc, "options": {"iterations": 40, "seed": 3}}, headers=ADMIN)
    assert without_times(options.json()) == without_times(api)


def test_executed_steps_stay_first(client: TestClient) -> None:
    """Jobs listed in a vehicle's `steps` are its first stops, in that order; the rest is re-optimised around
    them."""
    doc = grid_doc()
    doc["vehicles"] = doc["vehicles"][:1]
    doc["vehicles"][0].update(capacity=[20], time_window=[0, 10_000])
    doc["vehicles"][0]["steps"] = [{"type": "start"}, {"type": "job", "id": 112}, {"type": "job", "id": 101}]
    for job in doc["jobs"]:
        job.pop("time_windows", None)
    r = client.post("/v1/solve?iterations=20", json=doc, headers=ADMIN)
    assert r.status_code == 200, r.text
    (route,) = job_ids(r.json()["routes"])
    assert route[:2] == [112, 101] and sorted(route) == list(range(101, 113))


def test_unassigned_jobs_carry_reasons(client: TestClient) -> None:
    """Every task the plan leaves out is listed with the solvers' reason."""
    doc = grid_doc()
    doc["jobs"][0]["skills"] = [7]
    doc["jobs"][1]["delivery"] = [9]
    doc["jobs"][2]["time_windows"] = [[0, 10]]
    r = client.post("/v1/solve?iterations=20", json=doc, headers=ADMIN)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [(u["id"], u["type"], u["reason"]) for u in out["unassigned"]] == [
        (101, "job", "no_vehicle_with_skill: 7"), (102, "job", "over_capacity"), (103, "job", "window_closed")]
    assert out["summary"]["unassigned"] == 3 and sum(map(len, job_ids(out["routes"]))) == 9


def test_sizes_over_vroom_express_limits_are_413(client: TestClient) -> None:
    """More than 1,000 locations (jobs plus two per shipment) or 200 vehicles is a 413 before any work, and so
    is a body over LASTMILE_MAX_BODY_BYTES (1 MB)."""
    jobs = [{"id": k, "location_index": 0} for k in range(1001)]
    vehicle = {"id": 1, "start_index": 0}
    for doc in ({"vehicles": [vehicle], "jobs": jobs},
                {"vehicles": [vehicle], "jobs": jobs[:2], "shipments": [{"pickup": {}, "delivery": {}}] * 500},
                {"vehicles": [vehicle] * 201, "jobs": jobs[:1]}):
        r = client.post("/v1/solve", json=doc, headers=ADMIN)
        assert r.status_code == 413 and r.json()["code"] == 4 and r.json()["error"]["code"] == "too_large"
    assert client.post("/v1/solve", json={"vehicles": [vehicle], "jobs": jobs[:1000]},
                       headers=ADMIN).status_code != 413
    big = b'{"vehicles": [], "pad": "' + b"x" * 1_000_000 + b'"}'
    r = client.post("/v1/solve", content=big, headers={**ADMIN, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["field"] == "body"


BAD: list[tuple[str, str, str, str]] = [
    ("json", "", '{"vehicles": [', "body"),
    ("not an object", "", "[1, 2]", "body"),
    ("window", "", json.dumps({**grid_doc(), "jobs": [*grid_doc()["jobs"][:3], {
        "id": 9, "location_index": 1, "time_windows": [[50, 10]]}]}), "jobs[3].time_windows[0]"),
    ("no vehicles", "", json.dumps({"jobs": []}), "vehicles"),
    ("vehicle type", "", json.dumps({"vehicles": [None], "jobs": []}), "vehicles[0]"),
    ("amount", "", json.dumps({**grid_doc(), "jobs": [{"id": 1, "location_index": 1, "delivery": ["one"]}]}),
     "jobs[0].delivery[0]"),
    ("location", "", json.dumps({"vehicles": [{"id": 1, "start": [37.6, "north"]}], "jobs": []}),
     "vehicles[0].start"),
    ("query", "?iterations=0", json.dumps(grid_doc()), "iterations"),
    ("query backend", "?backend=vroom", json.dumps(grid_doc()), "backend"),
    ("options", "", json.dumps({**grid_doc(), "options": {"seed": -1}}), "options.seed"),
    ("geometry", "", json.dumps({**grid_doc(), "options": {"g": True}}), "options.g"),
    ("backend limit", "?backend=pyvrp", json.dumps({**grid_doc(), "vehicles": [
        {"id": 1, "start_index": 0, "capacity": [5], "breaks": [{"id": 1, "service": 60}]}]}), "backend"),
    ("long integer", "", '{"vehicles": [{"id": ' + "7" * 5000 + "}]}", "body"),
    ("service", "", json.dumps({**grid_doc(), "jobs": [{"id": 1, "location_index": 1, "service": -5}]}),
     "jobs[0].service"),
    ("pickup service", "", json.dumps({**grid_doc(), "shipments": [
        {"pickup": {"id": 1, "location_index": 1, "service": 2.5}, "delivery": {"id": 2, "location_index": 2}}]}),
     "shipments[0].pickup.service"),
    ("break off shift", "", json.dumps({**grid_doc(), "vehicles": [
        {"id": 1, "start_index": 0, "capacity": [5], "time_window": [0, 100],
         "breaks": [{"id": 1, "service": 10, "time_windows": [[500, 600]]}]}]}), "vehicles[0].breaks[0]"),
    ("seed", "", json.dumps({**grid_doc(), "options": {"seed": 2**31}}), "options.seed"),
]


@pytest.mark.parametrize(("query", "body", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_input_errors_are_422_naming_the_field(client: TestClient, query: str, body: str, field: str) -> None:
    """Malformed JSON, wrong types, bad values, bad options and features the chosen backend lacks are each a 422
    in the API's error shape naming the field, never a 500."""
    r = client.post(f"/v1/solve{query}", content=body.encode(), headers={**ADMIN, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field and r.json()["error"]["message"]


def test_planner_order_system_and_admin_keys_may_solve(client: TestClient, service: Service) -> None:
    """Planner, order-system and admin keys may solve; a courier key is refused (403), no key is 401."""
    doc = grid_doc()
    for role in ("planner", "order_system"):
        assert client.post("/v1/solve?iterations=5", json=doc, headers=key(service, role)).status_code == 200
    courier = next(iter(service.couriers()))
    courier_key = {"Authorization": "Bearer " + service.mint_key("courier", courier)[0]}
    assert client.post("/v1/solve", json=doc, headers=courier_key).status_code == 403
    assert client.post("/v1/solve", json=doc).status_code == 401


def diagonal_doc(depot_job: bool) -> dict[str, Any]:
    """/tmp/probe_a/diag2.json: a shipment from place 1 to 2 and a vehicle at 0, which is 5 s from itself; with
    `depot_job`, a job at 0 too, so that a plan pays that diagonal."""
    doc: dict[str, Any] = {
        "vehicles": [{"id": 1, "start_index": 0, "end_index": 0, "capacity": [4]}],
        "shipments": [{"pickup": {"id": 1, "location_index": 1}, "delivery": {"id": 2, "location_index": 2},
                       "amount": [1]}],
        "matrices": {"car": {"durations": [[5, 10, 20], [10, 0, 10], [20, 10, 0]]}}}
    if depot_job:
        doc["jobs"] = [{"id": 7, "location_index": 0}]
    return doc


@pytest.mark.parametrize("backend", ["auto", "pyvrp", "ortools", "hybrid"])
def test_a_non_zero_diagonal_no_plan_pays_is_solved(client: TestClient, backend: str) -> None:
    """VROOM accepts a matrix whose diagonal is not zero; where no plan goes from a place to itself, every
    backend, PyVRP included (it needs zeros), answers 200 with the plan's true cost."""
    r = client.post(f"/v1/solve?iterations=10&backend={backend}", json=diagonal_doc(False), headers=ADMIN)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["unassigned"] == [] and out["summary"]["cost"] == 40
    assert [s["type"] for s in out["routes"][0]["steps"]] == ["start", "pickup", "delivery", "end"]


def test_a_non_zero_diagonal_a_plan_pays_is_422_for_pyvrp_only(client: TestClient) -> None:
    """With a job where the vehicle starts, the diagonal is part of the cost: `backend=pyvrp` is a 422 naming
    `backend` and the place, never a 500; `auto` picks a backend that prices it."""
    r = client.post("/v1/solve?iterations=10&backend=pyvrp", json=diagonal_doc(True), headers=ADMIN)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == "backend" and "travel from a place to itself" in error["message"]
    assert "location 0" in error["message"]
    r = client.post("/v1/solve?iterations=10", json=diagonal_doc(True), headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["unassigned"] == [] and r.json()["summary"]["cost"] == 45


def test_the_answer_leaves_as_late_as_max_travel_time_needs(client: TestClient) -> None:
    """/tmp/probe_a/mtt.json over HTTP: the route leaves at 190 (not 90), so its span keeps max_travel_time."""
    doc = {"vehicles": [{"id": 1, "start_index": 0, "end_index": 0, "max_travel_time": 100}],
           "jobs": [{"id": 1, "location_index": 1, "time_windows": [[100, 200]]},
                    {"id": 2, "location_index": 2, "time_windows": [[250, 300]]}],
           "matrices": {"car": {"durations": [[0, 10, 20], [10, 0, 10], [20, 10, 0]]}}}
    r = client.post("/v1/solve?iterations=10", json=doc, headers=ADMIN)
    assert r.status_code == 200, r.text
    steps = r.json()["routes"][0]["steps"]
    assert (steps[0]["arrival"], steps[-1]["arrival"]) == (190, 270)
    assert r.json()["summary"]["violations"] == []
