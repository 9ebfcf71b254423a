"""Fixtures of the routing tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.network import RoadNetwork

ROOT = Path(__file__).resolve().parents[2]
MOSCOW = ROOT / "tests" / "data" / "moscow_ostankino_drive.osm.bz2"
PORTO_CENTRE = ROOT / "scenarios" / "maps" / "porto_centre_drive.osm.bz2"


@pytest.fixture(scope="session")
def moscow(tmp_path_factory: pytest.TempPathFactory) -> RoadNetwork:
    """The tiny Ostankino road network (154 nodes)."""
    return RoadNetwork.from_osm(MOSCOW, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def porto(tmp_path_factory: pytest.TempPathFactory) -> RoadNetwork:
    """The Porto centre road network (7,514 nodes)."""
    return RoadNetwork.from_osm(PORTO_CENTRE, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(params=["pyvrp", "ortools", "hybrid"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every backend in turn."""
    return str(request.param)


@pytest.fixture(scope="session", autouse=True)
def compiled_search() -> None:
    """Load (or compile, on a fresh clone) the string-removal kernels once, before any timed test."""
    from routing.solvers.lns import kernels

    kernels()
