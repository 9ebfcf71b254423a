"""The dark-store day on SimPy: orders arrive, are allocated, picked and dispatched by `dispatch` code, couriers ride.

The simulator adds no dispatch logic: each store has a `dispatch.engine.Dispatcher` that it calls on every new
order and on every tick, exactly as the live API does, and couriers report `picked_up`, `delivered`, `at_store`,
`on` and `off` to it. Orders are allocated by `dispatch.allocation.Allocator` (stock, zones, hours, lockers and
pickup points). Travel uses road travel times of each courier's profile at the hour of day. Everything random
is drawn from the scenario's seed, so the same scenario gives the same day; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from dispatch.model import DarkStore, Order, circle_zone
from dispatch.model import Locker as DispatchLocker
from dispatch.model import PickupPoint as DispatchPickupPoint
from dispatch.operations import CourierSetup, Operations, OperationsOptions, Outcome
from dispatch.policy import BatchPolicy, DispatchPolicy, GreedyPolicy, ReoptimizePolicy
from dispatch.state import DEFAULT_CO2_G_PER_KM, Trip
from routing.network import RoadNetwork
from routing.snap import snap
from simulator.demand import orders_for
from simulator.errors import ScenarioError
from simulator.recorder import CourierRecord, OrderRecord, Recorder, TripRecord, kpis
from simulator.scenario import Policy, Scenario, reoptimize_options

DRAIN_S = 3 * 3600
"""After the last order may be placed, couriers get this long to finish before the day is cut."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationResult:
    """A finished day: the recorder (events, couriers, trips) and its KPIs."""

    scenario: Scenario
    recorder: Recorder
    kpis: dict[str, Any]


def make_policy(policy: Policy, *, seed: int) -> DispatchPolicy:
    """The `dispatch` policy a scenario names, with its knobs (reoptimize runs on an iteration limit)."""
    if policy.name == "greedy":
        return GreedyPolicy()
    if policy.name == "batch":
        return BatchPolicy(max_orders=policy.max_orders, hold_s=policy.hold_s, radius_s=policy.radius_s)
    return ReoptimizePolicy(options=reoptimize_options(policy, seed=seed))


def facilities(scenario: Scenario, skus: Sequence[str]) -> list[DarkStore | DispatchLocker | DispatchPickupPoint]:
    """The scenario's stores, lockers and pickup points as `dispatch` facilities."""
    out: list[DarkStore | DispatchLocker | DispatchPickupPoint] = []
    for s in scenario.stores:
        out.append(DarkStore(id=s.id, location=s.location, stock=dict.fromkeys(skus, s.stock),
                             zone=circle_zone(s.location, s.zone_radius_m) if s.zone_radius_m else None,
                             hours=s.hours, picking_s=s.picking_s))
    for lk in scenario.lockers:
        out.append(DispatchLocker(id=lk.id, location=lk.location, compartments=lk.compartments,  # type: ignore[arg-type]
                                  store=lk.store))
    for p in scenario.pickup_points:
        out.append(DispatchPickupPoint(id=p.id, location=p.location, capacity=p.capacity, store=p.store))
    return out


def operations_options(scenario: Scenario) -> OperationsOptions:
    """The operations core's knobs a scenario sets (clock, delivery, allocation, promise)."""
    return OperationsOptions(tick_s=scenario.clock.tick_s, service_s=scenario.delivery.service_s,
                             failed_to=scenario.delivery.failed_to, rank=scenario.allocation.rank,
                             max_detour_s=scenario.allocation.max_detour_s, max_snap_m=scenario.max_snap_m,
                             traffic=scenario.clock.traffic, promise=scenario.promise,
                             default_express_s=scenario.demand.express_s)


def fleet_of(scenario: Scenario) -> list[CourierSetup]:
    """Every courier of the scenario's fleet groups, named `store-profile-HHh-k`."""
    return [CourierSetup(id=f"{g.store}-{g.profile}-{g.shift[0] // 3600:02d}h-{k + 1}", store=g.store,
                         profile=g.profile, capacity=g.capacity, shift_start=g.shift[0], shift_end=g.shift[1])
            for g in scenario.fleet for k in range(g.count)]


def operations_for(scenario: Scenario, network: RoadNetwork) -> Operations:
    """The operations core a scenario configures: its facilities, fleet, policy and knobs on `network`."""
    check_on_map(scenario, network)
    skus = [s.id for s in scenario.demand.skus]
    return Operations(network, facilities(scenario, skus), fleet_of(scenario),
                      make_policy(scenario.policy, seed=scenario.seed),
                      pickers={s.id: s.pickers for s in scenario.stores}, options=operations_options(scenario))


def check_on_map(scenario: Scenario, network: RoadNetwork) -> None:
    """Every facility lies within `max_snap_m` of a road of the map, else a ScenarioError naming it."""
    points = [*((f"stores[{i}].location", f.id, f.location) for i, f in enumerate(scenario.stores)),
              *((f"lockers[{i}].location", f.id, f.location) for i, f in enumerate(scenario.lockers)),
              *((f"pickup_points[{i}].location", f.id, f.location) for i, f in enumerate(scenario.pickup_points))]
    snapped = snap(network, np.array([p[2] for p in points], dtype=np.float64).reshape(-1, 2),
                   max_distance_m=scenario.max_snap_m)
    for (key, fid, (lon, lat)), far, dist in zip(points, snapped.too_far, snapped.distance_m, strict=True):
        if far:
            raise ScenarioError(key, f"{fid!r} at ({lon:.6f}, {lat:.6f}) is {dist:.0f} m from the nearest road of "
                                f"the map (limit {scenario.max_snap_m:.0f} m): off the map?",
                                file=None if scenario.path is None else str(scenario.path))


def customer_draws(scenario: Scenario, orders: Sequence[Order]) -> tuple[dict[str, bool], dict[str, bool]]:
    """Which customers are absent at the door (`delivery.failure_rate`) and which cancel (`delivery.cancel_rate`,
    `cancel_after_s` after placing), drawn from the scenario's seed: the simulator and the live demo draw the
    same customers."""
    rng = np.random.default_rng(scenario.seed)
    ids, n = [o.id for o in orders], len(orders)
    fails = dict(zip(ids, (rng.random(n) < scenario.delivery.failure_rate).tolist(), strict=True))
    cancels = dict(zip(ids, (rng.random(n) < scenario.delivery.cancel_rate).tolist(), strict=True))
    return fails, cancels


class _Day:
    """One simulated day (see the module doc): the world around a `dispatch.operations.Operations` core."""

    def __init__(self, scenario: Scenario, network: RoadNetwork, orders: Sequence[Order],
                 progress: Callable[[int], None] | None, journal: list[dict[str, Any]] | None = None) -> None:
        self.sc = scenario
        self.orders = tuple(orders)
        self.progress = progress
        self.rec = Recorder()
        clock = scenario.clock
        self.env = simpy.Environment(initial_time=clock.start)
        self.cut_at = clock.end + DRAIN_S
        self.core = operations_for(scenario, network)
        self.core.journal = journal
        fleet = fleet_of(scenario)
        self.fails, self.cancels = customer_draws(scenario, self.orders)
        self.pickers = {s.id: simpy.Resource(self.env, capacity=s.pickers) for s in scenario.stores}
        self.picking_s = {s.id: s.picking_s for s in scenario.stores}
        self.picked: dict[str, simpy.Event] = {}
        self.queue: dict[str, simpy.Store] = {}
        self.home: dict[str, str] = {}
        self.ending: set[str] = set()
        self.out: set[str] = set()
        for c in fleet:
            self.home[c.id] = c.store
            self.queue[c.id] = simpy.Store(self.env)
            self.rec.couriers[c.id] = CourierRecord(id=c.id, store=c.store, profile=c.profile,
                                                    shift_start=c.shift_start, shift_end=c.shift_end)
            self.env.process(self._courier(c.id))

    @property
    def now(self) -> int:
        return int(self.env.now)

    def run(self) -> Recorder:
        self.env.process(self._arrivals())
        for store in self.core.dispatchers:
            self.env.process(self._ticker(store))
        if self.progress is not None:
            self.env.process(self._progress())
        self.env.run(until=self.cut_at)
        self.rec.end = self.now
        for cid, c in self.rec.couriers.items():
            if c.off_at is None and cid in self.out:
                c.off_at = self.now
        return self.rec

    def _progress(self) -> Any:
        assert self.progress is not None
        while self.now < self.cut_at:
            yield self.env.timeout(min(600, self.cut_at - self.now))
            self.progress(self.now)

    def _apply(self, outcome: Outcome) -> None:
        """Record what the core says happened, and hand committed trips to their couriers."""
        for e in outcome.events:
            self.rec.apply(e.t, e.order, e.event, e.fields)
        for trip in outcome.trips:
            self.env.process(self._hand_over(trip))

    # --- orders ---------------------------------------------------------------------------------------------

    def _arrivals(self) -> Any:
        for order in self.orders:
            if order.placed_at > self.now:
                yield self.env.timeout(order.placed_at - self.now)
            self._place(order)

    def _place(self, order: Order) -> None:
        self.rec.orders[order.id] = OrderRecord(id=order.id, placed_at=order.placed_at, location=order.location,
                                                mode=order.mode)
        outcome = self.core.place(order, self.now)
        if order.id in self.core.orders:
            self.rec.decisions += 1
            store = self.core.orders[order.id].store
            self.picked[order.id] = self.env.event()
            self.env.process(self._pick(order.id, store))
            if self.cancels[order.id]:
                self.env.process(self._cancel(order.id))
        self._apply(outcome)

    def _pick(self, order_id: str, store: str) -> Any:
        with self.pickers[store].request() as req:
            yield req
            yield self.env.timeout(self.picking_s[store])
        if order_id in self.core.orders:  # not cancelled meanwhile
            self._apply(self.core.picked(order_id, self.now))
            if self.core.orders[order_id].waiting:  # click and collect: its customer comes for it
                self.env.process(self._collect(order_id))
        self.picked[order_id].succeed()

    def _cancel(self, order_id: str) -> Any:
        yield self.env.timeout(self.sc.delivery.cancel_after_s)
        self._apply(self.core.cancel(order_id, self.now))

    # --- dispatch -------------------------------------------------------------------------------------------

    def _ticker(self, store: str) -> Any:
        tick = self.sc.clock.tick_s
        while True:
            self.rec.decisions += 1
            self._apply(self.core.tick(store, self.now))
            if self.now >= self.sc.clock.end and not self.core.open_orders(store):
                return
            yield self.env.timeout(tick)

    def _hand_over(self, trip: Trip) -> Any:
        if self.sc.clock.decision_latency_s:
            yield self.env.timeout(self.sc.clock.decision_latency_s)
        yield self.queue[trip.courier_id].put(trip)

    # --- couriers -------------------------------------------------------------------------------------------

    def _courier(self, cid: str) -> Any:
        info = self.rec.couriers[cid]
        if info.shift_start > self.now:
            yield self.env.timeout(info.shift_start - self.now)
        self.core.shift(cid, True, self.now)
        self.env.process(self._shift_end(cid))
        while True:
            trip = yield self.queue[cid].get()
            self.out.add(cid)
            yield from self._ride(cid, trip)
            self.out.discard(cid)
            if cid in self.ending and not self.queue[cid].items and self.core.courier_status(cid) == "idle":
                self.core.shift(cid, False, self.now)
                info.off_at = self.now
                return

    def _shift_end(self, cid: str) -> Any:
        info = self.rec.couriers[cid]
        yield self.env.timeout(max(0, info.shift_end - self.now))
        self.ending.add(cid)
        if cid not in self.out and not self.queue[cid].items and self.core.courier_status(cid) == "idle":
            self.core.shift(cid, False, self.now)
            info.off_at = self.now

    def _ride(self, cid: str, trip: Trip) -> Any:
        store = self.home[cid]
        core = self.core
        info = self.rec.couriers[cid]
        if trip.departure > self.now:
            yield self.env.timeout(trip.departure - self.now)
        yield self.env.all_of([self.picked[oid] for oid in trip.order_ids])
        self._apply(core.picked_up(cid, self.now))
        here = start = core.dispatchers[store].store_location
        nodes, times, metres = [core.node(store, here)], [self.now], 0
        for oid in trip.order_ids:
            target = core.location(store, oid)
            metres += yield from self._drive(info, store, trip.profile, here, target)
            here = target
            nodes.append(core.node(store, here))
            times.append(self.now)
            arrival = self.now
            yield self.env.timeout(self.sc.delivery.service_s)
            info.service_s += self.sc.delivery.service_s
            info.busy.append((arrival, self.now))
            if self.fails[oid] and self.rec.orders[oid].redirected_to is None:
                self._apply(core.failed(cid, oid, self.now))
                continue
            self._apply(core.delivered(cid, oid, self.now, arrived_at=arrival))
            info.delivered += 1
            if oid in core.orders:  # waits in a locker or at a pickup point
                self.env.process(self._collect(oid))
        metres += yield from self._drive(info, store, trip.profile, here, start)
        nodes.append(core.node(store, start))
        times.append(self.now)
        self._apply(core.at_store(cid, self.now))
        info.trips += 1
        info.metres += metres
        self.rec.trips.append(TripRecord(courier=cid, store=store, profile=trip.profile, orders=trip.order_ids,
                                         nodes=tuple(nodes), times=tuple(times), metres=metres))

    def _drive(self, info: CourierRecord, store: str, profile: str, a: int, b: int) -> Any:
        """Ride from location `a` to `b` of `store` on the fastest path at this hour; returns its length (m)."""
        dt, metres = self.core.leg(store, profile, a, b, self.now)
        if dt:
            info.busy.append((self.now, self.now + dt))
            info.driving_s += dt
            yield self.env.timeout(dt)
        return metres

    def _collect(self, order_id: str) -> Any:
        """The customer empties the compartment or place holding the order some time after delivery."""
        yield self.env.timeout(self.sc.delivery.collect_after_s)
        self._apply(self.core.collected(order_id, self.now))


def build_day(scenario: Scenario, network: RoadNetwork, *, orders: Sequence[Order] | None = None,
              progress: Callable[[int], None] | None = None,
              journal: list[dict[str, Any]] | None = None) -> _Day:
    """The day `simulate` runs, built and not yet run: its demand (unless `orders` are given), operations core,
    stores and couriers. Whatever a scenario gets wrong that a day finds before it starts raises here (a facility
    off the map, a bad row of a replayed demand file, a facility or policy the core refuses), so building a day
    without running it checks a scenario as its run will (`simulator.sweep.check_builds`)."""
    day_orders = tuple(orders) if orders is not None else orders_for(scenario, network)
    return _Day(scenario, network, day_orders, progress, journal)


def simulate(scenario: Scenario, *, network: RoadNetwork | None = None, orders: Sequence[Order] | None = None,
             progress: Callable[[int], None] | None = None,
             journal: list[dict[str, Any]] | None = None) -> SimulationResult:
    """Run one day of `scenario` (its demand, unless `orders` are given) and compute its KPIs.

    `progress(now)` is called every ten simulated minutes (for a progress bar). `journal`, when a list, gets
    every command the day gave the operations core (`Operations.apply` replays them).
    """
    network = network if network is not None else RoadNetwork.from_osm(scenario.map_file)
    rec = build_day(scenario, network, orders=orders, progress=progress, journal=journal).run()
    figures = kpis(rec, courier_hour_cost=scenario.costs.courier_hour, per_km_cost=scenario.costs.per_km,
                   co2_g_per_km=DEFAULT_CO2_G_PER_KM)
    return SimulationResult(scenario=scenario, recorder=rec, kpis=figures)
