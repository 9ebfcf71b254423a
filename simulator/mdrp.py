"""Grubhub MDRP mode: instance reader, SimPy simulation of couriers, recorder, the paper's metrics and a CSV writer."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import simpy

from dispatch.errors import DispatchError
from dispatch.meal import (
    MealAssignment,
    MealCourier,
    MealMove,
    MealOrder,
    MealPlan,
    MealPlanner,
    MealPolicy,
    MealRules,
    assignment_times,
)
from simulator.errors import InstanceError, SimulatorError
from simulator.recorder import CourierRecord, OrderRecord, Recorder, TripRecord, percentile

__all__ = [
    "CSV_HEADER",
    "PEAK_MIN",
    "Courier",
    "Delivery",
    "Instance",
    "Metrics",
    "Order",
    "Parameters",
    "Recorder",
    "Restaurant",
    "announced_early",
    "busiest_window",
    "compute_metrics",
    "deliveries",
    "deliveries_csv",
    "direct_click_to_door",
    "excess_over_own_bound",
    "lower_bound",
    "read_instance",
    "simulate",
    "sped_up",
    "undeliverable_alone",
    "with_extra_couriers",
]

CSV_HEADER = ("order", "placement_time", "ready_time", "pickup_time", "dropoff_time", "courier")
Point = tuple[float, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class Restaurant:
    id: str
    location: Point


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    id: str
    location: Point
    placement_time: int
    restaurant: str
    ready_time: int

    def __post_init__(self) -> None:
        if self.ready_time < self.placement_time:
            raise ValueError(f"ready_time {self.ready_time} is before placement_time {self.placement_time}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Courier:
    id: str
    location: Point
    on_time: int
    off_time: int

    def __post_init__(self) -> None:
        if self.off_time < self.on_time:
            raise ValueError(f"off_time {self.off_time} is before on_time {self.on_time}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Parameters:
    meters_per_minute: float
    pickup_service: int
    dropoff_service: int
    target_click_to_door: int
    max_click_to_door: int
    pay_per_order: float
    guaranteed_pay_per_hour: float

    def __post_init__(self) -> None:
        if not self.meters_per_minute > 0:
            raise ValueError(f"meters_per_minute must be positive, got {self.meters_per_minute}")
        for name in ("pickup_service", "dropoff_service"):
            if getattr(self, name) < 0 or getattr(self, name) % 2:
                raise ValueError(f"{name} must be an even non-negative integer so half-service times are whole "
                                 f"minutes, got {getattr(self, name)}")

    @property
    def rules(self) -> MealRules:
        return MealRules(meters_per_minute=self.meters_per_minute, pickup_service=self.pickup_service,
                         dropoff_service=self.dropoff_service, max_click_to_door=self.max_click_to_door)


@dataclass(frozen=True, slots=True, kw_only=True)
class Instance:
    name: str
    orders: tuple[Order, ...]
    couriers: tuple[Courier, ...]
    restaurants: tuple[Restaurant, ...]
    parameters: Parameters
    restaurant_by_id: dict[str, Restaurant] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "restaurant_by_id", {r.id: r for r in self.restaurants})
        for kind, items in (("order", self.orders), ("courier", self.couriers), ("restaurant", self.restaurants)):
            ids = [x.id for x in items]
            if len(set(ids)) != len(ids):
                raise ValueError(f"repeated {kind} id")
        for o in self.orders:
            if o.restaurant not in self.restaurant_by_id:
                raise ValueError(f"order {o.id}: unknown restaurant {o.restaurant}")

    def meal_order(self, order: Order) -> MealOrder:
        return MealOrder(id=order.id, restaurant=order.restaurant,
                         pickup=self.restaurant_by_id[order.restaurant].location, door=order.location,
                         placement_time=order.placement_time, ready_time=order.ready_time)


def _read_table(folder: Path, name: str, columns: Sequence[str]) -> list[tuple[int, list[str]]]:
    path = folder / name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InstanceError(str(path), None, "", exc.strerror or str(exc)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InstanceError(str(path), None, "", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                                                 f"{exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t")
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise InstanceError(str(path), reader.line_num, "", f"not tab-separated text: {exc}") from None
    if not rows:
        raise InstanceError(str(path), 1, "", "empty file, expected a header line")
    header = [h.strip() for h in rows[0]]
    if header != list(columns):
        raise InstanceError(str(path), 1, "", f"expected header {'/'.join(columns)}, got {'/'.join(header)!r}")
    out = []
    for k, row in enumerate(rows[1:], 2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(columns):
            raise InstanceError(str(path), k, "", f"expected {len(columns)} tab-separated fields, got {len(row)}")
        out.append((k, [c.strip() for c in row]))
    return out


MAX_NUMBER = 1e9
"""The largest size of a coordinate (metres), time (minutes) or pay an instance may give: travel times and pay
computed from them stay far inside float and simulation-clock range."""
MIN_SPEED = 1.0
"""The slowest `meters_per_minute` an instance may give (slower makes travel times overflow the clock)."""


def _field(path: str, line: int, name: str, text: str, kind: Callable[[str], Any], *,
           minimum: float | None = None) -> Any:
    if kind is str:
        if not text:
            raise InstanceError(path, line, name, "must not be empty")
        return text
    try:
        value = kind(text)
    except ValueError:
        raise InstanceError(path, line, name, f"expected {'an integer' if kind is int else 'a number'}, "
                                              f"got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise InstanceError(path, line, name, f"must be finite, got {text!r}")
    if minimum is not None and value < minimum:
        raise InstanceError(path, line, name, f"must not be negative, got {text}" if minimum == 0 else
                            f"must be at least {minimum:g}, got {text}")
    if abs(value) > MAX_NUMBER:
        raise InstanceError(path, line, name, f"must be at most {MAX_NUMBER:,.0f} in size, got {text}")
    return value


ORDER_COLUMNS = ("order", "x", "y", "placement_time", "restaurant", "ready_time")
COURIER_COLUMNS = ("courier", "x", "y", "on_time", "off_time")
RESTAURANT_COLUMNS = ("restaurant", "x", "y")
PARAMETER_COLUMNS = ("meters_per_minute", "pickup service minutes", "dropoff service minutes", "target click-to-door",
                     "maximum click-to-door", "pay per order", "guaranteed pay per hour")
RULE_COLUMNS = {"meters_per_minute": "meters_per_minute", "pickup_service": "pickup service minutes",
                "dropoff_service": "dropoff service minutes", "max_click_to_door": "maximum click-to-door"}
"""The column of instance_parameters.txt that each field of `dispatch.meal.MealRules` is read from."""


def read_instance(folder: str | Path) -> Instance:
    """Read an MDRP instance folder (orders, couriers, restaurants, instance_parameters .txt, tab-separated)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InstanceError(str(folder), None, "", "not an instance folder")
    restaurants, seen = [], set()
    path = str(folder / "restaurants.txt")
    for line, (rid, x, y) in _read_table(folder, "restaurants.txt", RESTAURANT_COLUMNS):
        rid = _field(path, line, "restaurant", rid, str)
        if rid in seen:
            raise InstanceError(path, line, "restaurant", f"repeated id {rid!r}")
        seen.add(rid)
        restaurants.append(Restaurant(id=rid, location=(_field(path, line, "x", x, float),
                                                        _field(path, line, "y", y, float))))
    orders, seen = [], set()
    path = str(folder / "orders.txt")
    known = {r.id for r in restaurants}
    for line, (oid, x, y, placed, rid, ready) in _read_table(folder, "orders.txt", ORDER_COLUMNS):
        oid = _field(path, line, "order", oid, str)
        if oid in seen:
            raise InstanceError(path, line, "order", f"repeated id {oid!r}")
        seen.add(oid)
        rid = _field(path, line, "restaurant", rid, str)
        if rid not in known:
            raise InstanceError(path, line, "restaurant", f"unknown restaurant {rid!r}")
        placement = _field(path, line, "placement_time", placed, int, minimum=0)
        ready_time = _field(path, line, "ready_time", ready, int, minimum=0)
        if ready_time < placement:
            raise InstanceError(path, line, "ready_time", f"{ready_time} is before placement_time {placement}")
        orders.append(Order(id=oid, location=(_field(path, line, "x", x, float), _field(path, line, "y", y, float)),
                            placement_time=placement, restaurant=rid, ready_time=ready_time))
    couriers, seen = [], set()
    path = str(folder / "couriers.txt")
    for line, (cid, x, y, on, off) in _read_table(folder, "couriers.txt", COURIER_COLUMNS):
        cid = _field(path, line, "courier", cid, str)
        if cid in seen:
            raise InstanceError(path, line, "courier", f"repeated id {cid!r}")
        seen.add(cid)
        on_time = _field(path, line, "on_time", on, int, minimum=0)
        off_time = _field(path, line, "off_time", off, int, minimum=0)
        if off_time < on_time:
            raise InstanceError(path, line, "off_time", f"{off_time} is before on_time {on_time}")
        couriers.append(Courier(id=cid, location=(_field(path, line, "x", x, float),
                                                  _field(path, line, "y", y, float)),
                                on_time=on_time, off_time=off_time))
    path = str(folder / "instance_parameters.txt")
    rows = _read_table(folder, "instance_parameters.txt", PARAMETER_COLUMNS)
    if len(rows) != 1:
        raise InstanceError(path, None, "", f"expected one line of values, got {len(rows)}")
    line, values = rows[0]
    mpm = _field(path, line, "meters_per_minute", values[0], float, minimum=MIN_SPEED)
    ints = {name: _field(path, line, name, v, int, minimum=1 if name == "maximum click-to-door" else 0)
            for name, v in zip(PARAMETER_COLUMNS[1:5], values[1:5], strict=True)}
    for name in PARAMETER_COLUMNS[1:3]:
        if ints[name] % 2:
            raise InstanceError(path, line, name, f"must be even so half-service times are whole minutes, "
                                                  f"got {ints[name]}")
    pay = [_field(path, line, name, v, float, minimum=0) for name, v in zip(PARAMETER_COLUMNS[5:], values[5:],
                                                                            strict=True)]
    parameters = Parameters(meters_per_minute=mpm, pickup_service=ints["pickup service minutes"],
                            dropoff_service=ints["dropoff service minutes"],
                            target_click_to_door=ints["target click-to-door"],
                            max_click_to_door=ints["maximum click-to-door"], pay_per_order=pay[0],
                            guaranteed_pay_per_hour=pay[1])
    try:  # the policies' own checks on the same values (`MealRules`), reported as the file's like the above
        _ = parameters.rules
    except DispatchError as exc:
        raise InstanceError(path, line, RULE_COLUMNS.get(exc.field, exc.field), exc.message) from None
    if not orders or not couriers:
        raise InstanceError(str(folder), None, "", "needs at least one order and one courier")
    return Instance(name=folder.name, orders=tuple(orders), couriers=tuple(couriers),
                    restaurants=tuple(restaurants), parameters=parameters)


def direct_click_to_door(instance: Instance, o: Order) -> float:
    """The order's click-to-door if picked up the moment it is ready and driven straight to the door."""
    p = instance.parameters
    return (o.ready_time - o.placement_time + p.pickup_service / 2
            + p.rules.travel(instance.restaurant_by_id[o.restaurant].location, o.location) + p.dropoff_service / 2)


def undeliverable_alone(instance: Instance) -> tuple[str, ...]:
    """The orders (ids, in instance order) that no courier could deliver even alone: leaving its start at its
    on-time with nothing else to do, none could pick the order up by its off-time and drop it off within the maximum
    click-to-door. No policy delivers them: their share is the floor under the undelivered share."""
    p = instance.parameters
    on = np.array([c.on_time for c in instance.couriers], dtype=float)
    off = np.array([c.off_time for c in instance.couriers], dtype=float)
    reach: dict[str, np.ndarray] = {}  # per restaurant, each courier's ride from its start (the rules' rounding)
    out = []
    for o in instance.orders:
        restaurant = instance.restaurant_by_id[o.restaurant].location
        if o.restaurant not in reach:
            reach[o.restaurant] = np.array([p.rules.travel(c.location, restaurant) for c in instance.couriers],
                                           dtype=float)
        pickup = np.maximum(o.ready_time, on + reach[o.restaurant] + p.pickup_service / 2)
        ctd = direct_click_to_door(instance, o) + pickup - o.ready_time  # direct delivery, picked up later
        if not np.any((pickup <= off) & (ctd <= p.max_click_to_door)):
            out.append(o.id)
    return tuple(out)


def excess_over_own_bound(instance: Instance, done: Sequence[tuple[Order, Delivery]]) -> list[float]:
    """Each delivered order's click-to-door minus its own direct-delivery bound (`direct_click_to_door`)."""
    return [d.dropoff_time - o.placement_time - direct_click_to_door(instance, o) for o, d in done]


def lower_bound(instance: Instance) -> float:
    """Mean direct-delivery click-to-door over all orders (`direct_click_to_door`)."""
    return sum(direct_click_to_door(instance, o) for o in instance.orders) / len(instance.orders)


def announced_early(instance: Instance, minutes: int) -> Instance:
    """A what-if on foresight: the same day with every order known `minutes` before it is placed.

    Every ready time and every courier's on- and off-time move `minutes` later while the placements stay, and the
    maximum click-to-door grows by as much. So each order's click-to-door and its direct-delivery bound both grow by
    `minutes` (their difference, the excess, is unchanged), an order is undelivered exactly when it would be in the
    original day, and a policy replaying this day sees each order `minutes` earlier than it would. No live policy
    has this foresight; the what-if measures what it would be worth."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
        raise ValueError(f"minutes must be a non-negative integer, got {minutes!r}")
    if not minutes:
        return instance
    return replace(
        instance, name=f"{instance.name} (orders known {minutes} min early)",
        orders=tuple(replace(o, ready_time=o.ready_time + minutes) for o in instance.orders),
        couriers=tuple(replace(c, on_time=c.on_time + minutes, off_time=c.off_time + minutes)
                       for c in instance.couriers),
        parameters=replace(instance.parameters,
                           max_click_to_door=instance.parameters.max_click_to_door + minutes))


def sped_up(instance: Instance, factor: float) -> Instance:
    """A what-if on the fleet: the same day with every courier riding `factor` times as fast (the instance's
    meters_per_minute times `factor`; travel times are still rounded up to whole minutes). The orders, shifts and
    service times stay, so the excess and the undelivered share compare with the day as recorded."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 0:
        raise ValueError(f"factor must be a positive finite number, got {factor!r}")
    if factor == 1:
        return instance
    p = instance.parameters
    return replace(instance, name=f"{instance.name} (couriers {factor:g}x as fast)",
                   parameters=replace(p, meters_per_minute=p.meters_per_minute * factor))


PEAK_MIN = 120
"""The span of an MDRP day's peak for the what-if on the shifts: its busiest two hours of orders placed."""


def busiest_window(instance: Instance, minutes: int = PEAK_MIN) -> tuple[int, int]:
    """The `minutes`-long span `(start, start + minutes)` of the day in which the most orders are placed, the
    earliest of equals; it starts at an order's placement."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
        raise ValueError(f"minutes must be a positive integer, got {minutes!r}")
    if not instance.orders:
        raise ValueError(f"{instance.name} has no orders")
    placed = np.sort(np.array([o.placement_time for o in instance.orders]))
    within = np.searchsorted(placed, placed + minutes, side="left") - np.arange(len(placed))
    start = int(placed[int(np.argmax(within))])
    return start, start + minutes


def with_extra_couriers(instance: Instance, count: int, start: int, end: int) -> Instance:
    """A what-if on the shifts: the same day with `count` more couriers on shift from minute `start` to `end`.

    Each starts at a restaurant: the restaurants with the most orders placed between `start` and `end` (ties by id)
    get one each in turn, round again if there are more couriers than such restaurants (the day's busiest ones if no
    order is placed then). They are paid like the others (the guaranteed pay per hour counts in the cost per order),
    and the orders, the other shifts and the policy stay, so the excess and the undelivered share compare with the
    day as recorded."""
    for name, value, least in (("count", count, 1), ("start", start, 0), ("end", end, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    if end <= start:
        raise ValueError(f"end must be after start, got {start}-{end}")
    demand = (Counter(o.restaurant for o in instance.orders if start <= o.placement_time < end)
              or Counter(o.restaurant for o in instance.orders))
    ranked = sorted(demand, key=lambda r: (-demand[r], r)) or [r.id for r in instance.restaurants]
    if not ranked:
        raise ValueError(f"{instance.name} has no restaurant to start a courier at")
    taken = {c.id for c in instance.couriers}
    extra: list[Courier] = []
    k = 0
    while len(extra) < count:
        k += 1
        cid = f"extra{k}"
        if cid in taken:
            continue
        where = instance.restaurant_by_id[ranked[len(extra) % len(ranked)]].location
        extra.append(Courier(id=cid, location=where, on_time=start, off_time=end))
    return replace(instance, name=f"{instance.name} ({count} more courier{'s' if count > 1 else ''} {start}-{end})",
                   couriers=(*instance.couriers, *extra))


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    order: str
    courier: str
    pickup_time: int
    dropoff_time: int


MINUTE = 60
"""The replay runs in the instances' minutes; the recorder keeps seconds, as for every simulated day."""
STEP_SHARE = 1 - 1e-9
"""A repositioning courier covers this share of meters_per_minute each minute, so that rounding never lets the
straight ride from where it last stopped take longer than the minutes it really spent (the checker's physics)."""


def _log_pickup(rec: Recorder, courier: str, restaurant: str, orders: Sequence[str], time: int) -> None:
    for o in orders:
        rec.apply(time * MINUTE, o, "assigned", {"courier": courier})
        rec.apply(time * MINUTE, o, "picked_up", {"courier": courier})
    rec.trips.append(TripRecord(courier=courier, store=restaurant, profile="meal", orders=tuple(orders), nodes=(),
                                times=(time * MINUTE,), metres=0))


def _log_activity(rec: Recorder, courier: str, *, driving: int, service: int) -> None:
    c = rec.couriers[courier]
    c.driving_s += driving * MINUTE
    c.service_s += service * MINUTE


def deliveries(recorder: Recorder) -> dict[str, Delivery]:
    """Every order dropped off, late or not, with its courier and times in minutes."""
    return {o.id: Delivery(order=o.id, courier=o.courier or "", pickup_time=(o.pickup_at or 0) // MINUTE,
                           dropoff_time=o.delivered_at // MINUTE)
            for o in recorder.orders.values() if o.delivered_at is not None}


class _Ride(NamedTuple):
    """An idle courier's ride toward a target, begun at minute `since` from `start` (`gap` metres long)."""

    since: int
    start: Point
    target: Point
    gap: float


class _Model:
    def __init__(self, instance: Instance, policy: MealPolicy, recorder: Recorder) -> None:
        self.instance, self.policy, self.recorder = instance, policy, recorder
        self.env = simpy.Environment()
        self.rules = instance.parameters.rules
        self.meal = {o.id: instance.meal_order(o) for o in instance.orders}
        self.open: dict[str, MealOrder] = {}
        self.state = {c.id: MealCourier(id=c.id, location=c.location, free_at=c.on_time, off_time=c.off_time)
                      for c in instance.couriers}
        self.queues = {c.id: simpy.Store(self.env) for c in instance.couriers}
        self.placed: list[MealOrder] = []
        self.moving: dict[str, _Ride] = {}
        # where each courier last stopped (its start, then its last door) and the minutes it has ridden idle since
        self.stopped: dict[str, Point] = {c.id: c.location for c in instance.couriers}
        self.idle_ride: dict[str, int] = {c.id: 0 for c in instance.couriers}
        self.speed = self.rules.meters_per_minute * STEP_SHARE
        self.planner = policy if isinstance(policy, MealPlanner) else None
        for c in instance.couriers:
            self.env.process(self._courier(c))
        self.env.process(self._placements())
        period = getattr(policy, "period", None)
        if isinstance(period, int) and not isinstance(period, bool) and period > 0:
            self.env.process(self._periodic(period))

    def _periodic(self, period: int) -> Any:
        """Extra policy calls every `period` minutes while orders can still be open (for postponing policies)."""
        end = max(o.placement_time for o in self.instance.orders) + self.instance.parameters.max_click_to_door
        while self.env.now + period <= end:
            yield self.env.timeout(period)
            self._dispatch()

    def _placements(self) -> Any:
        by_time: dict[int, list[str]] = {}
        for o in self.instance.orders:
            by_time.setdefault(o.placement_time, []).append(o.id)
        for t in sorted(by_time):
            yield self.env.timeout(t - self.env.now)
            for oid in by_time[t]:
                self.open[oid] = self.meal[oid]
                self.placed.append(self.meal[oid])
            self._dispatch()

    def _position(self, ride: _Ride, now: int) -> Point:
        """Where a riding courier is at `now`: it covers `self.speed` (just under meters_per_minute) each minute."""
        step = (now - ride.since) * self.speed
        if step >= ride.gap:
            return ride.target
        f = step / ride.gap
        return (ride.start[0] + f * (ride.target[0] - ride.start[0]),
                ride.start[1] + f * (ride.target[1] - ride.start[1]))

    def _stop(self, courier: str, now: int) -> None:
        """End a courier's ride where it is at `now`, or where it was at its off-time if that came first (logging the
        minutes it rode)."""
        c = self.state[courier]
        now = min(now, c.off_time)
        ride = self.moving.pop(courier)
        minutes = min(now - ride.since, math.ceil(ride.gap / self.speed))
        self.recorder.couriers[courier].repositioning_s += minutes * MINUTE
        self.idle_ride[courier] += minutes
        self.state[courier] = replace(c, location=self._position(ride, now))

    def _dispatch(self) -> None:
        now = int(self.env.now)
        for cid, ride in list(self.moving.items()):
            here = self._position(ride, now)
            if here == ride.target or now >= self.state[cid].off_time:
                self._stop(cid, now)
            else:
                self.state[cid] = replace(self.state[cid], location=here)
        limit = self.instance.parameters.max_click_to_door
        for oid in [oid for oid, o in self.open.items() if now >= o.placement_time + limit]:
            del self.open[oid]
        if self.planner is not None:
            plan = self.planner.plan(now, tuple(self.open.values()), tuple(self.state.values()), self.placed)
        elif self.open:
            plan = MealPlan(assignments=tuple(self.policy.assign(now, tuple(self.open.values()),
                                                                 tuple(self.state.values()))))
        else:
            return
        for a in plan.assignments:
            self._accept(now, a)
        for move in plan.moves:
            self._move(now, move)

    def _move(self, now: int, move: MealMove) -> None:
        c = self.state.get(move.courier)
        if c is None:
            raise SimulatorError(f"policy moved unknown courier {move.courier}")
        # free_at starts at the on-time and only grows, so a courier free by now is on shift
        if not c.free_at <= now < c.off_time or self.queues[c.id].items:
            raise SimulatorError(f"policy moved courier {c.id}, which is not idle at minute {now}")
        if c.id in self.moving:
            self._stop(c.id, now)
            c = self.state[c.id]
        self.moving[c.id] = _Ride(since=now, start=c.location, target=move.target,
                                  gap=math.dist(c.location, move.target))

    def _accept(self, now: int, a: MealAssignment) -> None:
        if a.courier not in self.state:
            raise SimulatorError(f"policy assigned unknown courier {a.courier}")
        missing = [o for o in a.orders if o not in self.open]
        if missing:
            raise SimulatorError(f"policy assigned orders that are not open: {missing}")
        orders = [self.open.pop(o) for o in a.orders]
        if {o.restaurant for o in orders} != {a.restaurant}:
            raise SimulatorError(f"assignment to {a.courier} mixes restaurants or names the wrong one")
        if a.courier in self.moving:
            self._stop(a.courier, now)
        c = self.state[a.courier]
        times = assignment_times(self.rules, max(now, c.free_at), c.location, orders)
        self.state[a.courier] = MealCourier(id=c.id, location=times.end, free_at=times.free_at, off_time=c.off_time)
        # the idle minutes it rode toward this restaurant are delivery work once it picks up there, as the direct
        # ride from its last stop counts them (the checker's utilisation); any detour stays repositioning
        restaurant = orders[0].pickup
        credit = min(self.idle_ride[c.id], max(0, self.rules.travel(self.stopped[c.id], restaurant)
                                                  - self.rules.travel(c.location, restaurant)))
        self.idle_ride[c.id], self.stopped[c.id] = 0, times.end
        self.queues[a.courier].put((c.location, orders, credit))

    def _courier(self, courier: Courier) -> Any:
        env, rules, rec = self.env, self.rules, self.recorder
        half_pick, half_drop = rules.pickup_service // 2, rules.dropoff_service // 2
        while True:
            start, orders, credit = yield self.queues[courier.id].get()
            if env.now < courier.on_time:
                yield env.timeout(courier.on_time - env.now)
            here = start  # where the courier is (its last door, or where an idle move took it)
            restaurant = orders[0].pickup
            leg = rules.travel(here, restaurant)
            yield env.timeout(leg)
            here = restaurant
            pickup = max(max(o.ready_time for o in orders), int(env.now) + half_pick)
            if pickup > courier.off_time:
                _log_activity(rec, courier.id, driving=leg, service=0)
                for o in orders:
                    self.open[o.id] = o
                self._dispatch()
                continue
            yield env.timeout(pickup - env.now)
            _log_pickup(rec, courier.id, orders[0].restaurant, [o.id for o in orders], pickup)
            yield env.timeout(half_pick)
            rec.couriers[courier.id].repositioning_s -= credit * MINUTE
            driving = leg + credit
            for o in orders:
                leg = rules.travel(here, o.door)
                driving += leg
                yield env.timeout(leg + half_drop)
                rec.apply(int(env.now) * MINUTE, o.id, "delivered", {"courier": courier.id})
                yield env.timeout(half_drop)
                here = o.door
            service = rules.pickup_service + rules.dropoff_service * len(orders)
            _log_activity(rec, courier.id, driving=driving, service=service)
            self._dispatch()

    def run(self) -> None:
        self.env.run()


def simulate(instance: Instance, policy: MealPolicy) -> Recorder:
    """Run the day: orders appear at placement, the policy is asked on every placement and courier release, and
    every `policy.period` minutes if the policy has a positive integer `period` attribute. A `MealPlanner` is asked
    through `plan` (with the orders placed so far) and its moves send idle couriers riding; any other policy through
    `assign`, and idle couriers wait where they last stopped."""
    recorder = Recorder()
    for o in instance.orders:
        recorder.orders[o.id] = OrderRecord(id=o.id, placed_at=o.placement_time * MINUTE, location=o.location,
                                            mode="courier", ready_at=o.ready_time * MINUTE, store=o.restaurant)
    for c in instance.couriers:
        recorder.couriers[c.id] = CourierRecord(id=c.id, store="", profile="meal", shift_start=c.on_time * MINUTE,
                                                shift_end=c.off_time * MINUTE)
    _Model(instance, policy, recorder).run()
    return recorder


def _pct(xs: Sequence[float], q: float) -> float:
    """The `q` (0..1) quantile by `simulator.recorder.percentile`; NaN for no values (the paper's tables)."""
    got = percentile(xs, 100 * q)
    return math.nan if got is None else got


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics:
    """The paper's summary of a day; order metrics over delivered orders (drop-off within the maximum).

    `ctd_excess` is the delivered orders' mean click-to-door minus the direct-delivery bound of all orders (the
    paper's frame, which dropped orders flatter); `ctd_excess_delivered` is the mean over the delivered orders of
    each one's click-to-door minus its own bound; `structurally_undeliverable_pct` is the share of orders no courier
    could deliver at all (`undeliverable_alone`), the floor under `undelivered_pct`. The last two are what
    `../shared/tools/mdrp_check.py` reports under the same names."""

    orders: int
    delivered: int
    undelivered_pct: float
    click_to_door_mean: float
    click_to_door_p90: float
    ctd_lower_bound: float
    ctd_excess: float
    ctd_excess_delivered: float
    structurally_undeliverable_pct: float
    overage_mean: float
    ready_to_pickup_mean: float
    ready_to_pickup_p90: float
    utilisation_mean: float
    repositioning_share: float
    cost_per_order: float
    orders_per_bundle: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def delivered(instance: Instance, recorder: Recorder) -> list[tuple[Order, Delivery]]:
    """Orders dropped off within the maximum click-to-door, in instance order."""
    limit = instance.parameters.max_click_to_door
    done = deliveries(recorder)
    return [(o, d) for o in instance.orders if (d := done.get(o.id)) is not None
            and d.dropoff_time - o.placement_time <= limit]


def compute_metrics(instance: Instance, recorder: Recorder) -> Metrics:
    """Click-to-door, overage, ready-to-pickup, undelivered %, utilisation (riding and service for deliveries, over
    the shift), the share of the shift spent repositioning while idle, cost per order, orders per bundle."""
    p = instance.parameters
    done = delivered(instance, recorder)
    ctd = [d.dropoff_time - o.placement_time for o, d in done]
    rtp = [d.pickup_time - o.ready_time for o, d in done]
    per_courier: dict[str, int] = {}
    for _, d in done:
        per_courier[d.courier] = per_courier.get(d.courier, 0) + 1
    cost = sum(max(p.pay_per_order * per_courier.get(c.id, 0), p.guaranteed_pay_per_hour * (c.off_time - c.on_time)
                   / 60) for c in instance.couriers)
    util, moved = [], []
    for c in instance.couriers:
        work = recorder.couriers[c.id]
        util.append((work.driving_s + work.service_s) / MINUTE / max(c.off_time - c.on_time, 1))
        moved.append(work.repositioning_s / MINUTE / max(c.off_time - c.on_time, 1))
    ok = {o.id for o, _ in done}
    bundles = sum(1 for trip in recorder.trips if ok.intersection(trip.orders))
    n = len(instance.orders)
    lb = lower_bound(instance)
    mean = _mean(ctd)
    return Metrics(
        orders=n, delivered=len(done), undelivered_pct=round(100 * (n - len(done)) / n, 3),
        click_to_door_mean=round(mean, 2), click_to_door_p90=round(_pct(ctd, 0.9), 2),
        ctd_lower_bound=round(lb, 2), ctd_excess=round(mean - lb, 2),
        ctd_excess_delivered=round(_mean(excess_over_own_bound(instance, done)), 3),
        structurally_undeliverable_pct=round(100 * len(undeliverable_alone(instance)) / n, 3),
        overage_mean=round(_mean([max(0, x - p.target_click_to_door) for x in ctd]), 2),
        ready_to_pickup_mean=round(_mean(rtp), 2), ready_to_pickup_p90=round(_pct(rtp, 0.9), 2),
        utilisation_mean=round(_mean(util), 3), repositioning_share=round(_mean(moved), 3),
        cost_per_order=round(cost / max(len(done), 1), 2),
        orders_per_bundle=round(len(done) / max(bundles, 1), 3),
    )


def deliveries_csv(instance: Instance, recorder: Recorder) -> str:
    """Every drop-off as CSV `order,placement_time,ready_time,pickup_time,dropoff_time,courier`, in instance order:
    those past the maximum click-to-door too, so that `mdrp_check.py` checks every trip a courier made (and counts
    its work) and itself counts those orders as undelivered."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    done = deliveries(recorder)
    for o in instance.orders:
        if (d := done.get(o.id)) is not None:
            writer.writerow((o.id, o.placement_time, o.ready_time, d.pickup_time, d.dropoff_time, d.courier))
    return out.getvalue()
