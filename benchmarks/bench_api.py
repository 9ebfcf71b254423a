"""API suite: the live API on loopback under load, beside a bare FastAPI + Redis anchor measured in the same run.

Set-up: a `redis-server` of its own (AOF, `appendfsync always`), one `lastmile serve --workers 0` process on the
Porto centre scenario under the batch policy with quotes from the margins (the scenario runs reoptimize, which
decides with a search on every order: hundreds of orders a second are far past a city's rate, and this suite
measures the API's ceiling; `make run`'s live day, suite `demo`, runs the scenario as it is), clock 10× real time
from 08:00, every courier of the first shift on, one
`lastmile worker --idle` process (see `WORKER_FLAGS`), and a bounded asyncio HTTP/1.1 client in this process
(keep-alive connections, open loop: each request has its planned send time and its latency is counted from then,
so a stalled server cannot hide its queue).

Figures (phases in this order; the worker drains its backlog after each POST phase, timed):
- `POST /v1/orders` at 50 req/s for `seconds` (light: the worker keeps up), orders of the scenario's demand, each
  with its own Idempotency-Key: p50, p99, max latency, answers by status, errors (no answer, 5xx). With
  `LASTMILE_ADMISSION=api` (the default here: `LASTMILE_BENCH_API_ADMISSION`) a 201 is sent once the API process
  allocated the order, took its counts and appended it; with `worker`, once the worker applied it (its latency
  then includes the lag to the worker's decision; a 202 counts an order not applied within the reply timeout).
- `GET /v1/couriers/{id}/route` at `rate` req/s for `seconds` (geometry included, cached per route), in three
  runs: the run with the median p99 is reported.
- `POST /v1/orders` at `rate` req/s for `burst_seconds` (60 s), in three runs of a third each; the figures pool
  all their requests (p99 over the 60 s), with the worker's lag (accepted → applied) sampled from `/health`.
- sustained `POST /v1/orders`: closed loop, 64 connections, `SUSTAINED_RUNS` runs of `SUSTAINED_S` (the backlog
  drained between): orders answered per second of the run with the median rate.
- with `LASTMILE_ADMISSION=api`, the API process alone: the same closed loop with the worker paused (SIGSTOP),
  then the worker resumed and timed catching up.
- the anchor, first: a bare FastAPI app whose POST runs one Redis transaction (INCR + XADD) on the same server at
  `rate` req/s, and a bare GET. Ratios are against it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import ROOT, scenario_text

SCENARIO = ROOT / "scenarios" / "porto-centre-day.toml"
ADMIN = "bench-admin"
LIGHT_RATE = 50.0
SUSTAINED_S = 5.0
SUSTAINED_RUNS = 3
"""Each closed-loop phase runs this many times (`SUSTAINED_S` each, the backlog drained between): the run with the
median rate is reported (one run of a noisy 2-core machine can be far from another)."""
GET_RUNS = 3
"""The GET phase runs this many times (each a third of `seconds`); the run with the median p99 is reported."""
POST_RUNS = 3
"""The POST phase at `rate` runs this many times (each a third of `burst_seconds`, with orders of its own); its
figures pool the runs' requests (p99 of all of them), and each run's p99 is listed."""
WORKER_FLAGS = ["--idle"]
"""How the worker runs: in the SCHED_IDLE class, on the CPU the API process, Redis and this client leave (they share
2 cores here; see `api.settings.Settings.worker_idle`). With `--nice 10` instead, POST p99 at 500/s was about twice
as high in interleaved runs (median of 6: 13.7 ms against 7.7 ms), the worker keeping up either way."""
ADMISSION = os.environ.get("LASTMILE_BENCH_API_ADMISSION", "api")
"""Who admits posted orders in the measured service (`LASTMILE_ADMISSION`): `api` answers once admitted and
appended, `worker` once the worker placed the order."""
BARE_APP = '''
import redis.asyncio as redis
from fastapi import FastAPI, Request
r = redis.Redis.from_url("{url}")
app = FastAPI()
@app.post("/v1/orders", status_code=201)
async def post(request: Request):
    body = await request.body()
    async with r.pipeline(transaction=True) as p:
        p.incr("bare:seq")
        p.xadd("bare:stream", {{"c": body}})
        seq, _ = await p.execute()
    return {{"seq": seq}}
@app.get("/route")
async def get():
    return {{"courier": "c1", "stops": []}}
'''


SUSTAINED_ORDERS = 80_000
"""Distinct orders for each closed-loop phase: more than a phase sends (a repeated order id would be a cheap 409,
not an admission)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class _Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", *(f"{k}: {v}" for k, v in headers.items())]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        payload = await self.reader.readexactly(length) if length else b""
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def _open_loop(port: int, requests: list[tuple[str, str, bytes | None, dict[str, str]]], rate: float,
                     connections: int = 64, timeout_s: float = 10.0,
                     keep: tuple[list[float], Counter[str]] | None = None) -> dict[str, Any]:
    """Send `requests` at `rate` per second from planned times; latencies counted from the planned time (added
    to `keep`, with the answers, when given: phases of several runs pool them)."""
    pool: asyncio.Queue[_Conn] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(_Conn("127.0.0.1", port))
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    start = time.perf_counter() + 0.2

    async def one(k: int, planned: float) -> None:
        conn = await pool.get()
        try:
            status, _ = await asyncio.wait_for(conn.request(*requests[k]), timeout_s)
            statuses[str(status)] += 1
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            statuses["no answer"] += 1
            conn.close()
            conn = _Conn("127.0.0.1", port)
        finally:
            pool.put_nowait(conn)
        latencies.append(time.perf_counter() - planned)

    tasks: set[asyncio.Future[None]] = set()
    for k in range(len(requests)):  # each request sent at its time (tens of thousands of timers would lag)
        planned = start + k / rate
        await asyncio.sleep(max(0.0, planned - time.perf_counter()))
        task = asyncio.ensure_future(one(k, planned))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait().close()
    if keep is not None:
        keep[0].extend(latencies)
        keep[1].update(statuses)
    return _summary(latencies, statuses, time.perf_counter() - start)


async def _with_lag(port: int, phase: Any, every_s: float = 0.1, keep: list[float] | None = None) -> dict[str, Any]:
    """Run `phase` (a coroutine giving a summary) while sampling `/health` every `every_s`; add `worker_lag`: for
    each sample during the phase, the seconds until the worker had applied every command appended by then (added
    to `keep` in ms when given)."""
    conn = _Conn("127.0.0.1", port)
    samples: list[tuple[float, int, int]] = []
    done = asyncio.Event()

    async def sample() -> None:
        while True:
            _, body = await conn.request("GET", "/health", None, {})
            h = json.loads(body)
            samples.append((time.perf_counter(), h["commands"], h["applied"]))
            if done.is_set() and h["applied"] >= h["commands"]:
                return
            await asyncio.sleep(every_s)

    sampler = asyncio.ensure_future(sample())
    summary: dict[str, Any] = await phase
    ended = time.perf_counter()
    done.set()
    await sampler
    conn.close()
    lags = []
    for i, (t, appended, _) in enumerate(samples):
        if t > ended:
            break
        caught = next((u for u, _, applied in samples[i:] if applied >= appended), None)
        if caught is not None:
            lags.append((caught - t) * 1000)
    if keep is not None:
        keep.extend(lags)
    summary["worker_lag"] = _lag_summary(lags, every_s)
    return summary


def _lag_summary(lags_ms: list[float], every_s: float) -> dict[str, Any]:
    lags = sorted(lags_ms)
    return {"samples": len(lags), "p50_s": round(_q(lags, 0.50) / 1000, 2), "p99_s": round(_q(lags, 0.99) / 1000, 2),
            "max_s": round(lags[-1] / 1000, 2) if lags else 0.0, "sample_every_s": every_s}


async def _closed_loop(port: int, make: Any, seconds: float, connections: int = 64) -> dict[str, Any]:
    """`connections` clients each sending the next request as soon as the last is answered, for `seconds`."""
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        conn = _Conn("127.0.0.1", port)
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                status, _ = await asyncio.wait_for(conn.request(*make(next(counter))), 10.0)
                statuses[str(status)] += 1
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                statuses["no answer"] += 1
                conn.close()
                conn = _Conn("127.0.0.1", port)
            latencies.append(time.perf_counter() - sent)
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return _summary(latencies, statuses, time.perf_counter() - started)


def _sustained(port: int, name: str, orders: list[bytes], key: str, auth: dict[str, str], forks: _Forks, *,
               paused: subprocess.Popen[bytes] | None = None) -> dict[str, Any]:
    """`SUSTAINED_RUNS` closed-loop runs of `SUSTAINED_S` each posting `orders` in turn (never one twice), the
    worker drained after each (and, with `paused`, stopped during each): `name` is the run with the median rate
    (with the AOF rewrites of all runs), `{name}_runs` all of them, `drain_s_{suffix}` the longest drain."""
    runs, drains, offset = [], [], 0
    forks.mark()
    for _ in range(SUSTAINED_RUNS):
        if paused is not None:
            paused.send_signal(signal.SIGSTOP)
        try:
            run = asyncio.run(_closed_loop(port, lambda k, at=offset: (
                "POST", "/v1/orders", orders[at + k], {**auth, "Idempotency-Key": f"{key}{at + k}"}), SUSTAINED_S))
        finally:
            if paused is not None:
                paused.send_signal(signal.SIGCONT)
        offset += run["requests"]
        runs.append(run)
        drains.append(_drain(port))
    median = sorted(runs, key=lambda r: r["per_s"])[len(runs) // 2]
    suffix = name.removeprefix("post_orders_")
    return {name: {**median, "aof_rewrites": forks.since()}, f"{name}_runs": runs, f"drain_s_{suffix}": max(drains)}


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Of runs of one phase, the one with the median p99 (its other figures as measured)."""
    return sorted(runs, key=lambda r: r["p99_ms"])[len(runs) // 2]


def _summary(latencies: list[float], statuses: Counter[str], wall_s: float) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in latencies)
    answered = sum(n for s, n in statuses.items() if s != "no answer")
    errors = sum(n for s, n in statuses.items() if s == "no answer" or s.startswith("5"))
    return {"requests": len(ms), "seconds": round(wall_s, 2), "per_s": round(answered / wall_s, 1),
            "p50_ms": round(_q(ms, 0.5), 2), "p99_ms": round(_q(ms, 0.99), 2),
            "max_ms": round(ms[-1], 2) if ms else None, "statuses": dict(sorted(statuses.items())), "errors": errors}


def _q(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


class _Procs:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def _orders(n: int) -> list[bytes]:
    """`n` orders of the Porto scenario's demand (addresses, baskets, promises), with fresh ids."""
    from benchmarks.bench_sweep import load_scenario
    from routing.network import RoadNetwork
    from simulator.demand import orders_for

    scenario = load_scenario(SCENARIO).with_setting("demand.orders", str(n))
    orders = orders_for(scenario, RoadNetwork.from_osm(scenario.map_file))
    out = []
    for k, o in enumerate(orders):
        body: dict[str, Any] = {"id": f"b{k}", "location": list(o.location), "mode": o.mode,
                                "items": [{"sku": i.sku, "qty": i.qty, "weight_g": i.weight_g,
                                           "dims_mm": list(i.dims_mm)} for i in o.items],
                                "promise": {"kind": "express", "within_min": 45}}
        out.append(json.dumps(body).encode())
    return out


def run(report: dict[str, Any], *, rate: float | None = None, seconds: float | None = None) -> None:
    """Fill `report["api"]`."""
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        report["api"] = {"skipped": "no redis-server"}
        return
    rate = rate or float(os.environ.get("LASTMILE_BENCH_API_RATE", "500"))
    seconds = seconds or float(os.environ.get("LASTMILE_BENCH_API_SECONDS", "60"))
    burst_s = float(os.environ.get("LASTMILE_BENCH_API_BURST_SECONDS", "60"))
    n_post = int(rate * burst_s)
    bodies = _orders(int(LIGHT_RATE * seconds) + n_post + SUSTAINED_ORDERS)
    procs = _Procs()
    out: dict[str, Any] = {"rate_per_s": rate, "seconds": seconds, "burst_seconds": burst_s, "admission": ADMISSION}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            rport = _free_port()
            procs.start([redis_server, "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                         "yes", "--appendfsync", "always", "--dir", tmp])
            url = f"redis://127.0.0.1:{rport}/0"
            batch = Path(tmp) / "porto-centre-day-batch.toml"  # see the module doc: the API's ceiling, under batch
            batch.write_text(scenario_text(SCENARIO.relative_to(ROOT), policy="batch", express_model=False))
            time.sleep(0.5)
            forks = _Forks(rport)
            bare_dir = Path(tmp) / "bare"
            bare_dir.mkdir()
            (bare_dir / "bare_app.py").write_text(BARE_APP.format(url=url))
            bport = _free_port()
            procs.start([sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(bport), "--log-level",
                         "warning"], cwd=bare_dir)
            _wait(f"http://127.0.0.1:{bport}/route")
            out["anchor_post"] = asyncio.run(_open_loop(bport, [("POST", "/v1/orders", b, {}) for b in bodies[
                :n_post]], rate))
            out["anchor_get"] = asyncio.run(_open_loop(bport, [("GET", "/route", None, {})] * n_post, rate))

            env = {**os.environ, "LASTMILE_ADMIN_KEY": ADMIN, "LASTMILE_RATE_PER_S": "1000000",
                   "LASTMILE_STORE": url, "LASTMILE_SCENARIO": str(batch), "LASTMILE_SPEED": "10",
                   "LASTMILE_ADMISSION": ADMISSION}
            port = _free_port()
            lastmile = str(Path(sys.executable).parent / "lastmile")
            procs.start([lastmile, "serve", "--workers", "0", "--port", str(port)], env=env, cwd=ROOT)
            worker = procs.start([lastmile, "worker", *WORKER_FLAGS], env=env, cwd=ROOT)
            _wait(f"http://127.0.0.1:{port}/health")
            auth = {"Authorization": f"Bearer {ADMIN}"}
            couriers = _first_shift()
            shifts = [("POST", f"/v1/couriers/{c}/shift", b'{"on": true}', auth) for c in couriers]
            asyncio.run(_open_loop(port, shifts, 200))
            light = int(LIGHT_RATE * seconds)
            post = [("POST", "/v1/orders", body, {**auth, "Idempotency-Key": f"k{k}"})
                    for k, body in enumerate(bodies[:light])]
            out["post_orders_light"] = asyncio.run(_open_loop(port, post, LIGHT_RATE))
            out["drain_s_light"] = _drain(port)
            gets = [("GET", f"/v1/couriers/{couriers[k % len(couriers)]}/route", None, auth)
                    for k in range(int(rate * seconds / GET_RUNS))]
            runs = [asyncio.run(_open_loop(port, gets, rate)) for _ in range(GET_RUNS)]
            out["get_route_runs"] = runs
            out["get_route"] = _median_run(runs)
            post = [("POST", "/v1/orders", body, {**auth, "Idempotency-Key": f"k{k}"})
                    for k, body in enumerate(bodies[light:light + n_post], light)]
            runs, part = [], -(-len(post) // POST_RUNS)
            pooled: tuple[list[float], Counter[str]] = ([], Counter())
            lags: list[float] = []
            forks.mark()
            for r in range(POST_RUNS):  # each run's orders are new; the day fills up from run to run
                runs.append(asyncio.run(_with_lag(port, _open_loop(port, post[r * part:(r + 1) * part], rate,
                                                                   keep=pooled), keep=lags)))
                out["drain_s"] = _drain(port)
            out["post_orders_runs"] = runs
            out["post_orders"] = {**_summary(*pooled, sum(r["seconds"] for r in runs)),
                                  "worker_lag": _lag_summary(lags, runs[0]["worker_lag"]["sample_every_s"]),
                                  "aof_rewrites": forks.since()}
            rest = bodies[light + n_post:]
            out.update(_sustained(port, "post_orders_sustained", rest, "s", auth, forks))
            if ADMISSION == "api":  # the API process alone: the worker paused, then catching up
                alone = [b.replace(b'"id": "b', b'"id": "a', 1) for b in rest]  # orders of their own
                assert all(b != a for a, b in zip(rest, alone, strict=True))
                out.update(_sustained(port, "post_orders_api_alone", alone, "alone", auth, forks, paused=worker))
        finally:
            procs.stop()
    for name, anchor in (("post_orders_light", "anchor_post"), ("post_orders", "anchor_post"),
                         ("get_route", "anchor_get")):
        if out[anchor]["p99_ms"] > 0:
            out[f"{name}_p99_vs_anchor"] = round(out[name]["p99_ms"] / out[anchor]["p99_ms"], 2)
    report["api"] = out


class _Forks:
    """AOF rewrites Redis started (it forks for each; RDB saves are off here): a rewrite's child takes a core for
    a while, which on these 2 cores the API and the worker feel."""

    def __init__(self, port: int) -> None:
        import redis

        self.client = redis.Redis(port=port)
        self.at = 0

    def _forks(self) -> int:
        return int(self.client.info("stats")["total_forks"])

    def mark(self) -> None:
        self.at = self._forks()

    def since(self) -> int:
        return self._forks() - self.at


def _drain(port: int) -> float:
    """Seconds until the worker has applied every command in the stream."""
    started = time.perf_counter()
    while json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health").read())["lag"] > 0:
        time.sleep(0.1)
    return round(time.perf_counter() - started, 1)


def _first_shift() -> list[str]:
    from benchmarks.bench_sweep import load_scenario
    from simulator.model import fleet_of

    scenario = load_scenario(SCENARIO)
    return [c.id for c in fleet_of(scenario) if c.shift_start <= scenario.clock.start]


def _runs_note(api: dict[str, Any], name: str) -> str:
    runs = api.get(f"{name}_runs")
    if not runs:
        return f"{SUSTAINED_S:g} s"
    return (f"{len(runs)} × {runs[0]['seconds']:.0f} s each, the run with the median rate shown (orders/s of each: "
            f"{', '.join(format(r['per_s'], '.0f') for r in runs)}"
            + (f"; alone: {', '.join(format(r['per_s'], '.0f') for r in api['post_orders_api_alone_runs'])}"
               if "post_orders_api_alone_runs" in api else "") + ")")


def markdown(api: dict[str, Any]) -> list[str]:
    if "skipped" in api:
        return ["## api", "", f"skipped: {api['skipped']}", ""]
    lines = ["## api: live API on loopback (one API process, one worker at idle priority, Redis appendfsync always)",
             "",
             "| figure | requests | answered / s | p50 ms | p99 ms | max ms | answers | errors |",
             "|---|---|---|---|---|---|---|---|"]
    for key in ("post_orders_light", "post_orders", "anchor_post", "post_orders_sustained", "post_orders_api_alone",
                "get_route", "anchor_get"):
        if key not in api:
            continue
        r = api[key]
        answers = ", ".join(f"{s}: {n}" for s, n in r["statuses"].items())
        lines.append(f"| {key} | {r['requests']} | {r['per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | "
                     f"{answers} | {r['errors']} |")
    gets = api.get("get_route_runs")
    get_note = (f"GET route {len(gets)} × {api['seconds'] / len(gets):g} s at {api['rate_per_s']:g} req/s (the run "
                f"with the median p99 shown; p99 of each: {', '.join(str(r['p99_ms']) for r in gets)} ms)"
                if gets else f"GET route {api['seconds']:g} s at {api['rate_per_s']:g} req/s")
    posts = api.get("post_orders_runs")
    post_note = (f"POST {len(posts)} × {api['burst_seconds'] / len(posts):.3g} s at {api['rate_per_s']:g} req/s (all "
                 f"{len(posts)} runs pooled; p99 of each: {', '.join(str(r['p99_ms']) for r in posts)} ms)"
                 if posts else f"POST {api['burst_seconds']:g} s at {api['rate_per_s']:g} req/s")
    notes = (f"Open loop: POST {api['seconds']:g} s at {LIGHT_RATE:g} req/s (light), {get_note}, {post_note}; "
             f"sustained: closed loop, 64 connections, {_runs_note(api, 'post_orders_sustained')}. Orders admitted by "
             f"`LASTMILE_ADMISSION={api.get('admission', 'worker')}`. The worker drained its backlog in "
             f"{api['drain_s_light']} s, {api['drain_s']} s and {api['drain_s_sustained']} s after the POST phases"
             + (f" and in {api['drain_s_api_alone']} s after `post_orders_api_alone` (the API process alone: the "
                f"worker paused during it)" if "drain_s_api_alone" in api else "")
             + (" (the closed-loop phases: the longest of their runs' drains)" if "post_orders_sustained_runs" in api
                else "") + ". "
             + (f"Worker lag at {api['rate_per_s']:g}/s (accepted → applied by the worker, `/health` sampled every "
                f"{api['post_orders']['worker_lag']['sample_every_s']:g} s): p50 "
                f"{api['post_orders']['worker_lag']['p50_s']} s, p99 {api['post_orders']['worker_lag']['p99_s']} s, "
                f"max {api['post_orders']['worker_lag']['max_s']} s. " if "worker_lag" in api["post_orders"] else "")
             + (f"Redis rewrote its AOF (a forked child taking a core for a while) "
                f"{api['post_orders']['aof_rewrites']}, "
                f"{api['post_orders_sustained'].get('aof_rewrites', '?')} and "
                f"{api.get('post_orders_api_alone', {}).get('aof_rewrites', '?')} times during the POST phase at "
                f"{api['rate_per_s']:g}/s, the sustained phase and the API alone. " if "aof_rewrites" in
                api["post_orders"] else "")
             + f"p99 against the anchor: POST light {api.get('post_orders_light_p99_vs_anchor')}×, POST "
             f"{api.get('post_orders_p99_vs_anchor')}×, GET route {api.get('get_route_p99_vs_anchor')}×.")
    lines += ["", notes, ""]
    return lines


if __name__ == "__main__":
    rep: dict[str, Any] = {}
    run(rep)
    print("\n".join(markdown(rep["api"])))
