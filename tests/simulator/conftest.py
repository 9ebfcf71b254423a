"""Fixtures of the simulator tests: the tiny Ostankino scenario and its road network."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.scenario_file import load_scenario
from routing.network import RoadNetwork
from simulator.scenario import Scenario

TINY = Path(__file__).resolve().parents[2] / "scenarios" / "moscow-ostankino-tiny.toml"


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    """The tiny Ostankino scenario (120 orders over four hours)."""
    return load_scenario(TINY)


@pytest.fixture(scope="module")
def network(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> RoadNetwork:
    """Its road network, cached in a temporary folder."""
    return RoadNetwork.from_osm(scenario.map_file, cache_dir=tmp_path_factory.mktemp("cache"))
