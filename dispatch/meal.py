"""Meal delivery (Grubhub MDRP) dispatch: assignment timing rules, the policy protocol and the greedy baseline."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from scipy.optimize import linear_sum_assignment

from dispatch.errors import InvalidDispatchError

__all__ = [
    "MEAL_POLICIES",
    "GreedyMealPolicy",
    "MealAssignment",
    "MealCourier",
    "MealMove",
    "MealOrder",
    "MealPlan",
    "MealPlanner",
    "MealPolicy",
    "MealRules",
    "MealTimes",
    "RollingHorizonMealPolicy",
    "RollingHorizonOptions",
    "assignment_times",
    "meal_policy",
]

Point = tuple[float, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class MealRules:
    """Travel speed, service minutes and the day's limit; travel time is ceil(euclidean / meters_per_minute), and an
    order dropped off more than `max_click_to_door` minutes after it was placed counts as undelivered."""

    meters_per_minute: float
    pickup_service: int
    dropoff_service: int
    max_click_to_door: int = 90

    def __post_init__(self) -> None:
        if not self.meters_per_minute > 0:
            raise InvalidDispatchError("meters_per_minute", f"must be positive, got {self.meters_per_minute}")
        limit = self.max_click_to_door
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidDispatchError("max_click_to_door", f"must be an integer >= 1, got {limit!r}")
        for name in ("pickup_service", "dropoff_service"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value % 2:
                raise InvalidDispatchError(name, f"must be an even non-negative integer, got {value!r}")

    def travel(self, a: Point, b: Point) -> int:
        return math.ceil(math.dist(a, b) / self.meters_per_minute)


@dataclass(frozen=True, slots=True, kw_only=True)
class MealOrder:
    """An open order as the policy sees it: its restaurant, door, placement and ready minutes."""

    id: str
    restaurant: str
    pickup: Point
    door: Point
    placement_time: int
    ready_time: int

    def __post_init__(self) -> None:
        if not self.id or not self.restaurant:
            raise InvalidDispatchError("id", "order and restaurant ids must be non-empty")
        if self.ready_time < self.placement_time:
            raise InvalidDispatchError(f"orders[{self.id}].ready_time", "must not be before placement_time")


@dataclass(frozen=True, slots=True, kw_only=True)
class MealCourier:
    """A courier as the policy sees it: where and when it becomes free (after all its assignments), its off-time."""

    id: str
    location: Point
    free_at: int
    off_time: int

    def __post_init__(self) -> None:
        if not self.id:
            raise InvalidDispatchError("id", "courier id must be non-empty")


@dataclass(frozen=True, slots=True, kw_only=True)
class MealAssignment:
    """One pickup at a restaurant then the drop-offs in the given order."""

    courier: str
    restaurant: str
    orders: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.orders:
            raise InvalidDispatchError("orders", "an assignment needs at least one order")
        if len(set(self.orders)) != len(self.orders):
            raise InvalidDispatchError("orders", f"repeated order in {self.orders}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MealTimes:
    """When an assignment's events happen, started by a courier free at `start` at `location`."""

    arrival: int
    pickup: int
    dropoffs: tuple[int, ...]
    free_at: int
    end: Point
    driving: int


def assignment_times(rules: MealRules, start: int, location: Point, orders: Sequence[MealOrder]) -> MealTimes:
    """The MDRP timing rules: pickup = max(ready, arrival + half service), drop-off = arrival + half service."""
    half_pick, half_drop = rules.pickup_service // 2, rules.dropoff_service // 2
    restaurant = orders[0].pickup
    driving = rules.travel(location, restaurant)
    arrival = start + driving
    pickup = max(max(o.ready_time for o in orders), arrival + half_pick)
    t, here = pickup + half_pick, restaurant
    drops = []
    for o in orders:
        leg = rules.travel(here, o.door)
        driving += leg
        drops.append(t + leg + half_drop)
        t, here = t + leg + 2 * half_drop, o.door
    return MealTimes(arrival=arrival, pickup=pickup, dropoffs=tuple(drops), free_at=t, end=here, driving=driving)


class MealPolicy(Protocol):
    """Decides, at minute `now`, which open orders go to which courier (queued after its current work)."""

    def assign(self, now: int, open_orders: Sequence[MealOrder], couriers: Sequence[MealCourier],
               ) -> list[MealAssignment]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class MealMove:
    """An idle courier sent toward `target`: it rides there in a straight line and waits, unless it gets work first."""

    courier: str
    target: Point

    def __post_init__(self) -> None:
        if not self.courier:
            raise InvalidDispatchError("courier", "courier id must be non-empty")
        if len(self.target) != 2 or not all(math.isfinite(v) for v in self.target):
            raise InvalidDispatchError("target", f"must be a finite (x, y) point, got {self.target!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MealPlan:
    """One call's decisions: assignments committed now and moves of couriers left idle."""

    assignments: tuple[MealAssignment, ...] = ()
    moves: tuple[MealMove, ...] = ()

    def __post_init__(self) -> None:
        moved = [m.courier for m in self.moves]
        if len(set(moved)) != len(moved):
            raise InvalidDispatchError("moves", "a courier is moved twice")
        busy = {a.courier for a in self.assignments}.intersection(moved)
        if busy:
            raise InvalidDispatchError("moves", f"couriers {sorted(busy)} are both assigned and moved")


@runtime_checkable
class MealPlanner(Protocol):
    """A policy that also moves idle couriers: assignments and moves from one look at the day.

    `placed` is every order placed so far, in placement order: the demand seen up to `now`, nothing of the future.
    A courier is idle when `free_at <= now < off_time` and it gets no assignment in the plan."""

    def plan(self, now: int, open_orders: Sequence[MealOrder], couriers: Sequence[MealCourier],
             placed: Sequence[MealOrder]) -> MealPlan: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class GreedyMealPolicy:
    """Naive baseline: each open order (by placement, then id) alone to the courier that reaches its restaurant first.

    A courier's start is max(now, free_at); couriers that could not pick up by their off-time are skipped and the
    order stays open. Ties go to the earlier courier in `couriers`.
    """

    rules: MealRules

    def __post_init__(self) -> None:
        if not isinstance(self.rules, MealRules):
            raise InvalidDispatchError("rules", f"must be MealRules, got {type(self.rules).__name__}")

    def assign(self, now: int, open_orders: Sequence[MealOrder], couriers: Sequence[MealCourier],
               ) -> list[MealAssignment]:
        state = {c.id: c for c in couriers}
        out = []
        for order in sorted(open_orders, key=lambda o: (o.placement_time, o.id)):
            best: tuple[int, MealCourier, MealTimes] | None = None
            for c in state.values():
                if c.off_time < now:
                    continue
                start = max(now, c.free_at)
                arrival = start + self.rules.travel(c.location, order.pickup)
                if best is not None and arrival >= best[0]:
                    continue
                times = assignment_times(self.rules, start, c.location, [order])
                if times.pickup <= c.off_time:
                    best = (arrival, c, times)
            if best is None:
                continue
            _, c, times = best
            state[c.id] = MealCourier(id=c.id, location=times.end, free_at=times.free_at, off_time=c.off_time)
            out.append(MealAssignment(courier=c.id, restaurant=order.restaurant, orders=(order.id,)))
        return out


MAX_BUNDLE = 8
"""The largest `RollingHorizonOptions.max_bundle` (bundles of up to 4 orders try every drop-off order, larger ones
keep the order they were built in; no courier carries more than 8 meals at once)."""
MAX_KNOB_MINUTES = 1440
"""The largest minutes-valued knob of `RollingHorizonOptions` (a day: longer spans or waits mean nothing on a day)."""
MAX_KNOB_WEIGHT = 1_000_000
"""The largest weight, penalty, reward or ratio of `RollingHorizonOptions` (costs stay far inside float range; the
defaults are at most 1000)."""
MINUTE_KNOBS = ("bundle_max_delay", "split_bonus", "bind_margin")
"""The float knobs of `RollingHorizonOptions` counted in minutes (bounded by `MAX_KNOB_MINUTES`)."""
_A_DAY = " (minutes: a day)"


def _at_most(name: str, value: float, most: int, unit: str) -> None:
    """A knob's upper bound (`unit` after the bound in the message)."""
    if value > most:
        raise InvalidDispatchError(name, f"must be at most {most}{unit}, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RollingHorizonOptions:
    """Knobs of the rolling-horizon policy (minutes, and cost weights in minutes of click-to-door).

    `frequency`: the policy asks to be called at least every so many minutes; a matched pair is committed only if
    the courier must leave before the next call to pick up at the bundle's ready time. `horizon`: orders ready
    within it take part in the matching; `courier_horizon`: couriers free within it do (busy ones as look-ahead).
    `max_bundle`: largest bundle; the target size is ceil(orders / couriers) capped by it. `travel_weight`: cost per
    minute a courier drives to the restaurant (keeps near couriers for near orders). `trip_weight`: cost per minute
    of courier time the pair takes, from when the courier starts (now, or when it is free) to the end of its last
    drop-off (riding to the restaurant, waiting there for the food, pickup, the rides to the doors and the
    drop-offs) or to the courier's off-time if that comes first: at a similar predicted click-to-door the pair that
    ties a courier up least wins (a courier that arrives as the food is ready rather than early, a bundle with
    shorter rides), which leaves courier time for the orders still to come; minutes past a courier's off-time cost
    nothing, as no later order could use them (a courier near the end of its shift takes the long trip).
    `pending_weight`: cost per minute until the courier is free (a match to a busy courier is a forecast that later
    orders often overturn, so at a similar pickup a free courier is preferred). `late_penalty`: cost per order
    predicted past the rules' `max_click_to_door` (such orders are still matched, after those that can make it).
    `order_value`: reward per order served (large: as many orders as possible are matched). `size_window`: couriers
    free within it count for the bundle target size; `size_orders_window`: orders ready within it count for it (0:
    the whole horizon). `skip_late`: orders that cannot make `max_click_to_door` even if picked up at once are left
    out, pairs whose orders would all be late are never matched and late orders are dropped from a committed bundle
    (a courier is not spent on an undeliverable order). `urgency_weight`: reward per minute an order has already
    waited since its ready time (serves waiting orders before fresh ones when couriers are short). `commit_busy`: a
    match to a courier still busy is committed at once (False: it waits until the courier is free, so a later call
    can still change it). `join_wait`: when orders outnumber couriers free within `size_window` by `join_ratio`, a
    committed bundle takes along open orders of the same restaurant that are not committed elsewhere and are ready
    at most so many minutes after its pickup, up to `max_bundle`, one at a time the one adding the least delay, if
    every drop-off stays within `max_click_to_door` (-1: never); with `end_join`, a courier whose trip runs past its
    off-time takes along any such order it can still pick up by its off-time (its minutes past the off-time serve no
    later order, so they carry orders the couriers staying on would otherwise take). `split_idle`: a committed
    bundle of two or more orders is split with a free courier that this call leaves idle when the two trips cost
    less than the bundle plus `split_bonus` minutes (cost: the orders' predicted click-to-door excess and the trip
    cost; the bonus counts an idle courier's minutes as cheaper than `trip_weight` says, since no order uses them
    now). `bundle_window`: a bundle starts from its restaurant's earliest-ready order and adds, one at a time, the
    order ready at most so many minutes later that gives the least predicted excess (doors in one direction ride
    together; 0: consecutive orders by ready time), unless it would add more than `bundle_max_delay` minutes of
    excess (the bundle stays smaller). `shift_weight`: cost per minute a courier has left before its off-time, up to
    `shift_window` minutes (at a similar pickup a courier about to go off serves the order, keeping couriers with
    longer shifts for later orders). `move_to_match`: in `plan`, a free courier matched to a bundle it need not
    leave for yet rides toward that restaurant meanwhile. `move_to_demand`: in `plan`, every other idle courier
    rides toward the restaurants of the orders placed within the last `demand_window` minutes (a greedy k-median
    over them, weighted by their orders; see `RollingHorizonMealPolicy.plan`). `commit_ride`: with `move_to_match`,
    a free courier matched to a bundle it must leave for now rides toward the restaurant and the match is committed
    only once its ride there is at most so many minutes (-1: committed as it leaves, its whole ride bound): until
    then each call may give the bundle to a courier that has come free nearer, or the courier to another bundle.
    `bind_margin`: a match whose orders would be dropped off within so many minutes of `max_click_to_door` is
    committed as the courier leaves (an order near the limit is not left to a later call).
    """

    frequency: int = 1
    horizon: int = 25
    courier_horizon: int = 30
    max_bundle: int = 4
    travel_weight: float = 0.0
    pending_weight: float = 0.4
    late_penalty: float = 60.0
    order_value: float = 1000.0
    size_window: int = 5
    size_orders_window: int = 15
    skip_late: bool = True
    urgency_weight: float = 1.75
    commit_busy: bool = False
    join_wait: int = 3
    join_ratio: float = 1.5
    bundle_window: int = 8
    bundle_max_delay: float = 25.0
    shift_weight: float = 0.0
    shift_window: int = 60
    move_to_match: bool = True
    move_to_demand: bool = True
    demand_window: int = 120
    trip_weight: float = 1.0
    split_idle: bool = True
    split_bonus: float = 3.0
    end_join: bool = True
    commit_ride: int = 1
    bind_margin: float = 25.0

    def __post_init__(self) -> None:
        for name in ("skip_late", "commit_busy", "move_to_match", "move_to_demand", "split_idle", "end_join"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidDispatchError(name, f"must be a bool, got {getattr(self, name)!r}")
        for name in ("join_wait", "commit_ride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < -1:
                raise InvalidDispatchError(name, f"must be an integer >= -1, got {value!r}")
            _at_most(name, value, MAX_KNOB_MINUTES, _A_DAY)
        for name in ("frequency", "horizon", "courier_horizon", "max_bundle", "size_window",
                     "size_orders_window", "bundle_window", "shift_window", "demand_window"):
            value, least = getattr(self, name), 0 if name in ("size_window", "size_orders_window",
                                                                   "bundle_window") else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise InvalidDispatchError(name, f"must be an integer >= {least}, got {value!r}")
            _at_most(name, value, *((MAX_BUNDLE, " orders") if name == "max_bundle" else (MAX_KNOB_MINUTES, _A_DAY)))
        for name in ("travel_weight", "trip_weight", "pending_weight", "late_penalty", "order_value", "urgency_weight",
                     "join_ratio", "bundle_max_delay", "shift_weight", "split_bonus", "bind_margin"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InvalidDispatchError(name, f"must be a finite non-negative number, got {value!r}")
            _at_most(name, value, *((MAX_KNOB_MINUTES, _A_DAY) if name in MINUTE_KNOBS else (MAX_KNOB_WEIGHT, "")))


@dataclass(frozen=True, slots=True)
class _Bundle:
    restaurant: str
    pickup: Point
    orders: tuple[MealOrder, ...]
    ready: int
    offsets: tuple[int, ...]  # drop-off minus (pickup + half pickup service), per order in drop order
    excess_const: float  # sum over orders of (half pickup + offset - direct drop-off), add n * pickup for the excess
    placements: tuple[int, ...]


def _delay(bundle: _Bundle) -> float:
    """Predicted click-to-door excess of a bundle's orders over direct delivery if picked up when it is ready."""
    return len(bundle.orders) * bundle.ready + bundle.excess_const


@dataclass(frozen=True, slots=True, kw_only=True)
class RollingHorizonMealPolicy:
    """Rolling-horizon repeated matching in the spirit of Reyes et al. (2018), deterministic.

    At each call: the open orders ready within the horizon are bundled per restaurant (from the earliest ready, the
    orders ready soon after that add the least delay, target size ceil(orders / available couriers) up to `max_bundle`,
    drop-off sequence with the least total delay); every (bundle, courier) pair is scored by the predicted click-to-door
    excess of its orders over direct delivery (exact MDRP times), a cost per minute of courier time the trip takes up to
    the courier's off-time, a small cost per minute the courier is still busy and a penalty for orders predicted past
    the maximum click-to-door, minus a value per order served; `scipy.optimize.linear_sum_assignment` matches them. A
    match is committed only when the courier is free and must leave before the next call (`period` minutes) to pick up
    on time, otherwise it is postponed (busy couriers take part as look-ahead). A committed bundle is split with a
    free courier the matching left idle when the two trips cost less. When short of couriers, a committed bundle
    takes along spare orders of its restaurant (a courier whose trip runs past its off-time, any it can still pick
    up by then). A courier that could not pick up by its off-time is never matched. `plan` (the `MealPlanner` entry)
    also moves the couriers left idle: toward the restaurant of the bundle they are matched to but not yet leaving
    for, the others toward recent demand.
    """

    rules: MealRules
    options: RollingHorizonOptions = field(default_factory=RollingHorizonOptions)

    def __post_init__(self) -> None:
        if not isinstance(self.rules, MealRules):
            raise InvalidDispatchError("rules", f"must be MealRules, got {type(self.rules).__name__}")
        if not isinstance(self.options, RollingHorizonOptions):
            raise InvalidDispatchError("options", f"must be RollingHorizonOptions, got {type(self.options).__name__}")

    @property
    def period(self) -> int:
        """Minutes between the calls the policy needs (the simulator adds periodic calls)."""
        return self.options.frequency

    def _bundle(self, orders: Sequence[MealOrder]) -> _Bundle:
        rules = self.rules
        hp, hd = rules.pickup_service // 2, rules.dropoff_service // 2
        r = orders[0].pickup
        best: tuple[int, tuple[MealOrder, ...], tuple[int, ...]] | None = None
        perms = itertools.permutations(orders) if len(orders) <= 4 else iter([tuple(orders)])
        for perm in perms:
            t, here, offs = 0, r, []
            for o in perm:
                leg = rules.travel(here, o.door)
                offs.append(t + leg + hd)
                t, here = t + leg + 2 * hd, o.door
            total = sum(offs)
            if best is None or total < best[0]:
                best = (total, tuple(perm), tuple(offs))
        assert best is not None
        _, seq, offs_t = best
        const = sum(hp + off - (o.ready_time + hp + rules.travel(r, o.door) + hd) for o, off in zip(seq, offs_t,
                                                                                                   strict=True))
        return _Bundle(restaurant=seq[0].restaurant, pickup=r, orders=seq, ready=max(o.ready_time for o in seq),
                       offsets=offs_t, excess_const=float(const), placements=tuple(o.placement_time for o in seq))

    def _bundles(self, orders: Sequence[MealOrder], size: int) -> list[_Bundle]:
        by_restaurant: dict[str, list[MealOrder]] = {}
        for o in sorted(orders, key=lambda o: (o.ready_time, o.placement_time, o.id)):
            by_restaurant.setdefault(o.restaurant, []).append(o)
        out: list[_Bundle] = []
        for rid in sorted(by_restaurant):
            group = by_restaurant[rid]
            if not self.options.bundle_window or size == 1:
                out.extend(self._bundle(group[k:k + size]) for k in range(0, len(group), size))
                continue
            while group:
                members = [group.pop(0)]
                bundle, latest = self._bundle(members), members[0].ready_time + self.options.bundle_window
                while len(members) < size:
                    cands = [self._bundle([*members, o]) for o in group if o.ready_time <= latest]
                    if not cands:
                        break
                    grown = min(cands, key=_delay)
                    if _delay(grown) - _delay(bundle) > self.options.bundle_max_delay:
                        break
                    bundle, members = grown, list(grown.orders)
                    group = [o for o in group if o not in members]
                out.append(bundle)
        return out

    def assign(self, now: int, open_orders: Sequence[MealOrder], couriers: Sequence[MealCourier],
               ) -> list[MealAssignment]:
        return self._decide(now, open_orders, couriers, bind_late=False)[0]

    def plan(self, now: int, open_orders: Sequence[MealOrder], couriers: Sequence[MealCourier],
             placed: Sequence[MealOrder]) -> MealPlan:
        """`assign`, then the couriers left idle move (`RollingHorizonOptions.move_to_match`, `move_to_demand`)."""
        opt = self.options
        assignments, heading = self._decide(now, open_orders, couriers,
                                            bind_late=opt.move_to_match and opt.commit_ride >= 0)
        taken = {a.courier for a in assignments}
        idle = [c for c in couriers if c.free_at <= now < c.off_time and c.id not in taken]
        moves = [MealMove(courier=c.id, target=heading[c.id]) for c in idle
                 if opt.move_to_match and c.id in heading and c.location != heading[c.id]]
        if opt.move_to_demand:
            moves += self._demand_moves(now, [c for c in idle if c.id not in heading or not opt.move_to_match],
                                        placed)
        return MealPlan(assignments=tuple(assignments), moves=tuple(moves))

    def _decide(self, now: int, open_orders: Sequence[MealOrder], couriers: Sequence[MealCourier], *, bind_late: bool,
                ) -> tuple[list[MealAssignment], dict[str, Point]]:
        """The committed assignments, and the restaurant of the bundle each free courier is matched to but not yet
        leaving for, or (`bind_late`: `plan` moves the courier there) not yet within `commit_ride` minutes of."""
        opt, rules = self.options, self.rules
        hp, hd = rules.pickup_service // 2, rules.dropoff_service // 2
        heading: dict[str, Point] = {}
        orders = [o for o in open_orders if o.ready_time <= now + opt.horizon]
        if opt.skip_late:
            orders = [o for o in orders if max(o.ready_time, now + hp) + hp + rules.travel(o.pickup, o.door)
                      + hd - o.placement_time <= rules.max_click_to_door]
        avail = [c for c in couriers if c.off_time >= now and max(now, c.free_at) <= now + opt.courier_horizon]
        if not orders or not avail:
            return [], heading
        soon = sum(1 for c in avail if c.free_at <= now + opt.size_window) or 1
        counted = len(orders) if not opt.size_orders_window else sum(
            1 for o in orders if o.ready_time <= now + opt.size_orders_window)
        size = max(1, min(opt.max_bundle, math.ceil(counted / soon)))
        bundles = self._bundles(orders, size)
        start = np.array([max(now, c.free_at) for c in avail], dtype=float)
        off = np.array([c.off_time for c in avail], dtype=float)
        cxy = np.array([c.location for c in avail], dtype=float)
        travel, pickup, late, cost = self._excess_and_trip(bundles, cxy, start, off)
        n = np.array([len(b.orders) for b in bundles], dtype=float)[:, None]
        cost += (opt.travel_weight * travel + opt.pending_weight * (start - now)[None, :] + opt.late_penalty * late
                 - opt.order_value * n)
        if opt.shift_weight:
            cost += opt.shift_weight * np.minimum(off - start, opt.shift_window)[None, :]
        if opt.urgency_weight:
            waited = np.array([sum(max(0, now - o.ready_time) for o in b.orders) for b in bundles], dtype=float)
            cost -= opt.urgency_weight * waited[:, None]
        feasible = pickup <= off[None, :]
        if opt.skip_late:
            cost += opt.order_value * late
            feasible &= late < n
        big = 1e9
        cost = np.where(feasible, cost, big)
        rows, cols = linear_sum_assignment(cost)
        chosen: list[tuple[int, tuple[MealOrder, ...]]] = []
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            if not feasible[i, j]:
                continue
            b = bundles[i]
            latest_departure = b.ready - hp - travel[i, j]
            if latest_departure >= now + opt.frequency:
                if start[j] <= now:
                    heading[avail[j].id] = b.pickup
                continue
            if not opt.commit_busy and start[j] > now:
                continue
            if (bind_late and start[j] <= now and travel[i, j] > opt.commit_ride
                    and not any(pickup[i, j] + hp + offset - placed > rules.max_click_to_door - opt.bind_margin
                                for offset, placed in zip(b.offsets, b.placements, strict=True))):
                heading[avail[j].id] = b.pickup
                continue
            keep = b.orders
            if opt.skip_late and late[i, j]:
                times = assignment_times(rules, int(start[j]), avail[j].location, b.orders)
                keep = tuple(o for o, d in zip(b.orders, times.dropoffs, strict=True)
                             if d - o.placement_time <= rules.max_click_to_door)
                if not keep:
                    continue
            chosen.append((j, keep))
        if opt.split_idle and chosen:
            chosen = self._split(now, chosen, avail, cxy, off, start, heading)
        if opt.join_wait >= 0 and chosen and counted >= opt.join_ratio * soon:
            chosen = self._join(orders, chosen, avail, start)
        return [MealAssignment(courier=avail[j].id, restaurant=keep[0].restaurant, orders=tuple(o.id for o in keep))
                for j, keep in chosen], heading

    def _demand_moves(self, now: int, idle: Sequence[MealCourier], placed: Sequence[MealOrder]) -> list[MealMove]:
        """Idle couriers toward the restaurants of recent demand: the restaurants of the orders placed within
        `demand_window` minutes, weighted by their count, are the candidate spots; as many spots as idle couriers
        are chosen greedily, each the one that most lowers the demand-weighted distance from every restaurant to its
        nearest chosen spot (a greedy k-median), and the couriers are matched to the spots by the least total ride
        (`linear_sum_assignment`). A courier already at its spot stays."""
        if not idle:
            return []
        weight: dict[Point, float] = {}
        for k in range(len(placed) - 1, -1, -1):
            o = placed[k]
            if o.placement_time < now - self.options.demand_window:
                break
            if o.placement_time <= now:
                weight[o.pickup] = weight.get(o.pickup, 0.0) + 1.0
        if not weight:
            return []
        sites = np.array(list(weight), dtype=float)
        w = np.array(list(weight.values()))
        d = np.sqrt(((sites[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2))
        near = np.full(len(sites), np.inf)
        spots: list[int] = []
        for _ in range(min(len(idle), len(sites))):
            left = (w[None, :] * np.minimum(near[None, :], d)).sum(axis=1)
            left[spots] = np.inf
            best = int(np.argmin(left))
            spots.append(best)
            near = np.minimum(near, d[best])
        cxy = np.array([c.location for c in idle], dtype=float)
        txy = sites[spots]
        ride = np.sqrt(((cxy[:, None, :] - txy[None, :, :]) ** 2).sum(axis=2))
        rows, cols = linear_sum_assignment(ride)
        return [MealMove(courier=idle[i].id, target=(float(txy[j][0]), float(txy[j][1])))
                for i, j in zip(rows.tolist(), cols.tolist(), strict=True) if ride[i, j] > 0]

    def _excess_and_trip(self, bundles: Sequence[_Bundle], cxy: np.ndarray, start: np.ndarray, off: np.ndarray,
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per (bundle, courier at `cxy` starting at `start`, off at `off`): the minutes riding to the restaurant,
        the pickup minute, the number of orders dropped off past the maximum click-to-door, and the orders' predicted
        click-to-door excess over direct delivery plus the trip cost (`RollingHorizonOptions.trip_weight`)."""
        rules, hp, hd = self.rules, self.rules.pickup_service // 2, self.rules.dropoff_service // 2
        rxy = np.array([b.pickup for b in bundles], dtype=float)
        dist = np.sqrt(((rxy[:, None, :] - cxy[None, :, :]) ** 2).sum(axis=2))
        travel = np.ceil(dist / rules.meters_per_minute)
        ready = np.array([b.ready for b in bundles], dtype=float)[:, None]
        n = np.array([len(b.orders) for b in bundles], dtype=float)[:, None]
        pickup = np.maximum(ready, start[None, :] + travel + hp)
        cost = n * pickup + np.array([b.excess_const for b in bundles])[:, None]
        late = np.zeros_like(cost)
        for i, b in enumerate(bundles):
            for offset, placed in zip(b.offsets, b.placements, strict=True):
                late[i] += (pickup[i] + hp + offset - placed) > rules.max_click_to_door
        if self.options.trip_weight:
            last = np.array([b.offsets[-1] for b in bundles], dtype=float)[:, None]
            cost += self.options.trip_weight * (np.minimum(pickup + hp + last + hd, off[None, :]) - start[None, :])
        return travel, pickup, late, cost

    def _trip_costs(self, bundle: _Bundle, cxy: np.ndarray, off: np.ndarray, start: np.ndarray) -> np.ndarray:
        """Per courier (at `cxy`, off at `off`, starting at `start`), the bundle's predicted click-to-door excess plus
        the trip cost, as in the matching; infinite if it cannot pick up by its off-time or a drop-off would be past
        the maximum."""
        _, pickup, late, cost = self._excess_and_trip([bundle], cxy, start, off)
        return np.where((pickup[0] <= off) & (late[0] == 0), cost[0], np.inf)

    def _split(self, now: int, chosen: list[tuple[int, tuple[MealOrder, ...]]], avail: Sequence[MealCourier],
               cxy: np.ndarray, off: np.ndarray, start: np.ndarray, heading: dict[str, Point],
               ) -> list[tuple[int, tuple[MealOrder, ...]]]:
        """Each committed bundle of two or more orders (courier column, orders), split in two with a free courier
        that this call leaves idle when that costs less (see `RollingHorizonOptions.split_idle`); the best split over
        every part and idle courier, bundles in the order committed. `cxy`, `off`, `start`: the matching's courier
        columns."""
        used = {j for j, _ in chosen}
        idle = [k for k, c in enumerate(avail) if start[k] <= now and k not in used and c.id not in heading]
        out: list[tuple[int, tuple[MealOrder, ...]]] = []
        extra: list[tuple[int, tuple[MealOrder, ...]]] = []
        free = (cxy[idle], off[idle], start[idle])
        for j, keep in chosen:
            mine = (cxy[j:j + 1], off[j:j + 1], start[j:j + 1])
            whole = float(self._trip_costs(self._bundle(keep), *mine)[0]) if len(keep) > 1 and idle else math.inf
            if not math.isfinite(whole):
                out.append((j, keep))
                continue
            best: tuple[float, tuple[MealOrder, ...], tuple[MealOrder, ...], int] | None = None
            for size in range(1, len(keep)):
                for part in itertools.combinations(range(len(keep)), size):
                    stay = self._bundle([o for i, o in enumerate(keep) if i not in part])
                    kept = float(self._trip_costs(stay, *mine)[0])
                    if not math.isfinite(kept):
                        continue
                    away = self._bundle([keep[i] for i in part])
                    other = self._trip_costs(away, *free)
                    k = int(np.argmin(other))
                    if math.isfinite(other[k]) and (best is None or kept + other[k] < best[0]):
                        best = (kept + float(other[k]), stay.orders, away.orders, idle[k])
            if best is None or best[0] >= whole + self.options.split_bonus:
                out.append((j, keep))
                continue
            _, stay_orders, away_orders, k = best
            out.append((j, stay_orders))
            extra.append((k, away_orders))
            idle.remove(k)
            free = (cxy[idle], off[idle], start[idle])
        return out + extra

    def _join(self, orders: Sequence[MealOrder], chosen: list[tuple[int, tuple[MealOrder, ...]]],
              avail: Sequence[MealCourier], start: np.ndarray) -> list[tuple[int, tuple[MealOrder, ...]]]:
        """Each committed bundle (courier column, orders) with spare orders of its restaurant joined (see
        `RollingHorizonOptions.join_wait`)."""
        opt, rules = self.options, self.rules
        taken = {o.id for _, keep in chosen for o in keep}
        spare: dict[str, list[MealOrder]] = {}
        for o in sorted(orders, key=lambda o: (o.ready_time, o.placement_time, o.id)):
            if o.id not in taken:
                spare.setdefault(o.restaurant, []).append(o)
        out = []
        for j, keep in chosen:
            c, st = avail[j], int(start[j])
            group = list(keep)
            times = assignment_times(rules, st, c.location, group)
            pickup = times.pickup
            ending = opt.end_join and times.free_at > c.off_time
            while len(group) < opt.max_bundle:
                best: tuple[float, list[MealOrder], int, MealOrder] | None = None
                for o in spare.get(group[0].restaurant, ()):
                    if o.id in taken or o.ready_time > (c.off_time if ending else pickup + opt.join_wait):
                        continue
                    seq = self._bundle([*group, o]).orders
                    after = assignment_times(rules, st, c.location, seq)
                    if after.pickup > c.off_time or any(d - x.placement_time > rules.max_click_to_door
                                                        for x, d in zip(seq, after.dropoffs, strict=True)):
                        continue
                    delay = float(sum(d - x.ready_time - rules.travel(x.pickup, x.door)
                                      for x, d in zip(seq, after.dropoffs, strict=True)))
                    if best is None or delay < best[0]:
                        best = (delay, list(seq), after.pickup, o)
                if best is None:
                    break
                _, group, pickup, joined = best
                taken.add(joined.id)
            out.append((j, tuple(group)))
        return out


MEAL_POLICIES = ("rolling", "rolling-stay", "greedy")
"""The meal policies by name, the default first: `rolling` (`RollingHorizonMealPolicy`, idle couriers move),
`rolling-stay` (couriers wait where they last stopped, the paper's setting, with a lighter trip cost: `trip_weight`
0.25, its best on the seeds 0-2 days when couriers stay, and the waiting reward it was tuned with: `urgency_weight`
1.0) and `greedy` (the baseline)."""


def meal_policy(name: str, rules: MealRules) -> GreedyMealPolicy | RollingHorizonMealPolicy:
    """The meal policy called `name` (one of `MEAL_POLICIES`) with its default knobs."""
    if name == "rolling":
        return RollingHorizonMealPolicy(rules=rules)
    if name == "rolling-stay":
        return RollingHorizonMealPolicy(rules=rules, options=RollingHorizonOptions(
            move_to_match=False, move_to_demand=False, trip_weight=0.25, urgency_weight=1.0))
    if name == "greedy":
        return GreedyMealPolicy(rules=rules)
    raise InvalidDispatchError("policy", f"must be one of {', '.join(MEAL_POLICIES)}, got {name!r}")
