"""What a simulated day leaves behind: order events, courier work and trips, and the KPIs computed from them.

The model only appends here (no I/O, no plotting); `kpis`, `hourly` and the report read it after the run.
Times are seconds of the simulated clock. The one recorder of every simulation: the MDRP meal-delivery replay
(`simulator/mdrp.py`) records its orders, couriers and bundles (as trips from the restaurant) here too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from dispatch.operations import EVENTS

OrderStatus = Literal["open", "delivered", "rejected", "cancelled", "failed"]
ORDER_EVENTS = EVENTS
"""The order events a day records: those of the operations core (`dispatch.operations.EVENTS`)."""


@dataclass(slots=True, kw_only=True)
class OrderRecord:
    """One order's life; `delivered_at` is at the door, locker or pickup point."""

    id: str
    placed_at: int
    location: tuple[float, float]
    mode: str
    status: OrderStatus = "open"
    reason: str | None = None
    store: str | None = None
    facility: str | None = None
    promise_by: int | None = None
    express: bool = True
    quoted_eta: int | None = None
    """The express ETA the checkout quoted when the order was placed (None: no quote could be made)."""
    quote_basis: tuple[int, int, int, int | None] | None = None
    """What the quote was made of: picking, courier wait, road, the dispatcher's planned lead or None (seconds;
    `dispatch.promise.QuoteBasis`)."""
    ready_at: int | None = None
    assigned_at: int | None = None
    pickup_at: int | None = None
    delivered_at: int | None = None
    courier: str | None = None
    boxes: int = 0
    redirected_to: str | None = None
    """The locker a failed courier delivery was sent on to (`Delivery.failed_to = "locker"`)."""
    closed_at: int | None = None
    """When it left the books: delivered, cancelled, failed (back at the store) or rejected."""

    @property
    def click_to_door_s(self) -> int | None:
        return None if self.delivered_at is None else self.delivered_at - self.placed_at

    @property
    def on_time(self) -> bool | None:
        if self.delivered_at is None or self.promise_by is None:
            return None
        return self.delivered_at <= self.promise_by


@dataclass(slots=True, kw_only=True)
class CourierRecord:
    """One courier's day: shift, and time spent driving and at doors, in `busy` intervals (start, end)."""

    id: str
    store: str
    profile: str
    shift_start: int
    shift_end: int
    driving_s: int = 0
    service_s: int = 0
    metres: int = 0
    trips: int = 0
    delivered: int = 0
    busy: list[tuple[int, int]] = field(default_factory=list)
    off_at: int | None = None
    """When the courier actually went off (after its shift end if it was still out)."""
    repositioning_s: int = 0
    """Time spent riding, idle, toward where work is expected (the MDRP replay's moves; not in `driving_s`)."""


@dataclass(slots=True, kw_only=True)
class TripRecord:
    """A trip as driven: stops as road nodes (store first and, for a store courier, last) with arrival times."""

    courier: str
    store: str
    profile: str
    orders: tuple[str, ...]
    nodes: tuple[int, ...]
    times: tuple[int, ...]
    metres: int


@dataclass(slots=True)
class Recorder:
    """Append-only log of a run (see the module doc)."""

    orders: dict[str, OrderRecord] = field(default_factory=dict)
    couriers: dict[str, CourierRecord] = field(default_factory=dict)
    trips: list[TripRecord] = field(default_factory=list)
    events: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    decisions: int = 0
    end: int = 0

    def apply(self, t: int, order: str, event: str, fields: Mapping[str, Any]) -> None:
        """Log one domain event of the operations core and update the order's record from it."""
        self.events.append((t, order, event, dict(fields)))
        rec = self.orders[order]
        if event == "placed":
            rec.quoted_eta = fields.get("quoted_eta")
            basis = fields.get("quote_basis")
            if basis is not None:
                rec.quote_basis = (basis["picking_s"], basis["courier_wait_s"], basis["road_s"],
                                   basis.get("planned_s"))
        elif event == "rejected":
            rec.status, rec.reason, rec.closed_at = "rejected", fields["reason"], t
        elif event == "allocated":
            rec.store, rec.facility = fields["store"], fields["facility"]
            rec.boxes, rec.promise_by = len(fields["boxes"]), fields["promise_by"]
        elif event == "picked":
            rec.ready_at = t
        elif event == "assigned":
            rec.assigned_at, rec.courier = t, fields["courier"]
        elif event == "unassigned":
            rec.assigned_at, rec.courier = None, None
        elif event == "picked_up":
            rec.pickup_at = t
        elif event == "delivered":
            rec.status, rec.delivered_at, rec.closed_at = "delivered", t, t
        elif event == "redirected":
            rec.redirected_to = fields["locker"]
        elif event == "returned":
            rec.status, rec.reason, rec.closed_at = "failed", fields["reason"], t
        elif event == "cancelled":
            rec.status, rec.closed_at = "cancelled", t

    def event_lines(self) -> Iterator[dict[str, Any]]:
        """One JSON-ready dict per order event, in the order the operations core returned them: a delivery is
        stamped `t` at the courier's arrival but returned once the hand-over is done, so its line may follow lines
        with a later `t` (sort by `t` for a timeline)."""
        for t, order, event, fields in self.events:
            yield {"t": t, "order": order, "event": event, **fields}

    def courier_rows(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in asdict(c).items() if k != "busy"} for c in self.couriers.values()]


def percentile(values: np.ndarray | Sequence[float], q: float) -> float | None:
    """The `q`-th percentile (0..100) with linear interpolation between the closest ranks (numpy's default);
    None for no values. The one percentile of every KPI (days and MDRP replays alike)."""
    array = np.asarray(values, dtype=np.float64)
    return float(np.percentile(array, q)) if array.size else None


def _share(hits: int, total: int) -> float | None:
    """`hits` out of `total`, to four places (None when `total` is 0)."""
    return round(hits / total, 4) if total else None


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60.0, 2)


def quote_calibration(rec: Recorder, groups: int = 10) -> list[dict[str, Any]]:
    """Express quotes against what happened, by decile of the quoted lead (delivered orders with a quote): per
    group the orders, the mean quoted lead and the mean click-to-door (minutes), the share delivered by the quote
    and the mean slack (quoted minus actual, minutes)."""
    rows = sorted((o.quoted_eta - o.placed_at, o.delivered_at - o.placed_at) for o in rec.orders.values()
                  if o.status == "delivered" and o.quoted_eta is not None and o.delivered_at is not None)
    if not rows:
        return []
    out = []
    for k, part in enumerate(np.array_split(np.asarray(rows, dtype=float).reshape(-1, 2), min(groups, len(rows)))):
        quoted, actual = part[:, 0], part[:, 1]
        out.append({"decile": k + 1, "orders": len(part), "quoted_min": _minutes(float(quoted.mean())),
                    "delivered_min": _minutes(float(actual.mean())),
                    "met_rate": round(float((actual <= quoted).mean()), 4),
                    "slack_min": _minutes(float((quoted - actual).mean()))})
    return out


def kpis(rec: Recorder, *, courier_hour_cost: Mapping[str, float], per_km_cost: Mapping[str, float],
         co2_g_per_km: Mapping[str, float]) -> dict[str, Any]:
    """The day's KPIs (times in minutes, money in the scenario's currency, CO2 in grams).

    The on-time, express-met and quote-met rates count, beside the delivered orders, the orders still open when the
    run ended (`rec.end`) past their promise (or quoted ETA) as late: a fleet that never delivers some orders does
    not look punctual for delivering the others."""
    orders = list(rec.orders.values())
    by_status = {s: sum(o.status == s for o in orders) for s in ("delivered", "rejected", "cancelled", "failed",
                                                                  "open")}
    delivered = [o for o in orders if o.status == "delivered"]
    c2d = np.array([o.click_to_door_s for o in delivered], dtype=float)
    r2p = np.array([o.pickup_at - o.ready_at for o in delivered
                    if o.pickup_at is not None and o.ready_at is not None], dtype=float)
    promised = [o for o in delivered if o.promise_by is not None]
    express = [o for o in promised if o.express]
    still_open = [o for o in orders if o.status == "open"]
    overdue = [o for o in still_open if o.promise_by is not None and o.promise_by < rec.end]
    late_quotes = sum(o.quoted_eta is not None and o.quoted_eta < rec.end for o in still_open)
    quoted = [(o.delivered_at, o.quoted_eta, o.placed_at) for o in delivered
              if o.quoted_eta is not None and o.delivered_at is not None]
    quote_lead = np.array([eta - placed for _, eta, placed in quoted], dtype=float)
    hours_on_shift = sum(max(0, (c.off_at if c.off_at is not None else c.shift_end) - c.shift_start)
                         for c in rec.couriers.values()) / 3600.0
    busy = sum(c.driving_s + c.service_s for c in rec.couriers.values()) / 3600.0
    km = sum(c.metres for c in rec.couriers.values()) / 1000.0
    cost = sum(max(0, (c.off_at if c.off_at is not None else c.shift_end) - c.shift_start) / 3600.0
               * courier_hour_cost.get(c.profile, 0.0) + c.metres / 1000.0 * per_km_cost.get(c.profile, 0.0)
               for c in rec.couriers.values())
    co2 = sum(c.metres / 1000.0 * co2_g_per_km.get(c.profile, 0.0) for c in rec.couriers.values())
    n_del = len(delivered)

    def per_order(x: float) -> float | None:
        return round(x / n_del, 3) if n_del else None

    return {
        "orders": len(orders),
        "delivered": by_status["delivered"],
        "rejected": by_status["rejected"],
        "cancelled": by_status["cancelled"],
        "failed": by_status["failed"],
        "open_at_end": by_status["open"],
        "redirected_to_locker": sum(o.redirected_to is not None for o in orders),
        "on_time_rate": _share(sum(bool(o.on_time) for o in promised), len(promised) + len(overdue)),
        "express_met_rate": _share(sum(bool(o.on_time) for o in express),
                                   len(express) + sum(o.express for o in overdue)),
        "express_quote_met_rate": _share(sum(at <= eta for at, eta, _ in quoted), len(quoted) + late_quotes),
        "express_quote_mean_min": _minutes(float(quote_lead.mean()) if quote_lead.size else None),
        "express_quote_slack_mean_min": _minutes(float(np.mean([eta - at for at, eta, _ in quoted]))
                                                 if quoted else None),
        "click_to_door_mean_min": _minutes(float(c2d.mean()) if c2d.size else None),
        "click_to_door_p50_min": _minutes(percentile(c2d, 50)),
        "click_to_door_p90_min": _minutes(percentile(c2d, 90)),
        "click_to_door_p99_min": _minutes(percentile(c2d, 99)),
        "ready_to_pickup_mean_min": _minutes(float(r2p.mean()) if r2p.size else None),
        "couriers": len(rec.couriers),
        "courier_hours": round(hours_on_shift, 2),
        "courier_utilisation": round(busy / hours_on_shift, 4) if hours_on_shift else None,
        "orders_per_courier_hour": round(n_del / hours_on_shift, 3) if hours_on_shift else None,
        "km": round(km, 2),
        "km_per_order": per_order(km),
        "cost": round(cost, 2),
        "cost_per_order": round(cost / n_del, 2) if n_del else None,  # money: to the cent, rounded once
        "co2_g": round(co2, 1),
        "co2_g_per_order": per_order(co2),
        "trips": len(rec.trips),
        "orders_per_trip": round(sum(len(t.orders) for t in rec.trips) / len(rec.trips), 3) if rec.trips else None,
        "decisions": rec.decisions,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Hourly:
    """Per-hour series for the report: hour of day, on-time rate of orders delivered that hour, orders open at
    the top of the hour, orders placed, and courier utilisation (busy over on-shift time within the hour)."""

    hours: tuple[int, ...]
    on_time_rate: tuple[float, ...]
    open_orders: tuple[int, ...]
    placed: tuple[int, ...]
    utilisation: tuple[float, ...]


def _overlap(a: int, b: int, lo: int, hi: int) -> int:
    return max(0, min(b, hi) - max(a, lo))


def hourly(rec: Recorder) -> Hourly:
    """The per-hour series of a run, from the first order's hour to the end of the run."""
    orders = list(rec.orders.values())
    if not orders:
        return Hourly(hours=(), on_time_rate=(), open_orders=(), placed=(), utilisation=())
    first = min(o.placed_at for o in orders) // 3600
    last = max(rec.end, max(o.placed_at for o in orders)) // 3600
    hours = tuple(range(first, last + 1))
    on_time, open_, placed, util = [], [], [], []
    for h in hours:
        lo, hi = h * 3600, (h + 1) * 3600
        done = [o for o in orders if o.delivered_at is not None and lo <= o.delivered_at < hi
                and o.promise_by is not None]
        on_time.append(sum(bool(o.on_time) for o in done) / len(done) if done else math.nan)
        open_.append(sum(o.placed_at <= lo and (o.closed_at is None or o.closed_at > lo) for o in orders))
        placed.append(sum(lo <= o.placed_at < hi for o in orders))
        shift = sum(_overlap(c.shift_start, c.off_at if c.off_at is not None else c.shift_end, lo, hi)
                    for c in rec.couriers.values())
        busy = sum(_overlap(a, b, lo, hi) for c in rec.couriers.values() for a, b in c.busy)
        util.append(busy / shift if shift else math.nan)
    return Hourly(hours=hours, on_time_rate=tuple(on_time), open_orders=tuple(open_), placed=tuple(placed),
                  utilisation=tuple(util))
