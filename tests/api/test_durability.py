"""Guarantees under failure, with real processes: kill -9 loses nothing acknowledged; two APIs and two workers
over one Redis assign every order once."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from api.deployment import Deployment
from api.store.redis import RedisStore
from dispatch.model import DarkStore
from tests.api.live import TINY, Lastmile, RedisServer, request, wait_for

CYCLES = int(os.environ.get("LASTMILE_KILL_CYCLES", "10"))
COURIERS = ["ostankino-bike-10h-1", "ostankino-bike-10h-2", "ostankino-bike-10h-3", "ostankino-foot-11h-1"]


def order(k: int) -> dict[str, Any]:
    return {"id": f"o{k}", "location": [37.596 + 0.002 * (k % 7), 55.8160 + 0.001 * (k % 5)], "mode": "courier",
            "items": [{"sku": "bread", "qty": 1, "weight_g": 400, "dims_mm": [250, 120, 100]}],
            "promise": {"kind": "express", "within_min": 60}}


class Poster:
    """Posts new orders to an API in a thread until stopped; remembers which were acknowledged (201, 202, 422)."""

    def __init__(self, urls: list[str], start: int, acked: dict[str, int]) -> None:
        self.urls = urls
        self.next = start
        self.acked = acked
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        while not self.stop.is_set():
            k = self.next
            self.next += 1
            status, _ = request(self.urls[k % len(self.urls)] + "/v1/orders", order(k),
                                headers={"Idempotency-Key": f"key-{k}"}, timeout=3)
            if status in (201, 202, 422):
                self.acked[f"o{k}"] = status

    def __enter__(self) -> Poster:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def start(store: str, admission: str) -> tuple[Lastmile, Lastmile]:
    return Lastmile("serve", store, admission=admission).start(), Lastmile("worker", store).start()


def check_books(api: str, acked: dict[str, int]) -> Counter[str]:
    """Every acknowledged order is stored and applied, none assigned twice; the states counted."""
    wait_for(lambda: request(api + "/health")[1]["lag"] == 0, timeout_s=60, what="the worker to catch up")
    states: Counter[str] = Counter()
    for oid in acked:
        status, body = request(f"{api}/v1/orders/{oid}")
        assert status == 200, (oid, status, body)
        events = [e["event"] for e in body["timeline"]]
        assert events[:1] == ["placed"] and events.count("placed") == 1, (oid, body)
        assert not str(body.get("reason") or "").startswith("not_placed"), (oid, body)  # admitted, core refused
        assert events.count("assigned") <= 1, (oid, events)
        states[body["state"]] += 1
    return states


@pytest.mark.parametrize("admission", ["worker", "api"])
def test_kill_9_of_everything_loses_no_acknowledged_order(tmp_path: Path, admission: str) -> None:
    """kill -9 of the API, the worker and redis-server (AOF, fsync always) mid-stream, cycle after cycle: every
    order acknowledged is there after restart, placed once and assigned to at most one courier; with admission
    in the API, the store's stock counts equal the core's after all of it."""
    redis = RedisServer(tmp_path)
    redis.start()
    rng = random.Random(11)
    acked: dict[str, int] = {}
    next_order = 0
    running: list[Lastmile] = []
    try:
        for cycle in range(CYCLES):
            api, worker = start(redis.url, admission)
            running = [api, worker]
            if cycle == 0:
                for courier in COURIERS:
                    assert request(f"{api.url}/v1/couriers/{courier}/shift", {"on": True})[0] in (200, 202)
            with Poster([api.url], next_order, acked) as poster:
                time.sleep(rng.uniform(0.3, 1.0))
                victims: list[Lastmile | RedisServer] = [api, worker, redis]
                rng.shuffle(victims)
                for victim in victims:
                    victim.kill()
                    time.sleep(rng.uniform(0, 0.1))
            next_order = poster.next
            redis.start()
        api, worker = start(redis.url, admission)
        running = [api, worker]
        assert len(acked) >= CYCLES
        states = check_books(api.url, acked)
        assert states["assigned"] + states["picked_up"] + states["delivered"] >= 1
        if admission == "api":
            taken = 0  # orders appended with their count taken, answered or not before a kill
            for k in range(next_order):
                status, body = request(f"{api.url}/v1/orders/o{k}")
                taken += status == 200 and body["state"] != "rejected"
            store = RedisStore(redis.url, prefix="lastmile:")
            try:
                stores = Deployment.load(TINY).facilities
                initial = {f.id: f.stock.get("bread", 0) for f in stores if isinstance(f, DarkStore)}
                left = store.counters([(f"stock:{sid}", ["bread"]) for sid in initial])
            finally:
                store.close()
            assert sum(initial.values()) - sum(v for (v,) in left) == taken  # every 201 took one, none twice
    finally:
        for p in running:
            p.kill()
        redis.kill()


@pytest.mark.parametrize("admission", ["worker", "api"])
def test_two_apis_and_two_workers_assign_every_order_once(tmp_path: Path, admission: str) -> None:
    """Two API processes and two workers over one Redis, orders posted to both: one worker holds the lease,
    every order is applied, none assigned twice; the standby takes over when the holder is killed."""
    redis = RedisServer(tmp_path)
    redis.start()
    apis = [Lastmile("serve", redis.url, admission=admission).start() for _ in range(2)]
    workers = [Lastmile("worker", redis.url).start(wait=False) for _ in range(2)]
    acked: dict[str, int] = {}
    try:
        for courier in COURIERS:
            assert request(f"{apis[0].url}/v1/couriers/{courier}/shift", {"on": True})[0] in (200, 202)
        with Poster([a.url for a in apis], 0, acked):
            time.sleep(1.5)
        workers[0].kill()
        with Poster([a.url for a in apis], 1000, acked):
            time.sleep(2.5)  # the standby takes over within the lease time (1 s)
        assert len(acked) >= 20
        assert set(acked.values()) <= {201, 202, 422}
        states = check_books(apis[1].url, acked)
        assert states["received"] == 0
    finally:
        for p in [*apis, *workers]:
            p.kill()
        redis.kill()
