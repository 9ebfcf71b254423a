"""The dispatch worker: a worker that dies is replaced, and the new one publishes exactly what the first would have."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.service import Deployment
from api.store import MemoryStore, Store, order_key, planned_key, route_key
from api.store.redis import RedisStore
from api.worker import Worker
from dispatch.model import Item, Order, Promise
from dispatch.operations import order_to_json
from tests.api.conftest import REDIS_URL

TINY = Path(__file__).resolve().parents[2] / "scenarios" / "moscow-ostankino-tiny.toml"
START = 10 * 3600


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return Deployment.load(TINY)


@pytest.fixture(scope="module")
def planning(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """The tiny scenario under a planning policy (reoptimize)."""
    scenario = tmp_path_factory.mktemp("planning") / "tiny-reoptimize.toml"
    scenario.write_text(TINY.read_text().replace('name = "batch"', 'name = "reoptimize"').replace(
        'file = "maps/', f'file = "{TINY.parent}/maps/'))
    return Deployment.load(scenario)


@pytest.fixture(params=["memory", "redis"])
def stores(request: pytest.FixtureRequest) -> Iterator[tuple[Store, Store]]:
    """Two empty stores of one kind: one for an uninterrupted run, one for a run whose worker dies."""
    if request.param == "memory":
        yield MemoryStore(), MemoryStore()
        return
    prefix = request.getfixturevalue("redis_prefix")
    a, b = RedisStore(REDIS_URL, prefix=prefix + "a:"), RedisStore(REDIS_URL, prefix=prefix + "b:")
    yield a, b
    a.close()
    b.close()


class Clock:
    def __init__(self) -> None:
        self.t = START

    def __call__(self) -> int:
        return self.t


def _order(k: int) -> dict[str, Any]:
    lon = 37.598 + 0.003 * (k % 6)
    order = Order(id=f"o{k}", location=(lon, 55.8200), mode="courier", placed_at=0,
                  items=(Item(sku="milk-1l", qty=1, weight_g=1050, dims_mm=(70, 70, 200)),),
                  promise=Promise.express(45 * 60))
    return {"op": "place", "order": order_to_json(order)}


def _phases(deployment: Deployment) -> list[list[dict[str, Any]]]:
    """What the outside world says, in phases ten minutes apart."""
    shifts = [{"op": "shift", "courier": c, "on": True} for c in deployment.couriers]
    return [shifts, [_order(k) for k in range(4)], [_order(k) for k in range(4, 8)], [], [_order(8)], [], []]


def _drain(worker: Worker, store: Store) -> None:
    """Step the worker until it has applied everything in the stream."""
    while worker.step(block_ms=0) or store.applied() < store.last_seq():
        pass


def _run(store: Store, deployment: Deployment, *, die_after: int | None = None) -> list[int]:
    """Feed the phases to a worker (a fresh one after phase `die_after`, the first one abandoned without a word);
    the sequence numbers each worker started from."""
    clock = Clock()
    worker = Worker(store, deployment, clock, name="first", lease_ms=300, snapshot_every=7)
    started = []
    for k, phase in enumerate(_phases(deployment)):
        for command in phase:
            store.append(command, now=clock())
        _drain(worker, store)
        if k == die_after:
            worker = Worker(store, deployment, clock, name="second", lease_ms=300, snapshot_every=7)
            while not worker.holds_lease():  # the first worker's lease runs out
                pass
            started.append(worker.seq)
        clock.t += 600
    return started


def _views(store: Store, deployment: Deployment) -> dict[str, Any]:
    orders = {f"o{k}": (store.hgetall(order_key(f"o{k}")), store.lrange(order_key(f"o{k}") + ":events"))
              for k in range(9)}
    routes = {c: (store.get(route_key(c)), store.get(planned_key(c))) for c in deployment.couriers}
    return {"orders": orders, "routes": routes, "replies": [store.reply(s) for s in range(1, store.last_seq() + 1)]}


def test_a_replacement_worker_publishes_what_the_first_would_have(deployment: Deployment,
                                                                  stores: tuple[Store, Store]) -> None:
    """Kill the worker mid-day: its successor restores the last snapshot, replays the rest of the stream, and every
    order record, timeline, route and reply equals those of a run whose worker never died."""
    calm, crashed = stores
    _run(calm, deployment)
    started = _run(crashed, deployment, die_after=2)
    assert 0 < started[0] < crashed.applied()  # restored from a snapshot, then replayed what came after it
    assert calm.last_seq() == crashed.last_seq()
    views = _views(calm, deployment)
    assert views == _views(crashed, deployment)
    assert sum(1 for record, _ in views["orders"].values() if record.get("state") == "assigned") >= 1
    for _, timeline in views["orders"].values():
        assert len(timeline) == len(set(timeline))  # no event published twice


def test_a_command_that_breaks_the_core_does_not_wedge_the_stream(deployment: Deployment) -> None:
    """A command that raises something unexpected is answered as an internal error and the next ones apply."""
    store = MemoryStore()
    clock = Clock()
    worker = Worker(store, deployment, clock, name="w")
    bad = store.append({"op": "stock", "store": ["not", "a", "store"], "sku": "tea", "available": 1}, now=clock())
    good = store.append(_order(1), now=clock())
    while store.applied() < good.seq:
        worker.step(block_ms=0)
    reply = store.reply(bad.seq)
    assert reply is not None and reply["ok"] is False and reply["error"]["code"] == "internal"
    after = store.reply(good.seq)
    assert after is not None and [e["event"] for e in after["events"]][:2] == ["placed", "allocated"]


def test_a_courier_sees_what_is_planned_after_its_committed_trip(planning: Deployment) -> None:
    """Under a planning policy (reoptimize), orders still being picked are planned on couriers without being
    committed: each such courier's planned trips list them with ETAs and addresses; once a plan is committed or
    gone, the published plans are the worker's (no stale plan is left) and never repeat a committed stop."""
    store, clock = MemoryStore(), Clock()
    worker = Worker(store, planning, clock, name="w")
    for command in [{"op": "shift", "courier": c, "on": True} for c in planning.couriers] + [_order(k)
                                                                                            for k in range(6)]:
        store.append(command, now=clock())
    _drain(worker, store)
    planned = {c: json.loads(store.get(planned_key(c)) or "[]") for c in planning.couriers}
    stops = [s for trips in planned.values() for t in trips for s in t["stops"]]
    assert stops and {s["order"] for s in stops} <= {f"o{k}" for k in range(6)}
    assert all(s["eta"] >= START and len(s["location"]) == 2 for s in stops)
    assert planned == {c: worker.planned.get(c, []) for c in planning.couriers}
    clock.t += 3 * 3600  # every order is long committed and delivered by the next decision's reckoning
    store.append({"op": "tick"}, now=clock())
    _drain(worker, store)
    now_planned = {c: json.loads(store.get(planned_key(c)) or "[]") for c in planning.couriers}
    assert now_planned == {c: worker.planned.get(c, []) for c in planning.couriers}  # nothing stale is left
    committed = {c: [s.get("order") for s in json.loads(store.get(route_key(c)) or '{"stops": []}')["stops"]]
                 for c in planning.couriers}
    assert any(committed.values())
    for c in planning.couriers:  # what is planned comes after the committed trip, never inside it
        assert not {s["order"] for t in now_planned[c] for s in t["stops"]} & set(committed[c])


def test_an_admitted_order_the_core_cannot_place_is_rejected_not_lost(deployment: Deployment) -> None:
    """An admitted place the core refuses ends rejected with a `not_placed` reason on the order's record and
    timeline, its counts given back to the store, and the stream goes on."""
    store = MemoryStore()
    clock = Clock()
    worker = Worker(store, deployment, clock, name="w")
    store.seed_counters({"stock:vdnh": {"milk-1l": 5}})
    admission = {"facility": "vdnh", "store": "vdnh", "travel_time_s": 60, "boxes": ["S"], "reason": None,
                 "compartments": [], "node": 0, "quoted_eta": None, "quote_basis": None,
                 "reservation": {"store": "vdnh", "stock": {"milk-1l": 2}, "pickup_point": None, "locker": None,
                                 "compartments": []}}
    taken = store.append({**_order(7), "admission": admission, "noreply": True}, now=clock(),
                         order=("o7", {"state": "allocated"}), claims=[("stock:vdnh", "milk-1l", 2)])
    broken = {**_order(8), "admission": {**admission, "reservation": None}, "noreply": True}
    bad = store.append(broken, now=clock(), order=("o8", {"state": "allocated"}))
    good = store.append(_order(9), now=clock())
    while store.applied() < good.seq:
        worker.step(block_ms=0)
    assert taken.seq < bad.seq and store.hgetall(order_key("o8"))["state"] == "rejected"
    assert json.loads(store.hgetall(order_key("o8"))["reason"]).startswith("not_placed: ")
    assert [json.loads(e)["event"] for e in store.lrange(order_key("o8") + ":events")] == ["placed", "rejected"]
    assert "o8" not in store.hgetall("orders:open-index") and "o9" in store.hgetall("orders:open-index")
    o9_here = json.loads(store.hgetall(order_key("o9"))["store"]) == "vdnh"
    assert store.counters([("stock:vdnh", ["milk-1l"])]) == [[5 - 2 - o9_here]]  # o7's two stay taken, o8's none


def test_a_place_the_core_cannot_read_is_rejected_not_left_received(deployment: Deployment) -> None:
    """A place command the core refuses (not admitted by the API) is answered with the error and the order's
    record ends rejected with a `not_placed` reason and a timeline, out of the open orders; the stream goes on."""
    store, clock = MemoryStore(), Clock()
    worker = Worker(store, deployment, clock, name="w")
    broken = {"op": "place", "order": {**_order(8)["order"], "location": "nowhere"}}
    bad = store.append(broken, now=clock(), order=("o8", {"state": "received"}))
    good = store.append(_order(9), now=clock())
    while store.applied() < good.seq:
        worker.step(block_ms=0)
    reply = store.reply(bad.seq)
    assert reply is not None and reply["ok"] is False
    record = store.hgetall(order_key("o8"))
    assert record["state"] == "rejected" and json.loads(record["reason"]).startswith("not_placed: ")
    assert [json.loads(e)["event"] for e in store.lrange(order_key("o8") + ":events")] == ["placed", "rejected"]
    assert "o8" not in store.hgetall("orders:open-index") and "o9" in store.hgetall("orders:open-index")


def test_snapshots_space_out_as_open_orders_pile_up(deployment: Deployment) -> None:
    """A worker snapshots every `snapshot_every` commands while few orders are open, and after one command per
    `ORDERS_PER_SNAPSHOT_COMMAND` open orders once more are (a snapshot costs more the more it holds)."""
    from api.worker import ORDERS_PER_SNAPSHOT_COMMAND as PER

    store, clock = MemoryStore(), Clock()
    worker = Worker(store, deployment, clock, name="only", snapshot_every=2)
    taken: list[tuple[int, int]] = []  # (command, open orders) at each snapshot
    for k in range(120):  # nobody on shift: every order stays open
        store.append(_order(k), now=clock())
        worker.step(block_ms=0)
        saved = store.load_snapshot()
        if saved is not None and (not taken or saved[0] != taken[-1][0]):
            taken.append((saved[0], len(worker.orders)))
    gaps = [(b - a, opened) for (a, _), (b, opened) in itertools.pairwise(taken)]
    assert gaps[0][0] == 2 and all(gap == max(2, opened // PER) for gap, opened in gaps)
    assert gaps[-1][0] >= 10


def test_a_late_return_post_does_not_mark_the_next_trips_return(planning: Deployment) -> None:
    """When the next trip is committed while its courier is still riding back (a planning policy does that), the
    courier app's `return arrived` of the trip it finished counts as back at the store and leaves the new trip's
    own return pending, so the courier is idle again after the new trip (it used to stay `returning` for good)."""
    courier = next(c for c, s in planning.couriers.items() if s.store == "ostankino" and s.profile == "bike")
    store, clock = MemoryStore(), Clock()
    worker = Worker(store, planning, clock, name="w")

    def post(command: dict[str, Any]) -> None:
        store.append(command, now=clock())
        _drain(worker, store)

    def route() -> dict[str, Any]:
        return json.loads(store.get(route_key(courier)) or "{}")

    def ride(trip: dict[str, Any], then: dict[str, Any] | None = None) -> None:
        """Pick up at the departure (then post `then`) and hand over at each door's ETA (the clock follows)."""
        clock.t = max(clock.t, trip["departure"])
        post({"op": "stop", "courier": courier, "stop": "pickup", "status": "completed"})
        if then is not None:
            post(then)
        for s in trip["stops"]:
            if s["kind"] == "dropoff":
                clock.t = max(clock.t, s["eta"])
                post({"op": "stop", "courier": courier, "stop": s["id"], "status": "completed",
                      "outcome": "delivered"})

    post({"op": "shift", "courier": courier, "on": True})
    post(_order(0))
    while route().get("status") != "assigned":
        clock.t += 60
        post({"op": "tick"})
    first = route()
    ride(first, then=_order(6))  # the next order (to the same street) comes in while the courier is out
    back = next(s["eta"] for s in first["stops"] if s["kind"] == "return")
    while route().get("status") != "assigned" and clock.t < back:  # the next trip, committed on the way back
        clock.t += 30
        post({"op": "tick"})
    second = route()
    assert second["status"] == "assigned" and second["stops"][1]["order"] == "o6" and clock.t < back
    clock.t = back
    post({"op": "stop", "courier": courier, "stop": "return", "status": "arrived"})
    assert worker.core is not None and worker.core.courier_status(courier) == "assigned"
    assert route()["status"] == "assigned"
    assert [s["status"] for s in route()["stops"] if s["kind"] == "return"] == ["pending"]
    ride(route())
    assert worker.core.courier_status(courier) == "returning"
    clock.t = next(s["eta"] for s in route()["stops"] if s["kind"] == "return")
    post({"op": "stop", "courier": courier, "stop": "return", "status": "arrived"})
    assert worker.core.courier_status(courier) == "idle" and route()["status"] == "done"
