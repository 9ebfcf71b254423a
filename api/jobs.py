"""Planner jobs: scenario runs and sweeps posted over the API, run on Dask outside the request.

`POST /v1/simulations` takes a scenario (a file's name under `LASTMILE_SCENARIOS_DIR`, or the TOML document as
JSON) with `--set`-style overrides and a seed; `POST /v1/sweeps` takes a grid of overrides and seeds. Both are
checked here before anything is queued (a bad field is a 422 naming it), then submitted to the Dask cluster the
sweeps use (`LASTMILE_SCHEDULER`, or a `LocalCluster` of `LASTMILE_JOB_WORKERS` processes started on the first
job, see `simulator.sweep.dask_client`). A run reports its share of the simulated day through the scheduler's
event log; its outputs (`api.simulate.write_outputs`, `simulator.sweep.write_sweep`) are written by the Dask
worker under `LASTMILE_JOBS_DIR/<id>/`, so a remote scheduler's workers must see that folder and the scenario
files at the same paths, as for `lastmile sweep --scheduler`.

Jobs live in the registry of the API process that took them (`Jobs`): another process does not know them and a
restart forgets them (their files stay on disk). See docs/api.md.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Strict, Tag

from api.errors import ApiError
from api.scenario_file import load_scenario, scenario_from_dict
from api.settings import Settings
from api.sweep import check_combos, sweep_seeds
from simulator.errors import ScenarioError
from simulator.scenario import MAX_INT, Scenario, apply_setting, check_policy
from simulator.sweep import dask_client, grid, network_for, run_one

log = logging.getLogger(__name__)

TOPIC = "lastmile-jobs"
"""The Dask event topic on which runs report `{"job": id, "progress": share}` (one topic for every job)."""
LOOPBACK = "127.0.0.1:0"
"""Where a LocalCluster's scheduler serves its HTTP routes (health, metrics; no dashboard): any free local port."""
MAX_RUNS = 1000
"""The most runs (combinations times seeds) one sweep may ask for."""
MAX_SEEDS = 100
KEEP_ENDED = 1000
"""Finished and failed jobs a process remembers; older ones are forgotten (their files stay on disk)."""
MEDIA_TYPES = {".png": "image/png", ".html": "text/html", ".json": "application/json",
               ".jsonl": "application/x-ndjson", ".csv": "text/csv"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")

Status = Literal["queued", "running", "done", "failed"]
Kind = Literal["simulation", "sweep"]


# --- request and response bodies ---------------------------------------------------------------------------------

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


SCENARIO_DOC = ("the name of a scenario file under the scenarios folder (`moscow-ostankino-tiny`), or the scenario "
                "itself: the keys of a scenario TOML file as JSON (relative files resolve in the scenarios folder)")
_SCALAR_SCHEMA: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "number"}]}


def _scenario(value: Any) -> Any:
    if not isinstance(value, str | dict):
        raise ValueError(f"must be the name of a scenario file or a scenario (an object), got {value!r}")
    return value


ScenarioField = Annotated[str | dict[str, Any], BeforeValidator(_scenario), Field(description=SCENARIO_DOC)]


def _whole(value: Any) -> Any:
    """A float with no fraction (2.0) as the integer it is: JSON Schema's `integer` admits it."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53 else value


Seed = Annotated[int, Strict(), Field(ge=0, le=MAX_INT), BeforeValidator(_whole)]
"""A seed: an integer from 0 to 2^31 - 1, as a scenario's (not true, not "3", not 2.5)."""
SeedCount = Annotated[int, Strict(), Field(ge=1, le=MAX_SEEDS), BeforeValidator(_whole)]


def _seeds_kind(value: Any) -> str:
    """Which of `SweepRequest.seeds`' forms `value` is meant as: a list of seeds, or a number of them (so that an
    error is about that form alone, not `must be an integer, got [-1]`)."""
    return "list" if isinstance(value, list) else "count"


class SimulationRequest(_Body):
    scenario: ScenarioField
    set: dict[str, Any] = Field(
        default_factory=dict, max_length=50, json_schema_extra={"additionalProperties": _SCALAR_SCHEMA},
        description="knobs to change, as `lastmile simulate --set KEY=VALUE`: `{\"fleet.bike\": 40, \"policy\": "
                    "\"batch\"}`")
    seed: Seed | None = Field(None, description="override the scenario's seed")


class SweepRequest(_Body):
    scenario: ScenarioField
    set: dict[str, Any] = Field(
        default_factory=dict, max_length=50,
        json_schema_extra={"additionalProperties": {"anyOf": [
            {"type": "array", "items": _SCALAR_SCHEMA, "minItems": 1, "maxItems": MAX_RUNS}, _SCALAR_SCHEMA]}},
        description="the grid, as `lastmile sweep --set KEY=V1,V2`: `{\"fleet.bike\": [100, 120], \"policy\": "
                    "[\"greedy\", \"batch\"]}` (a single value is a list of one)")
    seeds: Annotated[Annotated[SeedCount, Tag("count")] | Annotated[
        list[Seed], Field(min_length=1, max_length=MAX_SEEDS), Tag("list")], Discriminator(_seeds_kind)] = Field(
        1, description="N seeds per combination from the scenario's own (`--seeds N`), or the seeds themselves "
                       "(`--seed-list`)")


class JobLinks(BaseModel):
    self: str
    report: str | None = Field(None, description="report.html, once a simulation is done")
    files: dict[str, str] = Field(default_factory=dict, description="every file the job wrote, once done")


class JobView(BaseModel):
    """A planner job (times are ISO 8601, UTC)."""

    id: str
    kind: Kind
    status: Status = Field(description="queued, running, done or failed")
    progress: float = Field(description="0..1: the share of the simulated day run (sweeps: of the runs done)")
    scenario: str = Field(description="the scenario's name")
    set: dict[str, Any] = Field(description="the overrides as given")
    seed: int | None = Field(None, description="the seed run (simulations)")
    seeds: list[int] | None = Field(None, description="the seeds run (sweeps)")
    runs: int = Field(description="simulation runs in the job")
    created: str
    started: str | None = None
    finished: str | None = None
    kpis: dict[str, Any] | None = Field(None, description="a simulation's KPIs, once done (as `kpis.json`)")
    rows: list[dict[str, Any]] | None = Field(
        None, description="a sweep's runs once done: the knobs' values, `seed` and the KPIs of each")
    error: str | None = Field(None, description="why it failed, one line naming the field")
    links: JobLinks


# --- the registry ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One planner job as the registry holds it; replaced whole on every change."""

    id: str
    kind: Kind
    scenario: str
    shown: Mapping[str, Any]
    """The overrides as the request gave them."""
    seeds: tuple[int, ...]
    runs: int
    out: Path
    created: float
    status: Status = "queued"
    progress: float = 0.0
    done_runs: int = 0
    started: float | None = None
    finished: float | None = None
    kpis: Mapping[str, Any] | None = None
    rows: tuple[Mapping[str, Any], ...] | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


class Jobs:
    """The jobs of this API process and the Dask client they run on (connected, or its cluster started, by the
    first job, in a background thread so the request does not wait for it)."""

    def __init__(self, *, root: Path, scheduler: str | None, workers: int = 1, max_active: int = 100) -> None:
        self.root = root
        self.scheduler = scheduler
        self.workers = workers
        self.max_active = max_active
        self._jobs: dict[str, Job] = {}
        self._futures: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self._client: Any = None
        self._closed = False
        self._submitter = ThreadPoolExecutor(1, thread_name_prefix="lastmile-jobs")

    # --- reading ---------------------------------------------------------------------------------------------

    def get(self, job_id: str, kind: Kind) -> Job | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.kind == kind else None

    def all(self, kind: Kind) -> list[Job]:
        """Jobs of `kind`, newest first."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.kind == kind]
        return sorted(jobs, key=lambda j: j.created, reverse=True)

    # --- submitting ------------------------------------------------------------------------------------------

    def simulate(self, scenario: Scenario, shown: Mapping[str, Any]) -> Job:
        """Queue one run of `scenario` (already configured and checked)."""
        job = self._add("simulation", scenario, shown, (scenario.seed,), 1)
        self._submitter.submit(self._start, job, partial(_submit_simulation, job, scenario))
        return job

    def sweep(self, scenario: Scenario, combos: Sequence[Mapping[str, str]], shown: Mapping[str, Any],
              seeds: Sequence[int], values: Mapping[str, Mapping[str, Any]]) -> Job:
        """Queue a grid (every combination already checked to apply); `values` maps each knob, in order, from its
        texts back to the values the request gave, for the rows."""
        job = self._add("sweep", scenario, shown, tuple(seeds), len(combos))
        self._submitter.submit(self._start, job, partial(_submit_sweep, job, scenario, combos, values,
                                                         self._run_done))
        return job

    def _add(self, kind: Kind, scenario: Scenario, shown: Mapping[str, Any], seeds: tuple[int, ...],
             runs: int) -> Job:
        job_id = ("sim_" if kind == "simulation" else "swp_") + secrets.token_hex(8)
        job = Job(id=job_id, kind=kind, scenario=scenario.name, shown=dict(shown), seeds=seeds, runs=runs,
                  out=self.root / job_id, created=time.time())
        with self._lock:
            if self._closed:
                raise ApiError(503, "unavailable", "the API process is shutting down; retry elsewhere")
            active = sum(1 for j in self._jobs.values() if j.active)
            if active >= self.max_active:
                raise ApiError(429, "too_many_jobs", f"{active} jobs are queued or running in this API process "
                               "(LASTMILE_MAX_JOBS); retry when some are done", headers={"Retry-After": "10"})
            self._jobs[job_id] = job
            ended = [j for j in self._jobs.values() if not j.active]
            for old in sorted(ended, key=lambda j: j.created)[: max(0, len(ended) - KEEP_ENDED)]:
                del self._jobs[old.id]  # its files stay on disk
        return job

    def _start(self, job: Job, submit: Callable[[Any], tuple[list[Any], Any]]) -> None:
        """On the submitter thread: connect (first job), submit the job's tasks, watch the one that ends it."""
        try:
            client = self._connect()
            futures, last = submit(client)
        except Exception as exc:
            self._update(job.id, status="failed", error=f"scheduler: {describe(exc)}", finished=time.time())
            return
        with self._lock:
            self._futures[job.id] = [*futures, last]
        last.add_done_callback(partial(self._finished, job.id))

    def _connect(self) -> Any:
        """The Dask client of `simulator.sweep.dask_client`: on the scheduler named (as `lastmile sweep
        --scheduler`), else on a LocalCluster of `workers` single-threaded processes; closed with the registry."""
        if self._client is None:
            if self._closed:
                raise RuntimeError("the API process is shutting down")
            client = self._stack.enter_context(dask_client(self.scheduler, workers=self.workers))
            client.subscribe_topic(TOPIC, self._on_event)
            self._client = client
        return self._client

    # --- what the cluster tells ------------------------------------------------------------------------------

    def _on_event(self, event: tuple[float, Any]) -> None:
        """A run started or moved on (on the Dask client's event loop)."""
        msg = event[1]
        if not isinstance(msg, dict) or msg.get("job") not in self._jobs:
            return  # another API process's job on a shared scheduler
        job = self._jobs[msg["job"]]
        if job.kind == "simulation":
            self._update(job.id, status="running", progress=float(msg.get("progress", 0.0)))
        else:
            self._update(job.id, status="running")

    def _run_done(self, job_id: str, future: Any) -> None:
        """One run of a sweep ended; a failed one fails the sweep at once and cancels the rest."""
        if future.status == "finished":
            with self._lock:
                job = self._jobs[job_id]
                if job.active:
                    self._jobs[job_id] = replace(job, status="running", done_runs=job.done_runs + 1,
                                                 progress=(job.done_runs + 1) / job.runs,
                                                 started=job.started or time.time())
        elif future.status == "error":
            self._fail(job_id, future)

    def _finished(self, job_id: str, future: Any) -> None:
        """The job's last task ended (on Dask's callback thread)."""
        if future.status != "finished":
            self._fail(job_id, future)
            return
        result = future.result()
        if "kpis" in result:
            self._update(job_id, status="done", progress=1.0, kpis=result["kpis"], finished=time.time(), final=True)
        else:
            self._update(job_id, status="done", progress=1.0, done_runs=len(result["rows"]),
                         rows=tuple(result["rows"]), finished=time.time(), final=True)
        with self._lock:
            self._futures.pop(job_id, None)

    def _fail(self, job_id: str, future: Any) -> None:
        if future.status == "cancelled":
            error = "cancelled: the API process shut down or lost the scheduler"
        else:
            error = describe(future.exception())
        self._update(job_id, status="failed", error=error, finished=time.time(), final=True)
        with self._lock:
            futures = self._futures.pop(job_id, [])
        if futures and self._client is not None and not self._closed:
            try:
                self._client.cancel(futures)
            except Exception:  # the client is closing: its futures go with it
                log.debug("cancelling the runs of %s failed", job_id, exc_info=True)

    def _update(self, job_id: str, *, final: bool = False, **changes: Any) -> None:
        """Apply `changes` to an active job (a finished job stays as it ended; progress never goes back)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not job.active:
                return
            if not final and changes.get("status") == "running" and "progress" in changes:
                changes["progress"] = max(job.progress, min(1.0, changes["progress"]))
            if changes.get("status") in ("running", "done") and job.started is None:
                changes["started"] = time.time()
            self._jobs[job_id] = replace(job, **changes)

    # --- closing ---------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop taking jobs; close the Dask client (cancelling what still runs) and the cluster started here."""
        with self._lock:
            self._closed = True
        self._submitter.shutdown(wait=True, cancel_futures=True)
        self._stack.close()
        self._client = None


def describe(exc: BaseException | None) -> str:
    """An exception as one line: a scenario error names the field (`scenario.stores[0].location: ...`)."""
    if isinstance(exc, ScenarioError):
        return f"{field_of(exc.key)}: {exc.message}" if exc.key else exc.message
    text = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def field_of(key: str) -> str:
    """The request field a ScenarioError's key is about: `--set fleet.bike` → `set.fleet.bike`, `fleet[2].count`
    → `scenario.fleet[2].count`."""
    if key.startswith("--set "):
        return "set." + key.removeprefix("--set ")
    if key in ("seeds", "--seeds", "--seed-list"):
        return "seeds"
    return f"scenario.{key}" if key else "scenario"


# --- what runs on the Dask workers (module level, so workers import it) ------------------------------------------

def _reporter(job_id: str, start: int, end: int) -> Callable[[int], None]:
    """`progress(now)` for `simulate`: the share of the day [start, end) run, logged on the job topic when it has
    moved by 1% (a run outside a Dask worker reports nothing)."""
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:
        return lambda now: None
    last = [-1.0]

    def report(now: int) -> None:
        share = min(1.0, max(0.0, (now - start) / max(1, end - start)))
        if share - last[0] >= 0.01:
            last[0] = share
            worker.log_event(TOPIC, {"job": job_id, "progress": share})

    report(start)
    return report


def simulation_task(job_id: str, scenario: Scenario, out: str) -> dict[str, Any]:
    """Run the day, write kpis.json, events.jsonl, couriers.json, report.html and its PNGs into `out`."""
    from api.simulate import write_outputs
    from simulator.model import simulate

    progress = _reporter(job_id, scenario.clock.start, scenario.clock.end)
    network = network_for(scenario)
    result = simulate(scenario, network=network, progress=progress)
    write_outputs(Path(out), result, network)
    return {"kpis": result.kpis}


def sweep_run_task(job_id: str, scenario: Scenario, combo: Mapping[str, str]) -> dict[str, Any]:
    """One combination of a sweep (`simulator.sweep.run_one`), announced on the job topic as it starts."""
    _reporter(job_id, 0, 1)
    return run_one(scenario, combo)


def sweep_files_task(out: str, rows: list[dict[str, Any]], knobs: list[str]) -> dict[str, Any]:
    """results.csv and kpi_vs_<knob>.png of a finished sweep (`simulator.sweep.write_sweep`)."""
    from simulator.sweep import write_sweep

    write_sweep(Path(out), rows, knobs)
    return {"rows": rows}


def _submit_simulation(job: Job, scenario: Scenario, client: Any) -> tuple[list[Any], Any]:
    future = client.submit(simulation_task, job.id, scenario, str(job.out), key=f"lastmile-{job.id}", pure=False)
    return [], future


def _submit_sweep(job: Job, scenario: Scenario, combos: Sequence[Mapping[str, str]],
                  values: Mapping[str, Mapping[str, Any]], on_run: Callable[[str, Any], None],
                  client: Any) -> tuple[list[Any], Any]:
    runs = [client.submit(sweep_run_task, job.id, scenario, dict(combo), key=f"lastmile-{job.id}-{k}", pure=False)
            for k, combo in enumerate(combos)]
    for future in runs:
        future.add_done_callback(partial(on_run, job.id))
    rows = client.submit(_rows, runs, values, key=f"lastmile-{job.id}-rows", pure=False)
    last = client.submit(sweep_files_task, str(job.out), rows, list(values), key=f"lastmile-{job.id}-files",
                         pure=False)
    return [*runs, rows], last


def _rows(rows: list[dict[str, Any]], values: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Sweep rows with each knob's value as the request gave it (100, not "100") and the seed an integer."""
    out = []
    for row in rows:
        fixed = {k: values[k].get(str(v), v) for k, v in row.items() if k in values}
        out.append({**row, **fixed, "seed": int(row["seed"])})
    return out


# --- checking a request ------------------------------------------------------------------------------------------

def _text(field: str, value: Any) -> str:
    """A `set` value as `--set` text: a string as is, a number as Python writes it; anything else is a 422."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return repr(value)
    raise ApiError(422, "invalid", f"must be a non-empty string or a number, got {value!r}", field)


def load_requested(value: str | Mapping[str, Any], root: Path) -> Scenario:
    """The scenario a request names or gives, checked; a 422 naming the field otherwise."""
    try:
        if isinstance(value, str):
            return load_scenario(_scenario_file(value, root))
        for table in ("map", "demand"):
            t = value.get(table)
            f = t.get("file") if isinstance(t, dict) else None
            if isinstance(f, str) and (PurePosixPath(f).is_absolute() or ".." in PurePosixPath(f).parts
                                       or "\\" in f or ":" in f):
                raise ApiError(422, "invalid", f"must be a path inside the scenarios folder, e.g. maps/x.osm.bz2, "
                                               f"got {f!r}", f"scenario.{table}.file")
        return scenario_from_dict(value, base=root, name="inline")
    except ScenarioError as exc:
        raise ApiError(422, "invalid", exc.message, field_of(exc.key)) from None
    except (ValueError, TypeError) as exc:
        raise ApiError(422, "invalid", describe(exc), "scenario") from None


def _scenario_file(name: str, root: Path) -> Path:
    stem = name.removesuffix(".toml")
    known = sorted(p.stem for p in root.glob("*.toml")) if root.is_dir() else []
    if not _NAME.fullmatch(stem) or ".." in stem or stem not in known:
        raise ApiError(422, "invalid", f"no scenario {name!r}; expected one of {known}", "scenario")
    return root / f"{stem}.toml"


def _apply(scenario: Scenario, key: str, value: str) -> Scenario:
    try:
        return apply_setting(scenario, key, value)
    except ScenarioError as exc:
        raise ApiError(422, "invalid", exc.message, field_of(exc.key)) from None


# --- the routes --------------------------------------------------------------------------------------------------

def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _files(job: Job) -> list[str]:
    """The files a finished job wrote (none before)."""
    if job.status != "done" or not job.out.is_dir():
        return []
    return sorted(p.name for p in job.out.iterdir() if p.is_file())


def view(job: Job, *, rows: bool = True) -> dict[str, Any]:
    base = f"/v1/{'simulations' if job.kind == 'simulation' else 'sweeps'}/{job.id}"
    files = _files(job)
    sim = job.kind == "simulation"
    return {
        "id": job.id, "kind": job.kind, "status": job.status, "progress": round(job.progress, 4),
        "scenario": job.scenario, "set": dict(job.shown), "seed": job.seeds[0] if sim else None,
        "seeds": None if sim else list(job.seeds), "runs": job.runs, "created": _iso(job.created),
        "started": _iso(job.started), "finished": _iso(job.finished),
        "kpis": None if job.kpis is None else {k: _finite(v) for k, v in job.kpis.items()},
        "rows": None if job.rows is None or not rows else [{k: _finite(v) for k, v in r.items()} for r in job.rows],
        "error": job.error,
        "links": {"self": base, "report": f"{base}/report" if "report.html" in files else None,
                  "files": {name: f"{base}/files/{name}" for name in files}},
    }


def jobs_from_settings(settings: Settings) -> Jobs:
    root = settings.jobs_dir if settings.jobs_dir is not None else Path(tempfile.gettempdir()) / "lastmile-jobs"
    return Jobs(root=root.resolve(), scheduler=settings.scheduler or None, workers=settings.job_workers,
                max_active=settings.max_jobs)


def make_router(settings: Settings, planner: Callable[..., Any], *, jobs: Jobs | None = None) -> APIRouter:
    """The planner-job routes; every one requires `planner` (the app's role check for planner and admin keys).
    The jobs' Dask client and cluster close with the app."""
    registry = jobs if jobs is not None else jobs_from_settings(settings)
    scenarios = settings.scenarios_dir.resolve()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(registry.close)

    router = APIRouter(dependencies=[Depends(planner)], tags=["planning"], lifespan=lifespan)
    answers: dict[int | str, dict[str, Any]] = {200: {"model": JobView}}

    def accepted(job: Job) -> JSONResponse:
        body = view(job)
        return JSONResponse(body, status_code=202, headers={"Location": body["links"]["self"]})

    def find(job_id: str, kind: Kind) -> Job:
        job = registry.get(job_id, kind)
        if job is None:
            raise ApiError(404, "not_found", f"no {kind} {job_id!r} in this API process", f"{kind}_id")
        return job

    @router.post("/v1/simulations", status_code=202, response_model=None, responses={202: {"model": JobView}})
    def create_simulation(body: SimulationRequest) -> JSONResponse:
        """Queue one scenario day (as `lastmile simulate`): `202` with the job and its `Location`. The scenario
        and every override are checked first (a bad one is a 422 naming it)."""
        scenario = load_requested(body.scenario, scenarios)
        for key, value in body.set.items():
            scenario = _apply(scenario, key, _text(f"set.{key}", value))
        if body.seed is not None:
            scenario = _apply(scenario, "seed", str(body.seed))
        try:
            check_policy(scenario, list(body.set))
        except ScenarioError as exc:
            raise ApiError(422, "invalid", exc.message, field_of(exc.key)) from None
        shown = {**body.set, **({} if body.seed is None else {"seed": body.seed})}
        return accepted(registry.simulate(scenario, shown))

    @router.get("/v1/simulations", response_model=None)
    async def list_simulations(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """The simulations of this API process, newest first."""
        return {"simulations": [view(j) for j in registry.all("simulation")[:limit]]}

    @router.get("/v1/simulations/{simulation_id}", response_model=None, responses=answers)
    async def get_simulation(simulation_id: str) -> JSONResponse:
        """Status and progress; the KPIs and links to the report and files once done, the error if failed."""
        return JSONResponse(view(find(simulation_id, "simulation")))

    @router.get("/v1/simulations/{simulation_id}/report", response_model=None,
                responses={200: {"content": {"text/html": {}}, "description": "report.html"}})
    async def simulation_report(simulation_id: str) -> HTMLResponse:
        """report.html of a finished simulation (its images are under `files/`)."""
        job = find(simulation_id, "simulation")
        if "report.html" not in _files(job):
            raise ApiError(404, "not_found", f"simulation {simulation_id!r} is {job.status}; no report",
                           "simulation_id")
        html = (job.out / "report.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("<head>", '<head>\n<base href="files/">', 1))

    file_answers: dict[int | str, dict[str, Any]] = {200: {"content": {t: {} for t in sorted(
        set(MEDIA_TYPES.values()))}, "description": "the file"}}

    def serve_file(job: Job, name: str) -> FileResponse:
        if name not in _files(job):  # only a name listed in the job's own folder: no path reaches elsewhere
            raise ApiError(404, "not_found", f"{job.kind} {job.id!r} has no file {name!r}", "name")
        return FileResponse(job.out / name, media_type=MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream"))

    @router.get("/v1/simulations/{simulation_id}/files/{name}", response_model=None, responses=file_answers)
    async def simulation_file(simulation_id: str, name: str) -> FileResponse:
        """A file the run wrote: map.png, click_to_door.png, hourly.png, utilisation.png, events.jsonl, kpis.json,
        couriers.json, report.html."""
        return serve_file(find(simulation_id, "simulation"), name)

    @router.post("/v1/sweeps", status_code=202, response_model=None, responses={202: {"model": JobView}})
    def create_sweep(body: SweepRequest) -> JSONResponse:
        """Queue a grid (as `lastmile sweep`): every combination of the `set` values times the seeds, one run each.
        Every combination is checked first (a bad one is a 422 naming it)."""
        scenario = load_requested(body.scenario, scenarios)
        given: dict[str, dict[str, Any]] = {}
        for key, values in body.set.items():
            values = values if isinstance(values, list) else [values]
            if not values:
                raise ApiError(422, "invalid", "must not be empty", f"set.{key}")
            given[key] = {_text(f"set.{key}[{k}]", v): v for k, v in enumerate(values)}
        settings_ = [(key, list(texts)) for key, texts in given.items()]
        try:
            seeds = (list(dict.fromkeys(body.seeds)) if isinstance(body.seeds, list)
                     else sweep_seeds(scenario, seeds=body.seeds, seed_list=None))
        except ScenarioError as exc:
            raise ApiError(422, "invalid", exc.message, "seeds") from None
        runs = math.prod(len(v) for _, v in settings_) * len(seeds)
        if runs > MAX_RUNS:
            raise ApiError(422, "invalid", f"the grid has {runs} runs; at most {MAX_RUNS}", "set")
        try:
            combos = grid(settings_, seeds)
            check_combos(scenario, combos)
        except ScenarioError as exc:
            raise ApiError(422, "invalid", exc.message, field_of(exc.key)) from None
        return accepted(registry.sweep(scenario, combos, body.set, seeds, given))

    @router.get("/v1/sweeps", response_model=None)
    async def list_sweeps(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """The sweeps of this API process, newest first (without their rows)."""
        return {"sweeps": [view(j, rows=False) for j in registry.all("sweep")[:limit]]}

    @router.get("/v1/sweeps/{sweep_id}", response_model=None, responses=answers)
    async def get_sweep(sweep_id: str) -> JSONResponse:
        """Status and runs done; one row per run (knobs, seed, KPIs) and links to results.csv and the plots once
        done, the error if a run failed."""
        return JSONResponse(view(find(sweep_id, "sweep")))

    @router.get("/v1/sweeps/{sweep_id}/files/{name}", response_model=None, responses=file_answers)
    async def sweep_file(sweep_id: str, name: str) -> FileResponse:
        """results.csv or a kpi_vs_<knob>.png of a finished sweep."""
        return serve_file(find(sweep_id, "sweep"), name)

    return router


__all__ = ["Jobs", "make_router"]
