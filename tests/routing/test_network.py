"""Tests for routing.network: offline OSM loading, the npz cache, profiles, time of day and CSR export."""

import bz2
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

from routing.errors import InvalidProblemError, NetworkLoadError
from routing.network import (
    CACHE_DIR_ENV,
    HIGHWAY_CODE,
    PROFILES,
    Profile,
    RoadNetwork,
    TimeOfDayFactors,
)
from tests.hash_seed import run_with_hash_seed

MOSCOW = Path(__file__).resolve().parents[1] / "data" / "moscow_ostankino_drive.osm.bz2"
MERGED_WAYS = Path(__file__).resolve().parents[1] / "data" / "merged_ways_with_different_highway.osm"


@pytest.fixture(scope="module")
def moscow(tmp_path_factory: pytest.TempPathFactory) -> RoadNetwork:
    return RoadNetwork.from_osm(MOSCOW, cache_dir=tmp_path_factory.mktemp("cache"))


def tiny_network(**overrides: object) -> RoadNetwork:
    fields: dict[str, object] = {
        "osm_ids": [10, 20, 30],
        "lon": [37.60, 37.61, 37.62],
        "lat": [55.80, 55.80, 55.80],
        "tail": [0, 0, 1, 1],
        "head": [1, 1, 2, 0],
        "length_m": [500.0, 300.0, 400.0, 300.0],
        "car_speed_kmh": [30.0, 60.0, 50.0, 60.0],
        "has_maxspeed": [False, True, False, False],
        "highway": [HIGHWAY_CODE["residential"], HIGHWAY_CODE["primary"], HIGHWAY_CODE["motorway"], 0],
    }
    fields.update(overrides)
    return RoadNetwork(**fields)  # type: ignore[arg-type]


def test_from_osm_builds_compact_strongly_connected_graph(moscow: RoadNetwork) -> None:
    """The Moscow fixture loads offline into typed arrays forming one strongly connected component."""
    assert (moscow.n_nodes, moscow.n_edges) == (154, 304)
    assert moscow.osm_ids.dtype == np.int64 and moscow.tail.dtype == np.int32
    assert moscow.lonlat.shape == (154, 2)
    assert np.all((moscow.lonlat[:, 0] > 37.5) & (moscow.lonlat[:, 0] < 37.7))
    assert np.all((moscow.lonlat[:, 1] > 55.7) & (moscow.lonlat[:, 1] < 55.9))
    count, _ = connected_components(moscow.csr("car"), directed=True, connection="strong")
    assert count == 1
    assert not moscow.from_cache


def test_second_load_reads_identical_arrays_from_cache(tmp_path: Path) -> None:
    """Loading the same file twice serves the second copy from the npz cache with identical arrays."""
    first = RoadNetwork.from_osm(MOSCOW, cache_dir=tmp_path)
    second = RoadNetwork.from_osm(MOSCOW, cache_dir=tmp_path)
    assert not first.from_cache and second.from_cache
    assert len(list(tmp_path.glob("*.npz"))) == 1
    for name in (
        "osm_ids",
        "lon",
        "lat",
        "tail",
        "head",
        "length_m",
        "car_speed_kmh",
        "has_maxspeed",
        "highway",
    ):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))


def _speeds_built_with_hash_seed(seed: int, cache_dir: Path) -> list[list[float]]:
    code = ("import json, sys; from routing.network import RoadNetwork; "
            "n = RoadNetwork.from_osm(sys.argv[1], cache_dir=sys.argv[2]); "
            "print(json.dumps([n.tail.tolist(), n.head.tolist(), n.car_speed_kmh.tolist()]))")
    return json.loads(run_with_hash_seed(code, str(MERGED_WAYS), str(cache_dir), seed=seed))


def test_network_built_by_any_process_is_the_same(tmp_path: Path) -> None:
    """Ways joined into one edge impute its car speed from its most important highway class, whatever the hash seed."""
    builds = [_speeds_built_with_hash_seed(seed, tmp_path / str(seed)) for seed in (1, 2, 3, 4)]
    assert all(b == builds[0] for b in builds[1:])
    tail, head, speed = builds[0]
    # nodes 1-2-3 (residential way, then tertiary way, no maxspeed) become one edge, both ways: tertiary outranks
    # residential, so the speed is the mean of tagged tertiary roads (50), not of residential ones (30)
    joined = [s for t, h, s in zip(tail, head, speed, strict=True) if {t, h} == {0, 1} and s != 60.0]
    assert joined == [50.0, 50.0]


def test_cache_is_rebuilt_when_source_file_changes(tmp_path: Path) -> None:
    """Replacing the source file's content invalidates the cache and yields the new geometry."""
    source = tmp_path / "map.osm.bz2"
    shutil.copyfile(MOSCOW, source)
    cache = tmp_path / "cache"
    original = RoadNetwork.from_osm(source, cache_dir=cache)
    assert RoadNetwork.from_osm(source, cache_dir=cache).from_cache

    node_id = int(original.osm_ids[0])
    xml = bz2.decompress(source.read_bytes()).decode()
    xml, replaced = re.subn(rf'(<node id="{node_id}"[^>]*lat=")([0-9.]+)', r"\g<1>55.8100000", xml)
    assert replaced == 1
    source.write_bytes(bz2.compress(xml.encode()))

    changed = RoadNetwork.from_osm(source, cache_dir=cache)
    assert not changed.from_cache
    assert changed.lat[0] == pytest.approx(55.81)
    assert original.lat[0] != pytest.approx(55.81)
    assert RoadNetwork.from_osm(source, cache_dir=cache).from_cache


def test_touching_the_source_without_changing_it_keeps_the_cache(tmp_path: Path) -> None:
    """The cache is keyed by content (sha256), so a new mtime alone does not force a rebuild."""
    source = tmp_path / "map.osm.bz2"
    shutil.copyfile(MOSCOW, source)
    RoadNetwork.from_osm(source, cache_dir=tmp_path / "cache")
    source.touch()
    assert RoadNetwork.from_osm(source, cache_dir=tmp_path / "cache").from_cache


def test_corrupt_cache_file_is_ignored_and_rewritten(tmp_path: Path) -> None:
    """A damaged cache file is rebuilt from the OSM source instead of failing the load."""
    RoadNetwork.from_osm(MOSCOW, cache_dir=tmp_path)
    (cache_file,) = tmp_path.glob("*.npz")
    cache_file.write_bytes(b"not an npz file")
    rebuilt = RoadNetwork.from_osm(MOSCOW, cache_dir=tmp_path)
    assert not rebuilt.from_cache and rebuilt.n_nodes == 154
    assert RoadNetwork.from_osm(MOSCOW, cache_dir=tmp_path).from_cache


def test_cache_dir_defaults_to_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without cache_dir the cache lands in $LASTMILE_CACHE_DIR."""
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "envcache"))
    RoadNetwork.from_osm(MOSCOW)
    assert len(list((tmp_path / "envcache").glob("*.npz"))) == 1


def test_missing_file_raises_network_load_error_naming_it(tmp_path: Path) -> None:
    """A missing OSM file raises NetworkLoadError that names the path."""
    with pytest.raises(NetworkLoadError, match=r"nowhere\.osm"):
        RoadNetwork.from_osm(tmp_path / "nowhere.osm", cache_dir=tmp_path)


def test_folder_is_named_as_a_folder_not_a_missing_file(tmp_path: Path) -> None:
    """A folder given as the OSM file raises NetworkLoadError saying it is a folder (it exists)."""
    (tmp_path / "maps.osm").mkdir()
    with pytest.raises(NetworkLoadError) as err:
        RoadNetwork.from_osm(tmp_path / "maps.osm", cache_dir=tmp_path)
    assert str(err.value) == f"{str(tmp_path / 'maps.osm')!r} is a folder, not an OSM file (.osm, .osm.bz2 or .osm.gz)"


def test_unparsable_file_raises_network_load_error(tmp_path: Path) -> None:
    """A file that is not OSM XML raises NetworkLoadError naming the file."""
    bad = tmp_path / "bad.osm"
    bad.write_text("this is not xml")
    with pytest.raises(NetworkLoadError, match=r"bad\.osm"):
        RoadNetwork.from_osm(bad, cache_dir=tmp_path)


def test_constructor_rejects_inconsistent_arrays_naming_the_field() -> None:
    """Validation errors name the offending array and position."""
    with pytest.raises(NetworkLoadError, match=r"head\[2\]"):
        tiny_network(head=[1, 1, 7, 0])
    with pytest.raises(NetworkLoadError, match=r"length_m\[1\]"):
        tiny_network(length_m=[500.0, 0.0, 400.0, 300.0])
    with pytest.raises(NetworkLoadError, match="osm_ids"):
        tiny_network(osm_ids=[30, 20, 10])
    with pytest.raises(NetworkLoadError, match="car_speed_kmh"):
        tiny_network(car_speed_kmh=[30.0, 60.0])


def test_arrays_are_read_only() -> None:
    """Network arrays cannot be modified in place."""
    network = tiny_network()
    with pytest.raises(ValueError, match="read-only"):
        network.length_m[0] = 1.0


def test_csr_keeps_the_fastest_of_parallel_edges() -> None:
    """The CSR export holds one weight per node pair: the minimum over parallel edges."""
    network = tiny_network()
    time = network.csr("car").toarray()
    assert time[0, 1] == pytest.approx(300.0 / (60.0 / 3.6))
    assert network.csr("car").nnz == 3
    distance = network.csr("car", metric="distance").toarray()
    assert distance[0, 1] == pytest.approx(300.0)
    assert network.csr("car", 8) is network.csr("car", 8)


def test_edge_times_are_length_over_speed_times_hourly_factor() -> None:
    """Car edge time = length / speed, scaled by the hour's factor (damped on motorways)."""
    network = tiny_network()
    base = network.length_m / (network.car_speed_kmh / 3.6)
    np.testing.assert_allclose(network.edge_times("car"), base)
    np.testing.assert_allclose(network.edge_times("car", 3), base)
    rush = network.edge_times("car", 18) / base
    assert rush[0] == pytest.approx(1.6)
    assert 1.0 < rush[2] < 1.6


def test_rush_hour_car_times_exceed_night_times(moscow: RoadNetwork) -> None:
    """At 18:00 every car edge takes at least as long as at 03:00, and the total is larger."""
    night, rush = moscow.edge_times("car", 3), moscow.edge_times("car", 18)
    assert np.all(rush >= night) and rush.sum() > 1.3 * night.sum()


def test_bike_is_flat_capped_by_car_speed_and_foot_is_flat() -> None:
    """Bike rides 15 km/h unless the car speed is lower; foot walks 5 km/h regardless of hour."""
    network = tiny_network(car_speed_kmh=[10.0, 60.0, 50.0, 60.0])
    np.testing.assert_allclose(PROFILES["bike"].edge_speeds_kmh(network), [10.0, 15.0, 15.0, 15.0])
    np.testing.assert_allclose(PROFILES["foot"].edge_speeds_kmh(network), 5.0)
    np.testing.assert_allclose(network.edge_times("foot", 18), network.edge_times("foot", 3))


def test_highway_default_speeds_apply_only_without_maxspeed() -> None:
    """Per-highway default speeds replace OSM-imputed speeds on edges lacking a maxspeed tag only."""
    profile = Profile(
        name="car", highway_speeds_kmh=(("primary", 20.0), ("residential", 20.0)), max_speed_kmh=130
    )
    speeds = profile.edge_speeds_kmh(tiny_network())
    np.testing.assert_allclose(speeds, [20.0, 60.0, 50.0, 60.0])


def test_foot_arcs_add_the_reverse_of_every_edge() -> None:
    """Foot ignores one-way restrictions: its arcs include each edge reversed; car arcs do not."""
    network = tiny_network()
    car = network.arcs("car")
    foot = network.arcs("foot")
    assert len(car.tail) == 4 and len(foot.tail) == 8
    assert (2, 1) in set(zip(foot.tail.tolist(), foot.head.tolist(), strict=True))
    assert (2, 1) not in set(zip(car.tail.tolist(), car.head.tolist(), strict=True))


def test_node_index_maps_osm_ids_and_names_missing_ones() -> None:
    """OSM ids map to dense indices; an unknown id raises an error naming it."""
    network = tiny_network()
    np.testing.assert_array_equal(network.node_index([30, 10]), [2, 0])
    with pytest.raises(InvalidProblemError, match="OSM node 25"):
        network.node_index([10, 25])


def test_invalid_hour_profile_and_metric_are_rejected_by_name() -> None:
    """Bad hour, profile or metric raise InvalidProblemError naming the parameter."""
    network = tiny_network()
    with pytest.raises(InvalidProblemError, match="hour"):
        network.edge_times("car", 24)
    with pytest.raises(InvalidProblemError, match="profile 'plane'"):
        network.csr("plane")
    with pytest.raises(InvalidProblemError, match="metric"):
        network.csr("car", metric="money")  # type: ignore[arg-type]


def test_time_of_day_factors_validate_each_hour() -> None:
    """Factors below 1, wrong length or unknown highway classes are rejected by name."""
    with pytest.raises(InvalidProblemError, match=r"hourly\[5\]"):
        TimeOfDayFactors(hourly=(1.0,) * 5 + (0.9,) + (1.0,) * 18)
    with pytest.raises(InvalidProblemError, match="24"):
        TimeOfDayFactors(hourly=(1.0,) * 23)
    with pytest.raises(InvalidProblemError, match="highway class 'autobahn'"):
        TimeOfDayFactors(hourly=(1.0,) * 24, highway_sensitivity=(("autobahn", 0.5),))


def test_profile_validates_speeds() -> None:
    """A profile with a non-positive speed is rejected naming the field."""
    with pytest.raises(InvalidProblemError, match="speed_kmh"):
        Profile(name="bike", speed_kmh=0.0, max_speed_kmh=25.0)
    with pytest.raises(InvalidProblemError, match="max_speed_kmh"):
        Profile(name="bike", speed_kmh=10.0, max_speed_kmh=-1.0)
