"""Admission in the API process (`admission = "api"`): 201 without waiting for the worker, counts reserved in the
store atomically, the worker placing each order where the API admitted it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.admission import CONFIG_CACHE_S, LOAD_CACHE_S
from api.app import create_app
from api.service import Deployment, Service
from api.store import Store
from api.worker import LOAD_KEY
from tests.api.test_app import ADMIN, TINY, all_on_shift, key, make_service, order, race_for_the_last_units, until


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return Deployment.load(TINY)


@pytest.fixture
def service(deployment: Deployment, store: Store) -> Service:
    return make_service(deployment, store, admission="api")


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as c:
        yield c


def drained(service: Service) -> None:
    """Wait until the worker applied every command appended so far."""
    for _ in range(200):
        if service.store.applied() >= service.store.last_seq():
            return
        time.sleep(0.02)
    raise AssertionError("the worker did not catch up")


def test_an_admitted_order_is_dispatched_and_delivered(client: TestClient, service: Service) -> None:
    """POST → 201 allocated with its store, promise and quote at once (a retry answers the same); the worker then
    gives it a courier and delivers."""
    osys = key(client, "order_system")
    all_on_shift(client, service)
    for _ in range(100):  # the worker publishes the stores' load (couriers now on shift) within LOAD_EVERY_S
        if all(free is not None for _, free in json.loads(service.store.get(LOAD_KEY) or "{}").values()):
            break
        time.sleep(0.02)
    time.sleep(LOAD_CACHE_S)  # and the API process reads it again after this long
    r = client.post("/v1/orders", json=order("a1"), headers={**osys, "Idempotency-Key": "a1"})
    assert r.status_code == 201, r.text
    placed = r.json()
    assert placed["state"] == "allocated" and placed["store"] in ("vdnh", "ostankino")
    assert placed["facility"] == placed["store"] and placed["quoted_eta"] > 10 * 3600
    assert placed["promise_by"] == 10 * 3600 + 45 * 60  # in the first answer, as the worker's event will say
    again = client.post("/v1/orders", json=order("a1"), headers={**osys, "Idempotency-Key": "a1"})
    assert again.json()["promise_by"] == placed["promise_by"] and again.json()["store"] == placed["store"]
    courier = until(lambda: client.get("/v1/orders/a1", headers=osys).json()["courier"], service)
    got = client.get("/v1/orders/a1", headers=osys).json()
    assert got["store"] == placed["store"]  # the worker placed it where the API admitted it
    assert [e["event"] for e in got["timeline"]][:3] == ["placed", "allocated", "assigned"]
    assert got["timeline"][0]["quoted_eta"] == placed["quoted_eta"]
    app_key = key(client, "courier", courier)
    for stop, status in (("pickup", "completed"), ("a1", "completed")):
        service.clock.t += 120  # type: ignore[attr-defined]
        assert client.post(f"/v1/couriers/{courier}/stops/{stop}", json={"status": status},
                           headers=app_key).status_code == 200
    assert client.get("/v1/orders/a1", headers=osys).json()["state"] == "delivered"


def test_201_needs_no_worker(deployment: Deployment) -> None:
    """With no dispatch worker running, an order is still admitted (201, allocated) and its stock taken."""
    service = make_service(deployment, admission="api", workers=0)
    with TestClient(create_app(service)) as client:
        osys = key(client, "order_system")
        r = client.post("/v1/orders", json=order("n1", qty=2), headers={**osys, "Idempotency-Key": "n1"})
        assert r.status_code == 201 and r.json()["state"] == "allocated", r.text
        store = r.json()["store"]
        held = deployment.facilities[[f.id for f in deployment.facilities].index(store)].stock["milk-1l"]  # type: ignore[union-attr]
        assert service.store.counters([(f"stock:{store}", ["milk-1l"])]) == [[held - 2]]
        assert service.store.applied() == 0  # nobody applied it: the answer did not wait


def test_the_last_units_go_to_exactly_as_many_orders(client: TestClient, service: Service) -> None:
    """50 concurrent orders for the last 10 units: exactly 10 admitted, 40 rejected out of stock, none lost."""
    race_for_the_last_units(client, service)
    drained(service)
    assert service.store.counters([(f"stock:{s}", ["bread"]) for s in service.deployment.stores]) == [[0], [0]]
    osys = key(client, "order_system")
    states = [client.get(f"/v1/orders/b{k}", headers=osys).json()["state"] for k in range(50)]
    assert states.count("rejected") == 40 and len(states) == 50


def test_counts_follow_the_core(client: TestClient, service: Service) -> None:
    """After cancels and stock counts, the store's counters equal the worker's core counts."""
    osys = key(client, "order_system")
    for k in range(6):
        assert client.post("/v1/orders", json=order(f"c{k}"),
                           headers={**osys, "Idempotency-Key": f"c{k}"}).status_code == 201
    drained(service)
    for k in range(3):
        assert client.post(f"/v1/orders/c{k}/cancel", headers=osys).status_code == 200
    assert client.put("/v1/stores/vdnh/stock/milk-1l", json={"available": 7}, headers=osys).status_code == 200
    drained(service)
    core = service.workers[0].core
    assert core is not None
    levels = core.allocator.inventory.counters()
    names = [n for n in levels if n.startswith("stock:")]
    published = service.store.counters([(n, sorted(levels[n])) for n in names])
    assert published == [[levels[n][f] for f in sorted(levels[n])] for n in names]
    assert levels["stock:vdnh"]["milk-1l"] == 7


def test_a_retry_is_answered_as_first_and_takes_nothing(client: TestClient, service: Service) -> None:
    """The same Idempotency-Key again gives the first answer (201 or 422) and takes no more stock."""
    osys = key(client, "order_system")
    headers = {**osys, "Idempotency-Key": "same"}
    first = client.post("/v1/orders", json=order("i1", qty=3), headers=headers)
    store = first.json()["store"]
    before = service.store.counters([(f"stock:{store}", ["milk-1l"])])
    again = client.post("/v1/orders", json=order("i1", qty=3), headers=headers)
    assert first.status_code == again.status_code == 201 and again.json()["store"] == store
    assert service.store.counters([(f"stock:{store}", ["milk-1l"])]) == before
    other = client.post("/v1/orders", json=order("i2", qty=3), headers=headers)
    assert other.status_code == 422 and other.json()["error"]["field"] == "Idempotency-Key"
    placed = [c for _, c in service.store.read(0, count=1000) if c["op"] == "place"]
    assert [c["order"]["id"] for c in placed] == ["i1"]
    assert json.loads(json.dumps(placed[0]["admission"]))["store"] == store


def test_an_order_too_large_for_the_couriers_is_refused_at_once(client: TestClient, service: Service) -> None:
    """An order needing more boxes than any courier of its store carries is a 422 naming `items` (as the worker
    would refuse it), taking no stock; once a larger courier is put in, the same order is admitted."""
    osys = key(client, "order_system")
    held = service.store.counters([("stock:vdnh", ["milk-1l"])])
    r = client.post("/v1/orders", json=order("big", qty=200), headers={**osys, "Idempotency-Key": "big"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "items" and r.json()["order"]["state"] == "rejected"
    message = r.json()["error"]["message"]
    assert message.startswith("too_large: ") and message.endswith(" boxes, couriers carry at most 8")
    assert service.store.counters([("stock:vdnh", ["milk-1l"])]) == held
    drained(service)
    assert client.get("/v1/orders/big", headers=osys).json()["state"] == "rejected"
    van = {"id": "van", "profile": "car", "store": "vdnh", "shift": ["09:00", "18:00"], "capacity": 12}
    assert client.put("/v1/couriers", json={"couriers": [van]}, headers=ADMIN).status_code == 200
    time.sleep(CONFIG_CACHE_S)  # the API process looks at the configuration again after this long
    r = client.post("/v1/orders", json=order("big2", qty=200), headers={**osys, "Idempotency-Key": "big2"})
    assert r.status_code == 201 and r.json()["store"] == "vdnh", r.text
    drained(service)
    assert client.get("/v1/orders/big2", headers=osys).json()["state"] == "allocated"
