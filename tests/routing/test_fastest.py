"""Tests for routing.fastest: the exact CCH gives the compiled Dijkstra's fastest times and path lengths."""

import numpy as np
import pytest

from routing.fastest import UNREACHABLE, ExactCCH, FastestPaths
from routing.network import RoadNetwork


@pytest.mark.parametrize("hour", [None, 8, 18])
@pytest.mark.parametrize("profile", ["car", "bike"])
def test_exact_cch_equals_the_dijkstra_both_ways(porto: RoadNetwork, profile: str, hour: int | None) -> None:
    """From and to 40 random nodes, over 300 others: the same seconds and metres as the one-to-many Dijkstra on
    the same packed (time, length) weights, at free flow and at two hours of traffic, by car and by bike."""
    rng = np.random.default_rng(11)
    nodes = rng.choice(porto.n_nodes, 340, replace=False)
    sources, targets = nodes[:40], nodes[40:]
    exact, dijkstra = ExactCCH(porto, profile), FastestPaths(porto, profile)
    for source in sources.tolist():
        for backward in (False, True):
            got = exact.search(source, targets, hour=hour, backward=backward)
            want = dijkstra.search(source, targets, hour=hour, backward=backward)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), (source, backward)
    assert (got[0] < UNREACHABLE).any()


def test_unreachable_places_and_a_node_to_itself(moscow: RoadNetwork) -> None:
    """A node is 0 s and 0 m from itself; nodes no road joins (one-way dead ends of the tiny map) are
    UNREACHABLE both ways, exactly where the Dijkstra says so; a matrix is the searches as rows."""
    nodes = np.arange(moscow.n_nodes)
    exact, dijkstra = ExactCCH(moscow, "car"), FastestPaths(moscow, "car")
    durations, distances = exact.matrix(nodes, nodes, hour=8, threads=2)
    want = dijkstra.matrix(nodes, nodes, hour=8)
    assert np.array_equal(durations, want[0]) and np.array_equal(distances, want[1])
    assert (np.diag(durations) == 0).all() and (np.diag(distances) == 0).all()
    assert exact.search(0, np.empty(0, dtype=np.int64))[0].shape == (0,)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_matrix_is_the_searches_from_its_sources(porto: RoadNetwork, threads: int) -> None:
    """`ExactCCH.matrix` (the targets' ancestors selected once, the sources shared among threads) equals one
    search per source, for sources and targets that differ."""
    rng = np.random.default_rng(11)
    sources, targets = rng.choice(porto.n_nodes, 41, replace=False), rng.choice(porto.n_nodes, 67, replace=False)
    exact = ExactCCH(porto, "car")
    durations, distances = exact.matrix(sources, targets, hour=18, threads=threads)
    rows = [exact.search(int(s), targets, hour=18) for s in sources]
    assert np.array_equal(durations, np.stack([r[0] for r in rows]))
    assert np.array_equal(distances, np.stack([r[1] for r in rows]))
    assert exact.matrix(sources[:0], targets)[0].shape == (0, 67)


def test_a_bounded_number_of_hours_is_kept(porto: RoadNetwork) -> None:
    """Customised hours beyond KEEP_HOURS are dropped (oldest first) and redone on demand, with equal results."""
    exact = ExactCCH(porto, "car")
    targets = np.arange(100, 400)
    first = exact.search(5, targets, hour=7)
    for hour in range(8, 8 + ExactCCH.KEEP_HOURS + 2):
        exact.search(5, targets, hour=hour)
    assert len(exact._metrics) == ExactCCH.KEEP_HOURS and 7 not in exact._metrics
    again = exact.search(5, targets, hour=7)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
