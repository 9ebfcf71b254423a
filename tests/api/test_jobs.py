"""Planner jobs over the API: simulations and sweeps queued on Dask, their status, KPIs, files and refusals."""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import pytest
from distributed import LocalCluster
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.jobs import LOOPBACK
from api.service import Deployment, Service
from api.settings import Settings
from api.simulate import configured
from api.store import MemoryStore
from simulator.model import simulate
from simulator.sweep import network_for

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
TINY = SCENARIOS / "moscow-ostankino-tiny.toml"
ADMIN = {"Authorization": "Bearer admin-secret"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Two single-threaded in-process Dask workers: jobs run side by side without starting processes."""
    with (dask.config.set({"distributed.worker.profile.enabled": False}),
          LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=LOOPBACK,
                       scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR) as c):
        yield c


def make_app(tmp: Path, **settings: Any) -> TestClient:
    service = Service(Settings(admin_key=SecretStr("admin-secret"), jobs_dir=tmp / "jobs", scenarios_dir=SCENARIOS,
                               workers=0, webhooks=False, **settings),
                      Deployment.load(TINY), store=MemoryStore(), clock=lambda: 10 * 3600)
    return TestClient(create_app(service, start_workers=False))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder above the app's jobs folder (`root / "jobs"`)."""
    return tmp_path_factory.mktemp("planner")


@pytest.fixture(scope="module")
def client(cluster: LocalCluster, root: Path) -> Iterator[TestClient]:
    with make_app(root, scheduler=cluster.scheduler_address) as c:
        yield c


@pytest.fixture(scope="module")
def planner(client: TestClient) -> dict[str, str]:
    return key(client, "planner")


def key(client: TestClient, role: str, courier: str | None = None) -> dict[str, str]:
    r = client.post("/v1/keys", json={"role": role, "courier_id": courier}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return {"Authorization": "Bearer " + r.json()["key"]}


def follow(client: TestClient, url: str, headers: dict[str, str], *, timeout_s: float = 45.0) -> list[dict[str, Any]]:
    """Every distinct (status, progress) view of a job until it is done or failed."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        job = r.json()
        if not seen or (seen[-1]["status"], seen[-1]["progress"]) != (job["status"], job["progress"]):
            seen.append(job)
        if job["status"] in ("done", "failed"):
            return seen
        time.sleep(0.01)
    raise AssertionError(f"{url} still {seen[-1]['status'] if seen else 'unknown'} after {timeout_s} s")


@pytest.fixture(scope="module")
def finished(client: TestClient, planner: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A simulation of the tiny day with two overrides and a seed, followed to its end: (POST answer, views)."""
    body = {"scenario": "moscow-ostankino-tiny", "set": {"fleet.bike": 4, "policy": "greedy"}, "seed": 3}
    r = client.post("/v1/simulations", json=body, headers=planner)
    assert r.status_code == 202, r.text
    assert r.headers["Location"] == f"/v1/simulations/{r.json()['id']}"
    return r.json(), follow(client, r.headers["Location"], planner)


def test_a_simulation_goes_queued_running_done_with_the_kpis_of_lastmile_simulate(
        finished: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    """A job is queued, then running with growing progress, then done with the KPIs `lastmile simulate` gives."""
    posted, seen = finished
    assert posted["status"] == "queued" and posted["progress"] == 0.0 and posted["kpis"] is None
    statuses = [v["status"] for v in seen]
    assert [s for k, s in enumerate(statuses) if k == 0 or statuses[k - 1] != s][-2:] == ["running", "done"], statuses
    progress = [v["progress"] for v in seen]
    assert progress == sorted(progress) and progress[-1] == 1.0 and any(0 < p < 1 for p in progress)
    done = seen[-1]
    scenario = configured(TINY, ["fleet.bike=4", "policy=greedy"], seed=3)
    expected = simulate(scenario, network=network_for(scenario)).kpis
    assert done["kpis"] == json.loads(json.dumps(expected))
    assert done["seed"] == 3 and done["set"] == {"fleet.bike": 4, "policy": "greedy", "seed": 3}
    assert done["error"] is None and done["started"] and done["finished"]


def test_the_report_and_files_of_a_finished_run_can_be_fetched(
        client: TestClient, planner: dict[str, str], finished: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    """report.html, a PNG and kpis.json are served; the job lists exactly the files the run wrote."""
    done = finished[1][-1]
    links = done["links"]
    assert set(links["files"]) >= {"report.html", "map.png", "events.jsonl", "kpis.json", "couriers.json"}
    report = client.get(links["report"], headers=planner)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert '<base href="files/">' in report.text and 'src="map.png"' in report.text
    png = client.get(links["files"]["map.png"], headers=planner)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    kpis = client.get(links["files"]["kpis.json"], headers=planner).json()
    assert kpis["seed"] == 3 and kpis["policy"] == "greedy" and kpis["on_time_rate"] == done["kpis"]["on_time_rate"]
    listed = client.get("/v1/simulations", headers=planner).json()["simulations"]
    assert done["id"] in [j["id"] for j in listed]


@pytest.mark.parametrize("name", ["%2E%2E", "..%2F..%2Fpyproject.toml", "%2e%2e%2fsecret.txt", "..%5Csecret.txt",
                                  "secret.txt", "%2Fetc%2Fpasswd", "kpis.json%00", "%2E"])
def test_files_outside_the_job_are_refused(client: TestClient, planner: dict[str, str], name: str, root: Path,
                                           finished: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    """`/files/{name}` serves only a file the job wrote: any other name, `..` or encoded slash is a 404."""
    done = finished[1][-1]
    for folder in (root, root / "jobs"):
        (folder / "secret.txt").write_text("not yours")
    r = client.get(f"/v1/simulations/{done['id']}/files/{name}", headers=planner)
    assert r.status_code == 404, (name, r.status_code, r.text[:200])
    assert r.headers["content-type"] == "application/json" and "error" in r.json()
    assert client.get(f"/v1/simulations/..%2F{done['id']}/report", headers=planner).status_code == 404


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/simulations", {"scenario": "moscow-ostankino-tiny", "set": {"warp.speed": 9}}, "set.warp.speed"),
    ("/v1/simulations", {"scenario": "moscow-ostankino-tiny", "set": {"fleet.bike": "lots"}}, "set.fleet.bike"),
    ("/v1/simulations", {"scenario": "moscow-ostankino-tiny", "set": {"fleet.rocket": 3}}, "set.fleet.rocket"),
    ("/v1/simulations", {"scenario": "moscow-ostankino-tiny", "set": {"policy": True}}, "set.policy"),
    ("/v1/simulations", {"scenario": "moscow-ostankino-tiny", "seed": -1}, "seed"),
    ("/v1/simulations", {"scenario": "no-such-day"}, "scenario"),
    ("/v1/simulations", {"scenario": "../pyproject"}, "scenario"),
    ("/v1/simulations", {"scenario": "/etc/passwd"}, "scenario"),
    ("/v1/simulations", {"scenario": 7}, "scenario"),
    ("/v1/simulations", {"scenario": {"map": {"file": "../../etc/passwd"}}}, "scenario.map.file"),
    ("/v1/simulations", {"scenario": {"map": {"file": "maps/moscow_ostankino_drive.osm.bz2"}}}, "scenario.stores"),
    ("/v1/simulations", {"scenario": "moscow-ostankino-tiny", "sets": {}}, "sets"),
    ("/v1/sweeps", {"scenario": "moscow-ostankino-tiny", "set": {"policy": ["greedy", "teleport"]}}, "set.policy"),
    ("/v1/sweeps", {"scenario": "moscow-ostankino-tiny", "set": {"policy": []}}, "set.policy"),
    ("/v1/sweeps", {"scenario": "moscow-ostankino-tiny", "set": {"seed": [1, 2]}}, "set.seed"),
    ("/v1/sweeps", {"scenario": "moscow-ostankino-tiny", "seeds": 0}, "seeds"),
    ("/v1/sweeps", {"scenario": "moscow-ostankino-tiny", "set": {"demand.orders": list(range(101))}, "seeds": 10},
     "set"),
    ("/v1/simulations", {"scenario": "moscow-ostankino-tiny", "set": {"fleet.scale": 1e308}}, "set.fleet.scale"),
    ("/v1/simulations", {"scenario": "moscow-ostankino-tiny", "set": {"lockers.compartments_scale": 1e308}},
     "set.lockers.compartments_scale"),
    ("/v1/sweeps", {"scenario": "moscow-ostankino-tiny", "set": {"stores.pickers_scale": [1, 1e308]}},
     "set.stores.pickers_scale"),
    ("/v1/sweeps", {"scenario": "moscow-ostankino-tiny", "set": {"pickup_points.capacity_scale": 1e308}},
     "set.pickup_points.capacity_scale"),
    ("/v1/simulations", {"scenario": "moscow-ostankino-tiny", "set": {"policy": "reoptimize",
                                                                      "policy.backend": "ortools"}},
     "set.policy.backend"),
    ("/v1/sweeps", {"scenario": "moscow-ostankino-tiny", "set": {"policy": ["batch", "reoptimize"],
                                                                 "policy.backend": ["sisr", "ortools"]}},
     "set.policy.backend"),
    ("/v1/simulations", {"scenario": {**tomllib.loads(TINY.read_text()), "policy": {"name": "reoptimize",
                                                                                     "backend": "hybrid"}}},
     "scenario.policy.backend"),
    ("/v1/simulations", {"scenario": {**tomllib.loads(TINY.read_text()),
                                      "demand": {"kind": "replay", "file": "moscow-ostankino-tiny.toml"}},
                         "set": {"demand.orders": 50}}, "set.demand.orders"),
    ("/v1/simulations", {"scenario": "moscow-ostankino-tiny", "seed": True}, "seed"),
    ("/v1/simulations", {"scenario": "moscow-ostankino-tiny", "seed": "3"}, "seed"),
    ("/v1/simulations", {"scenario": "moscow-ostankino-tiny", "seed": 2.5}, "seed"),
    ("/v1/simulations", {"scenario": "moscow-ostankino-tiny", "seed": 2**31}, "seed"),
    ("/v1/sweeps", {"scenario": "moscow-ostankino-tiny", "seeds": True}, "seeds"),
    ("/v1/sweeps", {"scenario": "moscow-ostankino-tiny", "seeds": "3"}, "seeds"),
    ("/v1/sweeps", {"scenario": "moscow-ostankino-tiny", "seeds": [1, -1]}, "seeds[1]"),
    ("/v1/sweeps", {"scenario": "moscow-ostankino-tiny", "seeds": [True]}, "seeds[0]"),
    ("/v1/sweeps", {"scenario": "moscow-ostankino-tiny", "seeds": [2**31]}, "seeds[0]"),
    ("/v1/sweeps", {"scenario": "moscow-ostankino-tiny", "seeds": []}, "seeds"),
])
def test_a_bad_request_is_422_naming_the_field_and_queues_nothing(client: TestClient, planner: dict[str, str],
                                                                   path: str, body: dict[str, Any],
                                                                   field: str) -> None:
    """An unknown or bad override, a missing or escaping scenario, a bad seed or grid: 422 naming it, no job."""
    before = len(client.get(path, headers=planner).json()[path.removeprefix("/v1/")])
    r = client.post(path, json=body, headers=planner)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field, r.json()
    assert len(client.get(path, headers=planner).json()[path.removeprefix("/v1/")]) == before


@pytest.mark.parametrize(("path", "body", "message"), [
    ("/v1/simulations", {"set": {"fleet.scale": 1e308}}, "would make a fleet group larger than 1000000 couriers"),
    ("/v1/simulations", {"set": {"policy": "reoptimize", "policy.backend": "ortools"}},
     "ortools cannot price both click-to-door and lateness past the quote: use sisr or auto, or set "
     "quote_minute_cost_m=0"),
    ("/v1/sweeps", {"set": {"policy": ["batch", "reoptimize"], "policy.backend": ["sisr", "ortools"]}},
     "ortools cannot price both click-to-door and lateness past the quote"),
    ("/v1/simulations", {"seed": True}, "must be an integer, got True"),
    ("/v1/simulations", {"seed": -1}, "must not be negative, got -1"),
    ("/v1/simulations", {"seed": 2**31}, "must be at most 2147483647, got 2147483648"),
    ("/v1/sweeps", {"seeds": [-1]}, "must not be negative, got -1"),
    ("/v1/sweeps", {"seeds": [5, 2**31]}, "must be at most 2147483647, got 2147483648"),
    ("/v1/sweeps", {"seeds": 101}, "must be at most 100, got 101"),
])
def test_a_refusal_says_what_is_wrong_with_the_value(client: TestClient, planner: dict[str, str], path: str,
                                                     body: dict[str, Any], message: str) -> None:
    """The 422's message states the bound or the conflict (not `must be an integer` for a list of seeds)."""
    r = client.post(path, json={"scenario": "moscow-ostankino-tiny", **body}, headers=planner)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"].startswith(message), r.json()


def test_a_valid_combination_of_policy_knobs_is_queued(client: TestClient, planner: dict[str, str]) -> None:
    """ortools under reoptimize without kept quotes, and ortools under batch, pass the policy check (202)."""
    for body in ({"set": {"policy": "batch", "policy.backend": "ortools"}, "seed": 4.0},
                 {"set": {"policy": "reoptimize", "policy.backend": "ortools", "policy.quote_minute_cost_m": 0,
                          "policy.iterations": 5}}):
        r = client.post("/v1/simulations", json={"scenario": "moscow-ostankino-tiny", **body}, headers=planner)
        assert r.status_code == 202, r.text
        done = follow(client, r.headers["Location"], planner)[-1]
        assert done["status"] == "done", done["error"]


def test_a_scenario_whose_run_fails_reports_failed_with_the_reason(client: TestClient,
                                                                   planner: dict[str, str]) -> None:
    """A scenario that passes the checks but cannot run (a store off the map) ends failed, naming the field."""
    scenario = tomllib.loads(TINY.read_text())
    scenario["stores"][0]["location"] = [37.75, 55.95]
    r = client.post("/v1/simulations", json={"scenario": scenario}, headers=planner)
    assert r.status_code == 202, r.text
    failed = follow(client, r.headers["Location"], planner)[-1]
    assert failed["status"] == "failed" and failed["kpis"] is None and failed["links"]["files"] == {}
    assert failed["error"].startswith("scenario.stores[0].location: 'ostankino' at (37.750000, 55.950000)")
    assert "\n" not in failed["error"]
    assert client.get(f"{r.headers['Location']}/report", headers=planner).status_code == 404


def test_two_jobs_queued_at_once_both_finish(client: TestClient, planner: dict[str, str]) -> None:
    """Two simulations posted back to back are both queued and both run to done, each with its own KPIs."""
    urls = []
    for seed in (5, 6):
        r = client.post("/v1/simulations", json={"scenario": "moscow-ostankino-tiny", "seed": seed}, headers=planner)
        assert r.status_code == 202 and r.json()["status"] == "queued"
        urls.append(r.headers["Location"])
    ends = [follow(client, url, planner)[-1] for url in urls]
    assert [e["status"] for e in ends] == ["done", "done"]
    assert [e["seed"] for e in ends] == [5, 6] and ends[0]["kpis"] != ends[1]["kpis"]


def test_a_sweep_on_a_local_cluster_returns_a_row_per_combination(tmp_path: Path) -> None:
    """A 2 x 1 sweep on the LocalCluster started by the first job (one process) gives 2 rows; the cluster stops
    with the app."""
    with make_app(tmp_path, scheduler="", job_workers=1) as client:
        planner = key(client, "planner")
        body = {"scenario": "moscow-ostankino-tiny", "set": {"policy": ["greedy", "batch"], "fleet.bike": 4},
                "seeds": [2]}
        r = client.post("/v1/sweeps", json=body, headers=planner)
        assert r.status_code == 202 and r.json()["runs"] == 2, r.text
        assert r.headers["Location"] == f"/v1/sweeps/{r.json()['id']}"
        seen = follow(client, r.headers["Location"], planner)
        done = seen[-1]
        assert done["status"] == "done", done["error"]
        assert [(row["policy"], row["fleet.bike"], row["seed"]) for row in done["rows"]] == [("greedy", 4, 2),
                                                                                             ("batch", 4, 2)]
        assert all(0 <= row["on_time_rate"] <= 1 for row in done["rows"])
        assert set(done["links"]["files"]) == {"results.csv", "kpi_vs_policy.png"}
        csv = client.get(done["links"]["files"]["results.csv"], headers=planner)
        assert csv.status_code == 200 and csv.text.startswith("policy,fleet.bike,seed,")
        listed = client.get("/v1/sweeps", headers=planner).json()["sweeps"]
        assert [(j["id"], j["rows"]) for j in listed] == [(done["id"], None)]
    assert multiprocessing.active_children() == []


def test_only_planner_and_admin_keys_may_run_jobs(client: TestClient) -> None:
    """Courier and order-system keys get 403 on every job route, no key 401; planner and admin keys get in."""
    body = {"scenario": "moscow-ostankino-tiny"}
    courier = next(iter(client.get("/v1/config", headers=ADMIN).json()["couriers"]))
    for headers in (key(client, "order_system"), key(client, "courier", courier)):
        for method, path in (("POST", "/v1/simulations"), ("GET", "/v1/simulations"), ("POST", "/v1/sweeps"),
                             ("GET", "/v1/sweeps"), ("GET", "/v1/simulations/sim_x"),
                             ("GET", "/v1/simulations/sim_x/files/kpis.json")):
            r = client.request(method, path, json=body if method == "POST" else None, headers=headers)
            assert r.status_code == 403 and r.json()["error"]["field"] == "Authorization", (method, path, r.text)
    assert client.get("/v1/simulations").status_code == 401
    for headers in (key(client, "planner"), ADMIN):
        assert client.get("/v1/simulations", headers=headers).status_code == 200
        missing = client.get("/v1/sweeps/swp_nope", headers=headers)
        assert missing.status_code == 404 and missing.json()["error"]["field"] == "sweep_id"
