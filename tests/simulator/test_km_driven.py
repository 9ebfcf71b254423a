"""Kilometres of a simulated day are those of the fastest paths ridden, recomputed independently with scipy."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from api.scenario_file import load_scenario
from routing.matrix import ScipyEngine
from routing.network import RoadNetwork
from simulator.model import simulate
from simulator.scenario import apply_setting

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("scenario_file", "orders"), [("moscow-ostankino-tiny.toml", None),
                                                       ("porto-centre-day.toml", "2000")])
def test_car_km_equal_the_fastest_path_lengths_of_the_legs_ridden(scenario_file: str, orders: str | None,
                                                                   tmp_path: Path) -> None:
    """Every car trip's metres equal the sum over its legs of scipy's fastest-path length at the hour the leg
    started (within 2 m a leg of rounding); the day has car trips to check."""
    scenario = load_scenario(ROOT / "scenarios" / scenario_file)
    if orders is not None:
        scenario = apply_setting(scenario, "demand.orders", orders)
    network = RoadNetwork.from_osm(scenario.map_file, cache_dir=tmp_path)
    result = simulate(scenario, network=network)
    service = scenario.delivery.service_s
    legs: dict[int | None, list[tuple[int, int, int]]] = defaultdict(list)  # hour -> (trip, a, b)
    trips = [t for t in result.recorder.trips if t.profile == "car"]
    assert len(trips) >= 5
    for k, trip in enumerate(trips):
        for i in range(len(trip.nodes) - 1):
            departure = trip.times[i] + (service if i > 0 else 0)
            hour = departure // 3600 % 24 if scenario.clock.traffic else None
            legs[hour].append((k, trip.nodes[i], trip.nodes[i + 1]))
    engine = ScipyEngine(network, "car")
    metres = np.zeros(len(trips), dtype=np.int64)
    n_legs = np.zeros(len(trips), dtype=np.int64)
    for hour, items in legs.items():
        nodes = np.unique([n for _, a, b in items for n in (a, b)])
        pos = {int(n): i for i, n in enumerate(nodes)}
        dist = engine.matrix(nodes, nodes, hour=hour).distances
        for k, a, b in items:
            metres[k] += dist[pos[a], pos[b]]
            n_legs[k] += 1
    driven = np.array([t.metres for t in trips])
    assert np.all(np.abs(driven - metres) <= 2 * n_legs)
