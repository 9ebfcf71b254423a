"""Tests for routing.oracle: live places get exact fastest-path rows, recycle their slots, follow the hour."""


import numpy as np
import pytest

from routing.errors import InvalidProblemError
from routing.matrix import UNREACHABLE, ScipyEngine
from routing.network import HIGHWAY_CODE, Profile, RoadNetwork
from routing.oracle import TravelOracle


def _block(pool_array: np.ndarray, slots: list[int]) -> np.ndarray:
    return pool_array[np.ix_(slots, slots)]


@pytest.mark.parametrize("hour", [None, 8])
def test_rows_equal_exact_fastest_paths_for_every_profile(porto: RoadNetwork, hour: int | None) -> None:
    """Durations equal scipy's exact fastest times and distances that fastest path's length (±2 m of rounding),
    for cars (the exact CCH) and bikes and walkers (CCH), at free flow and in the morning peak."""
    oracle = TravelOracle(porto, ["car", "bike", "foot"], traffic=True)
    assert oracle.method == {"car": "cch_exact", "bike": "cch", "foot": "cch"}
    nodes = np.random.default_rng(5).choice(porto.n_nodes, 60, replace=False)
    pool = oracle.pool(pinned=[int(nodes[0])], hour=hour, capacity=8)
    slots = [pool.place(int(n)) for n in nodes]
    assert [pool.node(s) for s in slots] == [int(n) for n in nodes]
    for profile in ("car", "bike", "foot"):
        ref = ScipyEngine(porto, profile).matrix(nodes, nodes, hour=oracle.hour_for(profile, hour))
        assert np.array_equal(_block(pool.durations(profile), slots), ref.durations), profile
        assert np.abs(_block(pool.distances(profile), slots) - ref.distances).max() <= 2, profile


def test_car_distances_are_those_of_the_fastest_not_the_shortest_path(porto: RoadNetwork) -> None:
    """On Porto's road classes, car distances differ from the shortest road distance (they are longer on
    average) and match the fastest path's length."""
    oracle = TravelOracle(porto, ["car"])
    nodes = np.random.default_rng(9).choice(porto.n_nodes, 40, replace=False)
    pool = oracle.pool()
    slots = [pool.place(int(n)) for n in nodes]
    fastest = _block(pool.distances("car"), slots)
    shortest = ScipyEngine(porto, "car").matrix(nodes, nodes).distances
    graph = porto.csr("car", metric="distance")
    from scipy.sparse.csgraph import dijkstra

    true_shortest = np.rint(dijkstra(graph, indices=nodes)[:, nodes])
    assert fastest.mean() > true_shortest.mean() + 50
    assert np.abs(fastest - shortest).max() <= 2


def test_a_place_is_computed_once_and_slots_are_recycled(porto: RoadNetwork) -> None:
    """Placing a node twice gives one index; freed slots are reused, their rows cleared; pinned places stay."""
    oracle = TravelOracle(porto, ["bike"])
    nodes = [int(n) for n in np.random.default_rng(2).choice(porto.n_nodes, 10, replace=False)]
    pool = oracle.pool(pinned=[nodes[0]], capacity=4)
    a = pool.place(nodes[1])
    assert pool.place(nodes[1]) == a
    b = pool.place(nodes[2])
    assert pool.retain([b]) == 1
    assert pool.n_live == 2 and pool.pinned == frozenset({pool.place(nodes[0])})
    assert pool.durations("bike")[a, b] == UNREACHABLE
    with pytest.raises(InvalidProblemError, match=f"index {a}"):
        pool.node(a)
    c = pool.place(nodes[3])
    assert c == a
    ref = ScipyEngine(porto, "bike").matrix([nodes[3]], [nodes[2]]).durations[0, 0]
    assert pool.durations("bike")[c, b] == ref


def test_memory_follows_the_live_places_not_the_places_ever_seen(porto: RoadNetwork) -> None:
    """A pool that sees 400 places with at most 10 live at a time never grows past 32 slots."""
    oracle = TravelOracle(porto, ["bike"])
    nodes = [int(n) for n in np.random.default_rng(4).choice(porto.n_nodes, 401, replace=False)]
    live: list[int] = []
    pool = oracle.pool(pinned=[nodes[0]], capacity=4, collect=lambda: live)
    for n in nodes[1:]:
        live.append(pool.place(n))
        del live[:-10]
    assert pool.capacity <= 32
    assert pool.n_live <= pool.capacity


def test_places_nobody_refers_to_are_freed_before_an_hour_is_recomputed(porto: RoadNetwork) -> None:
    """With room to spare (it never runs out of slots), the pool frees the places its owner no longer refers to
    before it recomputes every live place's rows for a new hour; the rows it keeps are those of that hour."""
    oracle = TravelOracle(porto, ["car"], traffic=True)
    nodes = [int(n) for n in np.random.default_rng(6).choice(porto.n_nodes, 20, replace=False)]
    pool = oracle.pool(pinned=[nodes[0]], hour=3, capacity=256, collect=lambda: live)
    live = [pool.place(n) for n in nodes[1:]]
    assert pool.n_live == 20
    live = live[-2:]
    pool.set_hour(18)
    assert pool.capacity == 256 and pool.n_live == 3 and set(pool.live()) == {*live, *pool.pinned}
    kept = [pool.node(i) for i in live]
    assert np.array_equal(_block(pool.durations("car"), live),
                          ScipyEngine(porto, "car").matrix(kept, kept, hour=18).durations)


def test_set_hour_recomputes_time_dependent_profiles_only(porto: RoadNetwork) -> None:
    """Moving to the morning peak changes car times to those of that hour; bike times stay as they were."""
    oracle = TravelOracle(porto, ["car", "bike"], traffic=True)
    nodes = np.random.default_rng(7).choice(porto.n_nodes, 30, replace=False)
    pool = oracle.pool(hour=3)
    slots = [pool.place(int(n)) for n in nodes]
    bike_before = _block(pool.durations("bike"), slots).copy()
    car_before = _block(pool.durations("car"), slots).copy()
    pool.set_hour(8)
    car = _block(pool.durations("car"), slots)
    assert np.array_equal(car, ScipyEngine(porto, "car").matrix(nodes, nodes, hour=8).durations)
    assert car.sum() > car_before.sum()
    assert np.array_equal(_block(pool.durations("bike"), slots), bike_before)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_new_hour_gives_the_rows_a_pool_made_at_that_hour_has(porto: RoadNetwork, threads: int) -> None:
    """Rows recomputed on `set_hour` (every row at once, on one thread or several) equal, in times and
    distances, those of a pool whose places were added at that hour, diagonal zero and free slots untouched."""
    nodes = [int(n) for n in np.random.default_rng(9).choice(porto.n_nodes, 25, replace=False)]
    moved = TravelOracle(porto, ["car"], traffic=True, threads=threads).pool(hour=3, capacity=32)
    slots = [moved.place(n) for n in nodes]
    moved.set_hour(18)
    made = TravelOracle(porto, ["car"], traffic=True).pool(hour=18, capacity=32)
    assert [made.place(n) for n in nodes] == slots
    assert np.array_equal(moved.durations("car"), made.durations("car"))
    assert np.array_equal(moved.distances("car"), made.distances("car"))
    with pytest.raises(InvalidProblemError, match="threads"):
        TravelOracle(porto, ["car"], threads=0)


def test_views_are_read_only_and_bad_requests_name_the_field(moscow: RoadNetwork) -> None:
    """Callers cannot write the matrices; an unknown profile, a node off the network or a bad hour is refused."""
    oracle = TravelOracle(moscow, ["bike"])
    pool = oracle.pool()
    with pytest.raises(ValueError, match="read-only"):
        pool.durations("bike")[0, 0] = 5
    with pytest.raises(InvalidProblemError, match="profiles"):
        oracle.pool(profiles=["car"])
    with pytest.raises(InvalidProblemError, match="node"):
        pool.place(moscow.n_nodes)
    with pytest.raises(InvalidProblemError, match="hour"):
        pool.set_hour(24)


def test_shortest_mode_is_an_explicit_choice_with_exact_durations(porto: RoadNetwork) -> None:
    """distances="shortest" answers every profile with CCH: durations stay exact, car distances are the shortest
    road distance (shorter than the fastest path's); any other mode is refused."""
    oracle = TravelOracle(porto, ["car"], distances="shortest")
    assert oracle.method == {"car": "cch"}
    nodes = np.random.default_rng(11).choice(porto.n_nodes, 30, replace=False)
    pool = oracle.pool()
    slots = [pool.place(int(n)) for n in nodes]
    exact = ScipyEngine(porto, "car").matrix(nodes, nodes)
    assert np.array_equal(_block(pool.durations("car"), slots), exact.durations)
    assert _block(pool.distances("car"), slots).mean() < exact.distances.mean()
    with pytest.raises(InvalidProblemError, match="distances"):
        TravelOracle(porto, ["car"], distances="straight")  # type: ignore[arg-type]


def test_a_nearly_uniform_profile_is_checked_pair_by_pair(porto: RoadNetwork) -> None:
    """A bike that crawls at 8 km/h on living streets (0.5 % of Porto's arcs) is answered by CCH with a check:
    durations stay exact and distances are within 8 m of scipy's fastest-path lengths."""
    slow_bike = Profile(name="slow-bike", speed_kmh=15.0, highway_speeds_kmh=(("living_street", 8.0),),
                        capped_by_car_speed=True, oneway=True, max_speed_kmh=25.0)
    oracle = TravelOracle(porto, [slow_bike])  # type: ignore[list-item]
    assert oracle.method == {slow_bike: "cch_checked"}
    street = np.flatnonzero(porto.highway == HIGHWAY_CODE["living_street"])
    near = np.unique(np.concatenate([porto.tail[street], porto.head[street]]))
    nodes = np.unique(np.concatenate([near[:40], np.random.default_rng(8).choice(porto.n_nodes, 40)]))
    pool = oracle.pool()
    slots = [pool.place(int(n)) for n in nodes]
    exact = ScipyEngine(porto, slow_bike).matrix(nodes, nodes)
    assert np.array_equal(_block(pool.durations(slow_bike), slots), exact.durations)  # type: ignore[arg-type]
    assert np.abs(_block(pool.distances(slow_bike), slots) - exact.distances).max() <= 8  # type: ignore[arg-type]


def test_hours_of_equal_traffic_share_their_times(porto: RoadNetwork) -> None:
    """Car congestion is the same at 10:00 and 11:00: both hours map to one, and a pool moving between them
    keeps times that equal scipy's at 11:00; 12:00 differs and is recomputed."""
    oracle = TravelOracle(porto, ["car"], traffic=True)
    assert oracle.hour_for("car", 11) == oracle.hour_for("car", 10) != oracle.hour_for("car", 12)
    nodes = np.random.default_rng(12).choice(porto.n_nodes, 25, replace=False)
    pool = oracle.pool(hour=10)
    slots = [pool.place(int(n)) for n in nodes]
    pool.set_hour(11)
    engine = ScipyEngine(porto, "car")
    assert np.array_equal(_block(pool.durations("car"), slots), engine.matrix(nodes, nodes, hour=11).durations)
    pool.set_hour(12)
    assert np.array_equal(_block(pool.durations("car"), slots), engine.matrix(nodes, nodes, hour=12).durations)
