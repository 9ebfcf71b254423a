"""Customer tracking: an unguessable id per order, a keyless view with only the customer's own order, a page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.service import Deployment, Service
from tests.api.test_app import ADMIN, NEAR_VDNH, deployment, key, make_service, order, until  # noqa: F401

TRACKED = {"state", "eta", "promise_by", "delivered_at", "destination", "courier_location", "courier_location_at",
           "stops_before", "updated"}


@pytest.fixture
def service(deployment: Deployment) -> Service:  # noqa: F811
    return make_service(deployment, track_rate_per_s=1000.0)


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as c:
        yield c


def test_tracking_follows_the_order_to_the_door(client: TestClient, service: Service) -> None:
    """The tracking id from POST shows state and ETA without a key; once on board, the courier's last position and
    the doors before this one; never the courier's name or another order."""
    osys = key(client, "order_system")
    for cid in service.deployment.couriers:
        client.post(f"/v1/couriers/{cid}/shift", json={"on": True}, headers=ADMIN)
    placed = client.post("/v1/orders", json=order("t1"), headers={**osys, "Idempotency-Key": "t1"}).json()
    tracking = placed["tracking"]
    assert len(tracking) >= 20
    view = client.get(f"/v1/track/{tracking}").json()
    assert set(view) == TRACKED
    assert view["state"] == "allocated" and view["destination"] == NEAR_VDNH
    assert view["eta"] == placed["quoted_eta"] and view["courier_location"] is None
    courier = until(lambda: client.get("/v1/orders/t1", headers=osys).json()["courier"], service)
    app_key = key(client, "courier", courier)
    assert client.get(f"/v1/track/{tracking}").json()["stops_before"] == 0
    client.post(f"/v1/couriers/{courier}/stops/pickup", json={"status": "completed"}, headers=app_key)
    assert client.get(f"/v1/track/{tracking}").json()["courier_location"] is None  # no position reported yet
    client.post(f"/v1/couriers/{courier}/location", json={"location": [37.605, 55.819]}, headers=app_key)
    view = client.get(f"/v1/track/{tracking}").json()
    assert view["state"] == "picked_up" and view["courier_location"] == [37.605, 55.819]
    assert view["courier_location_at"] == service.clock.t  # type: ignore[attr-defined]
    assert courier not in str(view)
    client.post(f"/v1/couriers/{courier}/stops/t1", json={"status": "completed"}, headers=app_key)
    done = client.get(f"/v1/track/{tracking}").json()
    assert done["state"] == "delivered" and done["courier_location"] is None and done["delivered_at"] is not None


def test_a_retry_keeps_the_first_tracking_id(client: TestClient) -> None:
    """A retried POST answers the tracking id of the order it placed the first time."""
    osys = key(client, "order_system")
    headers = {**osys, "Idempotency-Key": "t2"}
    first = client.post("/v1/orders", json=order("t2"), headers=headers).json()["tracking"]
    assert client.post("/v1/orders", json=order("t2"), headers=headers).json()["tracking"] == first
    assert client.get(f"/v1/track/{first}").status_code == 200


def test_unknown_ids_are_404_and_the_page_loads(client: TestClient) -> None:
    """An unknown or overlong tracking id is a 404 in the one error shape; the page is HTML naming the id it
    reads, with anything but URL-safe characters removed."""
    r = client.get("/v1/track/nope")
    assert r.status_code == 404 and r.json()["error"]["field"] == "tracking_id"
    assert client.get("/v1/track/" + "x" * 65).status_code == 404
    page = client.get("/track/abc-DEF_123")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '"abc-DEF_123"' in page.text
    assert "<script>alert" not in client.get("/track/%3Cscript%3Ealert(1)").text


def test_tracking_is_rate_limited_per_client(deployment: Deployment) -> None:  # noqa: F811
    """Without a key, one client address gets 429 with Retry-After once over its rate."""
    with TestClient(create_app(make_service(deployment, track_rate_per_s=1.0))) as c:
        answers = [c.get("/v1/track/nope") for _ in range(5)]
    assert [a.status_code for a in answers[:2]] == [404, 404]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and float(limited[0].headers["Retry-After"]) > 0


def test_the_tracking_map_is_the_streets_near_the_address(client: TestClient) -> None:
    """GET /v1/track/{id}/map (no key) gives road lines all within 1.5 km of the order's address, nothing far."""
    import math

    osys = key(client, "order_system")
    tracking = client.post("/v1/orders", json=order("t3"), headers={**osys, "Idempotency-Key": "t3"}).json()["tracking"]
    body = client.get(f"/v1/track/{tracking}/map").json()
    points = [p for f in body["features"] for line in f["geometry"]["coordinates"] for p in line]
    assert body["type"] == "FeatureCollection" and len(points) > 10

    def metres(p: list[float]) -> float:
        dx = (p[0] - NEAR_VDNH[0]) * 111_195 * math.cos(math.radians(NEAR_VDNH[1]))
        return math.hypot(dx, (p[1] - NEAR_VDNH[1]) * 111_195)

    assert max(metres(p) for p in points) <= 1510
    assert client.get("/v1/track/nope/map").status_code == 404
