"""Road geometry of fastest paths: the path found is as fast as the fastest time, and its legs join."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse.csgraph

from routing.network import RoadNetwork
from routing.paths import leg_lines, path_nodes

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> RoadNetwork:
    return RoadNetwork.from_osm(DATA / "moscow_ostankino_drive.osm.bz2", cache_dir=tmp_path_factory.mktemp("c"))


def test_the_path_takes_the_fastest_time(network: RoadNetwork) -> None:
    """Summing the edge times along every path found gives the fastest time Dijkstra reports, for car at 8:00."""
    csr = network.csr("car", 8)
    best = scipy.sparse.csgraph.dijkstra(csr, directed=True, indices=3)
    checked = 0
    for target in range(0, network.n_nodes, 7):
        nodes = path_nodes(network, "car", 3, target, hour=8)
        if not np.isfinite(best[target]):
            assert nodes == []
            continue
        assert nodes[0] == 3 and nodes[-1] == target
        total = sum(csr[a, b] for a, b in itertools.pairwise(nodes))
        assert total == pytest.approx(best[target])
        checked += 1
    assert checked >= 10


def test_legs_join_at_the_stops(network: RoadNetwork) -> None:
    """One line per leg; each starts where the last ended, at the stop's node; simplifying keeps the ends."""
    stops = [0, 50, 10, 0]
    for tolerance in (0.0, 20.0):
        lines = leg_lines(network, "bike", stops, tolerance_m=tolerance)
        assert len(lines) == 3
        for line, (a, b) in zip(lines, itertools.pairwise(stops), strict=True):
            assert line[0] == pytest.approx(tuple(network.lonlat[a]), abs=1e-6)
            assert line[-1] == pytest.approx(tuple(network.lonlat[b]), abs=1e-6)
    full = sum(len(x) for x in leg_lines(network, "bike", stops))
    assert sum(len(x) for x in leg_lines(network, "bike", stops, tolerance_m=20.0)) <= full
