"""`lastmile serve --demo SCENARIO` (what `make run` runs): the live API driven through a scenario's day over HTTP.

The API runs under uvicorn in a thread of this process over the embedded (memory) store, with the scenario's
stores and couriers loaded (as `lastmile serve --scenario`). The scenario's own demand (`simulator.demand.orders_for`,
its seed) is posted to `POST /v1/orders` at each order's placement time on the service clock, with an
Idempotency-Key; the store signals each order ready (`POST /v1/orders/{id}/ready`) once one of its pickers has
picked it (`picking_s`, `pickers` at a time, as in the simulator); the customers empty lockers and pickup places
`collect_after_s` after delivery. Simulated courier apps, each with a courier key minted through `POST /v1/keys`,
start their shifts, pull their routes (`GET /v1/couriers/{id}/route`) and post their stops and positions: `pickup`
completed when the trip leaves (its departure, or once its orders are ready), each door `arrived` at its ETA and
`completed` (delivered) `service_s` later, `return` arrived at the trip's end. A courier goes off shift at the end
of its shift once its route is empty (as in the simulator, it finishes the trip it is on first). Customers are
drawn as in the simulator (`simulator.model.customer_draws`, the scenario's seed): an absent one's first delivery
is posted `failed` (`customer_absent`; the core sends the parcel back or to a locker, by the scenario's
`failed_to`), and a cancelling one posts `POST /v1/orders/{id}/cancel` `cancel_after_s` after placing (a 409, the
order already on a courier, is what the simulator's customer meets too: the order goes on).

The service clock runs at `speed` times real time but stands still (`PacedClock`) while the dispatch worker or a
participant is behind: commands waiting in the stream, or an app's post, a store's or customer's call or an order
still to post due, for longer than one dispatch tick of service time (`LiveDemo.pace`). So a slower machine takes
longer over the day but plays it as a fast one does. The seconds it stood still are reported with the day's KPIs.

It prints the console URL with a planner key first, then one KPI line each simulated hour, then the day's KPIs.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from pydantic import SecretStr

from api.app import create_app
from api.console import is_overdue
from api.service import Deployment, Service
from api.settings import Settings
from dispatch.model import Item, Order
from simulator.demand import orders_for
from simulator.model import DRAIN_S, customer_draws
from simulator.scenario import Scenario

DAY_WALL_S = 300.0
"""How long the scenario's day (clock start to end) takes at the default speed."""
POLLS_PER_S = 600.0
"""An idle courier app asks for its route every dispatch tick of the service clock, but the fleet together at most
this often a second: route polls of a city's fleet would otherwise crowd out the rest in this one process. At 200
a second, the Porto day's 163 couriers at x180 asked every 147 s of service time, left that much after their
trips' departures and the day ended 88.9 % on time against the simulator's 97.2 %; at 600 they ask every tick
(60 s) and it ended 96.3 %."""
COURIERS_PER_THREAD = 20
MAX_COURIER_THREADS = 8
DELIVERED = ("delivered", "collected")
WAITING = frozenset({"received", "placed", "allocated", "ready", "assigned", "picked_up"})
"""Order states still waiting for a courier: the day is over when none is left (after the clock's end)."""


class DemoError(RuntimeError):
    """The API answered the demo's driver unexpectedly (a bug, or the server went away)."""


class PacedClock:
    """Service seconds from `origin` at `speed` times real time, standing still while held (`hold`, `release`);
    thread-safe. `held_s` is the real seconds it stood still."""

    def __init__(self, origin: int, speed: float) -> None:
        self.speed = speed
        self._lock = threading.Lock()
        self._base = float(origin)
        self._since = time.monotonic()
        self._held_at: float | None = None
        self.held_s = 0.0

    def __call__(self) -> int:
        with self._lock:
            wall = self._held_at if self._held_at is not None else time.monotonic()
            return int(self._base + (wall - self._since) * self.speed)

    def hold(self) -> None:
        with self._lock:
            if self._held_at is None:
                self._held_at = time.monotonic()

    def release(self) -> None:
        with self._lock:
            if self._held_at is not None:
                now = time.monotonic()
                self._base += (self._held_at - self._since) * self.speed
                self.held_s += now - self._held_at
                self._since, self._held_at = now, None


def default_speed(scenario: Scenario) -> float:
    """The clock speed at which the scenario's day (clock start..end) takes about DAY_WALL_S."""
    return max(1.0, (scenario.clock.end - scenario.clock.start) / DAY_WALL_S)


def hhmm(t: int) -> str:
    return f"{t // 3600:02d}:{t // 60 % 60:02d}"


class Http:
    """JSON over HTTP with one key (urllib): retries a 429 after its Retry-After and a 503 or dropped connection."""

    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.key = key

    def __call__(self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
                 tries: int = 20) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        sent = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        if data is not None:
            sent["Content-Type"] = "application/json"
        for attempt in range(tries):
            req = urllib.request.Request(self.base + path, data=data, method=method, headers=sent)
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    raw = r.read()
                    return r.status, json.loads(raw) if raw else None
            except urllib.error.HTTPError as e:
                raw = e.read()
                if e.code in (429, 503) and attempt + 1 < tries:
                    time.sleep(min(2.0, float(e.headers.get("Retry-After") or 0.1)))
                    continue
                return e.code, json.loads(raw) if raw else None
            except (urllib.error.URLError, OSError):
                if attempt + 1 == tries:
                    raise
                time.sleep(0.1)
        raise DemoError(f"{method} {path}: no answer")  # pragma: no cover - the loop returns or raises


class Agenda:
    """Actions at service times (a heap), shared between threads."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def add(self, t: int, action: Callable[[], None]) -> None:
        with self._lock:
            heapq.heappush(self._heap, (t, next(self._seq), action))

    def first(self) -> int | None:
        """When the earliest action is due (None: none is left)."""
        with self._lock:
            return self._heap[0][0] if self._heap else None

    def due(self, now: int) -> list[Callable[[], None]]:
        with self._lock:
            out = []
            while self._heap and self._heap[0][0] <= now:
                out.append(heapq.heappop(self._heap)[2])
            return out


@dataclass(slots=True, kw_only=True)
class CourierApp:
    """One simulated courier app: its key, shift, and the stop posts of the trip under way."""

    id: str
    store: str
    http: Http
    shift_start: int
    shift_end: int
    on: bool = False
    ended: bool = False
    """Went off at the end of its shift (it does not come back)."""
    plan: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    """(service time, stop id, body) of the posts still to make, in order."""
    done: set[tuple[Any, ...]] = field(default_factory=set)
    next_poll: float = 0.0
    last_status: str = "none"

    def busy(self) -> bool:
        """On a trip, or with one committed (as of the last poll)."""
        return bool(self.plan) or self.last_status in ("assigned", "en_route")


class LiveDemo:
    """The demo's driver (see the module doc); `run` returns the day's KPIs."""

    def __init__(self, settings: Settings, *, echo: Callable[[str], object] = print) -> None:
        assert settings.scenario is not None
        from api.scenario_file import load_scenario

        self.scenario = load_scenario(settings.scenario)
        speed = settings.speed if settings.speed is not None else default_speed(self.scenario)
        admin = settings.admin_key or SecretStr("lm_admin_" + secrets.token_urlsafe(24))
        self.speed: float = speed
        self.settings = settings.model_copy(update={"store": "memory", "speed": speed, "admin_key": admin})
        self.echo = echo
        self.deployment = Deployment.load(settings.scenario, settings.network)
        self.orders: tuple[Order, ...] = orders_for(self.scenario, self.deployment.network)
        self.clock = PacedClock(self.deployment.day_start, speed)
        self.service = Service(self.settings, self.deployment, clock=self.clock)
        self.agenda = Agenda()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.placed: dict[str, int] = {}
        """Order id: the service time it was posted at."""
        self.errors: Counter[str] = Counter()
        self.pickers: dict[str, list[int]] = {s.id: [0] * s.pickers for s in self.scenario.stores}
        self.picking_s = {s.id: s.picking_s for s in self.scenario.stores}
        self.ready_at: dict[str, int] = {}
        self.mode = {o.id: o.mode for o in self.orders}
        self.absent, self.cancelling = customer_draws(self.scenario, self.orders)
        """The customers absent at the door (their first delivery fails) and those who cancel `cancel_after_s`
        after placing: the simulator's draws for the same scenario and seed."""
        self.cancelled: set[str] = set()
        self.failed: set[str] = set()
        self.depot = {f.id: f.location for f in self.deployment.facilities}
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.base = ""
        self.osys = Http("", "")
        self.apps: list[CourierApp] = []
        self.next_order_at: int | None = min((o.placed_at for o in self.orders), default=None)
        """When the order system posts its next order (None: all are posted)."""

    # --- the server ------------------------------------------------------------------------------------------

    def start_server(self) -> None:
        config = uvicorn.Config(create_app(self.service), host=self.settings.host, port=self.settings.port,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="demo-uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise DemoError(f"the API did not start on {self.settings.host}:{self.settings.port}")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base = f"http://{self.settings.host}:{port}"

    def stop_server(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=30)

    def serve_until_interrupted(self) -> None:
        assert self.thread is not None
        try:
            while self.thread.is_alive():
                self.thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop_server()

    # --- keys ------------------------------------------------------------------------------------------------

    def mint(self, role: str, courier: str | None = None) -> str:
        assert self.settings.admin_key is not None
        admin = Http(self.base, self.settings.admin_key.get_secret_value())
        status, body = admin("POST", "/v1/keys", {"role": role, "courier_id": courier})
        if status != 201:
            raise DemoError(f"POST /v1/keys ({role}): {status} {body}")
        return str(body["key"])

    # --- the order system and the stores ----------------------------------------------------------------------

    def order_body(self, order: Order) -> dict[str, Any]:
        def lines(items: tuple[Item, ...]) -> list[dict[str, Any]]:
            return [{"sku": i.sku, "qty": i.qty, "weight_g": i.weight_g, "dims_mm": list(i.dims_mm)} for i in items]

        body: dict[str, Any] = {"id": order.id, "location": list(order.location), "mode": order.mode,
                                "items": lines(order.items)}
        if order.returns:
            body["returns"] = lines(order.returns)
        p = order.promise
        if p is not None:
            if p.kind == "express":
                assert p.within_s is not None
                body["promise"] = {"kind": "express", "within_min": max(1, -(-p.within_s // 60))}
            elif p.kind == "slot":
                assert p.window is not None
                body["promise"] = {"kind": "slot", "window": [hhmm(p.window[0]), hhmm(p.window[1])]}
            else:
                body["promise"] = {"kind": "next_day"}
        return body

    def place(self, osys: Http, order: Order) -> None:
        now = self.clock()
        status, body = osys("POST", "/v1/orders", self.order_body(order),
                            headers={"Idempotency-Key": f"demo-{self.scenario.seed}-{order.id}"})
        with self.lock:
            self.placed[order.id] = now
            if status == 422 and isinstance(body, dict) and "order" in body:  # rejected (out of stock, ...)
                return
            if status not in (201, 202):
                self.errors[f"POST /v1/orders {status}"] += 1
                return
        store = body.get("store")
        if self.cancelling.get(order.id):
            self.agenda.add(now + self.scenario.delivery.cancel_after_s, functools.partial(self.cancel, osys, order.id))
        if store in self.pickers:  # the store's pickers take the order in turn
            free = self.pickers[store]
            start = max(now, heapq.heappop(free))
            done = start + self.picking_s[store]
            heapq.heappush(free, done)
            self.ready_at[order.id] = done
            self.agenda.add(done, functools.partial(self.order_post, osys, order.id, "ready"))

    def cancel(self, osys: Http, order_id: str) -> None:
        """The customer cancels: 200 if no courier has the order yet, 409 once one has (then it goes on)."""
        status, _ = osys("POST", f"/v1/orders/{order_id}/cancel")
        if status == 200:
            with self.lock:
                self.cancelled.add(order_id)
        elif status not in (202, 409):  # 202: applied later (its outcome shows in the order's state)
            self.errors[f"POST /v1/orders/{{id}}/cancel {status}"] += 1

    def order_post(self, osys: Http, order_id: str, what: str) -> None:
        if what == "ready" and order_id in self.cancelled:  # picked all the same, but there is nothing to signal
            return
        status, _ = osys("POST", f"/v1/orders/{order_id}/{what}")
        if status != 200:
            self.errors[f"POST /v1/orders/{{id}}/{what} {status}"] += 1

    def order_system(self, osys: Http) -> None:
        """Post each order at its placement time."""
        pending = list(self.orders)
        k = 0
        while not self.stop.is_set() and k < len(pending):
            now = self.clock()
            while k < len(pending) and pending[k].placed_at <= now:
                self.place(osys, pending[k])
                k += 1
                self.next_order_at = pending[k].placed_at if k < len(pending) else None
            time.sleep(0.01)

    def stores_and_customers(self) -> None:
        """Ready signals and collections when due."""
        while not self.stop.is_set():
            for action in self.agenda.due(self.clock()):
                action()
            time.sleep(0.01)

    # --- the courier apps ----------------------------------------------------------------------------------

    def courier_loop(self, apps: list[CourierApp]) -> None:
        poll_wall = max(self.deployment.options.tick_s / self.speed, len(self.deployment.couriers) / POLLS_PER_S)
        while not self.stop.is_set():
            for app in apps:
                self.step(app, poll_wall)
            time.sleep(0.01)

    def step(self, app: CourierApp, poll_wall: float) -> None:
        now = self.clock()
        if now < app.shift_start or app.ended:
            return
        if not app.on:
            status, _ = app.http("POST", f"/v1/couriers/{app.id}/shift", {"on": True})
            app.on = status == 200
            if app.on:
                app.http("POST", f"/v1/couriers/{app.id}/location", {"location": list(self.depot[app.store])})
            return
        while app.plan and app.plan[0][0] <= now:
            _, stop, body = app.plan.pop(0)
            status, route = app.http("POST", f"/v1/couriers/{app.id}/stops/{stop}", body)
            if status == 202:  # durable, applied later: the route as it will be
                status, route = self.route_when(app, stop, body["status"])
            if status != 200:
                self.errors[f"POST /v1/couriers/{{id}}/stops {status}"] += 1
                if stop == "pickup":  # ask again on the next poll
                    app.done.clear()
                app.plan.clear()
                break
            if body.get("location") is not None:
                app.http("POST", f"/v1/couriers/{app.id}/location", {"location": body["location"]})
            if stop == "pickup":
                self.follow(app, route, now)
            elif body.get("outcome") == "delivered" and self.mode.get(stop) in ("locker", "pickup_point"):
                collect = now + self.scenario.delivery.collect_after_s
                self.agenda.add(collect, functools.partial(self.order_post, self.osys, stop, "collected"))
        if app.plan or time.monotonic() < app.next_poll:
            return
        app.next_poll = time.monotonic() + poll_wall
        status, route = app.http("GET", f"/v1/couriers/{app.id}/route?geometry=false")
        if status != 200:
            self.errors[f"GET /v1/couriers/{{id}}/route {status}"] += 1
            return
        app.last_status = route.get("status", "none")
        stops = route.get("stops", [])
        if now >= app.shift_end and not app.busy():  # shift over, nothing on board or committed (the last poll)
            status, _ = app.http("POST", f"/v1/couriers/{app.id}/shift", {"on": False})
            app.on, app.ended = status != 200, status == 200
            if status != 200:
                self.errors[f"POST /v1/couriers/{{id}}/shift {status}"] += 1
            return
        sig = (route.get("dispatch_at"), route.get("departure"), tuple(s["id"] for s in stops))
        if stops and stops[0]["kind"] == "pickup" and stops[0]["status"] == "pending" and sig not in app.done:
            app.done.add(sig)
            ready = max([self.ready_at.get(o, 0) for o in stops[0].get("orders", [])], default=0)
            at = max(int(route["departure"]), ready, now)
            app.plan.append((at, "pickup", {"status": "completed", "location": stops[0]["location"]}))

    def route_when(self, app: CourierApp, stop: str, status: str) -> tuple[int, Any]:
        """The courier's route once it shows `stop` at `status` (after a 202; after a return, or the next trip
        committed while the courier rode back), waiting a few seconds at most."""
        deadline = time.monotonic() + 2 * self.settings.reply_timeout_s
        while time.monotonic() < deadline:
            got, route = app.http("GET", f"/v1/couriers/{app.id}/route?geometry=false")
            if got == 200 and (any(x["id"] == stop and x["status"] == status for x in route.get("stops", []))
                               or (stop == "return" and route.get("status") == "assigned")):  # the next trip's
                return got, route
            time.sleep(0.05)
        return 504, None

    def follow(self, app: CourierApp, route: dict[str, Any], left: int) -> None:
        """The stop posts of the trip the courier just left with: its ETAs, later by however late it left."""
        late = max(0, left - int(route.get("departure", left)))
        service_s = self.scenario.delivery.service_s
        for s in route.get("stops", []):
            if s["status"] != "pending":
                continue
            at = int(s["eta"]) + late
            if s["kind"] == "dropoff":
                app.plan.append((at, s["id"], {"status": "arrived", "location": s["location"]}))
                done: dict[str, Any] = {"status": "completed", "outcome": "delivered"}
                if self.absent.get(s["id"]) and s["id"] not in self.failed:  # the first attempt finds nobody
                    self.failed.add(s["id"])
                    done = {"status": "completed", "outcome": "failed", "reason": "customer_absent"}
                app.plan.append((at + service_s, s["id"], done))
            elif s["kind"] == "return":
                app.plan.append((at, s["id"], {"status": "arrived", "location": s["location"]}))
        app.plan.sort(key=lambda p: p[0])

    # --- KPIs ------------------------------------------------------------------------------------------------

    def hourly(self, planner: Http, t: int) -> None:
        status, stats = planner("GET", "/v1/stats")
        _, open_orders = self.osys("GET", "/v1/orders?state=open&limit=10000")
        events = stats.get("events", {}) if status == 200 else {}
        rate = stats.get("on_time_rate") if status == 200 else None
        with self.lock:
            placed = len(self.placed)
        self.echo(f"{hhmm(t)}  placed {placed:>5}  delivered {events.get('delivered', 0):>5}  on time "
                  f"{'-' if rate is None else f'{100 * rate:.1f} %':>7}  open {len(open_orders['orders']):>5}")

    def waiting(self) -> int:
        _, body = self.osys("GET", "/v1/orders?state=open&limit=10000")
        return sum(1 for o in body["orders"] if o["state"] in WAITING)

    def final(self) -> dict[str, Any]:
        states: Counter[str] = Counter()
        on_time = late = overdue = 0
        click_to_door: list[int] = []
        now = self.clock()
        for oid, at in sorted(self.placed.items()):
            status, view = self.osys("GET", f"/v1/orders/{oid}")
            if status != 200:
                states["unknown"] += 1
                continue
            state = "failed" if view["state"] == "returned" else view["state"]  # a failed parcel back at its store
            states["delivered" if state in DELIVERED else state if state in ("rejected", "cancelled", "failed")
                   else "open"] += 1
            if state in DELIVERED and view.get("delivered_at") is not None:
                click_to_door.append(int(view["delivered_at"]) - at)
                if view.get("on_time") is not None:
                    on_time, late = on_time + bool(view["on_time"]), late + (not view["on_time"])
            elif is_overdue(view["state"], view.get("promise_by"), now):
                overdue += 1  # open past its promise: late, as the simulator's KPIs and `GET /v1/stats` count it
        return {"placed": len(self.placed), "delivered": states["delivered"], "rejected": states["rejected"],
                "cancelled": states["cancelled"], "failed": states["failed"],
                "open": states["open"] + states["unknown"],
                "overdue": overdue,
                "on_time_rate": round(on_time / (on_time + late + overdue), 4) if on_time + late + overdue else None,
                "click_to_door_min": round(sum(click_to_door) / len(click_to_door) / 60, 1) if click_to_door
                else None,
                "errors": dict(self.errors), "clock_held_s": round(self.clock.held_s, 1)}

    # --- the day ---------------------------------------------------------------------------------------------

    def behind(self, by: int) -> bool:
        """Whether the order system, a store or customer, or a courier app has an action due more than `by` service
        seconds ago still to do."""
        late = self.clock() - by
        if self.next_order_at is not None and self.next_order_at < late:
            return True
        first = self.agenda.first()
        if first is not None and first < late:
            return True
        for app in self.apps:
            try:
                if app.plan and app.plan[0][0] < late:
                    return True
            except IndexError:  # its thread emptied the plan meanwhile
                continue
        return False

    def pace(self) -> None:
        """Hold the clock while the dispatch worker or a participant is behind: commands waiting in the stream, or
        an action due, for longer than a dispatch tick of service time; release it once all of them caught up."""
        store = self.service.store
        tick_s = self.deployment.options.tick_s
        waiting_since: float | None = None
        while not self.stop.is_set():
            queued = store.last_seq() > store.applied()
            waiting_since = (waiting_since or time.monotonic()) if queued else None
            worker_behind = waiting_since is not None and time.monotonic() - waiting_since > tick_s / self.speed
            if worker_behind or self.behind(tick_s):
                self.clock.hold()
            elif not queued and not self.behind(0):
                self.clock.release()
            time.sleep(0.01)
        self.clock.release()

    def run(self, *, exit_after: bool) -> dict[str, Any]:
        sc = self.scenario
        self.start_server()
        threads: list[threading.Thread] = []
        try:
            planner_key = self.mint("planner")
            self.echo(f"console: {self.base}/console?key={planner_key}")
            self.echo(f"lastmile demo: {sc.name}, {len(self.orders)} orders {hhmm(sc.clock.start)}-"
                      f"{hhmm(sc.clock.end)}, {len(self.deployment.couriers)} couriers, clock x{self.speed:g} "
                      f"(about {(sc.clock.end - sc.clock.start) / self.speed / 60:.1f} min for the day); "
                      f"API on {self.base} (docs at /docs)")
            planner = Http(self.base, planner_key)
            self.osys = Http(self.base, self.mint("order_system"))
            self.apps = apps = [CourierApp(id=c.id, store=c.store, http=Http(self.base, self.mint("courier", c.id)),
                                           shift_start=c.shift_start, shift_end=c.shift_end)
                                for c in self.deployment.couriers.values()]
            n = min(MAX_COURIER_THREADS, -(-len(apps) // COURIERS_PER_THREAD))
            groups = [apps[k::n] for k in range(n)]
            threads = [threading.Thread(target=self.pace, name="demo-pace", daemon=True),
                       threading.Thread(target=self.order_system, args=(self.osys,), name="demo-orders", daemon=True),
                       threading.Thread(target=self.stores_and_customers, name="demo-stores", daemon=True)]
            threads += [threading.Thread(target=self.courier_loop, args=(g,), name=f"demo-couriers-{k}", daemon=True)
                        for k, g in enumerate(groups)]
            for t in threads:
                t.start()
            next_hour = sc.clock.start + 3600
            cut = sc.clock.end + DRAIN_S
            last_shift = max((a.shift_end for a in apps), default=sc.clock.end)
            while True:
                now = self.clock()
                if now >= next_hour:
                    self.hourly(planner, next_hour - next_hour % 3600)
                    next_hour += 3600
                if now >= cut or (now >= sc.clock.end and len(self.placed) == len(self.orders) and (
                        self.waiting() == 0 or (now >= last_shift and not any(a.busy() for a in apps)))):
                    break
                time.sleep(0.05)
            self.stop.set()
            for t in threads:
                t.join(timeout=30)
            for app in apps:  # off shift once the day is over (a trip committed but not left goes back, unassigned)
                if app.on:
                    app.http("POST", f"/v1/couriers/{app.id}/shift", {"on": False})
            kpis = self.final()
            rate = kpis["on_time_rate"]
            self.echo(f"day over at {hhmm(self.clock())}: placed {kpis['placed']}, delivered {kpis['delivered']}, "
                      f"rejected {kpis['rejected']}, cancelled {kpis['cancelled']}, failed {kpis['failed']}, "
                      f"open {kpis['open']} ({kpis['overdue']} past their promise); on time "
                      f"{'-' if rate is None else f'{100 * rate:.1f} %'}, "
                      f"click-to-door {kpis['click_to_door_min']} min; the clock waited "
                      f"{kpis['clock_held_s']:g} s for the dispatch worker and the apps to catch up")
            self.echo("kpis: " + json.dumps(kpis))
        except BaseException:
            self.stop.set()
            self.stop_server()
            raise
        if exit_after:
            self.stop_server()
        else:
            self.echo(f"serving the console on {self.base}/console?key={planner_key} until Ctrl-C")
            self.serve_until_interrupted()
        return kpis


def run_live_demo(settings: Settings, *, exit_after: bool = False,
                  echo: Callable[[str], object] = print) -> dict[str, Any]:
    """`lastmile serve --demo`: `settings.scenario`'s day through the live API (see the module doc)."""
    return LiveDemo(settings, echo=echo).run(exit_after=exit_after)
