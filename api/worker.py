"""The dispatch worker: applies a deployment's command stream to the operations core and publishes what it caused.

One worker at a time holds the deployment's lease (a worker that dies is replaced when its lease expires). On taking
the lease it builds a fresh `dispatch.operations.Operations` core, restores the last snapshot and replays the stream
after it: the core is deterministic, so replaying yields the state the dead worker had, and `Store.publish` skips
what was already published, so nothing is applied twice or skipped. Then it reads the stream in order, applies each
command, and publishes in batches (one transaction per up to `PUBLISH_EVERY` commands or 5 ms of work): the
order records and timelines, the couriers' routes and each command's reply (which the API waits for). It appends a
tick of every store to the stream itself when the service clock passes one (so a replay ticks at the same times),
and saves a snapshot every `snapshot_every` commands, or every one per `ORDERS_PER_SNAPSHOT_COMMAND` open orders
when that is more (a snapshot's cost grows with the open orders, a command's does not: so snapshots stay a small
share of the worker's time however busy the stores, and a replay at most that many commands).

Every domain event is also published to the deployment's event stream (`events`, entry ids `{seq}-{k}`), with two
kinds the core does not make: `eta_changed` (a committed trip moved an order's ETA by more than `ETA_CHANGE_S`)
and `shift_on` / `shift_off` of a courier. Webhooks (`api/webhooks.py`) deliver that stream.

With admission in the API process (`api.admission`), a `place` command carries its admission: the worker places
the order as admitted, and publishes no reply to it (no request waits). The worker keeps the store's counters
(`api.store.base.COUNTER_PREFIX`) in step with the core: what the core gives back or counts beyond admissions is
published as increments with the command that caused it.

The worker adds to the core only what the courier app says that the core does not keep: when a courier arrived at a
door (a later `delivered` is on time by the arrival) and the routes as the app shows them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any

import orjson

from api.deployment import Deployment
from api.errors import ConflictError
from api.metrics import STATS_KEY
from api.schemas import STORE_STOPS
from api.store import Op, Store, courier_key, json_text, order_key, planned_key, route_key, tracking_key
from api.store.base import COUNTER_PREFIX, EVENTS_STREAM, Applied
from dispatch.errors import DispatchError, InvalidDispatchError
from dispatch.operations import Admission, Event, Operations, Outcome, items_from_json, order_from_json
from dispatch.state import Trip

log = logging.getLogger("lastmile.worker")

ENVELOPE_FORMAT = "lastmile.worker"
ENVELOPE_VERSION = 2
STATES = {"placed": "placed", "rejected": "rejected", "allocated": "allocated", "picked": "ready",
          "assigned": "assigned", "unassigned": "allocated", "picked_up": "picked_up", "delivered": "delivered",
          "failed": "failed",
          "redirected": "redirected", "returned": "returned", "cancelled": "cancelled", "collected": "collected"}
"""The state an order is in after each event (the order record's `state`); after `unassigned`, `ready` if its
picking was done (a `picked` event came before)."""
FINAL = frozenset({"rejected", "returned", "cancelled", "collected"})
_STOP_STATUS = ("en_route", "arrived", "completed")
_RANK = {"pending": -1} | {status: k for k, status in enumerate(_STOP_STATUS)}
"""A stop's statuses in order: a pickup or door never goes back to an earlier one."""
ETA_CHANGE_S = 300
"""An order's ETA moving by more than this is an `eta_changed` event."""
PUBLISH_EVERY = 16
PUBLISH_AFTER_S = 0.005
ORDERS_PER_SNAPSHOT_COMMAND = 10
"""A snapshot waits at least one command per this many open orders (see the module doc): on the Porto day with
25,000 open orders a snapshot takes about 100 ms, the time of a hundred commands, so one every 2,500 commands is 4 %
of the worker's time (every 1,000, 10 %)."""
OPEN_ORDERS_KEY = "orders:open-index"
"""The orders not yet closed (a hash: order id -> the sequence number of its `place` command), a field added and
removed with the command that opens or closes an order: the map console lists open orders by it, in placement
order (`GET /v1/orders?state=open`)."""
FACILITIES_KEY = "config:facilities"
"""The facilities document of the last `PUT /v1/facilities` applied (JSON; unset: the deployment's own)."""
MOST_BOXES_KEY = "config:most-boxes"
"""Per store, the most boxes one of its couriers carries (`dispatch.operations.most_boxes`, JSON) after the last
`PUT /v1/facilities` or `PUT /v1/couriers` applied (unset: the deployment's own fleet)."""
SHIFTS_KEY = "couriers:shift"
"""Whether each courier is on shift (a hash, courier id: `on` or `off`; absent: never started one)."""
ON_TIME_KEY = "stats:on_time"
"""Deliveries with a promise, counted `on_time` and `late` (a hash): the console's on-time rate."""
LOAD_KEY = "load"
"""Each store's load as allocation sees it (`Operations.load_estimates`, JSON), rewritten about every
`LOAD_EVERY_S` (with a publish, or on its own when no command comes): API processes that admit orders themselves
allocate by it (`api.admission`). It is an estimate, not state: a worker that just lost its lease may write it
once more."""
LOAD_EVERY_S = 0.1


def _increments(deltas: Iterable[tuple[str, str, int]]) -> list[Op]:
    """(counter name, field, delta)s as one `hincrby` of the store's counters per counter."""
    by_name: dict[str, dict[str, int]] = {}
    for name, f, delta in deltas:
        fields = by_name.setdefault(name, {})
        fields[f] = fields.get(f, 0) + delta
    return [Op(kind="hincrby", key=COUNTER_PREFIX + name, value=fields) for name, fields in by_name.items()]


def error_reply(error: DispatchError | ValueError, code: str = "invalid") -> dict[str, Any]:
    field = getattr(error, "field", "")
    message = getattr(error, "message", str(error))
    return {"ok": False, "error": {"code": code, "message": message, "field": field}}


def _reported_at(command: Mapping[str, Any], now: int) -> Op:
    """The courier's record of where its phone last was (`location` of a location post or a stop post) and when."""
    return Op(kind="hset", key=courier_key(command["courier"]),
              value={"location": json.dumps(list(command["location"])), "at": str(now)})


class Worker:
    """Holds the lease, applies the stream, publishes views, ticks and snapshots (see the module doc)."""

    def __init__(self, store: Store, deployment: Deployment, clock: Callable[[], int], *,
                 name: str | None = None, lease_ms: int = 5000, snapshot_every: int = 1000,
                 observe: Callable[[float], None] | None = None) -> None:
        self.store = store
        self.base = self.deployment = deployment
        self.clock = clock
        self.name = name or f"worker-{uuid.uuid4().hex[:12]}"
        self.lease_ms = lease_ms
        self.snapshot_every = snapshot_every
        self.core: Operations | None = None
        self.seq = 0
        self._renewed = 0.0
        self._since_snapshot = 0
        self.last_tick = -1
        self.orders: dict[str, dict[str, Any]] = {}
        self.routes: dict[str, dict[str, Any]] = {}
        self.planned: dict[str, list[dict[str, Any]]] = {}
        """What each courier's dispatcher plans after its committed trip, as last published (`planned_key`)."""
        self._decided: dict[str, Any] = {}
        """Each store's last decisions seen (the dispatcher's `last`): plans are republished when it changes."""
        self._changed_routes: set[str] = set()
        self._withdrawn: set[str] = set()  # couriers whose committed trip an `unassigned` event took back
        self.arrivals: dict[str, int] = {}
        self.observe = observe
        """Called with the seconds each command that decided something took (the metrics' histogram)."""
        self._load_published = 0.0
        self._load_value = ""

    # --- lease and recovery --------------------------------------------------------------------------------

    def holds_lease(self) -> bool:
        """Take or renew the lease (renewed at a third of its time); on taking it, recover the state."""
        now = time.monotonic()
        if self.core is not None and now - self._renewed < self.lease_ms / 3000:
            return True
        if not self.store.lease(self.name, self.lease_ms):
            self.core = None
            return False
        self._renewed = now
        if self.core is None:
            self._recover()
        return True

    def _recover(self) -> None:
        self.seq, self.orders, self.routes, self.arrivals, self.last_tick = 0, {}, {}, {}, -1
        self.planned, self._decided = {}, {}
        self._changed_routes.clear()
        self._withdrawn.clear()
        self.deployment = self.base
        saved = self.store.load_snapshot()
        envelope = None
        if saved is not None:
            self.seq, data = saved
            try:
                envelope = orjson.loads(zlib.decompress(data))
            except zlib.error:
                raise ValueError(f"snapshot: not a {ENVELOPE_FORMAT} v{ENVELOPE_VERSION} snapshot") from None
            if envelope.get("format") != ENVELOPE_FORMAT or envelope.get("version") != ENVELOPE_VERSION:
                raise ValueError(f"snapshot: not a {ENVELOPE_FORMAT} v{ENVELOPE_VERSION} snapshot")
            if envelope["config"]:
                self.deployment = self.base.configured(envelope["config"])
        core = self.deployment.build()
        if envelope is not None:
            core.restore(orjson.dumps(envelope["core"]))
            self.orders, self.routes = envelope["orders"], envelope["routes"]
            self.planned = envelope.get("planned", {})
            self.arrivals, self.last_tick = envelope["arrivals"], envelope["last_tick"]
        self.store.seed_counters(core.allocator.inventory.counters())  # a first start: the counts to reserve from
        core.allocator.inventory.journal = []
        self.core = core
        log.info("%s took the lease: restored to command %d, stream at %d", self.name, self.seq,
                 self.store.last_seq())

    def snapshot(self) -> bytes:
        """The worker's state after command `seq`: its envelope (JSON, the core's own snapshot inside as it is),
        zlib-compressed (a fraction of the bytes for the store to write and keep)."""
        assert self.core is not None
        rest = orjson.dumps({"format": ENVELOPE_FORMAT, "version": ENVELOPE_VERSION, "seq": self.seq,
                             "orders": self.orders, "routes": self.routes, "planned": self.planned,
                             "arrivals": self.arrivals, "last_tick": self.last_tick,
                             "config": dict(self.deployment.config)})
        return zlib.compress(rest[:-1] + b',"core":' + self.core.snapshot() + b"}", 1)

    # --- the loop ------------------------------------------------------------------------------------------

    def step(self, block_ms: int = 50) -> int:
        """One round: hold the lease, apply what is new in the stream (publishing every `PUBLISH_EVERY` commands
        or `PUBLISH_AFTER_S`, whichever comes first, and at the end), append due ticks; commands applied."""
        if not self.holds_lease():
            return 0
        batch = self.store.read(self.seq, block_ms=block_ms)
        pending: list[Applied] = []
        since = time.perf_counter()
        for seq, command in batch:
            pending.append(self._apply(seq, command))
            if len(pending) >= PUBLISH_EVERY or time.perf_counter() - since > PUBLISH_AFTER_S:
                if not self._publish(pending):
                    return 0
                pending, since = [], time.perf_counter()
        if pending and not self._publish(pending):
            return 0
        if not batch and (op := self._load_op()) is not None:  # quiet: the load still moves with time
            self.store.set(op.key, op.value)
        self._tick_if_due()
        if self._since_snapshot >= max(self.snapshot_every, len(self.orders) // ORDERS_PER_SNAPSHOT_COMMAND):
            self.save_snapshot()
        return len(batch)

    def save_snapshot(self) -> bool:
        """Save the state after the last published command, then drop the stream up to it (replays start there)."""
        self._since_snapshot = 0
        if self.core is None or not self.store.save_snapshot(self.name, self.seq, self.snapshot()):
            return False
        self.store.trim(self.seq)
        return True

    def run(self, stop: threading.Event) -> None:
        """Step until `stop` is set, then release the lease (the next worker takes over at once)."""
        while not stop.is_set():
            try:
                if not self.step():
                    stop.wait(0.01 if self.core is not None else self.lease_ms / 3000)
            except Exception:  # a worker must outlive one bad round (Redis restarting, ...): retry after a pause
                log.exception("%s: round failed; recovering", self.name)
                self.core = None
                stop.wait(0.5)
        if self.core is not None:
            self.save_snapshot()
        self.store.release(self.name)

    def _tick_if_due(self) -> None:
        assert self.core is not None
        now = self.clock()
        tick_s = self.core.options.tick_s
        if self.last_tick >= 0 and now < self.last_tick + tick_s:
            return
        self.store.append({"op": "tick"}, now=now)  # one command ticks every store (one append, one fsync)
        self.last_tick = max(now, self.last_tick)

    def _load_op(self) -> Op | None:
        """The stores' load now, to publish (see `LOAD_KEY`), when `LOAD_EVERY_S` passed and it changed."""
        assert self.core is not None
        if time.monotonic() - self._load_published <= LOAD_EVERY_S:
            return None
        self._load_published = time.monotonic()
        value = json.dumps(self.core.load_estimates(max(self.core.now, self.clock())))
        if value == self._load_value:
            return None
        self._load_value = value
        return Op(kind="set", key=LOAD_KEY, value=value)

    def _publish(self, batch: list[Applied]) -> bool:
        """Publish applied commands (renewing the lease when due, so that a long batch keeps it); False (and the
        core dropped, to be recovered) if the lease was lost."""
        if (load := self._load_op()) is not None:  # the stores' load rides on the batch's last command
            last = batch[-1]
            batch = [*batch[:-1], Applied(seq=last.seq, reply=last.reply, ops=[*last.ops, load])]
        if self.holds_lease() and self.store.publish(self.name, batch):
            self.seq = batch[-1].seq
            self._since_snapshot += len(batch)
            return True
        log.warning("%s lost the lease before command %d", self.name, batch[0].seq)
        self.core = None
        return False

    def _apply(self, seq: int, command: Mapping[str, Any]) -> Applied:
        """Apply one command to the core: its views and reply, to publish."""
        assert self.core is not None
        started = time.perf_counter()
        ops: list[Op] = []
        try:
            outcome, extra = self._call(command, ops)
            reply: dict[str, Any] = {"ok": True, "events": [e.line() for e in outcome.events], **extra}
        except DispatchError as e:
            reply = error_reply(e, getattr(e, "code", "invalid"))
            outcome = Outcome()
        except Exception as e:  # a bug must not wedge the stream: the command is answered and the stream goes on
            log.exception("%s: command %d (%s) failed", self.name, seq, command.get("op"))
            reply = {"ok": False, "error": {"code": "internal", "message": f"{type(e).__name__}: {e}", "field": ""}}
            outcome = Outcome()
        if not reply["ok"] and command.get("op") == "place":
            outcome = self._not_placed(seq, command, reply["error"]["message"], ops)
        ops.extend(self._stream(seq, command, reply, outcome))
        ops.extend(self._views(outcome))
        ops.extend(self._plans())
        ops.extend(self._counts())
        if outcome.events:
            ops.append(Op(kind="hincrby", key=STATS_KEY, value=dict(Counter(e.event for e in outcome.events))))
            on_time = Counter("on_time" if e.fields["on_time"] else "late" for e in outcome.events
                              if e.event == "delivered" and e.fields.get("on_time") is not None)
            if on_time:
                ops.append(Op(kind="hincrby", key=ON_TIME_KEY, value=dict(on_time)))
        if self.observe is not None and (command.get("op") != "tick" or outcome.events):
            self.observe(time.perf_counter() - started)
        return Applied(seq=seq, ops=ops, reply={} if command.get("noreply") else reply)

    def _not_placed(self, seq: int, command: Mapping[str, Any], message: str, ops: list[Op]) -> Outcome:
        """An order the core could not place: it is rejected for all to see (`not_placed: ...`, never left
        `received` or, admitted by the API with its counts taken, `allocated` with no timeline), and an admitted
        order's counts go back to the store."""
        order_id = str(command["order"]["id"])
        log.warning("%s: command %d placed no order %s: %s", self.name, seq, order_id, message)
        self.orders.pop(order_id, None)
        ops.append(Op(kind="hdel", key=OPEN_ORDERS_KEY, value=[order_id]))
        admission = command.get("admission")
        try:
            claims = [] if admission is None else Admission.from_json(order_id, admission).claims()
        except (DispatchError, KeyError, TypeError, ValueError):  # an admission the core cannot read took nothing
            claims = []
        ops.extend(_increments(claims))
        now = int(command["now"])
        return Outcome(events=(Event(t=now, order=order_id, event="placed", fields={"mode": command["order"].get(
            "mode"), "quoted_eta": None if admission is None else admission.get("quoted_eta")}),
            Event(t=now, order=order_id, event="rejected", fields={"reason": f"not_placed: {message}"})))

    def _call(self, command: Mapping[str, Any], ops: list[Op]) -> tuple[Outcome, dict[str, Any]]:
        """The core call a command stands for, plus what the worker keeps beside the core; and what the reply
        carries besides the events."""
        assert self.core is not None
        core = self.core
        op, now = command.get("op"), int(command["now"])
        if op == "tick":
            self.last_tick = max(self.last_tick, now)
            return sum((core.tick(store, now) for store in core.stores), Outcome()), {}
        if op == "place":
            order = order_from_json({**command["order"], "placed_at": now})
            self.orders[order.id] = {"location": list(order.location), "mode": order.mode,
                                     "returns": bool(order.returns)}
            ops.append(Op(kind="hset", key=OPEN_ORDERS_KEY, value={order.id: str(command.get("seq", 0))}))
            if command.get("tracking"):
                ops.append(Op(kind="set", key=tracking_key(command["tracking"]), value=order.id))
            admission = command.get("admission")
            return core.place(order, now, admission=None if admission is None else Admission.from_json(
                order.id, admission)), {}
        if op == "quote":
            quote = core.quote(tuple(command["location"]), items_from_json(command["items"]), now)
            return Outcome(), {"quote": asdict(quote)}
        if op == "stop":
            out = self._stop(command)
            if command.get("location") is not None:  # where the phone was at the stop, as a location post says
                with contextlib.suppress(InvalidDispatchError):  # off the road: kept as reported, dispatch skips it
                    core.position(command["courier"], tuple(command["location"]), now)
                ops.append(_reported_at(command, now))
            return out, {}
        if op == "configure":
            self._configure(command, ops)
            return Outcome(), {}
        try:
            outcome = core.apply(command)
        except InvalidDispatchError as exc:  # the core names the courier event (`courier c1: off`); the app posted `on`
            if op != "shift" or not exc.field.startswith("courier "):
                raise
            raise InvalidDispatchError("on", exc.message) from None
        if op == "position":
            ops.append(_reported_at(command, now))
        elif op == "shift":
            ops.append(Op(kind="hset", key=SHIFTS_KEY,
                          value={command["courier"]: "on" if command.get("on") else "off"}))
        return outcome, {}

    def _stop(self, command: Mapping[str, Any]) -> Outcome:
        """A courier app's stop status: pickup completed → picked_up; at a door arrived (remembered),
        completed → delivered / failed; return arrived or completed → at_store. The stop ids `pickup` and `return`
        recur on every trip, so a return posted while the route shows a trip not yet left (a planning policy
        commits the next trip while its courier rides back) is the trip before's: back at the store, and the new
        trip's return stays pending."""
        assert self.core is not None
        courier, stop, status, now = command["courier"], command["stop"], command["status"], int(command["now"])
        route = self.routes.get(courier)
        if route is None or stop not in (stops := {s["id"]: s for s in route["stops"]}):
            raise InvalidDispatchError("stop", f"{stop!r} is not a stop of courier {courier}'s route")
        if status not in _STOP_STATUS:
            raise InvalidDispatchError("status", f"must be one of {list(_STOP_STATUS)}")
        entry = stops[stop]
        if entry["kind"] != "return" and _RANK[status] < _RANK.get(entry.get("status", "pending"), -1):
            return Outcome()  # a late post of an earlier status (the app sent it before): the stop does not go back
        try:
            out = self._stop_outcome(command, entry, stop, status, now)
        except InvalidDispatchError as exc:
            if not exc.field.startswith("courier "):
                raise
            # the core names the courier event (`courier c1: delivered`); the courier app posted a stop
            raise InvalidDispatchError("stop", f"{stop!r}: {exc.message}") from None
        back = entry["kind"] == "return" and status in ("arrived", "completed")
        if not (back and route["status"] == "assigned"):  # else the trip before's return: this one's stays pending
            entry["status"] = status
            if back:
                route["status"] = "done"
        if entry["kind"] == "pickup" and status == "completed" and route["status"] == "assigned":
            route["status"] = "en_route"  # left the store (also with a trip of returns only: no `picked_up` then)
        route["updated"] = now
        self._changed_routes.add(courier)
        return out

    def _stop_outcome(self, command: Mapping[str, Any], entry: Mapping[str, Any], stop: str, status: str, now: int,
                      ) -> Outcome:
        """What the operations core makes of a courier's stop status (see `_stop`)."""
        assert self.core is not None
        courier = command["courier"]
        back = entry["kind"] == "return" and status in ("arrived", "completed")
        out = Outcome()
        outcome = command.get("outcome")
        if outcome is not None and not (entry["kind"] == "dropoff" and status == "completed"):
            raise InvalidDispatchError("outcome", f"only a door stop completed has an outcome; {stop!r} "
                                                  f"{status} has none")
        if outcome == "return_collected" and not entry.get("collect_returns"):
            raise InvalidDispatchError("outcome", f"order {stop!r} has no returns to collect; post 'delivered'")
        if status == "completed" and entry.get("status") == "completed" and entry["kind"] in ("pickup", "dropoff"):
            posted = "failed" if outcome == "failed" else "delivered"
            if entry["kind"] == "pickup" or entry.get("outcome") == posted:  # a retry: answered, nothing changes
                return out
            raise ConflictError("stop", f"{stop!r} is already completed as {entry.get('outcome')}")
        if entry["kind"] == "dropoff" and status == "arrived" and self.routes[courier]["status"] != "en_route":
            raise InvalidDispatchError("stop", f"{stop!r}: the courier has not left the store with its trip "
                                               "(pickup completed first)")
        if entry["kind"] == "pickup" and status == "completed":
            out = self.core.picked_up(courier, now)
        elif entry["kind"] == "dropoff" and status == "arrived":
            self.arrivals[stop] = now
        elif entry["kind"] == "dropoff" and status == "completed":
            outcome = outcome or "delivered"
            if outcome == "failed":
                out = self.core.failed(courier, stop, now, reason=command.get("reason") or "customer_absent")
            elif outcome in ("delivered", "return_collected"):
                out = self.core.delivered(courier, stop, now, arrived_at=self.arrivals.pop(stop, None))
            else:
                raise InvalidDispatchError("outcome", "must be 'delivered', 'failed' or 'return_collected'")
        elif back:
            out = self.core.at_store(courier, now)
        return out

    def _configure(self, command: Mapping[str, Any], ops: list[Op]) -> None:
        """New facilities or couriers: a new core, if no order is open; couriers kept stay on shift."""
        assert self.core is not None
        core = self.core
        busy = len(set(core.orders).union(*(core.dispatchers[s].orders for s in core.stores)))
        if busy:
            counted = f"{busy} order{' is' if busy == 1 else 's are'} open"
            raise ConflictError("configuration", f"{counted}; change the configuration when none is")
        deployment = self.deployment.configured({k: command.get(k) for k in ("facilities", "couriers")})
        on_shift = [c for c in core.store_of if core.courier_status(c) != "off"]
        fresh = deployment.build()
        now = int(command["now"])
        for c in on_shift:
            if c in fresh.store_of:
                fresh.shift(c, True, now)
        ops.extend(Op(kind="delete", key=COUNTER_PREFIX + name) for name in core.allocator.inventory.counters())
        fresh_counts = fresh.allocator.inventory.counters()
        ops.extend(Op(kind="hset", key=COUNTER_PREFIX + name, value={f: str(v) for f, v in fields.items()})
                   for name, fields in fresh_counts.items() if fields)
        fresh.allocator.inventory.journal = []
        ops.extend(Op(kind="delete", key=route_key(c)) for c in sorted(self.routes))
        ops.extend(Op(kind="delete", key=planned_key(c)) for c in sorted(self.planned))
        self.planned, self._decided = {}, {}
        ops.append(Op(kind="set", key="config", value=json.dumps(deployment.view())))
        if command.get("facilities") is not None:
            ops.append(Op(kind="set", key=FACILITIES_KEY, value=json.dumps(command["facilities"])))
        ops.append(Op(kind="set", key=MOST_BOXES_KEY, value=json.dumps(fresh.most_boxes)))
        self.core, self.deployment, self.routes = fresh, deployment, {}

    # --- views ---------------------------------------------------------------------------------------------

    def _counts(self) -> list[Op]:
        """What the core's counts changed by beyond what appends took (releases, stock counted, a redirected
        parcel's compartments), as increments of the store's counters."""
        assert self.core is not None
        journal = self.core.allocator.inventory.journal
        if not journal:
            return []
        ops = _increments(journal)
        journal.clear()
        return ops

    def _stream(self, seq: int, command: Mapping[str, Any], reply: Mapping[str, Any],
                outcome: Outcome) -> list[Op]:
        """The event stream entries of one command: the core's events, ETA changes and shift changes."""
        lines = [e.line() for e in outcome.events]
        now = int(command["now"])
        for trip in outcome.trips:
            for oid, eta in zip(trip.order_ids, trip.etas, strict=True):
                info = self.orders.get(oid)
                if info is None:
                    continue
                before = info.get("eta")
                if before is not None and abs(eta - before) > ETA_CHANGE_S:
                    lines.append({"t": now, "order": oid, "event": "eta_changed", "eta": eta, "previous": before,
                                  "courier": trip.courier_id})
                info["eta"] = eta
        if command.get("op") == "shift" and reply.get("ok"):
            lines.append({"t": now, "courier": command["courier"],
                          "event": "shift_on" if command.get("on") else "shift_off"})
        return [Op(kind="xadd", key=EVENTS_STREAM, value=[f"{seq}-{k}", json_text(line)])
                for k, line in enumerate(lines)]

    def _views(self, outcome: Outcome) -> list[Op]:
        """The order records, timelines and routes an outcome changes."""
        ops: list[Op] = []
        for event in outcome.events:
            ops.extend(self._order_views(event))
        for trip in outcome.trips:
            self.routes[trip.courier_id] = self._route(trip)
            self._changed_routes.add(trip.courier_id)
        # a courier whose committed trip an `unassigned` event took back (and that got no new one): no route
        for c in sorted(self._withdrawn - {trip.courier_id for trip in outcome.trips}):
            self.routes.pop(c, None)
            ops.append(Op(kind="delete", key=route_key(c)))
        self._withdrawn.clear()
        ops.extend(Op(kind="set", key=route_key(c), value=json_text(self.routes[c]))
                   for c in sorted(self._changed_routes) if c in self.routes)
        self._changed_routes.clear()
        return ops

    def _order_views(self, event: Event) -> list[Op]:
        closed: list[Op] = []
        info = self.orders.get(event.order)
        if event.event == "picked" and info is not None:
            info["ready"] = True
        state = STATES[event.event]
        if event.event == "unassigned" and info is not None and info.get("ready"):
            state = "ready"
        fields: dict[str, str] = {"state": state, "updated": str(event.t)}
        for name in ("store", "facility", "promise_by", "courier", "eta", "quoted_eta", "reason", "locker",
                     "on_time"):
            if name in event.fields:
                fields[name] = json_text(event.fields[name])
        if event.event == "unassigned":  # no courier now (the event's `courier` gave it up); its reason stays in the
            fields.update(courier="null", eta="null")  # timeline: the record's `reason` is a rejection's
            self.arrivals.pop(event.order, None)  # an arrival its courier posted does not time another's delivery
            fields.pop("reason", None)
            if isinstance(event.fields.get("courier"), str):
                self._withdrawn.add(event.fields["courier"])
        if event.event == "delivered":
            fields["delivered_at"] = str(event.t)
        courier = event.fields.get("courier")
        route = self.routes.get(courier) if isinstance(courier, str) else None
        if route is not None and event.event in ("picked_up", "delivered", "failed"):
            self._changed_routes.add(event.fields["courier"])
            for stop in route["stops"]:
                if event.event == "picked_up" and stop["kind"] == "pickup":
                    stop["status"] = "completed"
                    route["status"] = "en_route"
                elif stop.get("order") == event.order and event.event != "picked_up":
                    stop["status"] = "completed"
                    stop["outcome"] = event.event
        final = STATES[event.event] in FINAL or (event.event == "delivered" and self.orders.get(event.order, {}).get(
            "mode") in ("courier", "return_pickup_point"))  # a return closes when its courier takes it
        if final and self.orders.pop(event.order, None) is not None:
            closed = [Op(kind="hdel", key=OPEN_ORDERS_KEY, value=[event.order])]
        return [Op(kind="hset", key=order_key(event.order), value=fields),
                Op(kind="rpush", key=order_key(event.order) + ":events", value=json_text(event.line())), *closed]

    def _plans(self) -> list[Op]:
        """The planned trips of the couriers of every store that decided again (their `planned_key`s that
        changed): the orders after the committed trip, each with its ETA and where it goes."""
        assert self.core is not None
        core = self.core
        ops: list[Op] = []
        for sid, d in core.dispatchers.items():
            if d.last is self._decided.get(sid):
                continue
            self._decided[sid] = d.last
            plans: dict[str, list[dict[str, Any]]] = {}
            for trip in d.last.tentative if d.last is not None else ():
                plans.setdefault(trip.courier_id, []).append({
                    "departure": trip.departure, "end_at": trip.end_at,
                    "stops": [{"order": oid, "eta": eta, "location": self._door(oid)[0]}
                              for oid, eta in zip(trip.order_ids, trip.etas, strict=True)]})
            mine = {c for c in self.planned if core.store_of.get(c) == sid}
            for cid in sorted(mine | set(plans)):
                new = plans.get(cid, [])
                if new != self.planned.get(cid, []):
                    if new:
                        self.planned[cid] = new
                    else:
                        self.planned.pop(cid, None)
                    ops.append(Op(kind="set", key=planned_key(cid), value=json_text(new)))
        return ops

    def _door(self, order_id: str) -> tuple[Any, str | None]:
        """Where a courier hands an order over (its address, or its locker or pickup point) and that facility."""
        assert self.core is not None
        booked = self.core.orders.get(order_id)
        where = self.orders.get(order_id, {}).get("location")
        if booked is not None and (booked.mode != "courier" or booked.redirected_to is not None):
            facility = booked.redirected_to or booked.facility
            return list(self.core.facility[facility].location), facility
        return where, None

    def _route(self, trip: Trip) -> dict[str, Any]:
        """A committed trip as the courier app shows it: pickup at the store, the doors, back to the store."""
        assert self.core is not None
        core = self.core
        store = core.store_of[trip.courier_id]
        store_at = list(core.facility[store].location)
        pickup, back = STORE_STOPS
        stops: list[dict[str, Any]] = [{"id": pickup, "kind": "pickup", "location": store_at,
                                        "eta": trip.departure, "orders": list(trip.order_ids),
                                        "status": "pending"}]
        for oid, eta in zip(trip.order_ids, trip.etas, strict=True):
            booked = core.orders.get(oid)
            info = self.orders.get(oid, {})
            where, facility = self._door(oid)
            stops.append({"id": oid, "kind": "dropoff", "order": oid, "location": where, "eta": eta,
                          "facility": facility, "boxes": list(booked.boxes) if booked else [],
                          "collect_returns": bool(info.get("returns")), "status": "pending"})
        if trip.ends_at_store:
            stops.append({"id": back, "kind": "return", "location": store_at, "eta": trip.end_at,
                          "status": "pending"})
        return {"courier": trip.courier_id, "store": store, "status": "assigned", "dispatch_at": trip.dispatch_at,
                "departure": trip.departure, "end_at": trip.end_at, "distance_m": trip.distance_m,
                "stops": stops}


