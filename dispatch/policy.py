"""Dispatch policies behind one protocol: greedy (the baseline), batch (hold to bundle), reoptimize (rolling horizon).

Each policy maps a `DispatchState` to `Decisions` and keeps no state of its own between calls, so the same state
(and, for reoptimize, an iteration limit and seed) always gives the same decisions; the simulator and the live
API call exactly this code through `dispatch.engine.Dispatcher`.

Greedy and batch commit trips only (no tentative plan): an order is considered once picking is done by the next
tick (`ready_at <= now + tick_s`), in FIFO order (`placed_at`, then `ready_at`, then id), and goes to the idle
courier that reaches the store first (ties: courier id). Returns ride alone in both. Reasons for orders left
open: `not_ready`, `held_for_batching`, `no_idle_courier`, `over_capacity`, `unreachable`, `window_closed`
(a return's window or the courier's shift cannot be met), `no_store_courier` (returns need a store courier).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from dispatch.errors import InvalidDispatchError
from dispatch.reoptimize import ReoptimizeOptions, reoptimize
from dispatch.state import (
    HELD_FOR_BATCHING,
    NO_IDLE_COURIER,
    Courier,
    Decisions,
    DispatchOrder,
    DispatchState,
    Trip,
)
from dispatch.state import unassigned as unassigned_order
from routing.matrix import UNREACHABLE
from routing.solvers.lns import kernels

__all__ = ["BatchPolicy", "DispatchPolicy", "GreedyPolicy", "ReoptimizeOptions", "ReoptimizePolicy"]

OVER_CAPACITY = "over_capacity"
UNREACHABLE_REASON = "unreachable"
WINDOW_CLOSED = "window_closed"
NO_STORE_COURIER = "no_store_courier"


class DispatchPolicy(Protocol):
    """Decides, from everything known at `state.now`, which trips start now and what the plan is."""

    def decide(self, state: DispatchState) -> Decisions: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ReoptimizePolicy:
    """Rolling horizon: solve a routing problem of all open orders and couriers each time (see reoptimize).

    Making one loads OR-Tools' compiled search (about a second, once per process), so no decision waits for it.
    """

    options: ReoptimizeOptions = field(default_factory=ReoptimizeOptions)

    def __post_init__(self) -> None:
        if not isinstance(self.options, ReoptimizeOptions):
            raise InvalidDispatchError("options", f"must be ReoptimizeOptions, got {type(self.options).__name__}")
        if self.options.backend != "pyvrp":
            kernels()

    def decide(self, state: DispatchState) -> Decisions:
        return reoptimize(state, self.options, policy="reoptimize")


@dataclass(frozen=True, slots=True, kw_only=True)
class GreedyPolicy:
    """The baseline: each ready order, first come first served, alone to the nearest idle courier."""

    def decide(self, state: DispatchState) -> Decisions:
        return _Simple(state, max_orders=1, hold_s=0, radius_s=0, name="greedy").run()


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchPolicy:
    """Hold ready deliveries up to `hold_s` to bundle up to `max_orders` whose doors lie within `radius_s`.

    The oldest ready order leaves with its bundle as soon as the bundle is full (`max_orders`, or no more room),
    when it has waited `hold_s` since picking was done, or when waiting one more tick would break its promise.
    Bundles ride nearest door first.
    """

    hold_s: int
    max_orders: int = 3
    radius_s: int = 300

    def __post_init__(self) -> None:
        for name, minimum in (("hold_s", 0), ("max_orders", 1), ("radius_s", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InvalidDispatchError(name, f"must be an integer >= {minimum}, got {value!r}")

    def decide(self, state: DispatchState) -> Decisions:
        return _Simple(state, max_orders=self.max_orders, hold_s=self.hold_s, radius_s=self.radius_s,
                       name="batch").run()


class _Simple:
    """Greedy and batch: FIFO over ready orders, nearest idle courier, optional bundling; trips start now."""

    def __init__(self, state: DispatchState, *, max_orders: int, hold_s: int, radius_s: int, name: str) -> None:
        self.s = state
        self.max_orders, self.hold_s, self.radius_s, self.name = max_orders, hold_s, radius_s, name
        self.limit = state.now + state.tick_s
        self._room: tuple[int, ...] | None = None
        # each idle courier: where and when it is free (`free_at`), and when it can be at the store
        idle = [c for c in state.couriers if c.status == "idle"]
        self.free: dict[str, tuple[int, int]] = {c.id: state.free_at(c) for c in idle}
        durations, store = state.travel.durations, state.store_location
        self.at_store: dict[str, int] = {c.id: time + int(durations[c.profile][location, store])
                                         for c in idle for location, time in [self.free[c.id]]}
        self.idle = sorted(idle, key=lambda c: (self.at_store[c.id], c.id))

    def run(self) -> Decisions:
        s = self.s
        queue = s.queue
        fifo = queue.orders
        waiting = queue.ready_at > self.limit  # not ready by the next tick: left NOT_READY
        at = np.flatnonzero(~waiting).tolist()  # where each ready order is in fifo
        ready = [fifo[i] for i in at]
        left: dict[str, str] = {}  # ready orders left open, and why
        done: set[str] = set()
        trips: list[Trip] = []
        # who may join a bundle: ready, not a return, not in a trip yet (the head itself is left out below)
        locations = queue.locations[at]
        free = np.fromiter((not o.is_return for o in ready), dtype=np.bool_, count=len(ready))
        position = {o.id: k for k, o in enumerate(ready)}
        for k, head in enumerate(ready):
            if head.id in done:
                continue
            near: list[tuple[int, DispatchOrder]] = []  # (seconds from the head's door, order)
            if self.idle and self.max_orders != 1 and not head.is_return:  # else _bundle is [head] alone
                row = self.s.travel.durations[self.idle[0].profile][head.location, locations]
                close = free & (row <= self.radius_s)
                close[k] = False
                joins = np.flatnonzero(close)
                near = list(zip(row[joins].tolist(), [ready[i] for i in joins.tolist()], strict=True))
            bundle = self._bundle(head, near)
            if not self._due(head, bundle):
                left[head.id] = HELD_FOR_BATCHING
                continue
            trip, reason = self._assign(bundle)
            if trip is None and len(bundle) > 1:
                bundle = [head]
                trip, reason = self._assign(bundle)
            if trip is None:
                left[head.id] = reason
                continue
            trips.append(trip)
            for o in bundle:
                done.add(o.id)
                free[position[o.id]] = False
                left.pop(o.id, None)
        carried = tuple(trip for c in s.couriers if c.carrying and (trip := s.carried_trip(c)) is not None)
        listed = queue.not_ready
        if left:  # fifo order, at C speed: the waiting ones' shared entries, the ready ones left in their places
            listed = listed.copy()
            for k, o in enumerate(ready):
                if o.id in left:
                    listed[at[k]] = unassigned_order(o.id, left[o.id])
                    waiting[at[k]] = True
        unassigned = tuple(listed[waiting])
        # the unassigned are drawn from the queue's positions, none of them in a trip: distinct by construction
        return Decisions.trusted(now=s.now, policy=self.name, trips=tuple(trips), carried=carried,
                                 unassigned=unassigned)

    def _bundle(self, head: DispatchOrder, near: list[tuple[int, DispatchOrder]]) -> list[DispatchOrder]:
        """`head` and, nearest first, those of `near` (orders within `radius_s` of it that may join, with their
        seconds from it by the first idle courier's profile) that fit."""
        if self.max_orders == 1 or head.is_return or not self.idle:
            return [head]
        room = [c - a for c, a in zip(self._roomiest(), head.load_vector, strict=True)]
        bundle = [head]
        for _, o in sorted(near, key=lambda p: (p[0], p[1].placed_at, p[1].id)):
            if len(bundle) == self.max_orders:
                break
            if all(a <= r for a, r in zip(o.load_vector, room, strict=True)):
                bundle.append(o)
                room = [r - a for r, a in zip(room, o.load_vector, strict=True)]
        return bundle

    def _roomiest(self) -> tuple[int, ...]:
        """The largest capacity of an idle courier in each load dimension (an upper bound on any one's room)."""
        if self._room is None:
            self._room = tuple(max(dim) for dim in zip(*(c.capacity_vector for c in self.idle), strict=True))
        return self._room

    @staticmethod
    def _total(bundle: list[DispatchOrder]) -> tuple[int, ...]:
        return tuple(sum(dim) for dim in zip(*(o.load_vector for o in bundle), strict=True))

    def _due(self, head: DispatchOrder, bundle: list[DispatchOrder]) -> bool:
        if self.max_orders == 1 or head.is_return or len(bundle) >= self.max_orders:
            return True
        if self.idle and any(t >= c for t, c in zip(self._total(bundle), self._roomiest(), strict=True)):
            return True
        if self.s.now >= head.ready_at + self.hold_s:
            return True
        profile = self.idle[0].profile if self.idle else self.s.travel.profiles[0]
        ride = self.s.travel.duration(profile, self.s.store_location, head.location)
        return self.limit + ride > head.promise_by

    def _sequence(self, courier: Courier, bundle: list[DispatchOrder]) -> list[str]:
        dur = self.s.travel.durations[courier.profile]
        here, todo, out = self.s.store_location, list(bundle), []
        while todo:
            nxt = min(todo, key=lambda o: (int(dur[here, o.location]), o.id))
            out.append(nxt.id)
            todo.remove(nxt)
            here = nxt.location
        return out

    def _assign(self, bundle: list[DispatchOrder]) -> tuple[Trip | None, str]:
        s = self.s
        if not self.idle:
            return None, NO_IDLE_COURIER
        load = self._total(bundle)
        returns = any(o.is_return for o in bundle)
        reasons: set[str] = set()
        for c in self.idle:
            if not c.fits(load):
                reasons.add(OVER_CAPACITY)
                continue
            if returns and c.free_floating:
                reasons.add(NO_STORE_COURIER)
                continue
            order_ids = self._sequence(c, bundle)
            stops = [s.store_location, *(s.order(i).location for i in order_ids), s.store_location]
            location, _ = self.free[c.id]
            dur = s.travel.durations[c.profile]
            if any(dur[a, b] >= UNREACHABLE for a, b in itertools.pairwise(stops)) or (
                    dur[location, s.store_location] >= UNREACHABLE):
                reasons.add(UNREACHABLE_REASON)
                continue
            departure = max([self.at_store[c.id], *(o.ready_at for o in bundle if not o.is_return)])
            trip = s.make_trip(c, order_ids, departure, approach_from=location if c.free_floating else None)
            late_return = any(s.order(i).is_return and eta > s.order(i).promise_by
                              for i, eta in zip(trip.order_ids, trip.etas, strict=True))
            if trip.dispatch_at > self.limit:
                reasons.add(NO_IDLE_COURIER)
                continue
            if late_return or trip.end_at > c.shift_end:
                reasons.add(WINDOW_CLOSED)
                continue
            self.idle.remove(c)
            self._room = None
            return trip, ""
        for reason in (WINDOW_CLOSED, UNREACHABLE_REASON, NO_STORE_COURIER, OVER_CAPACITY):
            if reason in reasons:
                return None, reason
        return None, NO_IDLE_COURIER
