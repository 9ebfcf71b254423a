"""The express quote model: its lead from a quote's basis, its validation, and the quantile fit behind it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dispatch.errors import InvalidDispatchError
from dispatch.promise import ExpressModel, PromiseOptions, QuoteBasis, fit_express_model, tighten


def samples(seed: int, n: int, *, planned: bool) -> list[tuple[QuoteBasis, int]]:
    """Click-to-door = 60 s + picking + half the estimated courier wait + 1.1 × road + a detour only the
    dispatcher's plan knows (0-600 s) + an exponential delay (mean 120 s); with `planned`, the plan is all but
    the delay."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        p, w, r = int(rng.integers(100, 400)), int(rng.integers(0, 600)), int(rng.integers(60, 1200))
        truth = 60 + p + 0.5 * w + 1.1 * r + int(rng.integers(0, 600))
        plan = int(truth) if planned else None
        out.append((QuoteBasis(picking_s=p, courier_wait_s=w, road_s=r, planned_s=plan),
                    int(truth + rng.exponential(120))))
    return out


def test_lead_is_the_weighted_basis_never_below_picking_plus_road_nor_the_plan() -> None:
    """The lead is constant + weights × parts (the plan: the planned lead, else the plain estimate), rounded up,
    and never promises less than picking plus the road, nor than the planned lead."""
    m = ExpressModel(constant_s=30.5, picking=1.0, courier_wait=0.5, road=1.2, plan=0.1)
    planned = QuoteBasis(picking_s=100, courier_wait_s=200, road_s=300, planned_s=500)
    assert m.lead_s(planned) == 641  # 30.5 + 100 + 100 + 360 + 50 = 640.5, rounded up
    unplanned = QuoteBasis(picking_s=100, courier_wait_s=200, road_s=300)
    assert unplanned.plan_s == unplanned.lead_s == 600
    assert m.lead_s(unplanned) == 651  # 30.5 + 100 + 100 + 360 + 60 = 650.5, rounded up
    fast = ExpressModel(constant_s=-500.0, picking=0.1, courier_wait=0.0, road=0.1)
    assert fast.lead_s(unplanned) == 400  # picking + road, not 0
    assert fast.lead_s(planned) == 500  # nor less than the dispatcher's planned lead
    options = PromiseOptions(express_model=m)
    assert options.express_eta(planned, 1000) == 1680  # 1000 + 641 rounded up to the minute
    assert PromiseOptions().express_eta(unplanned, 1000) == 2040  # 1000 + 600 + 300 + 120, up to the minute


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"road": -0.1}, "express_model.road"), ({"plan": float("nan")}, "express_model.plan"),
    ({"constant_s": 1e9}, "express_model.constant_s"), ({"quantile": 1.0}, "express_model.quantile"),
    ({"picking": True}, "express_model.picking"),
])
def test_bad_models_name_the_field(kwargs: dict[str, object], field: str) -> None:
    """A weight below 0, a number that is not finite or out of range, a quantile outside (0, 1) are refused
    naming the field; a mapping in PromiseOptions becomes a model, an unknown key is refused."""
    good: dict[str, object] = {"constant_s": 0.0, "picking": 1.0, "courier_wait": 1.0, "road": 1.0}
    with pytest.raises(InvalidDispatchError, match=f"^{field}:"):
        ExpressModel(**(good | kwargs))  # type: ignore[arg-type]
    assert PromiseOptions(express_model=good).express_model == ExpressModel(**good)  # type: ignore[arg-type]
    with pytest.raises(InvalidDispatchError, match=r"^express_model:"):
        PromiseOptions(express_model=good | {"speed": 2})  # type: ignore[arg-type]


def test_the_fit_delivers_the_quantile_on_days_it_has_not_seen() -> None:
    """Fitted on one sample, the model delivers about its quantile of another drawn the same way, and finds the
    weights the samples were made with (courier wait 0.5, road 1.1); with a plan that knows all but the delay,
    the plan takes the weight and the slack shrinks to the delay's spread."""
    model = fit_express_model(samples(1, 3000, planned=False), 0.9)
    test = samples(2, 3000, planned=False)
    met = np.mean([actual <= model.lead_s(b) for b, actual in test])
    assert 0.87 <= met <= 0.93 and model.quantile == 0.9
    assert model.courier_wait == pytest.approx(0.5, abs=0.1) and model.road == pytest.approx(1.1, abs=0.1)
    planned = fit_express_model(samples(1, 3000, planned=True), 0.9)
    planned_test = samples(2, 3000, planned=True)
    assert planned.plan == pytest.approx(1.0, abs=0.05)
    met = np.mean([actual <= planned.lead_s(b) for b, actual in planned_test])
    slack = np.mean([planned.lead_s(b) - actual for b, actual in planned_test])
    blind = np.mean([model.lead_s(b) - actual for b, actual in test])
    assert 0.87 <= met <= 0.93 and 100 < slack < 200 < blind  # the delay's 90th percentile (276 s) less its mean
    with pytest.raises(InvalidDispatchError, match=r"^samples: need at least 20"):
        fit_express_model(samples(1, 5, planned=False))
    with pytest.raises(InvalidDispatchError, match=r"^quantile:"):
        fit_express_model(samples(1, 50, planned=False), 1.5)



def test_tighten_lowers_the_constant_as_far_as_the_quantile_still_holds() -> None:
    """Orders met by their floor (the plan) need no constant: `tighten` lowers it to the least that still meets
    the model's quantile of the samples (a tenth of a second less meets fewer), and never raises it."""
    rng = np.random.default_rng(3)
    data = []
    for k in range(400):  # a quarter wait in a backlog that their plan knows of
        road = int(rng.integers(300, 900))
        actual = 120 + road + int(rng.integers(0, 600)) + (3000 if k % 4 == 0 else 0)
        data.append((QuoteBasis(picking_s=120, courier_wait_s=0, road_s=road,
                                planned_s=None if k % 4 else actual), actual))
    loose = ExpressModel(constant_s=600.0, picking=1.0, courier_wait=0.0, road=1.0, quantile=0.9)

    def met(m: ExpressModel) -> float:
        return float(np.mean([actual <= m.lead_s(b) for b, actual in data]))

    assert met(loose) == 1.0
    tight = tighten(loose, data)
    assert tight.constant_s < loose.constant_s and met(tight) >= 0.9
    assert met(replace(tight, constant_s=tight.constant_s - 0.1)) < 0.9
    # 100 backlog orders met by the plan, 260 of the other 300 by the constant: its 260th smallest need
    assert tight.constant_s == pytest.approx(np.sort([a - b.picking_s - b.road_s for b, a in data if b.planned_s
                                                      is None])[259], abs=1.0)
    assert tighten(tight, data) == tight and tighten(replace(loose, constant_s=-100.0), data).constant_s == -100.0


def busy_samples(seed: int, n: int) -> list[tuple[QuoteBasis, int]]:
    """As `samples`, with a plan that knows little (0-600 s), but 8 % of the orders wait 20-60 min in a backlog
    that only the plan sees (their plan is their actual lead)."""
    out = []
    rng = np.random.default_rng(seed + 1000)
    for basis, actual in samples(seed, n, planned=False):
        backlog = rng.random() < 0.08
        if backlog:
            actual += int(rng.integers(1200, 3600))
        out.append((QuoteBasis(picking_s=basis.picking_s, courier_wait_s=basis.courier_wait_s, road_s=basis.road_s,
                               planned_s=actual if backlog else int(rng.integers(0, 600))), actual))
    return out


def test_the_plan_floor_meets_the_backlog_and_the_fit_still_meets_its_quantile() -> None:
    """Where the plan sees a backlog the weights do not, the floor at the plan meets every such order, and the
    fitted model meets about its quantile on a day it has not seen."""
    model = fit_express_model(busy_samples(1, 3000), 0.9)
    test = busy_samples(2, 3000)
    met = [actual <= model.lead_s(b) for b, actual in test]
    backlog = [b.planned_s == actual for b, actual in test]
    assert all(m for m, late in zip(met, backlog, strict=True) if late)
    assert 0.87 <= np.mean(met) <= 0.93
