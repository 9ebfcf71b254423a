"""The HTTP API (FastAPI): the order system posts orders, courier apps pull routes and post stops, admins mint keys.

`create_app(service)` builds the app over a `api.service.Service`. Every `/v1` route takes `Authorization: Bearer
KEY`; a key has one role (`order_system`, `courier`, `planner`, `admin`) and a courier key sees only its own
courier. Reads (`GET` of orders, routes, health) run on the event loop: each is one or two short store round trips;
calls that wait for the dispatch worker run in the thread pool. Every error, whatever raised it, is answered as
`{"error": {"code", "message", "field"}}` by the handlers at the bottom. Times are integer seconds of the service
day (as in `events.jsonl`).
"""


import functools
import gc
import json
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import orjson
import redis
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import schemas
from api.console import make_router as map_console
from api.console import road_map
from api.errors import ApiError
from api.jobs import make_router as planner_jobs
from api.metrics import RequestTimer
from api.service import Service
from api.solve import make_router as vroom_solve
from api.store import Store, body_hash, courier_key, json_text, order_key, planned_key, route_key, tracking_key
from api.webhooks import EVENT_TYPES, Registry, Subscription, cursor_key, target_problem
from api.worker import FINAL, STATES
from dispatch.errors import DispatchError
from dispatch.inventory import stock_counter
from dispatch.model import MAX_UNITS
from dispatch.operations import order_to_json
from routing.paths import StopLines

Principal = dict[str, str]
TRACK_PAGE = (Path(__file__).parent / "static" / "track.html").read_text()
TRACK_MAP_M = 1500.0
"""How far around the customer's address the tracking page draws the roads."""
THREADS = 256
IDEMPOTENCY_KEY_MAX = 200
HOT_ROUTES = {("/v1/orders", "POST"), ("/v1/couriers/{courier_id}/route", "GET"),
              ("/v1/couriers/{courier_id}/location", "POST"), ("/v1/couriers/{courier_id}/stops/{stop_id}", "POST")}
"""(path, method) of the routes matched first."""
_REJECTION_FIELDS = {"out_of_stock": "items", "no_box_fits": "items", "too_large": "items",
                     "outside_service_area": "location",
                     "unreachable": "location", "store_closed": "placed_at"}


# --- request bodies (the order itself is api.schemas.Order, the shape of `lastmile allocate --orders`) ----------

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyRequest(_Body):
    role: Literal["order_system", "courier", "planner", "admin"] = Field(description="what the key may do")
    courier_id: str | None = Field(None, min_length=1, description="the courier a `courier` key acts for")


class QuoteRequest(_Body):
    location: schemas.LonLat = Field(description=schemas.LOCATION_DOC)
    items: list[schemas.Item] = Field(min_length=1, max_length=MAX_UNITS, description="the basket")


class StockRequest(_Body):
    available: schemas.Count = Field(description="units of the SKU orders can still take at the store")


class ShiftRequest(_Body):
    on: StrictBool = Field(description="true: the courier starts its shift at its store; false: it ends it")


class LocationRequest(_Body):
    location: schemas.LonLat = Field(description=schemas.LOCATION_DOC)


class StopRequest(_Body):
    status: Literal["en_route", "arrived", "completed"] = Field(description="where the courier is with the stop")
    outcome: Literal["delivered", "failed", "return_collected"] | None = Field(
        None, description="for a completed door stop: handed over (default), failed, or returns collected")
    reason: str | None = Field(None, min_length=1, max_length=200, description="why a stop failed")
    location: schemas.LonLat | None = Field(None, description="where the phone was (" + schemas.LOCATION_DOC + ")")


class TrackingView(BaseModel):
    """What the customer's tracking page may know of an order, and nothing else (no names, no other stops)."""

    state: str = Field(description="as in OrderView")
    eta: int | None = Field(None, description="expected at the door (seconds of the service day)")
    promise_by: int | None = Field(None, description="promised by")
    delivered_at: int | None = None
    destination: list[float] | None = Field(None, description="the order's own address [lon, lat]")
    courier_location: list[float] | None = Field(
        None, description="the courier's last reported position, once the order is on board")
    courier_location_at: int | None = None
    stops_before: int | None = Field(None, description="doors the courier still has to serve before this one, "
                                                         "once assigned")
    updated: int | None = None


class WebhookRequest(_Body):
    url: str = Field(max_length=2000, description="where to POST events: an http:// or https:// URL with a host, "
                                                  "not a link-local address (169.254.0.0/16, fe80::/10)")
    events: list[str] = Field(min_length=1, max_length=len(EVENT_TYPES), description="event types to receive",
                              json_schema_extra={"items": {"enum": list[Any](sorted(EVENT_TYPES.values()))}})


    @field_validator("url")
    @classmethod
    def _reachable_target(cls, value: str) -> str:
        """An http(s) URL with a host; a link-local address (where clouds serve instance metadata) is refused."""
        problem = target_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class ErrorDetail(BaseModel):
    code: str = Field(description="what went wrong, e.g. `invalid`, `rejected`, `not_found`")
    message: str = Field(description="for people")
    field: str = Field(description="the request field it is about, e.g. `items[0].qty` (empty if none)")


class ErrorBody(BaseModel):
    """Every error, whatever its status."""

    error: ErrorDetail


class Queued(BaseModel):
    """202: the command is durable in the store; the dispatch worker has not applied it yet."""

    state: str
    message: str


class OrderView(BaseModel):
    """An order as the API shows it (times in seconds of the service day)."""

    model_config = ConfigDict(extra="allow")

    id: str
    state: str = Field(description="received, placed, rejected, allocated, ready, assigned, picked_up, delivered, "
                                   "failed, redirected, returned, cancelled or collected")
    location: list[float] | None = None
    promise: str | None = None
    store: str | None = None
    facility: str | None = None
    promise_by: int | None = None
    courier: str | None = None
    eta: int | None = None
    quoted_eta: int | None = None
    reason: str | None = None
    locker: str | None = None
    on_time: bool | None = None
    updated: int | None = None
    delivered_at: int | None = None
    tracking: str | None = Field(None, description="the id of the customer's tracking page, `/track/{tracking}`")
    timeline: list[dict[str, Any]] | None = Field(None, description="the order's events (GET only)")


_ERRORS = {400: "a required header is missing", 401: "no, unknown or revoked key",
           403: "the key's role or courier may not do this", 404: "unknown order, courier or key",
           409: "conflicts with the present state", 413: "body too large", 415: "body is not application/json",
           422: "a bad field, or an order that cannot be served", 429: "over the key's rate (see Retry-After)",
           503: "the store did not answer; retry"}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _ERRORS.items()}
QUEUED: dict[int | str, dict[str, Any]] = {202: {"model": Queued, "description": "durable, not yet applied"}}


class FastJSONResponse(JSONResponse):
    """A JSON response rendered by orjson (for the routes on every order's path)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


# --- middleware ----------------------------------------------------------------------------------------------

class BodyLimit:
    """ASGI middleware: 413 for a body over `limit` bytes (declared or streamed), 415 for a non-JSON body."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _send_error(send, ApiError(413, "too_large", f"the body exceeds {self.limit} bytes", "body"))
            return
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if (length not in (None, "0")) and kind != "application/json":
            await _send_error(send, ApiError(415, "unsupported_media_type",
                                             f"send application/json, got {kind or 'no content type'!r}",
                                             "Content-Type"))
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise ApiError(413, "too_large", f"the body exceeds {self.limit} bytes", "body")
            return message

        await self.app(scope, limited, send)


async def _send_error(send: Send, error: ApiError) -> None:
    body = json.dumps(error.body()).encode()
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class KeyRole(HTTPBearer):
    """The API's bearer scheme (`Authorization: Bearer KEY`, documented as such) as the one dependency of a route:
    the key's record, through `principal` (401 for no or an unknown key, 429 over its rate), if its role is one of
    `allowed` (403 otherwise). One dependency reading the request, rather than a role check depending on the scheme
    or on a declared header: FastAPI resolves each level and analyses each declared parameter on every request."""

    def __init__(self, principal: Callable[[HTTPAuthorizationCredentials | None], Principal],
                 allowed: tuple[str, ...]) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer",
                         description="an API key (`POST /v1/keys`): `Authorization: Bearer KEY`")
        self.principal = principal
        self.allowed = allowed

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        who = self.principal(await super().__call__(request))
        if who["role"] not in self.allowed:
            raise ApiError(403, "forbidden", f"a {who['role']} key may not do this", "Authorization")
        return who


class DirectRoute(APIRoute):
    """An APIRoute that handles its requests without FastAPI's per-request resolution of parameters, for the
    routes on every order's path. Its endpoint takes only its body model (parsed from the raw bytes with
    `model_validate_json`; errors raised as FastAPI raises them, so the one handler answers them), dependencies
    called with the request alone (such as `KeyRole`), and the `Request`; it returns a Response. Its OpenAPI is
    that of an ordinary route of the same signature."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint, dependant = self.endpoint, self.dependant  # FastAPI's analysis of the endpoint, made once
        dependencies: list[tuple[str, Callable[[Request], Awaitable[Any]]]] = []
        for sub in dependant.dependencies:
            takes_more = (sub.path_params or sub.query_params or sub.header_params or sub.cookie_params
                          or sub.body_params or sub.dependencies)
            if sub.name is None or sub.call is None or sub.request_param_name is None or takes_more:
                raise TypeError(f"{self.path}: a DirectRoute's dependencies take the request alone")
            dependencies.append((sub.name, sub.call))
        if (dependant.path_params or dependant.query_params or dependant.header_params or dependant.cookie_params
                or len(dependant.body_params) > 1):
            raise TypeError(f"{self.path}: a DirectRoute's endpoint takes one body model, dependencies and the "
                            "request")
        bodies: list[tuple[str, type[BaseModel]]] = []
        for f in dependant.body_params:
            model = f.field_info.annotation
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise TypeError(f"{self.path}: a DirectRoute's body is a pydantic model")
            bodies.append((f.name, model))
        requests = [dependant.request_param_name] if dependant.request_param_name else []

        async def handler(request: Request) -> Response:
            values: dict[str, Any] = {name: await dependency(request) for name, dependency in dependencies}
            for name, model in bodies:
                values[name] = _body(model, await request.body())
            for name in requests:
                values[name] = request
            response = await endpoint(**values)
            assert isinstance(response, Response), "a DirectRoute endpoint returns a Response"
            return response
        return handler


def _body(model: type[BaseModel], raw: bytes) -> BaseModel:
    """`model` from a request's raw body, or the RequestValidationError FastAPI raises for it."""
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


class RateLimiter:
    """A token bucket per caller (an API key, a client address) in this process: `rate` requests per second,
    bursts of two seconds' worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, who: str) -> float:
        """0 if a request may go now, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(who, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[who] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[who] = (tokens - 1, now)
            return 0.0

    def admit(self, who: str, field: str) -> None:
        """Let `who` through, or raise 429 with Retry-After naming `field`."""
        wait = self.take(who)
        if wait > 0:
            raise ApiError(429, "rate_limited", f"too many requests; retry in {wait:.2f} s", field,
                           headers={"Retry-After": f"{wait:.2f}"})


# --- the app ---------------------------------------------------------------------------------------------------

def create_app(service: Service, *, start_workers: bool = True) -> FastAPI:
    """The API over `service`; its workers start with the app (and stop with it) unless `start_workers` is False."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # sync routes run in anyio's thread pool; requests waiting for the worker each hold a thread
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        if start_workers:
            service.start()
        gc.collect()
        gc.freeze()  # start-up objects (map, core) leave the collector's scans: shorter pauses under load
        try:
            yield
        finally:
            await store.close_async()
            if start_workers:  # workers started elsewhere are stopped there
                service.stop()

    app = FastAPI(title="lastmile", version="1", lifespan=lifespan, responses=ERROR_RESPONSES,
                  description="Live dispatch: orders in, courier routes out. Times are seconds of the service day.")
    app.add_middleware(BodyLimit, limit=service.settings.max_body_bytes)
    app.add_middleware(RequestTimer, metrics=service.metrics)
    limiter = RateLimiter(service.settings.rate_per_s)
    public = RateLimiter(service.settings.track_rate_per_s)
    store = service.store

    def principal(key: HTTPAuthorizationCredentials | None) -> Principal:
        if key is None:
            raise ApiError(401, "unauthorized", "send Authorization: Bearer KEY", "Authorization")
        record = service.authenticate(key.credentials)
        if record is None:
            raise ApiError(401, "unauthorized", "unknown or revoked key", "Authorization")
        limiter.admit(key.credentials, "Authorization")
        return record

    def role(*allowed: str) -> KeyRole:
        return KeyRole(principal, allowed)

    def courier_of(courier_id: str, who: Principal) -> Mapping[str, str]:
        """The courier (store, profile) a request acts for, if the key may."""
        if who["role"] == "courier" and who["courier"] != courier_id:
            raise ApiError(403, "forbidden", "a courier key acts only for its own courier", "courier_id")
        courier = service.couriers().get(courier_id)
        if courier is None:
            raise ApiError(404, "not_found", f"unknown courier {courier_id!r}", "courier_id")
        return courier

    Admin = Annotated[Principal, Depends(role("admin"))]
    OrderSystem = Annotated[Principal, Depends(role("order_system", "admin"))]
    Reader = Annotated[Principal, Depends(role("order_system", "planner", "admin"))]
    CourierKey = Annotated[Principal, Depends(role("courier", "admin"))]

    # --- health ----------------------------------------------------------------------------------------------

    @app.get("/health", tags=["service"])
    def health() -> JSONResponse:
        """Whether the store answers, which dispatch worker holds the lease (any process) and how far it is behind
        the command stream: `status` ok, `degraded` (no worker holds the lease: orders are taken but nothing is
        dispatched) or `down` (the store does not answer: 503)."""
        ok = store.ping()
        last, applied = (store.last_seq(), store.applied()) if ok else (0, 0)
        holder = store.lease_holder() if ok else None
        body = {"status": "down" if not ok else "ok" if holder is not None else "degraded",
                "store": "ok" if ok else "down", "dispatcher": holder, "commands": last, "applied": applied,
                "lag": last - applied,
                "workers": [{"name": w.name, "holds_lease": w.core is not None} for w in service.workers]}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus metrics: request latency by route, order events, decision time, command lag, open orders."""
        return PlainTextResponse(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    # --- keys ------------------------------------------------------------------------------------------------

    @app.post("/v1/keys", status_code=201, tags=["admin"])
    def create_key(body: KeyRequest, _who: Admin) -> dict[str, str]:
        """A new API key (shown once; stored hashed)."""
        key, kid = service.mint_key(body.role, body.courier_id)
        return {"key": key, "id": kid, "role": body.role}

    @app.delete("/v1/keys/{key_id}", status_code=204, tags=["admin"])
    def revoke_key(key_id: str, _who: Admin) -> None:
        """Revoke a key by its id."""
        if not service.revoke(key_id):
            raise ApiError(404, "not_found", f"no key {key_id!r}", "key_id")

    def configure(part: str, body: schemas.FacilitiesFile | schemas.CouriersFile) -> JSONResponse:
        body.to_domain()  # the document's own fields checked here; against the stores configured now, by the worker
        reply = service.submit({"op": "configure", part: body.model_dump(mode="json", exclude_none=True)})
        return _answer(reply, lambda r: (200, service.config(fresh=True)))

    @app.put("/v1/facilities", tags=["admin"], responses=QUEUED)
    def put_facilities(body: schemas.FacilitiesFile, _who: Admin) -> JSONResponse:
        """Replace the dark stores (with stock), pickup points and lockers: the document of `lastmile allocate
        --facilities`. Only while no order is open (409 otherwise); couriers of removed stores are dropped."""
        return configure("facilities", body)

    @app.put("/v1/couriers", tags=["admin"], responses=QUEUED)
    def put_couriers(body: schemas.CouriersFile, _who: Admin) -> JSONResponse:
        """Replace the couriers. Only while no order is open (409 otherwise); couriers kept stay on shift."""
        return configure("couriers", body)

    @app.get("/v1/config", tags=["admin"])
    def get_config(_who: Reader) -> dict[str, Any]:
        """The stores and couriers as configured now."""
        return service.config(fresh=True)

    # --- order system ----------------------------------------------------------------------------------------

    @app.post("/v1/quotes", tags=["orders"], responses=QUEUED)
    def quote(body: QuoteRequest, _who: OrderSystem) -> JSONResponse:
        """Every delivery option the checkout can offer (express ETA, slots, pickup point, locker, store)."""
        items = [asdict(i.to_domain()) for i in body.items]
        reply = service.submit({"op": "quote", "location": list(body.location), "items": items})
        return _answer(reply, lambda r: (200, r["quote"]))

    async def place_order(body: schemas.Order, who: OrderSystem, request: Request) -> JSONResponse:
        """Place one order. Answered 201 once it is durable and allocated, 422 if it cannot be served (with the
        reason), 202 if the dispatch worker has not answered in time (the order is durable: GET it later)."""
        idempotency_key = request.headers.get("idempotency-key")
        if not idempotency_key:
            raise ApiError(400, "missing", "send an Idempotency-Key header (retries with it place one order)",
                           "Idempotency-Key")
        if len(idempotency_key) > IDEMPOTENCY_KEY_MAX:
            raise ApiError(422, "invalid", f"at most {IDEMPOTENCY_KEY_MAX} characters", "Idempotency-Key")
        order = body.to_domain()
        order_json = order_to_json(order)
        tracking = secrets.token_urlsafe(16)  # a retry's new id is dropped with the duplicate command
        command = {"op": "place", "order": order_json, "tracking": tracking}
        record = {"id": order.id, "state": "received", "mode": order.mode, "location": json_text(order.location),
                  "promise": json_text("express" if body.promise is None else body.promise.kind),  # the core's default
                  "tracking": tracking}
        idempotency = (idempotency_key, body_hash(order_json))
        if service.admitter is not None:  # admitted here: answered without waiting for the worker
            now = service.clock()
            admitted = await service.admitter.place(replace(order, placed_at=now), command, now=now,
                                                    idempotency=idempotency, record=record)
            service.check_appended(admitted.appended)
            if admitted.appended.status == "short":
                raise ApiError(503, "busy", "other orders kept taking the stock or room this order needs; retry "
                                            "with the same Idempotency-Key", "items")
            if admitted.appended.status == "accepted":
                view = _order_view(order.id, admitted.record)
            else:  # a retry: the record as the first request (or the worker since) left it
                view = _order_view(order.id, await store.hgetall_async(order_key(order.id)))
        else:
            reply = await anyio.to_thread.run_sync(functools.partial(
                service.submit, command, idempotency=idempotency, order=(order.id, record)))
            view = _order_view(order.id, await anyio.to_thread.run_sync(store.hgetall, order_key(order.id)))
            if reply is None:
                return JSONResponse(view, status_code=202)
            if not reply["ok"]:  # the worker could not place it: rejected in the store too (`not_placed: ...`)
                e = reply["error"]
                error = ApiError(500 if e["code"] == "internal" else 422, e["code"], e["message"], e["field"])
                return FastJSONResponse({**error.body(), "order": view}, status_code=error.status)
        if view["state"] == "rejected":
            reason = view.get("reason") or "rejected"
            error = ApiError(422, "rejected", reason, _REJECTION_FIELDS.get(reason.split(":")[0], "order"))
            return FastJSONResponse({**error.body(), "order": view}, status_code=422)
        return FastJSONResponse(view, status_code=201)

    app.router.add_api_route(
        "/v1/orders", place_order, methods=["POST"], route_class_override=DirectRoute, status_code=201,
        tags=["orders"], responses={
            201: {"model": OrderView, "description": "durable and allocated"},
            202: {"model": OrderView, "description": "durable; the dispatch worker has not applied it yet"}},
        openapi_extra={"parameters": [{  # read from the request itself (a DirectRoute declares no header)
            "name": "Idempotency-Key", "in": "header", "required": True,
            "description": "retries with the same key and body place one order; the same key with another body is "
                           "refused (422)",
            "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX}}]})

    @app.get("/v1/orders/{order_id}", tags=["orders"], responses={200: {"model": OrderView}})
    async def get_order(order_id: str, _who: Reader) -> JSONResponse:
        """The order's state, facility, courier, ETA and its timeline of events."""
        record = store.hgetall(order_key(order_id))
        if not record:
            raise ApiError(404, "not_found", f"no order {order_id!r}", "order_id")
        view = _order_view(order_id, record)
        view["timeline"] = [json.loads(e) for e in store.lrange(order_key(order_id) + ":events")]
        return JSONResponse(view)

    def order_command(op: str, order_id: str, done: str, *, late_ok: bool = False) -> JSONResponse:
        """A call on an order: 200 with the order once the core did it (`done` event), or had done it before (a
        retry), or with `late_ok` when it no longer matters (the order is past it); 409 when it cannot be done."""
        record = store.hgetall(order_key(order_id))
        if not record:
            raise ApiError(404, "not_found", f"no order {order_id!r}", "order_id")
        state = record.get("state")
        if state == STATES[done] or (late_ok and (state in FINAL or state == "delivered")):
            return JSONResponse(_order_view(order_id, record))  # done before (a retry), or long past it
        reply = service.submit({"op": op, "order": order_id})

        def answer(r: dict[str, Any]) -> tuple[int, Any]:
            view = _order_view(order_id, store.hgetall(order_key(order_id)))
            if not (late_ok or any(e["event"] == done for e in r["events"]) or view["state"] == STATES[done]):
                raise ApiError(409, "conflict", f"the order is {view['state']}; it cannot be {done} now", "order_id")
            return 200, view
        return _answer(reply, answer)

    @app.post("/v1/orders/{order_id}/cancel", tags=["orders"], responses=QUEUED)
    def cancel_order(order_id: str, _who: OrderSystem) -> JSONResponse:
        """Withdraw an order no courier has yet: its stock and compartments are released (409 if too late)."""
        return order_command("cancel", order_id, "cancelled")

    @app.post("/v1/orders/{order_id}/ready", tags=["orders"], responses=QUEUED)
    def order_ready(order_id: str, _who: OrderSystem) -> JSONResponse:
        """The store finished picking the order (a retry, or a report after the courier left with it, changes
        nothing)."""
        return order_command("picked", order_id, "picked", late_ok=True)

    @app.post("/v1/orders/{order_id}/collected", tags=["orders"], responses=QUEUED)
    def order_collected(order_id: str, _who: OrderSystem) -> JSONResponse:
        """The customer emptied the locker compartment or pickup place."""
        return order_command("collected", order_id, "collected")

    @app.put("/v1/stores/{store_id}/stock/{sku}", tags=["stores"], responses=QUEUED)
    def set_stock(store_id: str, sku: str, body: StockRequest, _who: OrderSystem) -> JSONResponse:
        """The store counted this many units orders can still take (real-time stock in every channel)."""
        if store_id not in service.config()["stores"]:
            raise ApiError(422, "invalid", f"unknown dark store {store_id!r}", "store")
        if (problem := schemas.url_id_problem(sku)) is not None:
            raise ApiError(422, "invalid", problem, "sku")
        reply = service.submit({"op": "stock", "store": store_id, "sku": sku, "available": body.available},
                               count=(*stock_counter(store_id, sku), body.available))
        return _answer(reply, lambda r: (200, {"store": store_id, "sku": sku, "available": body.available}))

    # --- courier app -----------------------------------------------------------------------------------------

    @app.post("/v1/couriers/{courier_id}/shift", tags=["couriers"], responses=QUEUED)
    def shift(courier_id: str, body: ShiftRequest, who: CourierKey) -> JSONResponse:
        """Start (at the store) or end the shift."""
        courier_of(courier_id, who)
        reply = service.submit({"op": "shift", "courier": courier_id, "on": body.on})
        return _answer(reply, lambda r: (200, {"courier": courier_id, "on_shift": body.on}))

    @app.post("/v1/couriers/{courier_id}/location", tags=["couriers"], responses=QUEUED)
    def location(courier_id: str, body: LocationRequest, who: CourierKey) -> JSONResponse:
        """Where the phone is (every 5 to 60 s)."""
        courier_of(courier_id, who)
        reply = service.submit({"op": "position", "courier": courier_id, "location": list(body.location)})
        return _answer(reply, lambda r: (200, {"courier": courier_id}))

    network = service.deployment.network
    traffic = service.deployment.options.traffic

    lines = StopLines(network)

    @app.get("/v1/couriers/{courier_id}/route", tags=["couriers"])
    async def route(courier_id: str, who: CourierKey, geometry: bool = True) -> JSONResponse:
        """The committed trip: stops in order with ETAs, addresses and what to pick up or hand over, and (unless
        `geometry=false`) the road path as a GeoJSON Feature, one line per leg; `planned`: the trips the
        dispatcher plans after it (orders with ETAs and where they go; they may still change)."""
        courier = courier_of(courier_id, who)
        raw, planned_raw = await store.get_many_async([route_key(courier_id), planned_key(courier_id)])
        planned = json.loads(planned_raw or "[]")
        if raw is None:
            return JSONResponse({"courier": courier_id, "status": "none", "stops": [], "planned": planned})
        body = dict(json.loads(raw))
        body["planned"] = planned
        points = tuple(tuple(s["location"]) for s in body["stops"] if s.get("location") is not None)
        if geometry and len(points) >= 2:
            hour = body["departure"] // 3600 % 24 if traffic else None
            body["geometry"] = {"type": "Feature",
                                "properties": {"legs": "one line per leg, from each stop to the next"},
                                "geometry": {"type": "MultiLineString",
                                             "coordinates": lines(courier["profile"], hour, points)}}
        return JSONResponse(body)

    @app.post("/v1/couriers/{courier_id}/stops/{stop_id}", tags=["couriers"], responses=QUEUED)
    def stop(courier_id: str, stop_id: str, body: StopRequest, who: CourierKey) -> JSONResponse:
        """A stop's status: `pickup` completed (left the store), a door `arrived` / `completed` with an outcome,
        `return` arrived (back at the store)."""
        courier_of(courier_id, who)
        command: dict[str, Any] = {"op": "stop", "courier": courier_id, "stop": stop_id, "status": body.status,
                                   "outcome": body.outcome, "reason": body.reason}
        if body.location is not None:
            command["location"] = list(body.location)
        reply = service.submit(command)
        return _answer(reply, lambda r: (200, json.loads(store.get(route_key(courier_id)) or "{}")))

    # --- webhooks ---------------------------------------------------------------------------------------------

    registry = Registry(store)

    def subscription(sub_id: str, who: Principal) -> Subscription:
        sub = registry.get(sub_id)
        if sub is None or (who["role"] != "admin" and sub.owner != who.get("id")):
            raise ApiError(404, "not_found", f"no webhook {sub_id!r}", "webhook_id")
        return sub

    @app.post("/v1/webhooks", status_code=201, tags=["webhooks"])
    def create_webhook(body: WebhookRequest, who: OrderSystem) -> dict[str, Any]:
        """Subscribe `url` to event types (`order.assigned`, `order.delivered`, ..., `courier.shift_on`): events
        published from now on are POSTed to it, signed the Standard Webhooks way with the secret answered here
        (shown once)."""
        try:
            sub = registry.create(body.url, body.events, owner=who.get("id", ""))
        except ValueError as e:
            field, _, message = str(e).partition(": ")
            raise ApiError(422, "invalid", message, field) from None
        return {**sub.public(), "secret": sub.secrets[0]}

    @app.get("/v1/webhooks", tags=["webhooks"])
    def list_webhooks(who: OrderSystem) -> dict[str, Any]:
        """The key's subscriptions (an admin key: all), without their secrets."""
        return {"webhooks": [s.public() for s in registry.all()
                             if who["role"] == "admin" or s.owner == who.get("id")]}

    @app.delete("/v1/webhooks/{webhook_id}", status_code=204, tags=["webhooks"])
    def delete_webhook(webhook_id: str, who: OrderSystem) -> None:
        """Unsubscribe: nothing more is sent."""
        registry.delete(subscription(webhook_id, who).id)

    @app.post("/v1/webhooks/{webhook_id}/rotate", tags=["webhooks"])
    def rotate_webhook(webhook_id: str, who: OrderSystem) -> dict[str, Any]:
        """A new secret; deliveries carry signatures by the new and the previous one for a day."""
        sub = registry.rotate(subscription(webhook_id, who), time.time())
        return {"id": sub.id, "secret": sub.secrets[0], "previous_until": int(sub.rotated_until)}

    @app.get("/v1/webhooks/{webhook_id}/deliveries", tags=["webhooks"])
    def webhook_deliveries(webhook_id: str, who: OrderSystem) -> dict[str, Any]:
        """The last delivery attempts (`webhook-id`, type, attempt, HTTP status (0: no answer), time) and where in
        the event stream the subscription is."""
        sub = subscription(webhook_id, who)
        return {**sub.public(), "cursor": store.get(cursor_key(sub.id)), "deliveries": registry.deliveries(sub.id)}

    app.include_router(planner_jobs(service.settings, role("planner", "admin")))  # docs/api.md#planner-jobs
    app.include_router(vroom_solve(service, role("planner", "order_system", "admin")))  # docs/api.md#stateless-solve
    app.include_router(map_console(service, lines=lines, planner=role("planner", "admin"), order_view=_order_view,
                                   reader=role("order_system", "planner", "admin")))  # docs/api.md#map-console

    # --- customer tracking (no key) ---------------------------------------------------------------------------

    def tracked(tracking_id: str, request: Request) -> tuple[str, dict[str, Any]]:
        """The order behind a tracking id and its view, after the client address's rate limit."""
        public.admit(request.client.host if request.client else "", "tracking_id")
        order_id = store.get(tracking_key(tracking_id)) if len(tracking_id) <= 64 else None
        record = store.hgetall(order_key(order_id)) if order_id else {}
        if not order_id or not record:
            raise ApiError(404, "not_found", "no order has this tracking id", "tracking_id")
        return order_id, _order_view(order_id, record)

    @app.get("/v1/track/{tracking_id}", tags=["tracking"], responses={200: {"model": TrackingView}})
    async def track(tracking_id: str, request: Request) -> JSONResponse:
        """The order's state and ETA for its customer, by the tracking id `POST /v1/orders` returned; once the
        order is on board, the courier's last position and how many doors come before this one. No key; rate
        limited per client address."""
        order_id, view = tracked(tracking_id, request)
        return JSONResponse(_tracking_view(store, order_id, view))

    @functools.lru_cache(maxsize=256)
    def roads_near(lon: float, lat: float) -> dict[str, Any]:
        return road_map(network, 5.0, around=(lon, lat, TRACK_MAP_M))

    @app.get("/v1/track/{tracking_id}/map", tags=["tracking"], response_model=None,
             responses={200: {"description": "GeoJSON FeatureCollection", "content": {"application/json": {
                 "schema": {"type": "object", "required": ["type", "bbox", "features"]}}}}})
    async def track_map(tracking_id: str, request: Request) -> JSONResponse:
        """The roads within 1.5 km of the order's address (GeoJSON, as `/v1/map`), for the tracking page."""
        _, view = tracked(tracking_id, request)
        lon, lat = view["location"]
        return JSONResponse(roads_near(round(lon, 3), round(lat, 3)))

    @app.get("/track/{tracking_id}", tags=["tracking"], response_class=HTMLResponse)
    async def track_page(tracking_id: str) -> HTMLResponse:
        """The customer's tracking page: it reads `/v1/track/{tracking_id}` every 15 s."""
        return HTMLResponse(TRACK_PAGE.replace("{{tracking}}", re.sub(r"[^A-Za-z0-9_-]", "", tracking_id)))

    # --- one error shape -------------------------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(DispatchError)
    async def dispatch_error(_request: Request, exc: DispatchError) -> JSONResponse:
        return await api_error(_request, ApiError(422, "invalid", exc.message, exc.field))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        field, message = _describe(request, exc.errors()[0])
        return await api_error(request, ApiError(422, "invalid", message, field))

    @app.exception_handler(redis.RedisError)
    async def store_down(_request: Request, exc: redis.RedisError) -> JSONResponse:
        return await api_error(_request, ApiError(
            503, "store_unavailable", f"the store did not answer ({type(exc).__name__}); retry with the same "
            "Idempotency-Key", headers={"Retry-After": "1"}))

    @functools.lru_cache(maxsize=1024)
    def allowed(path: str) -> tuple[str, ...]:
        """The methods the OpenAPI document lists for `path` (routes of included routers too)."""
        methods: set[str] = set()
        for template, operations in app.openapi()["paths"].items():
            if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path):
                methods |= {m.upper() for m in operations}
        return tuple(sorted(methods))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":  # e.g. JSON nested too deep
            return JSONResponse(ApiError(422, "invalid", "malformed JSON: could not be read (nested too deep, or a "
                                         "number of over 4,300 digits)",
                                         "body").body(), status_code=422)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only those of the first route that matched it
            headers["Allow"] = ", ".join(allowed(request.url.path))
        return JSONResponse(ApiError(exc.status_code, code, str(exc.detail), "").body(), status_code=exc.status_code,
                            headers=headers)

    # The routes on every order's and courier's path are matched first (the router tries routes in turn; no other
    # route matches their method and path); the OpenAPI document, made before, keeps the order they were declared in.
    app.openapi()
    app.router.routes.sort(key=lambda r: not (isinstance(r, APIRoute) and any((r.path, m) in HOT_ROUTES
                                                                              for m in r.methods or ())))
    return app


def _answer(reply: dict[str, Any] | None, ok: Callable[[dict[str, Any]], tuple[int, Any]]) -> JSONResponse:
    """A command's reply as a response: the worker's error as 422, no reply yet as 202."""
    if reply is None:
        return JSONResponse({"state": "accepted", "message": "queued; the dispatch worker has not applied it yet"},
                            status_code=202)
    if not reply["ok"]:
        e = reply["error"]
        raise ApiError({"conflict": 409, "internal": 500}.get(e["code"], 422), e["code"], e["message"], e["field"])
    status, body = ok(reply)
    return JSONResponse(body, status_code=status)


_JSON_FIELDS = ("location", "promise", "store", "facility", "promise_by", "courier", "eta", "quoted_eta", "reason",
                "locker", "on_time")


def _order_view(order_id: str, record: Mapping[str, str]) -> dict[str, Any]:
    view: dict[str, Any] = {"id": order_id, "state": record.get("state", "received")}
    for name in _JSON_FIELDS:
        view[name] = orjson.loads(record[name]) if name in record else None
    for name in ("updated", "delivered_at"):
        if name in record:
            view[name] = int(record[name])
    if "tracking" in record:
        view["tracking"] = record["tracking"]
    return view


_ON_BOARD = ("picked_up",)


def _tracking_view(store: Store, order_id: str, order: Mapping[str, Any]) -> dict[str, Any]:
    """An order as its customer may see it (`TrackingView`)."""
    view: dict[str, Any] = {"state": order["state"], "eta": order.get("eta") or order.get("quoted_eta"),
                            "promise_by": order.get("promise_by"), "delivered_at": order.get("delivered_at"),
                            "destination": order.get("location"), "courier_location": None,
                            "courier_location_at": None, "stops_before": None, "updated": order.get("updated")}
    courier = order.get("courier")
    if not isinstance(courier, str) or order["state"] not in ("assigned", *_ON_BOARD):
        return view
    raw = store.get(route_key(courier))
    stops = json.loads(raw)["stops"] if raw else []
    doors = [s for s in stops if s["kind"] == "dropoff"]
    mine = next((k for k, s in enumerate(doors) if s.get("order") == order_id), None)
    if mine is not None:
        view["stops_before"] = sum(1 for s in doors[:mine] if s.get("status") != "completed")
    if order["state"] in _ON_BOARD:
        seen = store.hgetall(courier_key(courier))
        if seen:
            view["courier_location"], view["courier_location_at"] = json.loads(seen["location"]), int(seen["at"])
    return view


def _describe(request: Request, error: Mapping[str, Any]) -> tuple[str, str]:
    """A FastAPI validation error as (field, message): the body's fields by `api.schemas.describe`."""
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid":
        return "body", f"malformed JSON: {error.get('ctx', {}).get('error', 'cannot be parsed')}"
    if loc[:1] == ("body",):
        route = request.scope.get("route")
        body_field = getattr(route, "body_field", None)
        model = getattr(getattr(body_field, "field_info", None), "annotation", None)
        if isinstance(model, type) and issubclass(model, BaseModel):
            field, message = schemas.describe({**error, "loc": loc[1:]}, model)  # type: ignore[typeddict-item]
            return field or "body", message
        return ".".join(str(p) for p in loc[1:]) or "body", str(error.get("msg", "invalid"))
    message = schemas.value_message(error) or str(error.get("msg", "invalid"))
    if loc[:1] == ("header",):
        return str(loc[1]).replace("_", "-").title(), message
    return ".".join(str(p) for p in loc[1:]) or str(loc[0] if loc else ""), message


__all__ = ["create_app"]

