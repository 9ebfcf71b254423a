"""simulator.scenario: scenario times up to 48:00, and the `--set` knobs of runs and sweeps (the file format is
tested with its loader, in tests/api/test_scenario_file.py)."""

from __future__ import annotations

import pytest

from simulator.errors import ScenarioError
from simulator.scenario import Scenario, apply_setting, parse_time


def test_parse_time() -> None:
    """HH:MM, HH:MM:SS and seconds up to 48:00 are accepted; junk is refused naming the field."""
    assert parse_time("08:30", "x") == 8 * 3600 + 1800
    assert parse_time("23:59:59", "x") == 86_399
    assert parse_time("48:00", "x") == 2 * 86_400
    assert parse_time(600, "x") == 600
    for bad in ("8h", "12:60", "48:01", True, 1.5, -1):
        with pytest.raises(ScenarioError, match=r"^x: must"):
            parse_time(bad, "x")


def test_settings(scenario: Scenario) -> None:
    """Sweep settings change the named knob: fleet totals per profile spread over groups, policy, seed."""
    sc = scenario
    bikes = apply_setting(sc, "fleet.bike", "10")
    assert sum(g.count for g in bikes.fleet if g.profile == "bike") == 10
    assert [g.count for g in bikes.fleet if g.profile != "bike"] == [g.count for g in sc.fleet if g.profile != "bike"]
    assert apply_setting(sc, "policy", "greedy").policy.name == "greedy"
    assert apply_setting(sc, "policy.hold_s", "60").policy.hold_s == 60
    tuned = apply_setting(apply_setting(apply_setting(sc, "policy.objective", "lateness"), "policy.backend", "hybrid"),
                          "policy.warm_start", "false")
    assert (tuned.policy.objective, tuned.policy.backend, tuned.policy.warm_start) == ("lateness", "hybrid", False)
    assert apply_setting(sc, "policy.minute_cost_m", "75").policy.minute_cost_m == 75
    assert apply_setting(sc, "policy.room_factor", "0").policy.room_factor == 0
    assert apply_setting(sc, "policy.co2_cost_m_per_kg", "5000").policy.co2_cost_m_per_kg == 5000
    assert apply_setting(sc, "seed", "9").seed == 9
    assert apply_setting(sc, "fleet.scale", "2").couriers == 2 * sc.couriers
    assert sc.allocation.rank == "eta" and apply_setting(sc, "allocation.rank", "nearest").allocation.rank == "nearest"
    assert apply_setting(sc, "allocation.max_detour_s", "120").allocation.max_detour_s == 120
    for key, value in (("fleet.rocket", "3"), ("policy", "magic"), ("fleet.bike", "-1"), ("color", "1"),
                       ("policy.nope", "1"), ("allocation.rank", "random"), ("fleet.bike", str(10**23)),
                       ("fleet.scale", "1e300"), ("policy.hold_s", str(2**63)), ("seed", str(2**64)),
                       ("demand.orders", str(10**12)), ("policy.max_orders", "0"), ("policy.objective", "speed"),
                       ("policy.backend", "pyvrp"), ("policy.warm_start", "yes"), ("policy.minute_cost_m", "-5"),
                       ("policy.room_factor", "-1"), ("policy.co2_cost_m_per_kg", "-1"),
                       ("policy.co2_cost_m_per_kg", "0.5")):
        with pytest.raises(ScenarioError, match=f"--set {key}"):
            apply_setting(sc, key, value)
