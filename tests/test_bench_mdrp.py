"""The MDRP bench: tables built from valid variants of the rolling policy, days carrying the checker's figures."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.bench_mdrp import CHECKER, KNOB_STEPS, replay
from dispatch.meal import RollingHorizonOptions


def test_every_knob_step_is_a_valid_knob_moved_off_its_default() -> None:
    """Each step of the "one knob moved one step" table names a knob of the rolling policy, builds valid options
    and differs from the default, and no step is listed twice."""
    default = RollingHorizonOptions()
    assert len(set(KNOB_STEPS)) == len(KNOB_STEPS)
    for knob, value in KNOB_STEPS:
        moved = replace(default, **{knob: value})
        assert getattr(moved, knob) != getattr(default, knob), knob


def test_days_are_grouped_by_split_and_shift_schedule() -> None:
    """The per-shift-schedule table puts each day in its split and schedule by name and averages only those days."""
    from benchmarks.bench_mdrp import by_shifts

    def day(name: str, excess: float) -> dict[str, object]:
        return {"instance": name, "ctd_excess": excess, "undelivered_pct": 0.0}

    rows = [day("1o50t100s1p100", 4.0), day("2r50t75s1p125", 2.0), day("0o100t100s2p100", 1.0),
            day("4o50t100s2p125", 0.5), day("3o100t75s2p100", 1.5)]
    table = by_shifts(rows)
    assert list(table) == ["tune, historical shifts (s1)", "tune, optimised shifts (s2)",
                           "validate, optimised shifts (s2)"]
    assert table["tune, historical shifts (s1)"] == {"days": 2, "ctd_excess": 3.0, "undelivered_pct": 0.0}
    assert table["tune, optimised shifts (s2)"]["days"] == 1
    assert table["validate, optimised shifts (s2)"] == {"days": 2, "ctd_excess": 1.0, "undelivered_pct": 0.0}


def test_replay_reports_the_checkers_figures_and_agrees_with_them() -> None:
    """A replayed day carries `mdrp_check.py`'s verdict and figures, and the simulator's own excess, floor and
    undelivered share equal the checker's on the tiny day (one late drop-off, one order no courier reaches)."""
    if not CHECKER.is_file():
        pytest.skip(f"no MDRP checker at {CHECKER}")
    tiny = Path(__file__).resolve().parent / "data" / "mdrp_tiny"
    for policy in ("greedy", "rolling"):
        row = replay((str(tiny), policy))
        assert row["check_valid"] and row["check_agrees"], (policy, row)
        assert row["structurally_undeliverable_pct"] == 16.667 and row["check_undelivered_pct"] == 33.333


def test_the_extra_couriers_row_replays_the_day_with_them_at_its_peak() -> None:
    """A knob-table task with 2 extra couriers replays the day with 2 more couriers over its busiest 120 minutes,
    as `simulate --mdrp --extra-couriers 2` does; with none, the day as recorded."""
    from benchmarks.bench_mdrp import PEAK_MIN, replay_knob
    from dispatch.meal import RollingHorizonMealPolicy
    from simulator.mdrp import (
        busiest_window,
        delivered,
        excess_over_own_bound,
        read_instance,
        simulate,
        with_extra_couriers,
    )

    folder = Path(__file__).resolve().parent / "data" / "mdrp_tiny"
    recorded = read_instance(folder)
    for extra, day in ((0, recorded), (2, with_extra_couriers(recorded, 2, *busiest_window(recorded, PEAK_MIN)))):
        done = delivered(day, simulate(day, RollingHorizonMealPolicy(rules=day.parameters.rules)))
        n = len(day.orders)
        expected = {"ctd_excess_delivered": sum(excess_over_own_bound(day, done)) / len(done),
                    "undelivered_pct": 100 * (n - len(done)) / n}
        assert replay_knob((str(folder), "", None, 1.0, 0, extra)) == expected
