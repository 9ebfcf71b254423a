"""The MDRP bench's tables are built from valid variants of the rolling policy."""

from __future__ import annotations

from dataclasses import replace

from benchmarks.bench_mdrp import KNOB_STEPS
from dispatch.meal import RollingHorizonOptions


def test_every_knob_step_is_a_valid_knob_moved_off_its_default() -> None:
    """Each step of the "one knob moved one step" table names a knob of the rolling policy, builds valid options
    and differs from the default, and no step is listed twice."""
    default = RollingHorizonOptions()
    assert len(set(KNOB_STEPS)) == len(KNOB_STEPS)
    for knob, value in KNOB_STEPS:
        moved = replace(default, **{knob: value})
        assert getattr(moved, knob) != getattr(default, knob), knob
