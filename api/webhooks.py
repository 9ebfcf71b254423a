"""Webhooks: the order system subscribes to domain events, a sender delivers them signed, at least once, in order.

Subscriptions live in the store (hash `webhooks`: id → JSON). The sender reads the deployment's event stream (what
the dispatch worker publishes, `api.store.base.EVENTS_STREAM`) and, for each subscription, delivers the events it
asked for strictly in stream order (so in order per order): a delivery that fails is retried, with exponential
backoff and jitter (never sooner than the endpoint's `Retry-After`), before anything after it. Each subscription's
position in the stream (its cursor) is in the store, advanced after each delivery, so a restarted sender resumes
where it stopped; a delivery whose answer was lost is sent again with the same `webhook-id`. An endpoint that
answers `410 Gone` is disabled. One sender per deployment holds the `webhook-sender` lease.

Signatures follow Standard Webhooks (https://www.standardwebhooks.com): headers `webhook-id`, `webhook-timestamp`
and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, computed with the `standardwebhooks`
library; while a secret is being rotated, the old one signs too (signatures separated by a space).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

from api.store import Store
from api.store.base import EVENTS_STREAM

log = logging.getLogger("lastmile.webhooks")

EVENT_TYPES = {
    "placed": "order.placed", "rejected": "order.rejected", "allocated": "order.allocated", "picked": "order.ready",
    "assigned": "order.assigned", "unassigned": "order.unassigned", "picked_up": "order.picked_up",
    "eta_changed": "order.eta_changed",
    "delivered": "order.delivered", "failed": "order.failed", "redirected": "order.redirected",
    "returned": "order.returned", "cancelled": "order.cancelled", "collected": "order.collected",
    "shift_on": "courier.shift_on", "shift_off": "courier.shift_off",
}
"""Webhook event types by the stream's event names."""

REGISTRY = "webhooks"
ROTATION_S = 24 * 3600
"""How long a rotated-out secret still signs deliveries."""
LOG_KEEP = 500
"""Delivery attempts kept per subscription."""


def cursor_key(sub_id: str) -> str:
    return f"webhook:{sub_id}:cursor"


def log_key(sub_id: str) -> str:
    return f"webhook:{sub_id}:deliveries"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """An endpoint and the event types it gets. `secrets` newest first; older ones sign until `rotated_until`."""

    id: str
    url: str
    events: tuple[str, ...]
    secrets: tuple[str, ...]
    owner: str = ""
    """The id of the API key that subscribed (an order-system key sees only its own subscriptions)."""
    rotated_until: float = 0.0
    disabled: str = ""
    """Why deliveries stopped (`gone`: the endpoint answered 410), or empty."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.events) - set(EVENT_TYPES.values()))
        if unknown or not self.events:
            raise ValueError(f"events: unknown event types {unknown}" if unknown else "events: name at least one")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url: must be an http:// or https:// URL, got {self.url!r}")

    def signing_secrets(self, now: float) -> tuple[str, ...]:
        return self.secrets if now < self.rotated_until else self.secrets[:1]

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "url": self.url, "events": list(self.events), "secrets": list(self.secrets),
                           "owner": self.owner, "rotated_until": self.rotated_until, "disabled": self.disabled})

    @classmethod
    def from_json(cls, text: str) -> Subscription:
        raw = json.loads(text)
        return cls(id=raw["id"], url=raw["url"], events=tuple(raw["events"]), secrets=tuple(raw["secrets"]),
                   owner=raw.get("owner", ""), rotated_until=float(raw.get("rotated_until", 0.0)),
                   disabled=raw.get("disabled", ""))

    def public(self) -> dict[str, Any]:
        """What listing shows: everything but the secrets."""
        return {"id": self.id, "url": self.url, "events": list(self.events), "disabled": self.disabled or None}


class Registry:
    """Subscriptions in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, url: str, events: list[str], owner: str = "") -> Subscription:
        """A new subscription that gets the events published from now on."""
        sub = Subscription(id="wh_" + uuid.uuid4().hex[:16], url=url, events=tuple(dict.fromkeys(events)),
                           secrets=(new_secret(),), owner=owner)
        self.store.set(cursor_key(sub.id), f"{self.store.applied()}-{2**62}")
        self.store.hset(REGISTRY, {sub.id: sub.to_json()})
        return sub

    def all(self) -> list[Subscription]:
        return [Subscription.from_json(v) for _, v in sorted(self.store.hgetall(REGISTRY).items())]

    def get(self, sub_id: str) -> Subscription | None:
        raw = self.store.hgetall(REGISTRY).get(sub_id)
        return None if raw is None else Subscription.from_json(raw)

    def save(self, sub: Subscription) -> None:
        self.store.hset(REGISTRY, {sub.id: sub.to_json()})

    def delete(self, sub_id: str) -> bool:
        return self.store.hdel(REGISTRY, sub_id)

    def rotate(self, sub: Subscription, now: float) -> Subscription:
        """A new secret; the previous one keeps signing for `ROTATION_S`."""
        rotated = replace(sub, secrets=(new_secret(), sub.secrets[0]), rotated_until=now + ROTATION_S)
        self.save(rotated)
        return rotated

    def deliveries(self, sub_id: str) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.store.lrange(log_key(sub_id))]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Retry delays: `base_s` × 2^(attempt − 1), at most `cap_s`, times a random factor in [0.5, 1) (jitter);
    never shorter than the endpoint's `Retry-After`."""

    base_s: float = 1.0
    cap_s: float = 600.0

    def __post_init__(self) -> None:
        if not 0 < self.base_s <= self.cap_s:
            raise ValueError("base_s, cap_s: need 0 < base_s <= cap_s")

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        wait = min(self.cap_s, self.base_s * 2 ** (attempt - 1)) * (0.5 + rng.random() / 2)
        return max(wait, min(retry_after or 0.0, self.cap_s))


Poster = Callable[[str, bytes, Mapping[str, str], float], tuple[int, Mapping[str, str]]]


def ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a URL's host names as the sender's resolver reads it (`169.254.169.254`, and also its decimal,
    hex, octal and short IPv4 forms, a trailing dot, an IPv4-mapped IPv6 address); None for a host name."""
    host = host.rstrip(".")
    try:
        address = ipaddress.ip_address(host.partition("%")[0])  # an IPv6 zone (`fe80::1%eth0`) names no other host
    except ValueError:
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))  # the C library's forms: 2852039166, 0xa9fea9fe
        except OSError:
            return None
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped if mapped is not None else address


def target_problem(url: str) -> str | None:
    """Why `url` is no webhook target, or None: it must be an http(s) URL with a plain host (no user or password,
    no percent-encoding, a valid port) that is not a link-local address (where clouds serve instance metadata).
    A host name is checked again where it resolves, at each delivery (`http_post`)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        return f"not a URL a webhook can be sent to ({e}): {url!r}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http:// or https:// URL with a host, got {url!r}"
    if "@" in parts.netloc:
        return "must not carry a user name or password (user@host)"
    if "%" in parts.netloc or any(c.isspace() or ord(c) < 32 for c in url):
        return "the host must be written plainly (no percent-encoding, spaces or control characters)"
    if port == 0:
        return "port 0 is no port to send to"
    address = ip_of(parts.hostname)
    if address is not None and address.is_link_local:
        return f"{parts.hostname} is a link-local address (cloud instance metadata); not a webhook target"
    return None


def _resolves_link_local(host: str) -> bool:
    """Whether a host name resolves to a link-local address (e.g. `metadata.google.internal`)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False  # unresolvable: the POST fails on its own
    return any((a := ip_of(str(info[4][0]))) is not None and a.is_link_local for info in infos)


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> tuple[int, Mapping[str, str]]:
    """POST `body`; the status and headers of the answer (status 0: no answer, or a target refused: one that
    `target_problem` refuses or whose host resolves to a link-local address)."""
    if target_problem(url) is not None or _resolves_link_local(urlsplit(url).hostname or ""):
        return 0, {}  # target_problem parsed the URL: the host is there and plain
    try:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return answer.status, dict(answer.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers or {})
    except (urllib.error.URLError, OSError, ValueError):  # ValueError: http.client.InvalidURL and the like
        return 0, {}


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the backoff decides


@dataclass(slots=True)
class _Pending:
    attempts: int = 0
    due: float = 0.0


@dataclass(slots=True)
class Sender:
    """Delivers the event stream to every subscription (see the module doc). `step()` does one pass; `run()`
    loops until stopped."""

    store: Store
    backoff: Backoff = field(default_factory=Backoff)
    seed: int = 0
    timeout_s: float = 5.0
    batch: int = 64
    lease_ms: int = 10_000
    name: str = field(default_factory=lambda: f"sender-{uuid.uuid4().hex[:12]}")
    post: Poster = http_post
    clock: Callable[[], float] = time.time
    _pending: dict[str, _Pending] = field(default_factory=dict)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def step(self) -> float:
        """Deliver what is due; the seconds until the next delivery is due (1 s when nothing waits)."""
        if not self.store.lease(self.name, self.lease_ms, name="webhook-sender"):
            return self.lease_ms / 3000
        registry = Registry(self.store)
        wait = 1.0
        for sub in registry.all():
            if sub.disabled:
                continue
            pending = self._pending.setdefault(sub.id, _Pending())
            now = self.clock()
            if pending.due > now:
                wait = min(wait, pending.due - now)
                continue
            if self._deliver(registry, sub, pending):
                wait = 0.0
        return wait

    def _deliver(self, registry: Registry, sub: Subscription, pending: _Pending) -> bool:
        """Deliver `sub`'s next events in order until one fails; whether more may be waiting."""
        cursor = self.store.get(cursor_key(sub.id)) or "0-0"
        entries = self.store.read_stream(EVENTS_STREAM, cursor, count=self.batch)
        for entry_id, data in entries:
            line = json.loads(data)
            kind = EVENT_TYPES.get(line.get("event", ""))
            if kind in sub.events:
                status, headers = self._send(sub, entry_id, kind, line)
                self.store.log(log_key(sub.id), json.dumps({
                    "id": f"evt_{entry_id}", "type": kind, "attempt": pending.attempts + 1, "status": status,
                    "at": round(self.clock(), 3)}), keep=LOG_KEEP)
                if status == 410:
                    registry.save(replace(sub, disabled="gone"))
                    log.warning("webhook %s: %s answered 410, disabled", sub.id, sub.url)
                    return False
                if not 200 <= status < 300:
                    pending.attempts += 1
                    pending.due = self.clock() + self.backoff.delay(pending.attempts, self._rng,
                                                                    retry_after(headers))
                    self.store.set(cursor_key(sub.id), cursor)
                    return False
                pending.attempts = 0
            cursor = entry_id
            self.store.set(cursor_key(sub.id), cursor)
        return len(entries) == self.batch

    def _send(self, sub: Subscription, entry_id: str, kind: str, line: Mapping[str, Any]) -> tuple[int,
                                                                                                  Mapping[str, str]]:
        msg_id, now = f"evt_{entry_id}", datetime.now(UTC)
        body = json.dumps({"type": kind, "timestamp": now.isoformat(timespec="seconds"), "data": dict(line)},
                          separators=(",", ":"))
        signature = " ".join(Webhook(s).sign(msg_id, now, body) for s in sub.signing_secrets(now.timestamp()))
        headers = {"content-type": "application/json", "webhook-id": msg_id,
                   "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature,
                   "user-agent": "lastmile-webhooks/1"}
        return self.post(sub.url, body.encode(), headers, self.timeout_s)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                wait = self.step()
            except Exception:  # a store hiccup must not end deliveries: try again shortly
                log.exception("%s: a delivery pass failed", self.name)
                wait = 1.0
            stop.wait(min(1.0, wait))
        self.store.release(self.name, name="webhook-sender")

