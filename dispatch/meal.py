"""Meal delivery (Grubhub MDRP) dispatch: assignment timing rules, the policy protocol and the greedy baseline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from dispatch.errors import InvalidDispatchError

__all__ = [
    "GreedyMealPolicy",
    "MealAssignment",
    "MealCourier",
    "MealOrder",
    "MealPolicy",
    "MealRules",
    "MealTimes",
    "assignment_times",
]

Point = tuple[float, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class MealRules:
    """Travel speed and service minutes; travel time is ceil(euclidean / meters_per_minute)."""

    meters_per_minute: float
    pickup_service: int
    dropoff_service: int

    def __post_init__(self) -> None:
        if not self.meters_per_minute > 0:
            raise InvalidDispatchError("meters_per_minute", f"must be positive, got {self.meters_per_minute}")
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
