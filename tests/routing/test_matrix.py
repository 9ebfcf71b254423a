"""Tests for routing.matrix: scipy, CCH and haversine engines cross-checked on real OSM graphs."""


import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from routing.errors import InvalidProblemError
from routing.matrix import (
    UNREACHABLE,
    CCHEngine,
    HaversineEngine,
    MatrixResult,
    ScipyEngine,
    make_engine,
)
from routing.network import HIGHWAY_CODE, RoadNetwork


@pytest.fixture(scope="module")
def porto_points(porto: RoadNetwork) -> np.ndarray:
    return np.random.default_rng(3).choice(porto.n_nodes, 150, replace=False)


def two_node_one_way() -> RoadNetwork:
    residential = HIGHWAY_CODE["residential"]
    return RoadNetwork(
        osm_ids=np.array([1, 2, 3]),
        lon=np.array([0.0, 0.001, 0.1]),
        lat=np.array([0.0, 0.0, 0.1]),
        tail=np.array([0], dtype=np.int32),
        head=np.array([1], dtype=np.int32),
        length_m=np.array([100.0]),
        car_speed_kmh=np.array([36.0]),
        has_maxspeed=np.array([True]),
        highway=np.array([residential], dtype=np.int8),
    )


def one_way_chain(n: int) -> RoadNetwork:
    residential = HIGHWAY_CODE["residential"]
    return RoadNetwork(
        osm_ids=np.arange(1, n + 1),
        lon=np.linspace(0.0, 0.01 * n, n),
        lat=np.zeros(n),
        tail=np.arange(n - 1, dtype=np.int32),
        head=np.arange(1, n, dtype=np.int32),
        length_m=np.full(n - 1, 100.0) + np.arange(n - 1),
        car_speed_kmh=np.full(n - 1, 36.0),
        has_maxspeed=np.ones(n - 1, dtype=np.bool_),
        highway=np.full(n - 1, residential, dtype=np.int8),
    )


@pytest.mark.parametrize("profile", ["car", "bike", "foot"])
@pytest.mark.parametrize("hour", [None, 8, 18])
def test_cch_durations_equal_scipy_on_moscow(moscow: RoadNetwork, profile: str, hour: int | None) -> None:
    """On the whole Moscow graph CCH durations equal scipy's exactly, for every profile and hour."""
    nodes = np.arange(moscow.n_nodes)
    exact = ScipyEngine(moscow, profile).matrix(nodes, nodes, hour=hour)
    fast = CCHEngine(moscow, profile).matrix(nodes, nodes, hour=hour)
    np.testing.assert_array_equal(fast.durations, exact.durations)
    assert np.all(np.diag(exact.durations) == 0) and np.all(np.diag(fast.distances) == 0)


def test_cch_durations_equal_scipy_on_porto_centre(porto: RoadNetwork, porto_points: np.ndarray) -> None:
    """On Porto centre at rush hour CCH and scipy durations are equal for every pair."""
    exact = ScipyEngine(porto, "car").matrix(porto_points, porto_points, hour=18)
    fast = CCHEngine(porto, "car").matrix(porto_points, porto_points, hour=18)
    np.testing.assert_array_equal(fast.durations, exact.durations)
    assert exact.durations.dtype == np.int64 and (exact.durations < UNREACHABLE).all()


def test_cch_results_do_not_depend_on_thread_count(porto: RoadNetwork, porto_points: np.ndarray) -> None:
    """Splitting rows into small chunks over several threads gives exactly the single-thread matrices."""
    single = CCHEngine(porto, "car", threads=1).matrix(porto_points, porto_points, hour=8)
    threaded = CCHEngine(porto, "car", threads=3)
    threaded.CHUNK_ROWS = 7
    for sources, targets in ((porto_points, porto_points), (porto_points, porto_points[:20])):
        result = threaded.matrix(sources, targets, hour=8)
        np.testing.assert_array_equal(result.durations, single.durations[:, : len(targets)])
        np.testing.assert_array_equal(result.distances, single.distances[:, : len(targets)])


def test_cch_durations_method_equals_matrix_and_scipy(porto: RoadNetwork, porto_points: np.ndarray) -> None:
    """durations() returns exactly matrix().durations and scipy's durations, duplicates and order included."""
    engine = CCHEngine(porto, "car")
    sources = np.concatenate((porto_points, porto_points[:5]))
    targets = porto_points[::-1]
    only = engine.durations(sources, targets, hour=17)
    assert only.dtype == np.int64 and only.flags.c_contiguous
    np.testing.assert_array_equal(only, engine.matrix(sources, targets, hour=17).durations)
    np.testing.assert_array_equal(only, ScipyEngine(porto, "car").matrix(sources, targets, hour=17).durations)


def test_cch_one_way_chain_has_unreachable_rows_in_both_sweep_directions() -> None:
    """On a one-way chain car trips only go forward: UNREACHABLE exactly below the diagonal, as in scipy."""
    network = one_way_chain(150)
    nodes = np.arange(network.n_nodes)
    engine = CCHEngine(network, "car", threads=2)
    engine.CHUNK_ROWS = 16
    exact = ScipyEngine(network, "car").matrix(nodes, nodes)
    for targets in (nodes, nodes[::7]):
        result = engine.matrix(nodes, targets)
        np.testing.assert_array_equal(result.durations == UNREACHABLE, nodes[:, None] > targets[None, :])
        np.testing.assert_array_equal(result.durations, exact.durations[:, targets])
        np.testing.assert_array_equal(result.distances, exact.distances[:, targets])
        np.testing.assert_array_equal(engine.durations(nodes, targets), result.durations)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_cch_rejects_a_bad_thread_count(moscow: RoadNetwork, threads: object) -> None:
    """A thread count that is not a positive integer raises InvalidProblemError naming it."""
    with pytest.raises(InvalidProblemError, match="threads"):
        CCHEngine(moscow, "car", threads=threads)  # type: ignore[arg-type]


def test_scipy_durations_match_float_dijkstra_on_network_csr(
    porto: RoadNetwork, porto_points: np.ndarray
) -> None:
    """Scipy engine durations are the network.csr shortest times rounded to seconds (within 1 s)."""
    result = ScipyEngine(porto, "car").matrix(porto_points, porto_points, hour=8)
    reference = dijkstra(porto.csr("car", 8), indices=porto_points)[:, porto_points]
    assert np.abs(result.durations - reference).max() <= 1.0


def test_scipy_distances_follow_the_fastest_path(porto: RoadNetwork, porto_points: np.ndarray) -> None:
    """Scipy distances are at least the shortest road distance and equal CCH's unpacked fastest paths."""
    sub = porto_points[:25]
    exact = ScipyEngine(porto, "car").matrix(sub, sub)
    shortest = dijkstra(porto.csr("car", metric="distance"), indices=sub)[:, sub]
    assert np.all(exact.distances >= shortest - 1.0)
    assert np.any(exact.distances > shortest + 50.0)
    unpacked = CCHEngine(porto, "car", distances="fastest_path").matrix(sub, sub)
    assert np.abs(exact.distances - unpacked.distances).max() <= 1


def test_cch_distances_are_those_of_the_fastest_path_unless_shortest_is_asked(
    porto: RoadNetwork, porto_points: np.ndarray
) -> None:
    """CCH car distances by default equal scipy's fastest-path lengths (±1 m) at free flow and at 18:00;
    distances="shortest" gives the shortest road distance instead (to within 1 m), which is shorter."""
    for hour in (None, 18):
        exact = ScipyEngine(porto, "car").matrix(porto_points, porto_points[:40], hour=hour)
        fast = CCHEngine(porto, "car").matrix(porto_points, porto_points[:40], hour=hour)
        assert np.array_equal(fast.durations, exact.durations)
        assert np.abs(fast.distances - exact.distances).max() <= 1
    short = CCHEngine(porto, "car", distances="shortest").matrix(porto_points, porto_points[:40])
    shortest = dijkstra(porto.csr("car", metric="distance"), indices=porto_points)[:, porto_points[:40]]
    assert np.abs(short.distances - shortest).max() <= 1.0
    assert short.distances.mean() < fast.distances.mean() - 50


def test_rush_hour_car_matrix_costs_more_than_night(moscow: RoadNetwork) -> None:
    """Car durations at 18:00 are never below 03:00 ones and strictly above for trips over 10 s."""
    nodes = np.arange(moscow.n_nodes)
    engine = CCHEngine(moscow, "car")
    night = engine.matrix(nodes, nodes, hour=3).durations
    rush = engine.matrix(nodes, nodes, hour=18).durations
    assert np.all(rush >= night)
    longer = night > 10
    assert longer.sum() > 0.9 * len(nodes) ** 2 and np.all(rush[longer] > night[longer])


def test_foot_matrix_is_symmetric_while_car_is_not(moscow: RoadNetwork) -> None:
    """Foot ignores one-way streets, so its matrix is symmetric; one-way streets make car's asymmetric."""
    nodes = np.arange(moscow.n_nodes)
    foot = ScipyEngine(moscow, "foot").matrix(nodes, nodes)
    car = ScipyEngine(moscow, "car").matrix(nodes, nodes)
    np.testing.assert_array_equal(foot.durations, foot.durations.T)
    assert np.any(car.durations != car.durations.T)


def test_one_way_pair_is_walkable_both_ways_but_drivable_one_way() -> None:
    """On a single one-way edge, car cannot go back (UNREACHABLE) but foot can, in both engines."""
    network = two_node_one_way()
    ends = np.array([0, 1])
    for kind in ("scipy", "cch"):
        car = make_engine(kind, network, "car").matrix(ends, ends)
        foot = make_engine(kind, network, "foot").matrix(ends, ends)
        np.testing.assert_array_equal(car.durations, [[0, 10], [UNREACHABLE, 0]])
        np.testing.assert_array_equal(car.distances, [[0, 100], [UNREACHABLE, 0]])
        np.testing.assert_array_equal(foot.durations, [[0, 72], [72, 0]])


@pytest.mark.parametrize("kind", ["scipy", "cch"])
def test_isolated_node_gets_unreachable_sentinel(kind: str) -> None:
    """Pairs with no path get UNREACHABLE in both durations and distances; a node reaches itself at 0."""
    network = two_node_one_way()
    result = make_engine(kind, network, "foot").matrix(np.array([0, 2]), np.array([2, 0, 2]))
    np.testing.assert_array_equal(result.durations, [[UNREACHABLE, 0, UNREACHABLE], [0, UNREACHABLE, 0]])
    np.testing.assert_array_equal(result.distances == UNREACHABLE, result.durations == UNREACHABLE)


def test_bike_is_slower_than_car_on_a_long_trip(porto: RoadNetwork) -> None:
    """On the longest car trip among sample nodes, cycling takes longer than driving."""
    nodes = np.random.default_rng(5).choice(porto.n_nodes, 30, replace=False)
    car = CCHEngine(porto, "car").matrix(nodes, nodes)
    i, j = np.unravel_index(np.argmax(car.distances), car.distances.shape)
    assert car.distances[i, j] > 3_000
    bike = CCHEngine(porto, "bike").matrix(nodes[[i]], nodes[[j]])
    assert bike.durations[0, 0] > car.durations[i, j]


def test_ebike_between_bike_and_car(moscow: RoadNetwork) -> None:
    """An e-bike rides faster than a bike and slower than a car over the same pairs."""
    nodes = np.arange(0, moscow.n_nodes, 10)
    times = {p: ScipyEngine(moscow, p).matrix(nodes, nodes).durations.sum() for p in ("bike", "ebike", "car")}
    assert times["car"] < times["ebike"] < times["bike"]


@pytest.mark.parametrize("kind", ["scipy", "cch"])
def test_duplicate_and_unsorted_indices_keep_request_order(moscow: RoadNetwork, kind: str) -> None:
    """Rows and columns follow the requested order, duplicates included."""
    engine = make_engine(kind, moscow, "car")
    full = engine.matrix(np.arange(moscow.n_nodes), np.arange(moscow.n_nodes))
    sources, targets = np.array([9, 3, 9, 0]), np.array([5, 5, 120, 3, 0])
    part = engine.matrix(sources, targets)
    np.testing.assert_array_equal(part.durations, full.durations[np.ix_(sources, targets)])
    np.testing.assert_array_equal(part.distances, full.distances[np.ix_(sources, targets)])


@pytest.mark.parametrize("kind", ["scipy", "cch"])
def test_many_sources_few_targets_matches_transposed_layout(moscow: RoadNetwork, kind: str) -> None:
    """A tall request (more sources than targets) gives the same cells as the full matrix."""
    engine = make_engine(kind, moscow, "car")
    full = engine.matrix(np.arange(moscow.n_nodes), np.arange(moscow.n_nodes), hour=7)
    tall = engine.matrix(np.arange(moscow.n_nodes), np.array([4, 77]), hour=7)
    np.testing.assert_array_equal(tall.durations, full.durations[:, [4, 77]])


@pytest.mark.parametrize("kind", ["scipy", "cch"])
def test_bad_requests_are_rejected_naming_the_field(moscow: RoadNetwork, kind: str) -> None:
    """Out-of-range or non-integer indices and bad hours raise InvalidProblemError naming them."""
    engine = make_engine(kind, moscow, "car")
    with pytest.raises(InvalidProblemError, match=r"sources\[1\]"):
        engine.matrix(np.array([0, moscow.n_nodes]), np.array([0]))
    with pytest.raises(InvalidProblemError, match="targets"):
        engine.matrix(np.array([0]), np.array([0.5]))
    with pytest.raises(InvalidProblemError, match="hour"):
        engine.matrix(np.array([0]), np.array([0]), hour=25)


@pytest.mark.parametrize("kind", ["scipy", "cch"])
def test_empty_request_gives_empty_matrix(moscow: RoadNetwork, kind: str) -> None:
    """No sources yields a 0×T matrix."""
    result = make_engine(kind, moscow, "car").matrix(np.array([], dtype=np.int64), np.array([1, 2]))
    assert result.durations.shape == (0, 2) and result.distances.shape == (0, 2)


def test_make_engine_rejects_unknown_kind(moscow: RoadNetwork) -> None:
    """An unknown engine kind raises InvalidProblemError naming it."""
    with pytest.raises(InvalidProblemError, match="'osrm'"):
        make_engine("osrm", moscow, "car")


def test_haversine_is_symmetric_with_zero_diagonal() -> None:
    """Haversine matrices are symmetric, zero on the diagonal and scale with the detour factor."""
    points = np.random.default_rng(11).uniform([-8.7, 41.1], [-8.5, 41.2], size=(40, 2))
    engine = HaversineEngine(points, speed_kmh=30.0, detour_factor=1.3)
    result = engine.matrix(np.arange(40), np.arange(40))
    np.testing.assert_array_equal(result.durations, result.durations.T)
    np.testing.assert_array_equal(result.distances, result.distances.T)
    assert np.all(np.diag(result.durations) == 0) and np.all(np.diag(result.distances) == 0)


def test_haversine_known_distance_speed_and_hour() -> None:
    """One degree of latitude is ~111.2 km; times follow speed, detour and the hourly factor."""
    engine = HaversineEngine([[0.0, 0.0], [0.0, 1.0]], speed_kmh=36.0, detour_factor=1.0)
    result = engine.matrix(np.array([0]), np.array([1]))
    assert result.distances[0, 0] == pytest.approx(111_195, abs=2)
    assert result.durations[0, 0] == pytest.approx(11_120, abs=1)
    with pytest.raises(InvalidProblemError, match="detour_factor"):
        HaversineEngine([[0.0, 0.0]], speed_kmh=36.0, detour_factor=0.5)
    with pytest.raises(InvalidProblemError, match=r"points_lonlat\[0\]"):
        HaversineEngine([[200.0, 0.0]], speed_kmh=36.0)


def test_matrix_result_validates_its_arrays() -> None:
    """MatrixResult rejects non-int64 arrays and mismatched shapes by field name."""
    ok = np.zeros((2, 2), dtype=np.int64)
    with pytest.raises(InvalidProblemError, match="durations"):
        MatrixResult(durations=ok.astype(np.float64), distances=ok)
    with pytest.raises(InvalidProblemError, match="distances"):
        MatrixResult(durations=ok, distances=np.zeros((2, 3), dtype=np.int64))
