"""simulator.scenario: scenario times up to 48:00, and the `--set` knobs of runs and sweeps (the file format is
tested with its loader, in tests/api/test_scenario_file.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dispatch.policy import ReoptimizePolicy
from simulator.errors import ScenarioError
from simulator.model import make_policy
from simulator.scenario import MAX_COUNT, Scenario, apply_setting, check_policy, parse_time, reoptimize_options


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


@pytest.mark.parametrize(("key", "what"), [("fleet.scale", "fleet group larger than 1000000 couriers"),
                                           ("stores.pickers_scale", "store more than 1000000 pickers"),
                                           ("lockers.compartments_scale", "locker more than 1000000 compartments"),
                                           ("pickup_points.capacity_scale", "pickup point more than 1000000 places")])
@pytest.mark.parametrize("factor", ["1e308", "1.7976931348623157e308", "1000000.6"])
def test_a_scale_past_the_largest_count_is_refused_naming_the_key(scenario: Scenario, key: str, what: str,
                                                                  factor: str) -> None:
    """A scale whose product overflows a float (1e308 x 2) or passes MAX_COUNT is a ScenarioError naming the key."""
    with pytest.raises(ScenarioError, match=f"^--set {key}: would .*{what}"):
        apply_setting(scenario, key, factor)


def test_a_scale_just_below_the_largest_count_is_kept(scenario: Scenario) -> None:
    """The bound is MAX_COUNT itself: a largest group scaled to exactly 1,000,000 is kept; empty groups stay empty
    under any finite scale (0 x 1e308 is 0)."""
    largest = max(g.count for g in scenario.fleet)
    scaled = apply_setting(scenario, "fleet.scale", repr(MAX_COUNT / largest))
    assert max(g.count for g in scaled.fleet) == MAX_COUNT
    empty = replace(scenario, fleet=tuple(replace(g, count=0) for g in scenario.fleet))
    assert apply_setting(empty, "fleet.scale", "1e308").couriers == 0


def test_demand_orders_is_refused_on_a_replayed_demand(scenario: Scenario, tmp_path: Path) -> None:
    """`demand.orders` on a scenario replaying a CSV is a ScenarioError naming the file, not silently ignored."""
    replayed = replace(scenario, demand=replace(scenario.demand, kind="replay", file=tmp_path / "day.csv"))
    with pytest.raises(ScenarioError, match=r"^--set demand.orders: the demand is replayed from day.csv"):
        apply_setting(replayed, "demand.orders", "50")
    assert apply_setting(scenario, "demand.orders", "50").demand.orders == 50


def test_check_policy_refuses_a_combination_the_policy_refuses(scenario: Scenario) -> None:
    """reoptimize with backend ortools (quotes kept) is refused, naming the knob as given; batch ignores it."""
    ortools = apply_setting(apply_setting(scenario, "policy.backend", "ortools"), "policy", "reoptimize")
    with pytest.raises(ScenarioError, match=r"^--set policy.backend: ortools cannot price"):
        check_policy(ortools, ["policy.backend", "policy"])
    with pytest.raises(ScenarioError, match=r"^--policy: policy.backend = 'ortools': ortools cannot price"):
        check_policy(ortools, {"fleet.bike": "--set fleet.bike", "policy": "--policy"})
    with pytest.raises(ScenarioError, match=r"^policy.backend: ortools cannot price"):
        check_policy(ortools)
    assert check_policy(apply_setting(ortools, "policy.quote_minute_cost_m", "0")).policy.backend == "ortools"
    assert check_policy(apply_setting(ortools, "policy", "batch")).policy.name == "batch"
    assert check_policy(apply_setting(ortools, "policy.backend", "auto")).policy.backend == "auto"


@pytest.mark.parametrize("sets", [{}, {"policy.backend": "hybrid", "policy.objective": "lateness"},
                                  {"policy.warm_start": "false", "policy.room_factor": "2", "seed": "9"}])
def test_reoptimize_options_are_the_options_the_run_builds(scenario: Scenario, sets: dict[str, str]) -> None:
    """`reoptimize_options` (what check_policy validates) equals the options `make_policy` gives the run."""
    sc = apply_setting(scenario, "policy", "reoptimize")
    for key, value in sets.items():
        sc = apply_setting(sc, key, value)
    built = make_policy(sc.policy, seed=sc.seed)
    assert isinstance(built, ReoptimizePolicy)
    assert built.options == reoptimize_options(sc.policy, seed=sc.seed)
    assert built.options.seed == sc.seed and built.options.iterations == sc.policy.iterations
