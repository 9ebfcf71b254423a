"""Webhooks: signed the Standard Webhooks way, delivered at least once and in order, across failures and restarts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.app import create_app
from api.service import Deployment, Service
from api.store import Store
from api.store.base import EVENTS_STREAM, stream_id
from api.webhooks import EVENT_TYPES, Backoff, Sender, http_post
from tests.api.test_app import ADMIN, deployment, key, make_service, order, until  # noqa: F401

WANTED = ["order.placed", "order.allocated", "order.assigned", "courier.shift_on"]


class Receiver:
    """An endpoint on loopback: verifies every signature, answers with `script` in turn (then 200)."""

    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        self.attempts: list[str] = []  # webhook-id of every request, answered or not
        self.accepted: list[tuple[str, dict[str, Any]]] = []
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    verified = receiver.verify(body, headers)
                    receiver.attempts.append(headers.get("webhook-id", ""))
                    status, extra = receiver.script.pop(0) if receiver.script else (200, {})
                    if verified and status == 200:
                        receiver.accepted.append((headers["webhook-id"], json.loads(body)))
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verify(self, body: str, headers: dict[str, str]) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                return True
            except WebhookVerificationError:
                continue
        self.bad_signatures += 1
        return False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def service(deployment: Deployment, store: Store) -> Service:  # noqa: F811
    return make_service(deployment, store=store, webhooks=False)


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as c:
        yield c


def fast_sender(store: Store, **kw: Any) -> Sender:
    return Sender(store, backoff=Backoff(base_s=0.01, cap_s=0.05), **kw)


def drive(sender: Sender, done: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "deliveries did not finish"
        time.sleep(min(0.05, sender.step()))


def expected(store: Store, wanted: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The stream's events of the wanted types, in stream order, as (webhook-id, line)."""
    lines = [(f"evt_{i}", json.loads(d)) for i, d in store.read_stream(EVENTS_STREAM, "0-0", count=10_000)]
    return [(i, line) for i, line in lines if EVENT_TYPES[line["event"]] in wanted]


def day(client: TestClient, service: Service, orders: int = 3) -> None:
    """Couriers on shift, `orders` orders placed, all of them assigned."""
    osys = key(client, "order_system")
    for cid in service.deployment.couriers:
        assert client.post(f"/v1/couriers/{cid}/shift", json={"on": True}, headers=ADMIN).status_code == 200
    for n in range(orders):
        r = client.post("/v1/orders", json=order(f"w{n}"), headers={**osys, "Idempotency-Key": f"w{n}"})
        assert r.status_code == 201, r.text
    until(lambda: all(client.get(f"/v1/orders/w{n}", headers=osys).json()["courier"] for n in range(orders)),
          service)


def subscribe(client: TestClient, receiver: Receiver, events: list[str], headers: dict[str, str]) -> str:
    r = client.post("/v1/webhooks", json={"url": receiver.url, "events": events}, headers=headers)
    assert r.status_code == 201, r.text
    receiver.secrets.append(r.json()["secret"])
    return str(r.json()["id"])


def test_every_event_arrives_signed_and_in_order_through_failures(client: TestClient, service: Service,
                                                                  receiver: Receiver) -> None:
    """With the endpoint failing (500, 503, a 429 with Retry-After, no answer), every wanted event arrives once
    verified, in stream order; each retry carries the same webhook-id; the log shows every attempt."""
    osys = key(client, "order_system")
    sub = subscribe(client, receiver, WANTED, osys)
    receiver.script = [(500, {}), (503, {}), (429, {"Retry-After": "0.2"}), (500, {})]
    day(client, service)
    want = expected(service.store, WANTED)
    assert {line["event"] for _, line in want} == {"placed", "allocated", "assigned", "shift_on"}
    sender = fast_sender(service.store)
    drive(sender, lambda: len(receiver.accepted) >= len(want))
    assert [(i, p["data"]) for i, p in receiver.accepted] == want
    assert all(p["type"] == EVENT_TYPES[p["data"]["event"]] for _, p in receiver.accepted)
    assert receiver.bad_signatures == 0
    assert receiver.attempts[:5] == [want[0][0]] * 5  # four failures, then the same event delivered
    log = client.get(f"/v1/webhooks/{sub}/deliveries", headers=osys).json()
    assert [d["status"] for d in log["deliveries"][:5]] == [500, 503, 429, 500, 200]
    assert [d["attempt"] for d in log["deliveries"][:5]] == [1, 2, 3, 4, 5]
    assert stream_id(log["cursor"]) >= stream_id(want[-1][0].removeprefix("evt_"))


def test_a_restarted_sender_resumes_without_losing_an_event(client: TestClient, service: Service,
                                                            receiver: Receiver) -> None:
    """A sender that dies mid-way (its lease left to expire) is replaced by another that delivers the rest: none
    lost, and any sent twice has the same webhook-id."""
    subscribe(client, receiver, WANTED, key(client, "order_system"))
    day(client, service)
    want = expected(service.store, WANTED)
    first = fast_sender(service.store, lease_ms=300, batch=2)
    first.step()
    assert 0 < len(receiver.accepted) < len(want)
    second = fast_sender(service.store, lease_ms=300)
    assert second.step() > 0 and len(receiver.accepted) == 2  # the dead sender's lease still holds
    time.sleep(0.35)
    drive(second, lambda: len(receiver.accepted) >= len(want))
    assert [i for i, _ in receiver.accepted] == [i for i, _ in want]


def test_gone_disables_and_rotation_signs_with_both_secrets(client: TestClient, service: Service,
                                                            receiver: Receiver) -> None:
    """A 410 disables the subscription (nothing more is sent); after a rotation each delivery verifies with the
    new secret and with the old one."""
    osys = key(client, "order_system")
    gone = subscribe(client, receiver, ["courier.shift_on"], osys)
    receiver.script = [(410, {})]
    day(client, service, orders=1)
    sender = fast_sender(service.store)
    drive(sender, lambda: bool(receiver.attempts))
    for _ in range(3):
        sender.step()
    assert len(receiver.attempts) == 1
    listed = client.get("/v1/webhooks", headers=osys).json()["webhooks"]
    assert [w["disabled"] for w in listed if w["id"] == gone] == ["gone"]

    other = Receiver()
    try:
        sub = subscribe(client, other, ["order.placed"], osys)
        rotated = client.post(f"/v1/webhooks/{sub}/rotate", headers=osys).json()
        old, new = other.secrets[0], rotated["secret"]
        other.secrets = [new]
        client.post("/v1/orders", json=order("rot"), headers={**osys, "Idempotency-Key": "rot"})
        drive(sender, lambda: bool(other.accepted))
        other.secrets = [old]
        assert other.accepted and other.bad_signatures == 0
    finally:
        other.close()


def test_subscriptions_belong_to_their_key_and_bad_ones_are_named(client: TestClient) -> None:
    """Another order-system key sees none of them (404); an unknown event type, a URL that is not http(s) with a host
    or one at a link-local address (cloud metadata) is a 422 naming the field; a courier key may not subscribe."""
    a, b = key(client, "order_system"), key(client, "order_system")
    r = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["order.delivered"]}, headers=a)
    sub = r.json()["id"]
    assert client.get(f"/v1/webhooks/{sub}/deliveries", headers=b).status_code == 404
    assert client.get("/v1/webhooks", headers=b).json() == {"webhooks": []}
    assert client.get(f"/v1/webhooks/{sub}/deliveries", headers=ADMIN).status_code == 200
    bad = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["order.teleported"]},
                      headers=a)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "events"
    for url, message in (("ftp://x/y", "must be an http:// or https:// URL with a host, got 'ftp://x/y'"),
                         ("http:///hooks", "must be an http:// or https:// URL with a host"),
                         ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
                         ("http://[fe80::1]:8080/x", "fe80::1 is a link-local address"),
                         *((f"http://{host}/x", "is a link-local address") for host in (  # other spellings of it
                             "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518",
                             "169.254.169.254.", "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]")),
                         ("http://169.254.169.254:80@evil/", "must not carry a user name or password"),
                         ("http://169%2e254.169.254/x", "the host must be written plainly"),
                         ("http://169.254.169.254%2e/x", "the host must be written plainly"),
                         ("http://hooks.example.com:99999/x", "not a URL a webhook can be sent to")):
        error = client.post("/v1/webhooks", json={"url": url, "events": ["order.placed"]}, headers=a).json()["error"]
        assert error["field"] == "url" and message in error["message"], error
    named = client.post("/v1/webhooks", json={"url": "https://hooks.example.com/x", "events": ["order.placed"]},
                        headers=a)
    assert named.status_code == 201
    assert client.delete(f"/v1/webhooks/{named.json()['id']}", headers=a).status_code == 204
    courier = key(client, "courier", next(iter(client.get("/v1/config", headers=ADMIN).json()["couriers"])))
    assert client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["order.placed"]},
                       headers=courier).status_code == 403
    assert client.delete(f"/v1/webhooks/{sub}", headers=a).status_code == 204
    assert client.get("/v1/webhooks", headers=a).json() == {"webhooks": []}


def test_a_target_the_sender_cannot_or_must_not_reach_is_a_failed_attempt_not_a_crash() -> None:
    """`http_post` answers status 0 (a failed attempt, retried with backoff) for a URL urllib cannot send to or
    one at a link-local address, however spelt: it never raises, so one bad subscription stops no other."""
    for url in ("http://169.254.169.254:80@evil/", "http://169%2e254.169.254/x", "http://[fe80::1%25eth0]/x",
                "http://0xa9fea9fe/x", "http://bad host/x"):
        assert http_post(url, b"{}", {}, 0.5) == (0, {}), url
