"""The dark-store day on SimPy: orders arrive, are allocated, picked and dispatched by `dispatch` code, couriers ride.

The simulator adds no dispatch logic: each store has a `dispatch.engine.Dispatcher` that it calls on every new
order and on every tick, exactly as the live API does, and couriers report `picked_up`, `delivered`, `at_store`,
`on` and `off` to it. Orders are allocated by `dispatch.allocation.Allocator` (stock, zones, hours, lockers and
pickup points). Travel uses road travel times of each courier's profile at the hour of day. Everything random
is drawn from the scenario's seed, so the same scenario gives the same day; nothing here does I/O.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from dispatch.allocation import Allocator
from dispatch.engine import Dispatcher
from dispatch.model import DarkStore, Order, circle_zone, deadline
from dispatch.model import Locker as DispatchLocker
from dispatch.model import PickupPoint as DispatchPickupPoint
from dispatch.packaging import compartments_for
from dispatch.places import LivePlaces
from dispatch.policy import BatchPolicy, DispatchPolicy, GreedyPolicy, ReoptimizePolicy
from dispatch.promise import DispatcherLoad, Quoter
from dispatch.reoptimize import ReoptimizeOptions
from dispatch.state import DEFAULT_CO2_G_PER_KM, Courier, Decisions, DispatchOrder, Trip
from routing.network import RoadNetwork
from routing.oracle import TravelOracle
from routing.snap import snap
from simulator.demand import orders_for
from simulator.errors import ScenarioError
from simulator.recorder import CourierRecord, OrderRecord, Recorder, TripRecord, kpis
from simulator.scenario import Policy, Scenario

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
    return ReoptimizePolicy(options=ReoptimizeOptions(time_limit_s=None, iterations=policy.iterations, seed=seed))


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
                                f"the map (limit {scenario.max_snap_m:.0f} m): off the map?")


class _Day:
    """One simulated day (see the module doc); `run` fills the recorder."""

    def __init__(self, scenario: Scenario, network: RoadNetwork, orders: Sequence[Order],
                 progress: Callable[[int], None] | None) -> None:
        self.sc = scenario
        self.orders = tuple(orders)
        self.progress = progress
        self.rec = Recorder()
        clock = scenario.clock
        self.env = simpy.Environment(initial_time=clock.start)
        self.cut_at = clock.end + DRAIN_S
        check_on_map(scenario, network)
        skus = [s.id for s in scenario.demand.skus]
        self.facilities = facilities(scenario, skus)

        self.network = network
        fac_xy = np.array([f.location for f in self.facilities], dtype=np.float64)
        fac_nodes = snap(network, fac_xy, max_distance_m=scenario.max_snap_m).nodes
        self.node_of_facility = {f.id: int(fac_nodes[i]) for i, f in enumerate(self.facilities)}
        profiles = sorted({g.profile for g in scenario.fleet} or {"bike"})
        self.oracle = TravelOracle(network, profiles, traffic=clock.traffic)
        self.traffic = clock.traffic

        rng = np.random.default_rng(scenario.seed)
        n = len(self.orders)
        self.fails = dict(zip((o.id for o in self.orders), rng.random(n) < scenario.delivery.failure_rate,
                              strict=True))
        self.cancels = dict(zip((o.id for o in self.orders), rng.random(n) < scenario.delivery.cancel_rate,
                                strict=True))
        self.boxes: dict[str, tuple[str, ...]] = {}
        self.dispatchers: dict[str, Dispatcher] = {}
        self.pickers: dict[str, simpy.Resource] = {}
        self.picker_free: dict[str, list[int]] = {}
        self.picked: dict[str, simpy.Event] = {}
        self.queue: dict[str, simpy.Store] = {}
        self.home: dict[str, str] = {}
        self.ending: set[str] = set()
        self.out: set[str] = set()
        policy = make_policy(scenario.policy, seed=scenario.seed)
        self.places: dict[str, LivePlaces] = {}
        for s in scenario.stores:
            store_profiles = sorted({g.profile for g in scenario.fleet if g.store == s.id} or {profiles[0]})
            pool = self.oracle.pool(pinned=[self.node_of_facility[s.id]], hour=self._hour(clock.start),
                                    profiles=store_profiles)
            self.places[s.id] = places = LivePlaces(pool)
            d = Dispatcher(policy, store_id=s.id, store_location=places.place(self.node_of_facility[s.id]),
                           travel=places, tick_s=clock.tick_s)
            self.dispatchers[s.id] = d
            self.pickers[s.id] = simpy.Resource(self.env, capacity=s.pickers)
            self.picker_free[s.id] = [clock.start] * s.pickers
        self.load = DispatcherLoad(self.dispatchers, pickers={s.id: s.pickers for s in scenario.stores})
        rule = scenario.allocation
        self.allocator = Allocator(network, self.facilities, profile="bike", max_snap_m=scenario.max_snap_m,
                                   load=self.load if rule.rank == "eta" else None, max_detour_s=rule.max_detour_s)
        self.quoter = Quoter(self.allocator, self.load, scenario.promise)
        for g in scenario.fleet:
            for k in range(g.count):
                cid = f"{g.store}-{g.profile}-{g.shift[0] // 3600:02d}h-{k + 1}"
                loc = self.dispatchers[g.store].store_location
                self.dispatchers[g.store].add_courier(Courier(
                    id=cid, capacity=(g.capacity,), shift_start=g.shift[0], shift_end=g.shift[1], position=loc,
                    profile=g.profile, home_store=g.store, status="off"))
                self.home[cid] = g.store
                self.queue[cid] = simpy.Store(self.env)
                self.rec.couriers[cid] = CourierRecord(id=cid, store=g.store, profile=g.profile,
                                                       shift_start=g.shift[0], shift_end=g.shift[1])
                self.env.process(self._courier(cid))

    @property
    def now(self) -> int:
        return int(self.env.now)

    def _hour(self, t: int) -> int | None:
        """The hour of day travel times follow at `t` (None: free flow, without traffic)."""
        return t // 3600 % 24 if self.sc.clock.traffic else None

    def run(self) -> Recorder:
        self.env.process(self._arrivals())
        for store in self.dispatchers:
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

    # --- orders ---------------------------------------------------------------------------------------------

    def _arrivals(self) -> Any:
        for order in self.orders:
            if order.placed_at > self.now:
                yield self.env.timeout(order.placed_at - self.now)
            self._place(order)

    def _place(self, order: Order) -> None:
        now = self.now
        rec = OrderRecord(id=order.id, placed_at=order.placed_at, location=order.location, mode=order.mode)
        self.rec.orders[order.id] = rec
        alloc = self.allocator.allocate([order])[0]
        if order.mode == "courier" and order.items:
            rec.quoted_eta = self.quoter.express_for(alloc, now).eta
        self.rec.event(now, order.id, "placed", mode=order.mode, quoted_eta=rec.quoted_eta)
        if not alloc.allocated:
            rec.status, rec.reason, rec.closed_at = "rejected", alloc.reason, now
            self.rec.event(now, order.id, "rejected", reason=alloc.reason)
            return
        assert alloc.store is not None and alloc.facility is not None
        rec.store, rec.facility, rec.boxes = alloc.store, alloc.facility, len(alloc.boxes)
        self.boxes[order.id] = alloc.boxes
        rec.promise_by = deadline(order)
        self.rec.event(now, order.id, "allocated", store=alloc.store, facility=alloc.facility,
                       boxes=list(alloc.boxes))
        store = next(s for s in self.sc.stores if s.id == alloc.store)
        ready_at = self._predict_ready(alloc.store, store.picking_s)
        self.picked[order.id] = self.env.event()
        self.env.process(self._pick(order.id, alloc.store, store.picking_s))
        places = self.places[alloc.store]
        if order.mode == "courier":
            node = int(snap(self.network, np.array([order.location], dtype=np.float64),
                            max_distance_m=self.sc.max_snap_m).nodes[0])
        else:
            node = self.node_of_facility[alloc.facility]
        location = places.place(node)
        dorder = DispatchOrder(id=order.id, store=alloc.store, location=location, ready_at=ready_at,
                               promise_by=rec.promise_by, load=(max(1, len(alloc.boxes)),),
                               service_s=self.sc.delivery.service_s, placed_at=order.placed_at)
        self._decided(alloc.store, self.dispatchers[alloc.store].on_order(dorder, now))
        if self.cancels[order.id]:
            self.env.process(self._cancel(order.id, alloc.store))

    def _predict_ready(self, store: str, picking_s: int) -> int:
        """When picking will be done: the store's pickers work FIFO, `picking_s` per order (as `_pick` does)."""
        free = self.picker_free[store]
        start = max(self.now, heapq.heappop(free))
        heapq.heappush(free, start + picking_s)
        return start + picking_s

    def _pick(self, order_id: str, store: str, picking_s: int) -> Any:
        with self.pickers[store].request() as req:
            yield req
            yield self.env.timeout(picking_s)
        self.rec.orders[order_id].ready_at = self.now
        self.rec.event(self.now, order_id, "picked", store=store)
        self.picked[order_id].succeed()

    def _cancel(self, order_id: str, store: str) -> Any:
        yield self.env.timeout(self.sc.delivery.cancel_after_s)
        d = self.dispatchers[store]
        if order_id not in {o.id for o in d.open_orders}:
            return
        d.cancel(order_id, self.now)
        self.allocator.cancel(order_id)
        rec = self.rec.orders[order_id]
        rec.status, rec.closed_at = "cancelled", self.now
        self.rec.event(self.now, order_id, "cancelled")

    # --- dispatch -------------------------------------------------------------------------------------------

    def _ticker(self, store: str) -> Any:
        d = self.dispatchers[store]
        tick = self.sc.clock.tick_s
        while True:
            self.places[store].set_hour(self._hour(self.now))
            self._decided(store, d.tick(self.now))
            if self.now >= self.sc.clock.end and not d.orders:
                return
            yield self.env.timeout(tick)

    def _decided(self, store: str, decisions: Decisions) -> None:
        self.rec.decisions += 1
        for trip in decisions.trips:
            for oid in trip.order_ids:
                rec = self.rec.orders[oid]
                rec.assigned_at, rec.courier = self.now, trip.courier_id
                self.rec.event(self.now, oid, "assigned", courier=trip.courier_id, eta=trip.etas[
                    trip.order_ids.index(oid)])
            self.env.process(self._hand_over(trip))

    def _hand_over(self, trip: Trip) -> Any:
        if self.sc.clock.decision_latency_s:
            yield self.env.timeout(self.sc.clock.decision_latency_s)
        yield self.queue[trip.courier_id].put(trip)

    # --- couriers -------------------------------------------------------------------------------------------

    def _courier(self, cid: str) -> Any:
        info = self.rec.couriers[cid]
        store = self.home[cid]
        d = self.dispatchers[store]
        if info.shift_start > self.now:
            yield self.env.timeout(info.shift_start - self.now)
        d.on_courier_event(cid, "on", self.now, location=d.store_location)
        self.env.process(self._shift_end(cid))
        while True:
            trip = yield self.queue[cid].get()
            self.out.add(cid)
            yield from self._ride(cid, trip)
            self.out.discard(cid)
            if cid in self.ending and not self.queue[cid].items and d.couriers[cid].status == "idle":
                d.on_courier_event(cid, "off", self.now)
                info.off_at = self.now
                return

    def _shift_end(self, cid: str) -> Any:
        info = self.rec.couriers[cid]
        yield self.env.timeout(max(0, info.shift_end - self.now))
        self.ending.add(cid)
        d = self.dispatchers[self.home[cid]]
        if cid not in self.out and not self.queue[cid].items and d.couriers[cid].status == "idle":
            d.on_courier_event(cid, "off", self.now)
            info.off_at = self.now

    def _ride(self, cid: str, trip: Trip) -> Any:
        store = self.home[cid]
        d = self.dispatchers[store]
        info = self.rec.couriers[cid]
        if trip.departure > self.now:
            yield self.env.timeout(trip.departure - self.now)
        yield self.env.all_of([self.picked[oid] for oid in trip.order_ids])
        d.on_courier_event(cid, "picked_up", self.now)
        for oid in trip.order_ids:
            rec = self.rec.orders[oid]
            rec.pickup_at = self.now
            self.rec.event(self.now, oid, "picked_up", courier=cid)
            if rec.redirected_to is None:
                self.allocator.fulfil(oid)
        places = self.places[store]
        here = start = d.store_location
        nodes, times, metres, failed = [places.node(here)], [self.now], 0, []
        for oid in trip.order_ids:
            target = d.orders[oid].location
            metres += yield from self._drive(info, trip.profile, places, here, target)
            here = target
            nodes.append(places.node(here))
            times.append(self.now)
            arrival = self.now
            yield self.env.timeout(self.sc.delivery.service_s)
            info.service_s += self.sc.delivery.service_s
            info.busy.append((arrival, self.now))
            rec = self.rec.orders[oid]
            if self.fails[oid] and rec.redirected_to is None:
                failed.append(oid)
                self.rec.event(self.now, oid, "failed", courier=cid, reason="customer_absent")
                continue
            d.on_courier_event(cid, "delivered", self.now, order_id=oid)
            rec.status, rec.delivered_at, rec.closed_at = "delivered", arrival, arrival
            info.delivered += 1
            self.rec.event(arrival, oid, "delivered", courier=cid, on_time=bool(rec.on_time))
            if rec.mode != "courier":
                self.env.process(self._collect(oid, oid))
            elif rec.redirected_to is not None:
                self.env.process(self._collect(oid, _locker_hold(oid)))
        metres += yield from self._drive(info, trip.profile, places, here, start)
        nodes.append(places.node(start))
        times.append(self.now)
        d.on_courier_event(cid, "at_store", self.now)
        for oid in failed:
            d.cancel(oid, self.now)
        for oid in failed:
            rec = self.rec.orders[oid]
            if rec.mode == "courier" and self.sc.delivery.failed_to == "locker" and self._redirect(oid, store):
                continue
            rec.status, rec.reason, rec.closed_at = "failed", "customer_absent", self.now
            if rec.mode != "courier":
                self.allocator.cancel(oid)
        info.trips += 1
        info.metres += metres
        self.rec.trips.append(TripRecord(courier=cid, store=store, profile=trip.profile, orders=trip.order_ids,
                                         nodes=tuple(nodes), times=tuple(times), metres=metres))

    def _drive(self, info: CourierRecord, profile: str, places: LivePlaces, a: int, b: int) -> Any:
        """Ride from location `a` to `b` on the fastest path at this hour; returns its length (m)."""
        places.set_hour(self._hour(self.now))
        travel = places.matrices()
        dt, metres = travel.duration(profile, a, b), travel.distance(profile, a, b)
        if dt:
            info.busy.append((self.now, self.now + dt))
            info.driving_s += dt
            yield self.env.timeout(dt)
        return metres

    def _redirect(self, order_id: str, store: str) -> bool:
        """Send a parcel back at the store on to the locker nearest it with room for its boxes; False if none."""
        by_name = {b.name: b for b in self.allocator.catalogue.boxes}
        needed = compartments_for([by_name[b] for b in self.boxes[order_id]])
        inventory = self.allocator.inventory
        lockers = sorted(self.sc.lockers, key=lambda lk: (self.allocator.travel_time(store, lk.id), lk.id))
        for lk in lockers:
            assigned = inventory.assign_compartments(lk.id, needed)
            if assigned is None:
                continue
            inventory.reserve(_locker_hold(order_id), locker=lk.id, compartments=assigned)
            rec = self.rec.orders[order_id]
            rec.redirected_to = lk.id
            self.rec.event(self.now, order_id, "redirected", locker=lk.id)
            assert rec.promise_by is not None
            location = self.places[store].place(self.node_of_facility[lk.id])
            dorder = DispatchOrder(id=order_id, store=store, location=location, ready_at=self.now,
                                   promise_by=rec.promise_by, load=(max(1, rec.boxes),),
                                   service_s=self.sc.delivery.service_s, placed_at=rec.placed_at)
            self._decided(store, self.dispatchers[store].on_order(dorder, self.now))
            return True
        return False

    def _collect(self, order_id: str, reservation: str) -> Any:
        """The customer empties the compartment or place held under `reservation` some time after delivery."""
        yield self.env.timeout(self.sc.delivery.collect_after_s)
        self.allocator.cancel(reservation)
        self.rec.event(self.now, order_id, "collected")


def _locker_hold(order_id: str) -> str:
    """The reservation id of the compartments a redirected parcel takes (its own order keeps the stock taken)."""
    return order_id + "@locker"


def simulate(scenario: Scenario, *, network: RoadNetwork | None = None, orders: Sequence[Order] | None = None,
             progress: Callable[[int], None] | None = None) -> SimulationResult:
    """Run one day of `scenario` (its demand, unless `orders` are given) and compute its KPIs.

    `progress(now)` is called every ten simulated minutes (for a progress bar).
    """
    network = network if network is not None else RoadNetwork.from_osm(scenario.map_file)
    day_orders = tuple(orders) if orders is not None else orders_for(scenario, network)
    rec = _Day(scenario, network, day_orders, progress).run()
    figures = kpis(rec, courier_hour_cost=scenario.costs.courier_hour, per_km_cost=scenario.costs.per_km,
                   co2_g_per_km=DEFAULT_CO2_G_PER_KM)
    return SimulationResult(scenario=scenario, recorder=rec, kpis=figures)
