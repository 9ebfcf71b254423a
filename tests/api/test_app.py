"""The HTTP API over the memory store: orders in, routes out, one error shape, keys and roles."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.service import Deployment, Service
from api.settings import Settings
from api.store import MemoryStore, Store, key_id

TINY = Path(__file__).resolve().parents[2] / "scenarios" / "moscow-ostankino-tiny.toml"
ADMIN = {"Authorization": "Bearer admin-secret"}
NEAR_VDNH = [37.6029, 55.8215]


class ManualClock:
    """A service clock the test moves."""

    def __init__(self, t: int) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return Deployment.load(TINY)


def make_service(deployment: Deployment, store: Store | None = None, **settings: Any) -> Service:
    return Service(Settings(admin_key=SecretStr("admin-secret"), **settings), deployment,
                   store=store if store is not None else MemoryStore(), clock=ManualClock(10 * 3600))


@pytest.fixture
def service(deployment: Deployment) -> Service:
    return make_service(deployment)


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as c:
        yield c


def key(client: TestClient, role: str, courier: str | None = None) -> dict[str, str]:
    r = client.post("/v1/keys", json={"role": role, "courier_id": courier}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return {"Authorization": "Bearer " + r.json()["key"]}


def order(oid: str, *, sku: str = "milk-1l", qty: int = 1, location: list[float] | None = None) -> dict[str, Any]:
    return {"id": oid, "location": location or NEAR_VDNH, "mode": "courier",
            "items": [{"sku": sku, "qty": qty, "weight_g": 1050, "dims_mm": [70, 70, 200]}],
            "promise": {"kind": "express", "within_min": 45}}


def until(check: Callable[[], Any], service: Service, *, step_s: int = 60, tries: int = 40) -> Any:
    """Move the clock a step at a time until `check()` is truthy (the worker ticks as time passes)."""
    for _ in range(tries):
        got = check()
        if got:
            return got
        service.clock.t += step_s  # type: ignore[attr-defined]
        time.sleep(0.15)
    raise AssertionError("condition not met")


def all_on_shift(client: TestClient, service: Service) -> None:
    """Every courier of the deployment starts a shift."""
    for cid in service.deployment.couriers:
        assert client.post(f"/v1/couriers/{cid}/shift", json={"on": True}, headers=ADMIN).status_code == 200


def test_an_order_goes_from_post_to_delivered(client: TestClient, service: Service) -> None:
    """POST → 201 allocated; a courier's route shows it; the app's stop posts deliver it on time."""
    osys = key(client, "order_system")
    all_on_shift(client, service)
    r = client.post("/v1/orders", json=order("o1"), headers={**osys, "Idempotency-Key": "k-o1"})
    assert r.status_code == 201, r.text
    placed = r.json()
    assert placed["state"] == "allocated" and placed["store"] in ("vdnh", "ostankino")
    assert placed["promise_by"] == 10 * 3600 + 45 * 60
    courier = until(lambda: client.get("/v1/orders/o1", headers=osys).json()["courier"], service)
    app_key = key(client, "courier", courier)
    route = client.get(f"/v1/couriers/{courier}/route", headers=app_key).json()
    assert [s["id"] for s in route["stops"]] == ["pickup", "o1", "return"]
    assert route["stops"][1]["location"] == NEAR_VDNH
    assert route["planned"] == []  # batch plans nothing beyond the committed trip
    legs = route["geometry"]["geometry"]["coordinates"]
    assert len(legs) == 2 and all(len(line) >= 2 for line in legs)
    assert legs[0][-1] == legs[1][0]  # the legs join at the door
    assert abs(legs[0][-1][0] - NEAR_VDNH[0]) < 0.003 and abs(legs[0][-1][1] - NEAR_VDNH[1]) < 0.003
    assert "geometry" not in client.get(f"/v1/couriers/{courier}/route?geometry=false", headers=app_key).json()
    for stop, status in (("pickup", "completed"), ("o1", "arrived"), ("o1", "completed"), ("return", "arrived")):
        service.clock.t += 120  # type: ignore[attr-defined]
        r = client.post(f"/v1/couriers/{courier}/stops/{stop}", json={"status": status}, headers=app_key)
        assert r.status_code == 200, r.text
    got = client.get("/v1/orders/o1", headers=osys).json()
    assert got["state"] == "delivered" and got["on_time"] is True
    assert [e["event"] for e in got["timeline"]] == ["placed", "allocated", "assigned", "picked_up", "delivered"]
    assert client.get(f"/v1/couriers/{courier}/route", headers=app_key).json()["status"] == "done"


def test_an_order_without_a_promise_gets_the_scenarios_express_promise(client: TestClient, service: Service) -> None:
    """An order posted without `promise` is 201 allocated as express within the scenario's `demand.express_s`
    (never a 201 left `received` with its stock taken), and its record and GET say so."""
    osys = key(client, "order_system")
    body = {k: v for k, v in order("bare").items() if k != "promise"}
    r = client.post("/v1/orders", json=body, headers={**osys, "Idempotency-Key": "k-bare"})
    assert r.status_code == 201, r.text
    express_s = service.deployment.options.default_express_s  # the scenario's demand.express_s (45 min)
    assert express_s == 45 * 60
    assert r.json()["state"] == "allocated" and r.json()["promise"] == "express"
    assert r.json()["promise_by"] == 10 * 3600 + express_s
    got = client.get("/v1/orders/bare", headers=osys).json()
    assert [e["event"] for e in got["timeline"]] == ["placed", "allocated"] and got["state"] == "allocated"


def test_courier_app_retries_and_posts_out_of_turn_keep_orders_whole(client: TestClient, service: Service) -> None:
    """A door `arrived` before the pickup is a 422; `pickup` or `failed` posted twice is answered 200 and happens
    once; another outcome at a completed stop is a 409; the failed parcel is returned at the store; an order
    brought back unreported is open again (cancelled with a 200 unless a courier took it out again at once)."""
    osys = key(client, "order_system")
    all_on_shift(client, service)
    for oid in ("r1", "r2"):
        assert client.post("/v1/orders", json=order(oid), headers={**osys, "Idempotency-Key": oid}).status_code == 201
    courier = until(lambda: client.get("/v1/orders/r1", headers=osys).json()["courier"], service)
    until(lambda: client.get("/v1/orders/r2", headers=osys).json()["courier"], service)
    assert client.get("/v1/orders/r2", headers=osys).json()["courier"] == courier  # one trip takes both
    app = key(client, "courier", courier)

    def post(stop: str, **body: str) -> Any:
        return client.post(f"/v1/couriers/{courier}/stops/{stop}", json=body, headers=app)

    early = post("r1", status="arrived")
    assert early.status_code == 422 and early.json()["error"]["field"] == "stop"
    service.clock.t += 60  # type: ignore[attr-defined]
    assert post("pickup", status="completed").status_code == post("pickup", status="completed").status_code == 200
    assert post("r1", status="completed", outcome="failed", reason="address_not_found").status_code == 200
    assert post("r1", status="completed", outcome="failed").status_code == 200
    assert post("r1", status="completed", outcome="delivered").status_code == 409
    service.clock.t += 600  # type: ignore[attr-defined]
    assert post("return", status="arrived").status_code == 200
    for late in ("ready", "cancel"):  # a store's late report is answered; a cancel of a closed order is not
        assert client.post(f"/v1/orders/r1/{late}", headers=osys).status_code == (200 if late == "ready" else 409)
    r1 = client.get("/v1/orders/r1", headers=osys).json()
    assert [e["event"] for e in r1["timeline"]].count("failed") == 1 and r1["state"] == "returned"
    assert r1["timeline"][-1]["reason"] == "address_not_found"  # as the courier reported it
    r2 = client.get("/v1/orders/r2", headers=osys).json()
    assert "back_at_store" in {e.get("reason") for e in r2["timeline"]}
    cancelled = client.post("/v1/orders/r2/cancel", headers=osys)
    if cancelled.status_code == 409:  # taken out again at once by the next trip: cancel is refused, as documented
        assert client.get("/v1/orders/r2", headers=osys).json()["courier"] is not None
    else:
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        assert "r2" not in {o["id"] for o in client.get("/v1/orders", headers=osys).json()["orders"]}


def test_a_return_at_a_pickup_point_closes_when_a_courier_takes_it(client: TestClient, service: Service) -> None:
    """A return_pickup_point order: 201 at the pickup point; a courier's stop there completed with
    `return_collected` closes it `delivered` (no `picked_up` as the courier left the store); `failed` on it is
    a 422 naming `outcome`."""
    osys = key(client, "order_system")
    all_on_shift(client, service)
    body = {"id": "ret", "location": [37.6008, 55.8146], "mode": "return_pickup_point",
            "returns": [{"sku": "kettle", "qty": 1, "weight_g": 1400, "dims_mm": [220, 180, 250]}],
            "promise": {"kind": "express", "within_min": 180}}
    r = client.post("/v1/orders", json=body, headers={**osys, "Idempotency-Key": "ret"})
    assert r.status_code == 201 and r.json()["facility"] == "pvz-1", r.text
    courier = until(lambda: client.get("/v1/orders/ret", headers=osys).json()["courier"], service)
    app = key(client, "courier", courier)

    def post(stop: str, **fields: str) -> Any:
        return client.post(f"/v1/couriers/{courier}/stops/{stop}", json=fields, headers=app)

    assert post("pickup", status="completed").status_code == 200
    assert client.get(f"/v1/couriers/{courier}/route", headers=app).json()["status"] == "en_route"
    service.clock.t += 300  # type: ignore[attr-defined]
    assert post("ret", status="arrived").status_code == 200
    failed = post("ret", status="completed", outcome="failed")
    assert failed.status_code == 422 and failed.json()["error"]["field"] == "outcome"
    assert post("ret", status="completed", outcome="return_collected").status_code == 200
    got = client.get("/v1/orders/ret", headers=osys).json()
    assert got["state"] == "delivered"
    assert [e["event"] for e in got["timeline"]] == ["placed", "allocated", "assigned", "delivered"]
    assert "ret" not in {o["id"] for o in client.get("/v1/orders?state=open", headers=osys).json()["orders"]}
    assert post("return", status="arrived").status_code == 200
    assert client.get(f"/v1/couriers/{courier}/route", headers=app).json()["status"] == "done"


def test_late_posts_never_take_a_stop_back_and_outcomes_fit_their_stop(client: TestClient, service: Service) -> None:
    """An `arrived` or `en_route` posted after the stop was completed is a 200 that changes nothing (the retried
    `completed` stays a 200); an outcome on a pickup, or `return_collected` at a door with no returns, is a 422
    naming `outcome`; a stop's `location` is the courier's last reported position; starting a shift twice is a
    200."""
    osys = key(client, "order_system")
    all_on_shift(client, service)
    assert client.post("/v1/orders", json=order("w1"), headers={**osys, "Idempotency-Key": "w1"}).status_code == 201
    courier = until(lambda: client.get("/v1/orders/w1", headers=osys).json()["courier"], service)
    app = key(client, "courier", courier)
    assert client.post(f"/v1/couriers/{courier}/shift", json={"on": True}, headers=app).status_code == 200

    def post(stop: str, **fields: Any) -> Any:
        return client.post(f"/v1/couriers/{courier}/stops/{stop}", json=fields, headers=app)

    odd = post("pickup", status="completed", outcome="failed")
    assert odd.status_code == 422 and odd.json()["error"]["field"] == "outcome"
    assert post("pickup", status="completed").status_code == 200
    assert post("pickup", status="en_route").status_code == 200
    service.clock.t += 300  # type: ignore[attr-defined]
    assert post("w1", status="arrived", location=NEAR_VDNH).status_code == 200
    seen = client.get("/v1/couriers", headers=ADMIN).json()["couriers"]
    assert next(c for c in seen if c["id"] == courier)["location"] == NEAR_VDNH
    none = post("w1", status="completed", outcome="return_collected")
    assert none.status_code == 422 and none.json()["error"]["field"] == "outcome"
    assert post("w1", status="completed").status_code == 200
    for late in ("arrived", "en_route"):
        assert post("w1", status=late).status_code == 200
    stops = {s["id"]: s for s in client.get(f"/v1/couriers/{courier}/route", headers=app).json()["stops"]}
    assert stops["w1"]["status"] == stops["pickup"]["status"] == "completed"
    assert post("w1", status="completed").status_code == post("pickup", status="completed").status_code == 200
    assert client.get("/v1/orders/w1", headers=osys).json()["state"] == "delivered"


def test_a_sku_a_url_could_not_address_is_refused(client: TestClient) -> None:
    """A stock count for a SKU of spaces, over 128 characters or with a `#` is a 422 naming `sku`, and so is an order
    line with such a SKU (`items[0].sku`): neither is stored."""
    osys = key(client, "order_system")
    for sku in ("%20", "x" * 129, "a%23b"):
        r = client.put(f"/v1/stores/vdnh/stock/{sku}", json={"available": 3}, headers=osys)
        assert r.status_code == 422 and r.json()["error"]["field"] == "sku", (sku, r.text)
    line = {**order("long-sku"), "items": [{**order("x")["items"][0], "sku": "k" * 100_000}]}
    r = client.post("/v1/orders", json=line, headers={**osys, "Idempotency-Key": "long-sku"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "items[0].sku", r.text
    assert client.get("/v1/orders/long-sku", headers=osys).status_code == 404


def test_a_courier_going_off_before_leaving_gives_its_trip_back(client: TestClient, service: Service) -> None:
    """A courier that ends its shift with a committed trip it has not left with: its orders are `unassigned` (no
    courier, no ETA, the reason in the timeline), its app shows no route, and another courier takes them; a door
    posted before the pickup is a 422 naming the stop, going off with parcels on board a 422 naming `on`, and a
    parcel brought back unreported is `unassigned` (`back_at_store`) and goes out again."""
    osys = key(client, "order_system")
    all_on_shift(client, service)
    assert client.post("/v1/orders", json=order("u1"), headers={**osys, "Idempotency-Key": "u1"}).status_code == 201
    first = until(lambda: client.get("/v1/orders/u1", headers=osys).json()["courier"], service)
    r = client.post(f"/v1/couriers/{first}/stops/u1", json={"status": "completed"}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["field"] == "stop", r.text
    assert "not picked up yet" in r.json()["error"]["message"]
    assert client.post(f"/v1/couriers/{first}/shift", json={"on": False}, headers=ADMIN).status_code == 200
    got = until(lambda: (o := client.get("/v1/orders/u1", headers=osys).json())["courier"] is None and o, service,
                tries=3)
    assert got["state"] in ("allocated", "ready") and got["eta"] is None and got["reason"] is None
    assert got["timeline"][-1]["event"] == "unassigned"
    assert got["timeline"][-1]["courier"] == first and got["timeline"][-1]["reason"] == "courier_off_shift"
    assert client.get(f"/v1/couriers/{first}/route", headers=ADMIN).json()["status"] == "none"
    second = until(lambda: client.get("/v1/orders/u1", headers=osys).json()["courier"], service)
    assert second != first
    route = client.get(f"/v1/couriers/{second}/route", headers=ADMIN).json()
    assert [s["id"] for s in route["stops"]] == ["pickup", "u1", "return"]
    assert client.post(f"/v1/couriers/{second}/stops/pickup", json={"status": "completed"}, headers=ADMIN
                       ).status_code == 200
    r = client.post(f"/v1/couriers/{second}/shift", json={"on": False}, headers=ADMIN)
    assert r.status_code == 422 and "parcels on board" in r.json()["error"]["message"], r.text
    assert r.json()["error"]["field"] == "on"
    assert client.get("/v1/orders/u1", headers=osys).json()["state"] == "picked_up"
    service.clock.t += 600  # type: ignore[attr-defined]
    r = client.post(f"/v1/couriers/{second}/stops/return", json={"status": "arrived"}, headers=ADMIN)
    assert r.status_code == 200, r.text  # back with u1 on board, neither delivered nor failed: u1 is open again
    assert until(lambda: client.get("/v1/orders/u1", headers=osys).json()["courier"], service)
    timeline = client.get("/v1/orders/u1", headers=osys).json()["timeline"]
    after = timeline[[e["event"] for e in timeline].index("picked_up") + 1:]
    assert [(e["event"], e.get("reason")) for e in after][:2] == [("unassigned", "back_at_store"), ("assigned", None)]


def test_retries_with_one_key_place_one_order(client: TestClient, service: Service) -> None:
    """Sequential and concurrent retries with the same Idempotency-Key give the same order, placed once."""
    osys = key(client, "order_system")
    headers = {**osys, "Idempotency-Key": "retry-1"}
    first = client.post("/v1/orders", json=order("r1"), headers=headers)
    again = client.post("/v1/orders", json=order("r1"), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"] == "r1"

    def post(_: int) -> int:
        return client.post("/v1/orders", json=order("r2"), headers={**osys, "Idempotency-Key": "retry-2"}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(post, range(16)))
    assert codes == [201] * 16
    placed = [c for _, c in service.store.read(0, count=10_000) if c["op"] == "place"]
    assert sorted(c["order"]["id"] for c in placed) == ["r1", "r2"]
    other = client.post("/v1/orders", json=order("r3"), headers=headers)
    assert other.status_code == 422 and other.json()["error"]["field"] == "Idempotency-Key"
    taken = client.post("/v1/orders", json=order("r1"), headers={**osys, "Idempotency-Key": "retry-3"})
    assert taken.status_code == 409 and taken.json()["error"]["field"] == "id"


def race_for_the_last_units(client: TestClient, service: Service) -> list[tuple[int, Any]]:
    """5 units of bread left at each of the two stores, 50 concurrent orders for one each: exactly 10 accepted,
    40 rejected out of stock naming `items`. The answers, in order."""
    osys = key(client, "order_system")
    for store in service.deployment.stores:
        r = client.put(f"/v1/stores/{store}/stock/bread", json={"available": 5}, headers=osys)
        assert r.status_code == 200, r.text

    def post(k: int) -> tuple[int, Any]:
        r = client.post("/v1/orders", json=order(f"b{k}", sku="bread"), headers={**osys, "Idempotency-Key": f"b{k}"})
        return r.status_code, r.json()

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(post, range(50)))
    codes = [c for c, _ in results]
    assert codes.count(201) == 10 and codes.count(422) == 40
    assert {body["error"]["message"] for c, body in results if c == 422} == {"out_of_stock: bread"}
    assert {body["error"]["field"] for c, body in results if c == 422} == {"items"}
    return results


def test_the_last_units_go_to_exactly_as_many_orders(client: TestClient, service: Service) -> None:
    """50 concurrent orders for the last 10 units of a SKU: exactly 10 are accepted, 40 rejected out of stock."""
    race_for_the_last_units(client, service)


def test_cancel_releases_the_stock(client: TestClient, service: Service) -> None:
    """A cancelled order gives its unit back (a retried cancel is answered 200 again): the next order for the last
    unit is accepted; a stock count out of range is a 422 naming `available`."""
    osys = key(client, "order_system")
    for store in service.deployment.stores:
        client.put(f"/v1/stores/{store}/stock/eggs-10", json={"available": 0}, headers=osys)
    client.put("/v1/stores/vdnh/stock/eggs-10", json={"available": 1}, headers=osys)
    assert client.post("/v1/orders", json=order("e1", sku="eggs-10"), headers={**osys, "Idempotency-Key": "e1"}
                       ).status_code == 201
    assert client.post("/v1/orders", json=order("e2", sku="eggs-10"), headers={**osys, "Idempotency-Key": "e2"}
                       ).status_code == 422
    r = client.post("/v1/orders/e1/cancel", headers=osys)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    for bad in (-1, 10**20):  # a count the store could not hold is named, and the stock stays as it was
        r = client.put("/v1/stores/vdnh/stock/eggs-10", json={"available": bad}, headers=osys)
        assert r.status_code == 422 and r.json()["error"]["field"] == "available", r.text
    again = client.post("/v1/orders/e1/cancel", headers=osys)  # a retry is answered as the first call
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    assert client.post("/v1/orders", json=order("e3", sku="eggs-10"), headers={**osys, "Idempotency-Key": "e3"}
                       ).status_code == 201


def test_collected_before_the_locker_and_a_retried_ready_keep_the_order_whole(client: TestClient,
                                                                              service: Service) -> None:
    """`collected` for a parcel not yet in its locker is 409 and changes nothing; `ready` retried is answered 200
    with one `picked` in the timeline; once a courier has it, `collected` is 409, a late `ready` changes nothing,
    and it is delivered."""
    osys = key(client, "order_system")
    all_on_shift(client, service)
    assert client.post("/v1/orders", json={**order("lk1"), "mode": "locker"}, headers={**osys, "Idempotency-Key":
                                                                                      "lk1"}).status_code == 201
    early = client.post("/v1/orders/lk1/collected", headers=osys)
    assert early.status_code == 409 and early.json()["error"]["field"] == "order_id"
    assert client.post("/v1/orders", json={**order("st1"), "mode": "store"}, headers={
        **osys, "Idempotency-Key": "st1"}).status_code == 201
    assert client.post("/v1/orders/st1/ready", headers=osys).json()["state"] == "delivered"  # at the store
    for _ in range(2):  # collected, and its retry answered the same
        r = client.post("/v1/orders/st1/collected", headers=osys)
        assert r.status_code == 200 and r.json()["state"] == "collected", r.text
    assert client.post("/v1/orders/st1/ready", headers=osys).status_code == 200  # long past it: changes nothing
    assert client.post("/v1/orders", json=order("c1"), headers={**osys, "Idempotency-Key": "c1"}).status_code == 201
    for _ in range(2):
        r = client.post("/v1/orders/c1/ready", headers=osys)
        assert r.status_code == 200 and r.json()["state"] == "ready"
    courier = until(lambda: client.get("/v1/orders/c1", headers=osys).json()["courier"], service)
    assert client.post("/v1/orders/c1/collected", headers=osys).status_code == 409
    app_key = key(client, "courier", courier)
    assert client.post(f"/v1/couriers/{courier}/stops/pickup", json={"status": "completed"},
                       headers=app_key).status_code == 200
    late = client.post("/v1/orders/c1/ready", headers=osys)  # the store reports late: nothing changes
    assert late.status_code == 200 and late.json()["state"] == "picked_up"
    r = client.post(f"/v1/couriers/{courier}/stops/c1", json={"status": "completed"}, headers=app_key)
    assert r.status_code == 200, r.text
    timeline = [e["event"] for e in client.get("/v1/orders/c1", headers=osys).json()["timeline"]]
    assert timeline.count("picked") == 1 and timeline[-1] == "delivered"
    assert client.get("/v1/orders/lk1", headers=osys).json()["state"] in ("allocated", "ready", "assigned")


@pytest.mark.parametrize(("body", "headers", "status", "field"), [
    (b"{bad json", {"content-type": "application/json"}, 422, "body"),
    (json.dumps(order("x", location=[37.6, 200.0])).encode(), {"content-type": "application/json"}, 422,
     "location[1]"),
    (json.dumps({**order("x"), "items": []}).encode(), {"content-type": "application/json"}, 422, "items"),
    (json.dumps({**order("x"), "items": [{"sku": "milk-1l", "qty": 0, "weight_g": 1, "dims_mm": [1, 1, 1]}]}
                ).encode(), {"content-type": "application/json"}, 422, "items[0].qty"),
    (json.dumps({**order("x"), "colour": "red"}).encode(), {"content-type": "application/json"}, 422, "colour"),
    (b"x" * 5_000_000, {"content-type": "application/json"}, 413, "body"),
    (b"id=x", {"content-type": "application/x-www-form-urlencoded"}, 415, "Content-Type"),
    (json.dumps(order("x")).encode(), {"content-type": "application/json", "Idempotency-Key": ""}, 400,
     "Idempotency-Key"),
    (json.dumps(order("x")).encode(), {"content-type": "application/json", "Idempotency-Key": "k" * 201}, 422,
     "Idempotency-Key"),
    (b"", {"content-type": "application/json", "content-length": "0"}, 422, "body"),
])
def test_bad_orders_get_a_4xx_naming_the_field(client: TestClient, body: bytes, headers: dict[str, str],
                                               status: int, field: str) -> None:
    """Malformed JSON, bad coordinates, empty items, huge, empty or non-JSON bodies, a missing or overlong
    Idempotency-Key: a 4xx naming the field."""
    osys = key(client, "order_system")
    sent = {"Idempotency-Key": "bad", **osys, **headers}
    r = client.post("/v1/orders", content=body, headers=sent)
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field
    assert client.get("/v1/orders/x", headers=osys).status_code == 404


@pytest.mark.parametrize(("oid", "message"), [
    ("a/b", "must not contain / ? # %, whitespace or control characters"),
    ("two words", "must not contain / ? # %, whitespace or control characters"),
    ("o#1", "must not contain / ? # %, whitespace or control characters"),
    ("50%", "must not contain / ? # %, whitespace or control characters"),
    ("x" * 129, "must have at most 128 characters, got 129"),
    (".", "a path segment that HTTP clients remove from URLs"),
    ("..", "a path segment that HTTP clients remove from URLs"),
    ("pickup", "'pickup' is reserved"),
    ("return", "'return' is reserved"),
])
def test_an_order_id_a_url_or_a_route_could_not_address_is_refused(client: TestClient, oid: str, message: str,
                                                                   ) -> None:
    """An order id with a `/`, `#`, `%` or a space, over 128 characters, or the name of a route's store stop is a
    422 naming `id`, and no order is stored under it (a URL could not address it unescaped, or its stop could not be
    told from the store's)."""
    osys = key(client, "order_system")
    r = client.post("/v1/orders", json=order(oid), headers={**osys, "Idempotency-Key": f"id-{len(oid)}-{oid[:3]}"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "id", r.text
    assert message in r.json()["error"]["message"]
    assert oid not in {o["id"] for o in client.get("/v1/orders", headers=osys).json()["orders"]}
    good = "заказ-№1"  # any other printable id is the order system's own, Unicode included
    assert client.post("/v1/orders", json=order(good), headers={**osys, "Idempotency-Key": "unicode"}
                       ).status_code == 201
    assert client.get(f"/v1/orders/{good}", headers=osys).json()["id"] == good


def test_facility_and_courier_ids_are_addressable_in_urls(client: TestClient) -> None:
    """A facility or courier id with a `/` is a 422 naming it in the configuration document."""
    bad = {"facilities": [{**FACILITIES["facilities"][0], "id": "north/1"}]}
    r = client.put("/v1/facilities", json=bad, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["field"] == "facilities[0].id", r.text
    r = client.put("/v1/couriers", json={"couriers": [{**COURIERS["couriers"][0], "id": "c 1"}]}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["field"] == "couriers[0].id", r.text
    assert set(client.get("/v1/config", headers=ADMIN).json()["stores"]) == {"ostankino", "vdnh"}


@pytest.mark.parametrize(("path", "field", "message"), [
    ("/v1/orders?limit=0", "limit", "must be positive, got '0'"),
    ("/v1/orders?limit=99999", "limit", "must be at most 10000, got '99999'"),
    ("/v1/orders?limit=lots", "limit", "must be an integer, got 'lots'"),
    ("/v1/orders?state=closed", "state", "must be one of 'open', got 'closed'"),
    ("/v1/couriers/vdnh-bike-10h-1/route?geometry=maybe", "geometry", "must be true or false, got 'maybe'"),
    ("/v1/map?tolerance_m=500", "tolerance_m", "must be at most 100, got '500'"),
])
def test_a_bad_query_parameter_is_named_in_the_bodies_words(client: TestClient, path: str, field: str,
                                                            message: str) -> None:
    """A query parameter out of range or of the wrong type is a 422 naming it, worded as body fields are."""
    r = client.get(path, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"] == {"code": "invalid", "message": message, "field": field}


def test_unknown_things_are_named(client: TestClient, service: Service) -> None:
    """An unknown SKU is out of stock, an unknown store or courier a 4xx naming it, a shift's `on` not a boolean a
    422 naming it."""
    osys = key(client, "order_system")
    r = client.post("/v1/orders", json=order("u1", sku="caviar"), headers={**osys, "Idempotency-Key": "u1"})
    assert r.status_code == 422 and r.json()["error"]["message"] == "out_of_stock: caviar"
    r = client.put("/v1/stores/nowhere/stock/bread", json={"available": 3}, headers=osys)
    assert r.status_code == 422 and r.json()["error"]["field"] == "store"
    r = client.post("/v1/couriers/ghost/shift", json={"on": True}, headers=ADMIN)
    assert r.status_code == 404 and r.json()["error"]["field"] == "courier_id"
    one = next(iter(service.deployment.couriers))
    for loose in ("false", "yes", 1):  # `on` is a JSON boolean: a string or number is not read as one
        r = client.post(f"/v1/couriers/{one}/shift", json={"on": loose}, headers=ADMIN)
        assert r.status_code == 422 and r.json()["error"]["field"] == "on", r.text


def test_keys_and_roles(client: TestClient, service: Service) -> None:
    """No key 401; a courier key acts only for its courier; an order-system key cannot act as a courier; a
    revoked key is refused."""
    one, two = list(service.deployment.couriers)[:2]
    assert client.get(f"/v1/couriers/{one}/route").status_code == 401
    app_key = key(client, "courier", one)
    assert client.get(f"/v1/couriers/{one}/route", headers=app_key).status_code == 200
    r = client.get(f"/v1/couriers/{two}/route", headers=app_key)
    assert r.status_code == 403 and r.json()["error"]["field"] == "courier_id"
    assert client.post("/v1/orders", json=order("k1"), headers={**app_key, "Idempotency-Key": "k"}).status_code == 403
    osys = key(client, "order_system")
    assert client.post(f"/v1/couriers/{one}/shift", json={"on": True}, headers=osys).status_code == 403
    minted = client.post("/v1/keys", json={"role": "planner"}, headers=ADMIN).json()
    planner = {"Authorization": "Bearer " + minted["key"]}
    assert client.get("/v1/orders/none", headers=planner).status_code == 404
    assert client.delete(f"/v1/keys/{minted['id']}", headers=ADMIN).status_code == 204
    assert client.get("/v1/orders/none", headers=planner).status_code == 401
    bad = client.post("/v1/keys", json={"role": "courier"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "courier_id"


def test_the_configured_admin_key_outlives_a_store_that_lost_its_keys(client: TestClient, service: Service) -> None:
    """A store emptied under a running API (a Redis restarted without its data) forgets minted keys, but the
    admin key the API is configured with still works, and is put back."""
    osys = key(client, "order_system")
    admin_id = key_id("admin-secret")
    for kid in (admin_id, key_id(osys["Authorization"].removeprefix("Bearer "))):
        assert service.store.delete_key(kid)
    service._keys.clear()  # type: ignore[attr-defined]  # nothing cached either
    assert client.get("/v1/orders/none", headers=osys).status_code == 401
    assert client.post("/v1/keys", json={"role": "planner"}, headers=ADMIN).status_code == 201
    assert service.store.get_key(admin_id) is not None


def test_a_key_over_its_rate_gets_429(deployment: Deployment) -> None:
    """Past its burst, a key is told 429 with Retry-After; another key is not slowed."""
    service = make_service(deployment, rate_per_s=1.0)
    with TestClient(create_app(service)) as client:
        osys = key(client, "order_system")
        codes = [client.get("/v1/orders/none", headers=osys).status_code for _ in range(4)]
        assert codes[:2] == [404, 404] and codes[-1] == 429
        r = client.get("/v1/orders/none", headers=osys)
        assert r.status_code == 429 and float(r.headers["Retry-After"]) > 0
        assert client.get("/v1/orders/none", headers=key(client, "planner")).status_code == 404


def test_quotes_offer_every_kind(client: TestClient, service: Service) -> None:
    """A quote lists express, slot, pickup point, locker and store options and changes no order."""
    osys = key(client, "order_system")
    before = service.store.last_seq()
    r = client.post("/v1/quotes", json={"location": NEAR_VDNH, "items": order("q")["items"]}, headers=osys)
    assert r.status_code == 200, r.text
    kinds = {o["kind"] for o in r.json()["options"]}
    assert kinds == {"express", "slot", "pickup_point", "locker", "store"}
    assert [c["op"] for _, c in service.store.read(before)] .count("place") == 0


def test_a_new_worker_takes_over_where_the_last_stopped(deployment: Deployment) -> None:
    """Stop the service (its worker snapshots), start a fresh one on the same store: orders and routes go on."""
    store = MemoryStore()
    first = make_service(deployment, store=store)
    with TestClient(create_app(first)) as client:
        osys = key(client, "order_system")
        for cid in deployment.couriers:
            client.post(f"/v1/couriers/{cid}/shift", json={"on": True}, headers=ADMIN)
        assert client.post("/v1/orders", json=order("w1"), headers={**osys, "Idempotency-Key": "w1"}
                           ).status_code == 201
        courier = until(lambda: client.get("/v1/orders/w1", headers=osys).json()["courier"], first)
        t = first.clock.t  # type: ignore[attr-defined]
    second = make_service(deployment, store=store)
    second.clock.t = t  # type: ignore[attr-defined]
    with TestClient(create_app(second)) as client:
        for stop in ("pickup", "w1", "return"):
            second.clock.t += 200  # type: ignore[attr-defined]
            r = client.post(f"/v1/couriers/{courier}/stops/{stop}", json={"status": "completed"}, headers=ADMIN)
            assert r.status_code == 200, r.text
        got = client.get("/v1/orders/w1", headers=ADMIN).json()
        assert got["state"] == "delivered"
        assert [e["event"] for e in got["timeline"]] == ["placed", "allocated", "assigned", "picked_up", "delivered"]


def test_health_reports_the_worker(client: TestClient, service: Service) -> None:
    """/health answers without a key: the store is up, the worker holds the lease and has caught up."""
    osys = key(client, "order_system")
    assert client.post("/v1/orders", json=order("h1"), headers={**osys, "Idempotency-Key": "h1"}).status_code == 201
    body = client.get("/health").json()
    assert body["store"] == "ok" and body["commands"] >= 1
    assert body["applied"] == body["commands"] - body["lag"]
    assert [w["holds_lease"] for w in body["workers"]] == [True]
    assert body["status"] == "ok" and body["dispatcher"] == service.workers[0].name


def test_health_says_when_no_worker_dispatches_and_a_slow_one_gets_a_202(deployment: Deployment,
                                                                         store: Store) -> None:
    """With no dispatch worker in any process, /health is `degraded` with no dispatcher (still 200: orders are
    taken), and an order waits the reply timeout (Redis: beyond its old 5 s socket timeout) then gets a 202."""
    service = make_service(deployment, store, workers=0, reply_timeout_s=5.5)
    with TestClient(create_app(service)) as client:
        body = client.get("/health").json()
        assert client.get("/health").status_code == 200
        assert body["status"] == "degraded" and body["dispatcher"] is None
        r = client.post("/v1/orders", json=order("slow"), headers={**ADMIN, "Idempotency-Key": "slow"})
        assert r.status_code == 202 and r.json()["state"] == "received", r.text


def test_metrics_count_what_happened(client: TestClient, service: Service) -> None:
    """/metrics counts order events once each, times requests by route template and reports the lag."""
    osys = key(client, "order_system")
    for k in range(3):
        r = client.post("/v1/orders", json=order(f"m{k}"), headers={**osys, "Idempotency-Key": f"m{k}"})
        assert r.status_code == 201
    client.post("/v1/orders", json=order("m0"), headers={**osys, "Idempotency-Key": "m0"})  # a retry: no new event
    client.get("/v1/orders/m1", headers=osys)
    text = client.get("/metrics").text
    assert 'lastmile_order_events_total{event="placed"} 3.0' in text
    assert 'lastmile_order_events_total{event="allocated"} 3.0' in text
    assert 'lastmile_http_request_seconds_count{method="POST",route="/v1/orders",status="201"} 4.0' in text
    assert 'lastmile_http_request_seconds_count{method="GET",route="/v1/orders/{order_id}",status="200"} 1.0' in text
    assert "lastmile_command_lag 0.0" in text
    assert "lastmile_dispatch_decision_seconds_count" in text
    assert 'lastmile_open_orders{store="vdnh"}' in text or 'lastmile_open_orders{store="ostankino"}' in text


FACILITIES = {"facilities": [
    {"kind": "dark_store", "id": "s1", "location": [37.6020, 55.8177], "stock": {"tea": 3}, "picking_s": 60,
     "pickers": 2},
    {"kind": "locker", "id": "lk1", "location": [37.5942, 55.8132], "compartments": {"S": 2, "M": 1}},
]}
COURIERS = {"couriers": [{"id": "c1", "profile": "bike", "store": "s1", "shift": ["09:00", "18:00"], "capacity": 4}]}


def tea(oid: str) -> dict[str, Any]:
    return {**order(oid, sku="tea", location=[37.6029, 55.8190]), "items": [
        {"sku": "tea", "qty": 1, "weight_g": 100, "dims_mm": [60, 60, 120]}]}


def test_facilities_and_couriers_can_be_replaced(client: TestClient, service: Service) -> None:
    """PUT facilities then couriers: the new store takes orders, its new courier gets the trip; the old couriers
    are gone (404)."""
    old = next(iter(service.deployment.couriers))
    r = client.put("/v1/facilities", json=FACILITIES, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json() == {"stores": ["s1"], "couriers": {}}
    assert client.post(f"/v1/couriers/{old}/shift", json={"on": True}, headers=ADMIN).status_code == 404
    r = client.put("/v1/couriers", json=COURIERS, headers=ADMIN)
    assert r.status_code == 200 and r.json()["couriers"] == {"c1": {"store": "s1", "profile": "bike"}}
    assert client.post("/v1/couriers/c1/shift", json={"on": True}, headers=ADMIN).status_code == 200
    r = client.post("/v1/orders", json=tea("t1"), headers={**ADMIN, "Idempotency-Key": "t1"})
    assert r.status_code == 201 and r.json()["store"] == "s1"
    assert until(lambda: client.get("/v1/orders/t1", headers=ADMIN).json()["courier"], service) == "c1"
    app_key = key(client, "courier", "c1")
    assert client.get("/v1/couriers/c1/route", headers=app_key).json()["stops"][1]["id"] == "t1"


def test_configuration_waits_for_open_orders_and_names_bad_fields(client: TestClient, service: Service) -> None:
    """A PUT while an order is open is 409 counting the open orders; a bad document is 422 naming the field, and
    changes nothing."""
    bad = {"facilities": [{**FACILITIES["facilities"][0], "location": [37.6, 95.0]}]}
    r = client.put("/v1/facilities", json=bad, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["field"] == "facilities[0].location[1]"
    r = client.put("/v1/couriers", json={"couriers": [{**COURIERS["couriers"][0], "store": "nowhere"}]},
                   headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["field"] == "couriers[0].store"
    r = client.put("/v1/couriers", json={"couriers": [{**COURIERS["couriers"][0], "shift": ["20:00", "08:00"]}]},
                   headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"] == {
        "code": "invalid", "field": "couriers[0].shift", "message": "must end after it starts, got ['20:00', '08:00']"}
    assert client.post("/v1/orders", json=order("busy"), headers={**ADMIN, "Idempotency-Key": "busy"}
                       ).status_code == 201
    r = client.put("/v1/facilities", json=FACILITIES, headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["field"] == "configuration"
    assert r.json()["error"]["message"].startswith("1 order is open")  # counted once, in the core and dispatcher
    assert set(client.get("/v1/config", headers=ADMIN).json()["stores"]) == {"ostankino", "vdnh"}


def test_a_bare_map_is_configured_over_the_api(tmp_path: Path) -> None:
    """`serve --network` alone starts with nothing; after PUT facilities and couriers it serves orders, and a
    new worker on the same store rebuilds that configuration (from its snapshot)."""
    deployment = Deployment.load(network=Path(__file__).resolve().parents[1] / "data" /
                                 "moscow_ostankino_drive.osm.bz2")
    assert deployment.stores == () and not deployment.couriers
    store = MemoryStore()
    with TestClient(create_app(make_service(deployment, store=store))) as client:
        r = client.post("/v1/orders", json=tea("n1"), headers={**ADMIN, "Idempotency-Key": "n1"})
        assert r.status_code == 422 and r.json()["error"]["message"] == "no_dark_store"
        assert client.put("/v1/facilities", json=FACILITIES, headers=ADMIN).status_code == 200
        assert client.put("/v1/couriers", json=COURIERS, headers=ADMIN).status_code == 200
        assert client.post("/v1/orders", json=tea("n2"), headers={**ADMIN, "Idempotency-Key": "n2"}
                           ).status_code == 201
    with TestClient(create_app(make_service(deployment, store=store))) as client:
        assert client.get("/v1/config", headers=ADMIN).json()["stores"] == ["s1"]
        assert client.post("/v1/orders", json=tea("n3"), headers={**ADMIN, "Idempotency-Key": "n3"}
                           ).json()["store"] == "s1"
        r = client.post("/v1/orders", json=tea("n4"), headers={**ADMIN, "Idempotency-Key": "n4"})
        r5 = client.post("/v1/orders", json=tea("n5"), headers={**ADMIN, "Idempotency-Key": "n5"})
        assert (r.status_code, r5.status_code) == (201, 422)  # three units of tea: n2, n3, n4


def test_baskets_are_bounded_and_whole_floats_are_integers(client: TestClient) -> None:
    """An order or quote over 200 units is refused naming the field (packing is quadratic in units); 2.0 is
    taken as the integer 2, 2.5 is not."""
    big = {**order("big"), "items": [{"sku": "milk-1l", "qty": 150, "weight_g": 10, "dims_mm": [10, 10, 10]},
                                     {"sku": "bread", "qty": 51, "weight_g": 10, "dims_mm": [10, 10, 10]}]}
    r = client.post("/v1/orders", json=big, headers={**ADMIN, "Idempotency-Key": "big"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "items"
    r = client.post("/v1/quotes", json={"location": NEAR_VDNH, "items": [
        {"sku": "milk-1l", "qty": 100000, "weight_g": 10, "dims_mm": [10, 10, 10]}]}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["field"] == "items[0].qty"
    whole = {**order("whole"), "items": [{"sku": "milk-1l", "qty": 2.0, "weight_g": 1050.0, "dims_mm": [70, 70, 200]}]}
    assert client.post("/v1/orders", json=whole, headers={**ADMIN, "Idempotency-Key": "whole"}).status_code == 201
    half = {**order("half"), "items": [{"sku": "milk-1l", "qty": 2.5, "weight_g": 1050, "dims_mm": [70, 70, 200]}]}
    r = client.post("/v1/orders", json=half, headers={**ADMIN, "Idempotency-Key": "half"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "items[0].qty"


def test_a_facility_off_the_map_is_refused_by_name(client: TestClient) -> None:
    """A store placed far from every road of the map is a 422 naming its location, and the old set stays."""
    far = {"facilities": [{**FACILITIES["facilities"][0], "location": [79.8, -31.7]}]}
    r = client.put("/v1/facilities", json=far, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["field"] == "facilities[0].location"
    assert set(client.get("/v1/config", headers=ADMIN).json()["stores"]) == {"ostankino", "vdnh"}


@pytest.mark.parametrize(("method", "path"), [("post", "/v1/keys"), ("put", "/v1/couriers"), ("post", "/v1/orders"),
                                            ("post", "/v1/simulations")])
def test_json_nested_too_deep_is_a_422_naming_the_body(client: TestClient, method: str, path: str) -> None:
    """A body of JSON nested 100,000 deep is a 422 naming `body` on every endpoint, as other malformed JSON is."""
    body = "[" * 100_000 + "]" * 100_000
    r = getattr(client, method)(path, content=body, headers={**ADMIN, "content-type": "application/json",
                                                              "Idempotency-Key": "deep"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "body", r.text
    assert r.json()["error"]["message"].startswith("malformed JSON")


def test_method_not_allowed_lists_every_method_of_the_path(client: TestClient) -> None:
    """A 405 names in Allow all methods the path has, across routes and included routers."""
    r = client.request("OPTIONS", "/v1/webhooks", headers=ADMIN)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, POST"
    r = client.delete("/v1/simulations", headers=ADMIN)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, POST"
    assert client.put("/v1/orders/o1/cancel", headers=ADMIN).headers["Allow"] == "POST"
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_a_direct_route_takes_only_a_body_model_dependencies_on_the_request_and_the_request() -> None:
    """A DirectRoute refuses, when it is made, an endpoint with a parameter it would not resolve (a query here)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from api.app import DirectRoute

    async def endpoint(limit: int) -> JSONResponse:
        return JSONResponse({"limit": limit})

    with pytest.raises(TypeError, match="takes one body model"):
        FastAPI().router.add_api_route("/x", endpoint, methods=["POST"], route_class_override=DirectRoute)
