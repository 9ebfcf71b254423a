"""Tests for routing.snap: vectorised nearest-node snapping with explicit too-far reporting."""

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from routing.errors import SnapError
from routing.network import RoadNetwork
from routing.snap import (
    NO_NODE,
    SnapResult,
    _build_index,
    _Grid,
    _NodeIndex,
    _Projection,
    haversine_m,
    snap,
    snap_point,
)

MOSCOW = Path(__file__).resolve().parents[1] / "data" / "moscow_ostankino_drive.osm.bz2"


@pytest.fixture(scope="module")
def moscow(tmp_path_factory: pytest.TempPathFactory) -> RoadNetwork:
    return RoadNetwork.from_osm(MOSCOW, cache_dir=tmp_path_factory.mktemp("cache"))


def test_node_coordinates_snap_to_themselves(moscow: RoadNetwork) -> None:
    """Every node's own (lon, lat) snaps to that node at distance zero."""
    result = snap(moscow, moscow.lonlat)
    np.testing.assert_array_equal(result.nodes, np.arange(moscow.n_nodes))
    np.testing.assert_allclose(result.distance_m, 0.0, atol=1e-6)
    assert not result.too_far.any()


def test_snap_matches_brute_force_nearest_node(moscow: RoadNetwork) -> None:
    """Random points inside the extent snap to the node a brute-force haversine search finds."""
    rng = np.random.default_rng(7)
    lo, hi = moscow.lonlat.min(axis=0), moscow.lonlat.max(axis=0)
    points = lo + rng.random((200, 2)) * (hi - lo)
    result = snap(moscow, points, max_distance_m=10_000)
    all_distances = haversine_m(points[:, None, :], moscow.lonlat[None, :, :])
    np.testing.assert_allclose(result.distance_m, all_distances.min(axis=1), rtol=1e-3, atol=0.5)
    np.testing.assert_allclose(all_distances[np.arange(200), result.nodes], result.distance_m)


def test_too_far_point_is_reported_not_snapped(moscow: RoadNetwork) -> None:
    """A point beyond max_distance_m gets NO_NODE and raise_if_too_far names its label and coordinates."""
    near = moscow.lonlat[3] + [0.0001, 0.0]
    far = [37.70, 55.90]
    result = snap(moscow, [near, far], max_distance_m=500.0)
    assert result.nodes[0] == 3 and result.nodes[1] == NO_NODE
    np.testing.assert_array_equal(result.too_far, [False, True])
    assert result.distance_m[1] > 5_000
    with pytest.raises(
        SnapError, match=r"'customer-42' at \(lon, lat\) = \(37\.700000, 55\.900000\) is \d+ m"
    ):
        result.raise_if_too_far(["depot", "customer-42"])
    with pytest.raises(SnapError, match="'#1'"):
        result.raise_if_too_far()


def test_raise_if_too_far_is_silent_when_all_points_are_near(moscow: RoadNetwork) -> None:
    """No error is raised when every point is within the limit."""
    snap(moscow, moscow.lonlat[:5]).raise_if_too_far(["a", "b", "c", "d", "e"])


def test_label_count_must_match_points(moscow: RoadNetwork) -> None:
    """A label list of the wrong length is rejected."""
    with pytest.raises(SnapError, match="labels"):
        snap(moscow, moscow.lonlat[:2]).raise_if_too_far(["only-one"])


def test_invalid_points_are_rejected_naming_the_index(moscow: RoadNetwork) -> None:
    """Non-finite or out-of-range coordinates and wrong shapes raise SnapError naming the point."""
    with pytest.raises(SnapError, match=r"points_lonlat\[1\]"):
        snap(moscow, [[37.6, 55.8], [np.nan, 55.8]])
    with pytest.raises(SnapError, match=r"points_lonlat\[0\]"):
        snap(moscow, [[37.6, 95.0]])
    with pytest.raises(SnapError, match="K×2"):
        snap(moscow, [37.6, 55.8])


def test_empty_input_gives_empty_result(moscow: RoadNetwork) -> None:
    """Snapping zero points returns empty arrays."""
    result = snap(moscow, np.empty((0, 2)))
    assert result.nodes.shape == (0,) and result.distance_m.shape == (0,) and result.too_far.shape == (0,)


def test_kd_tree_is_built_once_per_network(moscow: RoadNetwork) -> None:
    """After a first snap the KD-tree is memoised on the network and reused."""
    snap(moscow, moscow.lonlat[:1])
    moscow.cached("snap_kdtree", lambda: pytest.fail("KD-tree rebuilt"))


def test_snap_result_validates_consistency() -> None:
    """SnapResult rejects nodes that disagree with the too_far flags."""
    with pytest.raises(SnapError, match="NO_NODE"):
        SnapResult(
            nodes=np.array([5]),
            distance_m=np.array([900.0]),
            too_far=np.array([True]),
            points_lonlat=np.array([[37.6, 55.8]]),
            max_distance_m=500.0,
        )


def test_one_point_in_scalars_snaps_as_the_array(moscow: RoadNetwork) -> None:
    """snap_point gives the node and distance snap gives, near and far, and names a bad coordinate."""
    rng = np.random.default_rng(3)
    lon, lat = moscow.lonlat[:, 0], moscow.lonlat[:, 1]
    points = np.column_stack((rng.uniform(lon.min() - 0.02, lon.max() + 0.02, 300),
                              rng.uniform(lat.min() - 0.02, lat.max() + 0.02, 300)))
    whole = snap(moscow, points, max_distance_m=150.0)
    got = [snap_point(moscow, float(x), float(y), max_distance_m=150.0) for x, y in points]
    assert [n for n, _ in got] == whole.nodes.tolist() and NO_NODE in whole.nodes
    assert np.allclose([d for _, d in got], whole.distance_m, rtol=0, atol=1e-6)
    with pytest.raises(SnapError, match="points_lonlat"):
        snap_point(moscow, 37.6, float("nan"))


def test_grid_answers_the_tree_nearest_node_near_the_roads(moscow: RoadNetwork) -> None:
    """The grid behind snap_point finds the k-d tree's nearest node for points near the roads (and leaves points
    far from every node to the tree)."""
    index = _build_index(moscow)
    rng = np.random.default_rng(5)
    near = index.projection.project(moscow.lonlat[rng.integers(0, moscow.n_nodes, 400)]) + rng.normal(0, 40, (400, 2))
    found = [index.grid.nearest(float(x), float(y)) for x, y in near]
    assert found == index.query(near).tolist()
    far = index.projection.project(np.array([[37.75, 55.9]]))[0]
    assert index.grid.nearest(float(far[0]), float(far[1])) is None


def test_nodes_at_one_place_snap_to_the_lowest_whichever_way() -> None:
    """Of nodes sharing a position, the grid and the tree both answer the lowest index."""
    xy = np.array([[0.0, 0.0], [50.0, 0.0], [120.0, 30.0], [50.0, 0.0], [0.0, 0.0]])
    _, first, same = np.unique(xy, axis=0, return_index=True, return_inverse=True)
    grid = _Grid.build(xy)
    points = np.array([[49.0, 1.0], [2.0, -1.0], [110.0, 25.0], [51.0, 0.0]])
    assert [grid.nearest(float(x), float(y)) for x, y in points] == [1, 0, 2, 1]
    index = _NodeIndex(projection=_Projection(lon0=0.0, lat0=0.0, x_scale=1.0), tree=cKDTree(xy), grid=grid,
                       first=first[same.ravel()].astype(np.int64))
    assert index.query(points).tolist() == [1, 0, 2, 1]
