"""`POST /v1/solve`: one stateless vehicle-routing solve in VROOM's formats (docs/api.md, "Stateless solve").

The body is VROOM's input document (`routing.vroom` reads it: the same reader as `lastmile solve`); the answer is
VROOM's output (`routing.vroom.render`) with a `reason` for every unassigned task. A document with coordinates and
no `matrices` travels on the deployment's road map (`routing.vroom.RoadMatrices`: snapped within the deployment's
`max_snap_m`, CCH matrices per profile). Nothing is stored. Sizes are vroom-express's: more than `MAX_TASKS` tasks
(jobs, plus two per shipment) or `MAX_VEHICLES` vehicles is a 413, as is a body over `LASTMILE_MAX_BODY_BYTES`
(`BodyLimit`). Errors have the API's one shape plus VROOM's numeric `code` beside it: `{"code": 2, "error": {"code":
"invalid", "message", "field"}}` (2 input error, 3 routing error, 4 too large as vroom-express, 1 internal error).
Solves run in worker threads, at most `SLOTS` at a time per API process; the others wait their turn.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, get_args

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from api.errors import ApiError
from api.service import Service
from routing.errors import InvalidProblemError, UnsupportedProblemError
from routing.solvers.auto import BACKEND_NAMES, solve
from routing.solvers.base import MAX_SEED as SOLVER_MAX_SEED
from routing.solvers.base import SolveParams
from routing.vroom import INPUT_ERROR, INTERNAL_ERROR, RoadMatrices, VroomError, loads, parse, render

log = logging.getLogger(__name__)

MAX_TASKS = 1000
"""vroom-express's `maxlocations`: jobs plus two per shipment."""
MAX_VEHICLES = 200
"""vroom-express's `maxvehicles`."""
TOO_LARGE = 4
"""vroom-express's status code for a problem over its size limits."""
MAX_TIME_LIMIT_S = 300.0
"""The longest time limit a request may ask for (vroom-express's timeout)."""
MAX_ITERATIONS = 10_000
MAX_SEED = SOLVER_MAX_SEED
SLOTS = max(1, len(os.sched_getaffinity(0)) // 2) if hasattr(os, "sched_getaffinity") else 1
"""Solves running at once in one API process (half the usable CPUs, so dispatch keeps the rest)."""

Backend = Literal["auto", "pyvrp", "ortools", "sisr", "hybrid"]
assert set(get_args(Backend)) == set(BACKEND_NAMES)


def default_time_limit(tasks: int) -> float:
    """Seconds of search when a request sets neither a time nor an iteration limit: 0.5 s and 10 ms per task, at
    most 10 s (the solvers search until the limit, so a tiny problem should not wait long)."""
    return min(10.0, 0.5 + 0.01 * tasks)


class SolveError(ApiError):
    """An ApiError whose body also carries VROOM's numeric status `code` beside `error`."""

    def __init__(self, status: int, code: str, message: str, field: str = "", *, vroom_code: int) -> None:
        super().__init__(status, code, message, field)
        self.vroom_code = vroom_code

    def body(self) -> dict[str, Any]:
        return {"code": self.vroom_code, **super().body()}


def _invalid(field: str, message: str) -> SolveError:
    return SolveError(422, "invalid", message, field, vroom_code=INPUT_ERROR)


def _number(raw: Any, field: str, *, integer: bool, low: float, high: float) -> Any:
    ok = isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw)
    if integer and ok and isinstance(raw, float):
        ok = raw.is_integer()
    if not ok:
        raise _invalid(field, f"must be {'an integer' if integer else 'a number'}, got {raw!r}"[:200])
    if not low <= raw <= high:
        raise _invalid(field, f"must lie in [{low:g}, {high:g}], got {raw!r}")
    return int(raw) if integer else float(raw)


def body_options(raw: Any) -> dict[str, Any]:
    """The `options` object of a body: `time_limit` (or vroom-express's `l`), `iterations`, `seed`, `backend`;
    `g` (geometry) and `c` (plan mode) are refused, vroom-express's `t` and `x` and unknown keys ignored."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _invalid("options", "must be an object")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        field = f"options.{key}"
        if key in ("time_limit", "l"):
            out["time_limit"] = _number(value, field, integer=False, low=1e-3, high=MAX_TIME_LIMIT_S)
        elif key == "iterations":
            out["iterations"] = _number(value, field, integer=True, low=1, high=MAX_ITERATIONS)
        elif key == "seed":
            out["seed"] = _number(value, field, integer=True, low=0, high=MAX_SEED)
        elif key == "backend":
            if value not in BACKEND_NAMES:
                raise _invalid(field, f"must be one of {', '.join(BACKEND_NAMES)}, got {value!r}"[:200])
            out["backend"] = value
        elif key == "g" and value:
            raise _invalid(field, "not supported: no route geometry (GET /v1/couriers/{id}/route draws live routes)")
        elif key == "c" and value:
            raise _invalid(field, "not supported: no plan mode; `steps` are executed steps kept first")
    return out


def _check_size(doc: Mapping[str, Any]) -> None:
    """vroom-express's limits, on the raw document (before anything is parsed or routed)."""
    lengths = {key: len(doc[key]) if isinstance(doc.get(key), list) else 0
               for key in ("jobs", "shipments", "vehicles")}
    tasks = lengths["jobs"] + 2 * lengths["shipments"]
    if tasks > MAX_TASKS:
        raise SolveError(413, "too_large", f"too many locations ({tasks}: jobs plus two per shipment), at most "
                                           f"{MAX_TASKS}", "jobs" if lengths["jobs"] else "shipments",
                         vroom_code=TOO_LARGE)
    if lengths["vehicles"] > MAX_VEHICLES:
        raise SolveError(413, "too_large", f"too many vehicles ({lengths['vehicles']}), at most {MAX_VEHICLES}",
                         "vehicles", vroom_code=TOO_LARGE)


INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "VROOM's input document (https://github.com/VROOM-Project/vroom/blob/master/docs/API.md): "
                   "`vehicles`, `jobs`, `shipments`, and per-profile `matrices` or `[lon, lat]` locations on the "
                   f"service's map; `options` as the query parameters. More than {MAX_TASKS} tasks (jobs, plus two "
                   f"per shipment) or {MAX_VEHICLES} vehicles is a 413",
    "required": ["vehicles"],
    "properties": {
        "vehicles": {"type": "array", "items": {"type": "object"}, "minItems": 1},
        "jobs": {"type": "array", "items": {"type": "object"}},
        "shipments": {"type": "array", "items": {"type": "object"}},
        "matrices": {"type": "object", "additionalProperties": {"type": "object"}},
        "options": {"type": "object", "properties": {
            "time_limit": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIME_LIMIT_S},
            "iterations": {"type": "integer", "minimum": 1, "maximum": MAX_ITERATIONS},
            "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
            "backend": {"type": "string", "enum": list(BACKEND_NAMES)}}},
    },
}
OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "VROOM's output: `code` 0, `summary`, `unassigned` (each with the solvers' `reason`), `routes` "
                   "with their `steps`",
    "required": ["code", "summary", "unassigned", "routes"],
    "properties": {"code": {"type": "integer"}, "summary": {"type": "object"},
                   "unassigned": {"type": "array", "items": {"type": "object", "required": ["id", "type", "reason"]}},
                   "routes": {"type": "array", "items": {"type": "object", "required": ["vehicle", "cost", "steps"]}}},
}


def make_router(service: Service, allowed: Callable[..., Any]) -> APIRouter:
    """The `/v1/solve` route; it requires `allowed` (the app's role check for planner, order-system and admin keys)."""
    roads = RoadMatrices(service.deployment.network, max_snap_m=service.deployment.options.max_snap_m)
    slots = threading.BoundedSemaphore(SLOTS)
    router = APIRouter(dependencies=[Depends(allowed)], tags=["routing"])

    def run(data: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        with slots:
            started = time.perf_counter()
            try:
                doc = parse(data, router=roads, root="body")
            except VroomError as e:
                raise SolveError(422, "invalid" if e.code == INPUT_ERROR else "routing", e.message, e.field or "body",
                                 vroom_code=e.code) from None
            loading_ms = round((time.perf_counter() - started) * 1000)
            iterations = options.get("iterations")
            time_limit = options.get("time_limit")
            if time_limit is None and iterations is None:
                time_limit = default_time_limit(doc.n_tasks)
            params = SolveParams(time_limit=time_limit, iterations=iterations, seed=options.get("seed", 0))
            try:
                result = solve(doc.problem, params, backend=options.get("backend", "auto"))
            except UnsupportedProblemError as e:  # no backend (or not the one named) honours the problem
                raise _invalid("backend", str(e).removeprefix("backend: ")) from None
            except InvalidProblemError as e:
                raise _invalid("body", str(e)) from None
            return render(doc, result, loading_ms=loading_ms)

    @router.post("/v1/solve", response_model=None,
                 openapi_extra={"requestBody": {"required": True,
                                                "content": {"application/json": {"schema": INPUT_SCHEMA}}}},
                 responses={200: {"description": "the solution in VROOM's output shape",
                                  "content": {"application/json": {"schema": OUTPUT_SCHEMA}}}})
    async def solve_vroom(
        request: Request,
        time_limit: Annotated[float | None, Query(gt=0, le=MAX_TIME_LIMIT_S,
                                                  description="seconds of search (default: 0.5 + 0.01 per task, "
                                                              "at most 10, unless `iterations` is given)")] = None,
        iterations: Annotated[int | None, Query(ge=1, le=MAX_ITERATIONS,
                                                description="iteration limit: alone, the same seed gives the same "
                                                            "plan")] = None,
        seed: Annotated[int | None, Query(ge=0, le=MAX_SEED)] = None,
        backend: Annotated[Backend | None, Query(description="the solver (default `auto`)")] = None,
    ) -> JSONResponse:
        """Solve a VROOM document, statelessly: VROOM's output, with the solvers' `reason` for every unassigned
        task and each vehicle's `steps` kept first as executed steps. Options as query parameters or in the
        body's `options` (the query wins)."""
        raw = await request.body()
        if not raw.strip():
            raise _invalid("body", "missing: send VROOM's input document")
        try:
            data = loads(raw)
        except VroomError as e:
            raise _invalid("body", e.message) from None
        if not isinstance(data, dict):
            raise _invalid("body", "must be an object (VROOM's input document)")
        _check_size(data)
        options = body_options(data.get("options"))
        query = {"time_limit": time_limit, "iterations": iterations, "seed": seed, "backend": backend}
        options.update({k: v for k, v in query.items() if v is not None})
        try:
            answer = await anyio.to_thread.run_sync(functools.partial(run, data, options))
        except ApiError:
            raise
        except Exception:
            log.exception("POST /v1/solve failed")
            raise SolveError(500, "internal", "the solver failed; the error is logged", "",
                             vroom_code=INTERNAL_ERROR) from None
        return JSONResponse(answer)

    return router
