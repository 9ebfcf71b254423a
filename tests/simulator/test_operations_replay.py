"""The simulator drives one operations core: its command stream replays, and a snapshot resumes it elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dispatch.errors import InvalidDispatchError
from dispatch.operations import Operations
from routing.network import RoadNetwork
from simulator.model import SimulationResult, operations_for, simulate
from simulator.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "scenarios" / "moscow-ostankino-tiny.toml"


@pytest.fixture(scope="module")
def day(scenario: Scenario, network: RoadNetwork) -> tuple[SimulationResult, list[dict[str, Any]]]:
    journal: list[dict[str, Any]] = []
    return simulate(scenario, network=network, journal=journal), journal


def _lines(events: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(e, sort_keys=True) for e in events]


def _replay(core: Operations, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e.line() for c in commands for e in core.apply(c).events]


def test_the_day_is_its_command_stream(scenario: Scenario, network: RoadNetwork,
                                       day: tuple[SimulationResult, list[dict[str, Any]]]) -> None:
    """Replaying the simulated day's commands (through JSON) into a fresh core gives every event of the day,
    in order: the simulator adds no dispatch logic of its own."""
    result, journal = day
    commands = json.loads(json.dumps(journal))
    assert {c["op"] for c in commands} >= {"place", "tick", "shift", "picked", "picked_up", "delivered",
                                             "at_store", "cancel", "failed"}
    replayed = _replay(operations_for(scenario, network), commands)
    assert _lines(replayed) == _lines(list(result.recorder.event_lines()))


def test_snapshot_restored_in_a_fresh_process_finishes_the_day_identically(
        scenario: Scenario, network: RoadNetwork, day: tuple[SimulationResult, list[dict[str, Any]]],
        tmp_path: Path) -> None:
    """Half the day into one core, its snapshot restored by another Python process that runs the other half:
    the events of both halves equal those of the uninterrupted day."""
    result, journal = day
    commands = json.loads(json.dumps(journal))
    half = len(commands) // 2
    first = operations_for(scenario, network)
    events = _replay(first, commands[:half])
    assert any(first.dispatchers[s].orders for s in first.dispatchers), "the snapshot should hold open orders"
    (tmp_path / "snapshot.json").write_bytes(first.snapshot())
    (tmp_path / "rest.json").write_text(json.dumps(commands[half:]))
    script = f"""
import json, sys
from pathlib import Path
from routing.network import RoadNetwork
from simulator.model import operations_for
from api.scenario_file import load_scenario
sc = load_scenario({str(TINY)!r})
core = operations_for(sc, RoadNetwork.from_osm(sc.map_file, cache_dir={str(tmp_path / "cache")!r}))
core.restore(Path({str(tmp_path / "snapshot.json")!r}).read_bytes())
for c in json.loads(Path({str(tmp_path / "rest.json")!r}).read_text()):
    for e in core.apply(c).events:
        print(json.dumps(e.line()))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    events += [json.loads(line) for line in done.stdout.splitlines()]
    assert _lines(events) == _lines(list(result.recorder.event_lines()))


def test_a_snapshot_is_versioned_json_and_refuses_another_configuration(
        scenario: Scenario, network: RoadNetwork, day: tuple[SimulationResult, list[dict[str, Any]]]) -> None:
    """The snapshot is JSON naming its format and version; a wrong version, broken bytes or a core with other
    couriers are refused naming the field, and the refused core is left as it was."""
    _, journal = day
    core = operations_for(scenario, network)
    _replay(core, journal[:200])
    blob = core.snapshot()
    data = json.loads(blob)
    assert data["format"] == "lastmile.operations" and data["version"] == 1
    other = operations_for(scenario, network)
    before = other.snapshot()
    with pytest.raises(InvalidDispatchError, match=r"snapshot\.version"):
        other.restore(json.dumps({**data, "version": 99}).encode())
    with pytest.raises(InvalidDispatchError, match="snapshot"):
        other.restore(b"\xff not json")
    with pytest.raises(InvalidDispatchError, match=r"snapshot\.couriers"):
        other.restore(json.dumps({**data, "couriers": ["someone-else"]}).encode())
    assert other.snapshot() == before
    other.restore(blob)
    assert other.snapshot() == blob


def test_bad_commands_name_the_field(scenario: Scenario, network: RoadNetwork) -> None:
    """An unknown op, a missing field or time going back is refused with the field named."""
    core = operations_for(scenario, network)
    with pytest.raises(InvalidDispatchError, match=r"command\.op"):
        core.apply({"op": "teleport", "now": 0})
    with pytest.raises(InvalidDispatchError, match=r"command\.store"):
        core.apply({"op": "tick", "now": 0})
    core.apply({"op": "tick", "now": 100, "store": "ostankino"})
    with pytest.raises(InvalidDispatchError, match="now"):
        core.apply({"op": "tick", "now": 50, "store": "ostankino"})
