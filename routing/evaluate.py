"""Independent evaluation of any plan: cost, schedule, lateness and every violated constraint."""

from __future__ import annotations

from dataclasses import dataclass

from routing.problem import Job, Plan, Problem, Route, Shipment, Stop, Vehicle, Visit


@dataclass(frozen=True, slots=True, kw_only=True)
class VisitTiming:
    """When a visit is reached, served and left, and the load on board after it."""

    visit: Visit
    arrival: int
    start: int
    departure: int
    load: tuple[int, ...]
    lateness: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteEvaluation:
    """The schedule and figures of one route."""

    vehicle: int
    departure: int
    end: int
    distance: int
    duration: int
    lateness_cost: int
    timings: tuple[VisitTiming, ...]
    violations: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """Figures of a whole plan; `feasible` when no constraint is violated."""

    cost: int
    distance: int
    duration: int
    lateness_cost: int
    penalty: int
    vehicles_used: int
    routes: tuple[RouteEvaluation, ...]
    violations: tuple[str, ...]

    @property
    def feasible(self) -> bool:
        return not self.violations


def _add(load: list[int], amounts: tuple[int, ...], sign: int) -> None:
    for d, a in enumerate(amounts):
        load[d] += sign * a


class _RouteWalker:
    """Walks one route forward in time, collecting timings and violations."""

    def __init__(self, problem: Problem, route: Route) -> None:
        self.p = problem
        self.route = route
        self.v: Vehicle = problem.vehicles[route.vehicle]
        self.dur = problem.durations[self.v.profile]
        self.dist = problem.distances[self.v.profile]
        self.violations: list[str] = []
        self.name = f"vehicle {self.v.id}"
        self.pending: list[int] = []
        self.timings: list[VisitTiming] = []

    def _drive(self, t: int, frm: int, to: int, load: list[int]) -> int:
        """Arrival at `to` leaving `frm` at `t`, taking the pending breaks on the way or while waiting there."""
        clock, left = t, int(self.dur[frm, to])
        for b in self.pending:
            brk = self.v.breaks[b]
            start = max(clock, brk.window.start)
            if start > brk.window.end:
                self.violations.append(f"{self.name}: break {b} starts at {start}, after its window closes at "
                                       f"{brk.window.end}")
            left = max(0, left - (start - clock))
            clock = start + brk.duration
            self.timings.append(VisitTiming(visit=Visit(kind="break", index=b), arrival=start, start=start,
                                            departure=clock, load=tuple(load), lateness=0))
        self.pending = []
        return clock + left

    def _trips(self) -> list[list[Visit]]:
        trips: list[list[Visit]] = [[]]
        for visit in self.route.visits:
            if visit.kind == "reload":
                trips.append([])
            else:
                trips[-1].append(visit)
        return trips

    def _stop(self, visit: Visit) -> tuple[Stop, str]:
        if visit.kind == "job":
            return self.p.jobs[visit.index].stop, f"job {self.p.jobs[visit.index].id}"
        s = self.p.shipments[visit.index]
        if visit.kind == "pickup":
            return s.pickup, f"pickup of shipment {s.id}"
        return s.delivery, f"delivery of shipment {s.id}"

    def _check_capacity(self, load: list[int], where: str) -> None:
        cap = self.v.capacity
        if any(load[d] > cap[d] for d in range(len(cap))):
            self.violations.append(f"{self.name}: load {load} exceeds capacity {list(cap)} {where}")

    def walk(self, depart: int | None = None) -> RouteEvaluation:
        """The route's schedule leaving at the earliest (the shift's start), its `duration` net of the waiting a
        later departure would save; or, with `depart`, leaving then and its `duration` as scheduled."""
        v, p = self.v, self.p
        trips = self._trips()
        if len(trips) > v.max_trips:
            self.violations.append(f"{self.name}: {len(trips)} trips, max_trips is {v.max_trips}")
        timings = self.timings
        self._check_breaks()
        here, t = v.start, v.shift.start if depart is None else depart
        distance = lateness_cost = 0
        first_departure: int | None = None
        waits: list[int] = []
        slacks: list[int] = []
        for trip_no, trip in enumerate(trips):
            if trip_no > 0:
                depot = v.reload_location
                distance += int(self.dist[here, depot])
                t = self._drive(t, here, depot, [0] * p.n_dims)
                here = depot
                timings.append(VisitTiming(visit=Visit(kind="reload", index=depot), arrival=t, start=t,
                                           departure=t, load=tuple([0] * p.n_dims), lateness=0))
            jobs = [p.jobs[x.index] for x in trip if x.kind == "job"]
            release = max((j.release for j in jobs), default=0)
            if release > t:
                waits.append(release - t)
                t = release
            if first_departure is None:
                first_departure = t
            load = [0] * p.n_dims
            for j in jobs:
                _add(load, j.delivery, +1)
            self._check_capacity(load, f"leaving the depot on trip {trip_no + 1}")
            for visit in trip:
                if visit.kind == "break":
                    self.pending.append(visit.index)
                    continue
                stop, label = self._stop(visit)
                distance += int(self.dist[here, stop.location])
                arrival = self._drive(t, here, stop.location, load)
                start = stop.service_start(arrival)
                if start is None:
                    self.violations.append(
                        f"{self.name}: {label} reached at {arrival}, after its last window closed at "
                        f"{stop.latest}")
                    start = arrival
                waits.append(start - arrival)
                slacks.append(stop.latest - start + sum(waits))
                late, lateness_cost = self._lateness(visit, start, lateness_cost)
                self._apply_load(visit, load, label)
                t = start + stop.service
                here = stop.location
                timings.append(VisitTiming(visit=visit, arrival=arrival, start=start, departure=t,
                                           load=tuple(load), lateness=late))
        distance += int(self.dist[here, v.end_location])
        end = self._drive(t, here, v.end_location, [0] * p.n_dims)
        if end > v.shift.end:
            self.violations.append(f"{self.name}: back at {end}, after its shift ends at {v.shift.end}")
        departure = v.shift.start if first_departure is None else first_departure
        duration = end - departure
        if depart is None:
            duration -= min(min(slacks, default=0), sum(waits))
        if v.max_duration is not None and duration > v.max_duration:
            self.violations.append(f"{self.name}: route takes {duration}, max_duration is {v.max_duration}")
        stops = sum(1 for x in self.route.visits if x.kind not in ("reload", "break"))
        if v.max_stops is not None and stops > v.max_stops:
            self.violations.append(f"{self.name}: {stops} stops, max_stops is {v.max_stops}")
        return RouteEvaluation(vehicle=self.route.vehicle, departure=departure, end=end, distance=distance,
                               duration=duration, lateness_cost=lateness_cost, timings=tuple(timings),
                               violations=tuple(self.violations))

    def _check_breaks(self) -> None:
        taken = [x.index for x in self.route.visits if x.kind == "break"]
        if sorted(taken) != list(range(len(self.v.breaks))):
            self.violations.append(f"{self.name}: takes breaks {sorted(taken)}, must take each of its "
                                   f"{len(self.v.breaks)} breaks once")

    def _lateness(self, visit: Visit, start: int, cost: int) -> tuple[int, int]:
        item: Job | Shipment
        if visit.kind == "job":
            item = self.p.jobs[visit.index]
        elif visit.kind == "delivery":
            item = self.p.shipments[visit.index]
        else:
            return 0, cost
        if isinstance(item, Job) and item.wait_from is not None and start > item.wait_from:
            cost += (start - item.wait_from) * item.wait_cost
        if item.deadline is None or start <= item.deadline:
            return 0, cost
        late = start - item.deadline
        return late, cost + late * item.lateness_cost

    def _apply_load(self, visit: Visit, load: list[int], label: str) -> None:
        if visit.kind == "job":
            job = self.p.jobs[visit.index]
            _add(load, job.delivery, -1)
            _add(load, job.pickup, +1)
        elif visit.kind == "pickup":
            _add(load, self.p.shipments[visit.index].amount, +1)
        else:
            _add(load, self.p.shipments[visit.index].amount, -1)
        self._check_capacity(load, f"after {label}")


def _check_coverage(problem: Problem, plan: Plan) -> list[str]:
    violations: list[str] = []
    seen: dict[tuple[str, int], int] = {}
    for route in plan.routes:
        v = problem.vehicles[route.vehicle]
        positions: dict[tuple[str, int], int] = {}
        for pos, visit in enumerate(route.visits):
            if visit.kind in ("reload", "break"):
                continue
            kind = "job" if visit.kind == "job" else "shipment"
            key = (kind, visit.index)
            if visit.kind != "delivery":
                seen[key] = seen.get(key, 0) + 1
            positions[(visit.kind, visit.index)] = pos
            item = problem.jobs[visit.index] if kind == "job" else problem.shipments[visit.index]
            if not item.skills <= v.skills:
                missing = sorted(item.skills - v.skills)
                violations.append(f"vehicle {v.id}: {kind} {item.id} needs skills {missing}")
        for (kind, index), pos in positions.items():
            if kind == "pickup" and positions.get(("delivery", index), -1) < pos:
                violations.append(f"vehicle {v.id}: shipment {problem.shipments[index].id} "
                                  "is not delivered after its pickup on the same route")
            if kind == "delivery" and ("pickup", index) not in positions:
                violations.append(f"vehicle {v.id}: shipment {problem.shipments[index].id} "
                                  "is delivered without its pickup")
        head = [x for x in route.visits if x.kind != "break"][: len(v.locked)]
        if [(x.kind, x.index) for x in head] != [("job", problem.job_index(j)) for j in v.locked]:
            violations.append(f"vehicle {v.id}: does not start with its locked jobs {list(v.locked)}")
    for u in plan.unassigned:
        seen[(u.kind, u.index)] = seen.get((u.kind, u.index), 0) + 1
    named: list[tuple[str, list[str]]] = [("job", [j.id for j in problem.jobs]),
                                          ("shipment", [s.id for s in problem.shipments])]
    for kind, ids in named:
        for i, item_id in enumerate(ids):
            count = seen.get((kind, i), 0)
            if count != 1:
                where = "missing from the plan" if count == 0 else f"planned {count} times"
                violations.append(f"{kind} {item_id} is {where}")
    locked = problem.locked_jobs()
    for u in plan.unassigned:
        if u.kind == "job" and u.index in locked:
            violations.append(f"job {problem.jobs[u.index].id} is locked but unassigned")
    used = [r.vehicle for r in plan.routes]
    if len(used) != len(set(used)):
        violations.append("a vehicle has more than one route")
    for v_index, v in enumerate(problem.vehicles):
        if v.locked and v_index not in used:
            violations.append(f"vehicle {v.id}: has locked jobs but no route")
    return violations


def _core(violations: tuple[str, ...]) -> set[str]:
    """The violations that do not depend on when the route leaves (its duration's do)."""
    return {m for m in violations if "max_duration is" not in m}


def _window_departures(problem: Problem, first: RouteEvaluation) -> list[int]:
    """Departures later than `first`'s that reach a stop just as one of its windows opens, had the route not
    waited before it (with several windows per stop, the best departure can be any of them)."""
    out: list[int] = []
    waited = 0
    for timing in first.timings:
        visit = timing.visit
        if visit.kind in ("job", "pickup", "delivery"):
            if visit.kind == "job":
                stop = problem.jobs[visit.index].stop
            else:
                shipment = problem.shipments[visit.index]
                stop = shipment.pickup if visit.kind == "pickup" else shipment.delivery
            reach = timing.arrival - waited - first.departure  # from departure, had nothing made it wait
            out.extend(d for w in stop.time_windows if (d := w.start - reach) > first.departure)
        waited += timing.start - timing.arrival
    return out[:MAX_WINDOW_DEPARTURES]


MAX_WINDOW_DEPARTURES = 256
"""Window-aligned departures `late_schedule` walks at most (each is one walk of the route)."""


def late_schedule(problem: Problem, route: Route) -> RouteEvaluation:
    """The route as it should be driven: leaving as late as its plan allows rather than waiting on the road.

    `evaluate` walks a route leaving at the shift's start and credits its `duration` with the waiting a later
    departure saves; this walks the route leaving that much later and checks that the schedule keeps every
    window, break and the shift and costs no more lateness (several windows per stop, or breaks, can make the
    credit wrong: then it tries leaving so as to reach each stop as one of its windows opens, as late as its first
    stop allows, or at the earliest). It returns the
    allowed schedule with the fewest seconds from departure to end, its `duration` that schedule's own (so a
    `max_duration` it breaks is among its violations)."""
    first = _RouteWalker(problem, route).walk()
    credit = first.end - first.departure - first.duration
    departures = [first.departure + credit] if credit > 0 else []
    head = first.timings[0] if first.timings else None
    if head is not None and head.visit.kind not in ("break", "reload") and head.start > head.arrival:
        departures.append(first.departure + head.start - head.arrival)
    departures.extend(sorted(set(_window_departures(problem, first)) - set(departures), reverse=True))
    departures.append(first.departure)
    allowed = _core(first.violations)
    best: RouteEvaluation | None = None
    for depart in departures:
        walked = _RouteWalker(problem, route).walk(depart)
        if (_core(walked.violations) <= allowed and walked.lateness_cost <= first.lateness_cost
                and (best is None or walked.duration < best.duration)):
            best = walked
    assert best is not None  # the last departure is the earliest walk again, always allowed
    return best


def evaluate(problem: Problem, plan: Plan) -> Evaluation:
    """Recompute every figure of `plan` from the problem's matrices; trust nothing the solver said."""
    routes = tuple(_RouteWalker(problem, r).walk() for r in plan.routes if r.visits)
    violations = _check_coverage(problem, plan)
    for r in routes:
        violations.extend(r.violations)
    distance = sum(r.distance for r in routes)
    duration = sum(r.duration for r in routes)
    lateness = sum(r.lateness_cost for r in routes)
    fixed = sum(problem.vehicles[r.vehicle].fixed_cost for r in routes)
    penalty = 0
    for u in plan.unassigned:
        item = problem.jobs[u.index] if u.kind == "job" else problem.shipments[u.index]
        penalty += item.penalty or 0
    cost = problem.distance_cost * distance + problem.duration_cost * duration + fixed + lateness + penalty
    return Evaluation(cost=int(cost), distance=distance, duration=duration, lateness_cost=lateness,
                      penalty=penalty, vehicles_used=len(routes), routes=routes, violations=tuple(violations))
