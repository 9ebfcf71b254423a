"""Real processes for the API tests: a Redis server of the test's own, `lastmile serve` and `lastmile worker`."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "scenarios" / "moscow-ostankino-tiny.toml"
ADMIN_KEY = "admin-test-key"
LASTMILE = [sys.executable, "-m", "api.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_or_skip() -> str:
    path = shutil.which("redis-server")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is required on CI")
        pytest.skip("no redis-server on this machine")
    return path


def wait_for(check: Any, timeout_s: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            got = check()
        except (OSError, ValueError):
            got = None
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class RedisServer:
    """redis-server on a free port, appending every write to its AOF with fsync (`appendfsync always`)."""

    def __init__(self, directory: Path) -> None:
        self.binary = redis_server_or_skip()
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        wait_for(lambda: redis.Redis(port=self.port).ping(), what="redis-server")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None


class Lastmile:
    """`lastmile serve` (HTTP on a free port) or `lastmile worker` as a process of its own."""

    def __init__(self, command: str, store: str, *, workers: int = 0, speed: float = 60.0,
                 admission: str = "worker") -> None:
        self.command = command
        self.admission = admission
        self.store = store
        self.port = free_port()
        self.workers = workers
        self.speed = speed
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> Lastmile:
        args = [*LASTMILE, self.command, "--scenario", str(TINY), "--store", self.store, "--speed", str(self.speed)]
        if self.command == "serve":
            args += ["--port", str(self.port), "--workers", str(self.workers)]
        env = {**os.environ, "LASTMILE_ADMIN_KEY": ADMIN_KEY, "LASTMILE_LEASE_MS": "1000",
               "LASTMILE_RATE_PER_S": "100000", "LASTMILE_REPLY_TIMEOUT_S": "2", "LASTMILE_ADMISSION": self.admission}
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait and self.command == "serve":
            wait_for(lambda: request(self.url + "/health")[0] == 200, what=f"lastmile serve on {self.port}")
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.proc = None


def request(url: str, body: Any = None, *, method: str | None = None, headers: dict[str, str] | None = None,
            timeout: float = 10.0) -> tuple[int, Any]:
    """(status, decoded JSON body) of one HTTP request; status 0 when the connection failed."""
    data = None if body is None else json.dumps(body).encode()
    sent = {"Authorization": f"Bearer {ADMIN_KEY}", **(headers or {})}
    if data is not None:
        sent["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        try:
            raw = e.read()
        except (OSError, http.client.HTTPException):  # the server was killed while answering
            return 0, None
        return e.code, json.loads(raw) if raw else None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError):  # the server was killed
        return 0, None
