"""`lastmile demo` (what `make run` runs): couriers from dark stores on the real Porto centre map, with ETAs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routing.matrix import make_engine
from routing.network import RoadNetwork
from routing.problem import Job, Problem, Stop, TimeWindow, Vehicle
from routing.snap import snap
from routing.solvers.auto import solve
from routing.solvers.base import SolveParams

MAP = Path(__file__).resolve().parent.parent / "scenarios" / "maps" / "porto_centre_drive.osm.bz2"
HOUR = 18
NOW = HOUR * 3600
PICKING_S = 300
SERVICE_S = 120
PROMISE_S = 45 * 60


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoStore:
    """A dark store of the demo and the couriers based there."""

    id: str
    lonlat: tuple[float, float]
    couriers: tuple[tuple[str, str], ...]


STORES = (
    DemoStore(id="aliados", lonlat=(-8.6110, 41.1486), couriers=(("aliados-bike-1", "bike"), ("aliados-bike-2", "bike"),
                                                                  ("aliados-car-1", "car"),
                                                                  ("aliados-foot-1", "foot"))),
    DemoStore(id="boavista", lonlat=(-8.6295, 41.1578), couriers=(("boavista-bike-1", "bike"),
                                                                   ("boavista-car-1", "car"))),
    DemoStore(id="campanha", lonlat=(-8.5855, 41.1488), couriers=(("campanha-bike-1", "bike"),
                                                                   ("campanha-car-1", "car"))),
)


def clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}"


def run_demo(*, orders: int, seed: int, time_limit: float, echo: Callable[[str], object]) -> None:
    network = RoadNetwork.from_osm(MAP)
    rng = np.random.default_rng(seed)
    store_xy = np.array([s.lonlat for s in STORES])
    centre = store_xy.mean(axis=0)
    lonlat = network.lonlat
    near = np.flatnonzero(np.abs(lonlat - centre).max(axis=1) < 0.025)
    order_xy = lonlat[rng.choice(near, size=orders, replace=False)] + rng.normal(0, 0.0002, size=(orders, 2))
    placed = NOW + np.sort(rng.integers(0, 20 * 60, size=orders))
    points = np.vstack([store_xy, order_xy])
    snapped = snap(network, points, max_distance_m=300)
    snapped.raise_if_too_far([s.id for s in STORES] + [f"order-{k + 1}" for k in range(orders)])
    nodes = snapped.nodes
    n_stores = len(STORES)
    echo(f"Porto centre road network: {network.n_nodes} nodes, {network.n_edges} edges "
         "(© OpenStreetMap contributors, ODbL)")
    echo(f"{orders} orders placed {clock(int(placed[0]))}-{clock(int(placed[-1]))}, {n_stores} dark stores, "
         f"travel times at {HOUR}:00 traffic")
    matrices = {p: make_engine("scipy", network, p).matrix(nodes, nodes, hour=HOUR)
                for p in ("car", "bike", "foot")}
    to_order = matrices["bike"].durations[:n_stores, n_stores:]
    home = to_order.argmin(axis=0)
    total_km = 0.0
    late = 0
    for si, store in enumerate(STORES):
        mine = np.flatnonzero(home == si)
        locations = np.array([si, *(n_stores + int(k) for k in mine)])
        index = np.ix_(locations, locations)
        jobs = tuple(
            Job(id=f"order-{k + 1}", stop=Stop(location=i + 1, service=SERVICE_S,
                                               time_windows=(TimeWindow(start=0, end=int(placed[k]) + PROMISE_S),)),
                delivery=(1,), release=int(placed[k]) + PICKING_S)
            for i, k in enumerate(mine)
        )
        vehicles = tuple(Vehicle(id=cid, start=0, profile=profile, capacity=(6 if profile != "foot" else 3,),
                                 shift=TimeWindow(start=NOW, end=NOW + 4 * 3600), max_trips=4)
                         for cid, profile in store.couriers)
        problem = Problem(durations={p: m.durations[index] for p, m in matrices.items()},
                          distances={p: m.distances[index] for p, m in matrices.items()},
                          jobs=jobs, vehicles=vehicles)
        result = solve(problem, SolveParams(time_limit=time_limit / n_stores, seed=seed))
        echo("")
        echo(f"store {store.id} ({len(jobs)} orders, {result.backend}):")
        for route, ev in zip(result.plan.routes, result.evaluation.routes, strict=True):
            v = problem.vehicles[route.vehicle]
            stops = []
            for t in ev.timings:
                if t.visit.kind == "reload":
                    stops.append(f"[store {clock(t.arrival)}]")
                    continue
                job = problem.jobs[t.visit.index]
                late += t.start > job.stop.latest
                stops.append(f"{job.id} {clock(t.start)}")
            total_km += ev.distance / 1000
            echo(f"  {v.id:<16} leaves {clock(ev.departure)}: " + ", ".join(stops)
                 + f"; back {clock(ev.end)}, {ev.distance / 1000:.1f} km")
        for u in result.plan.unassigned:
            echo(f"  unassigned {problem.jobs[u.index].id}: {u.reason}")
    echo("")
    echo(f"total {total_km:.1f} km, {late} late deliveries")
