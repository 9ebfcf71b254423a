"""Fitting the express quote model on simulated days (`lastmile calibrate-quotes`).

Each day of `seeds` is simulated with the scenario as it is (quotes do not steer dispatch, so the days do not
depend on the model being fitted); every delivered express order gives one sample: the basis its quote was made
of (`dispatch.promise.QuoteBasis`) and its actual click-to-door. `dispatch.promise.fit_express_model` turns the
samples into an `ExpressModel` for the scenario's `[promise.express_model]`. Fit on seeds other than those the
scenario is scored on: the model is then judged on days it has not seen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dispatch.promise import ExpressModel, QuoteBasis, fit_express_model
from simulator.errors import ScenarioError
from simulator.model import simulate
from simulator.recorder import Recorder
from simulator.scenario import Scenario

Sample = tuple[QuoteBasis, int]

MAX_ROUNDS = 20
"""The most rounds `calibrate` runs (each simulates every seed's day once more; the fit settles in two or three)."""

MIN_SAMPLES = 20
"""The fewest delivered express orders a fit takes (`dispatch.promise.fit_express_model`'s own floor)."""


def quote_samples(rec: Recorder) -> list[Sample]:
    """(quote basis, click-to-door seconds) of each delivered order that had an express quote."""
    return [(QuoteBasis(picking_s=o.quote_basis[0], courier_wait_s=o.quote_basis[1], road_s=o.quote_basis[2],
                        planned_s=o.quote_basis[3]), o.delivered_at - o.placed_at)
            for o in rec.orders.values()
            if o.status == "delivered" and o.quote_basis is not None and o.delivered_at is not None]


def day_samples(scenario: Scenario) -> list[Sample]:
    """The samples of one simulated day (module level: it runs on Dask workers)."""
    from simulator.sweep import network_for

    return quote_samples(simulate(scenario, network=network_for(scenario)).recorder)


@dataclass(frozen=True, slots=True, kw_only=True)
class Calibration:
    """A fitted model, the seeds, rounds and samples it came from (the last round's), and how it does on them
    (in-sample)."""

    model: ExpressModel
    seeds: tuple[int, ...]
    samples: int
    met_rate: float
    slack_mean_min: float
    rounds: int = 1


def calibrate(scenario: Scenario, seeds: Sequence[int], *, quantile: float = 0.95, rounds: int = 2,
              workers: int = 2, scheduler: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> Calibration:
    """Simulate the scenario on each seed (on Dask, see `simulator.sweep.dask_client`) and fit the model; then,
    `rounds - 1` times, simulate again with the model just fitted and fit anew. Rounds matter when the
    dispatcher keeps quotes (`quote_minute_cost_m`): tighter quotes change how it plans, so the model is fitted
    on days run under the quotes it makes."""
    if not seeds:
        raise ScenarioError("--seeds", "give at least one seed")
    if rounds < 1:
        raise ScenarioError("--rounds", f"must be at least 1, got {rounds}")
    if rounds > MAX_ROUNDS:
        raise ScenarioError("--rounds", f"must be at most {MAX_ROUNDS}, got {rounds}")
    if not 0 < quantile < 1:
        raise ScenarioError("--quantile", f"must be in (0, 1), got {quantile}")
    from simulator.sweep import check_builds, dask_client

    check_builds([replace(scenario, seed=seeds[0])])  # an off-map facility or bad demand row: before the cluster

    total = rounds * len(seeds)
    if progress is not None:
        progress(0, total)
    with dask_client(scheduler, workers=workers, tasks=len(seeds)) as client:
        for k in range(rounds):
            samples = _samples(client, [replace(scenario, seed=s) for s in seeds], k * len(seeds), total, progress)
            result = _fit(samples, quantile, seeds, scenario)
            scenario = replace(scenario, promise=replace(scenario.promise, express_model=result.model))
    return replace(result, rounds=rounds)


def _samples(client: Any, days: list[Scenario], before: int, total: int,
             progress: Callable[[int, int], None] | None) -> list[Sample]:
    from distributed import as_completed

    from simulator.sweep import guarded, unguarded

    samples: list[Sample] = []
    futures = [client.submit(guarded, day_samples, day, pure=False) for day in days]
    for done, future in enumerate(as_completed(futures), 1):
        samples.extend(unguarded(future.result()))
        if progress is not None:
            progress(before + done, total)
    return samples


def _fit(samples: list[Sample], quantile: float, seeds: Sequence[int], scenario: Scenario) -> Calibration:
    if len(samples) < MIN_SAMPLES:
        replay = scenario.demand.kind == "replay"
        more = "replay more orders" if replay else f"raise demand.orders (now {scenario.demand.orders})"
        raise ScenarioError("demand.file" if replay else "demand.orders",
                            f"the days of seeds {','.join(map(str, seeds))} delivered {len(samples)} express "
                            f"orders, too few to fit the quote model on (it needs {MIN_SAMPLES}): {more} or give "
                            "more --seeds", file=None if scenario.path is None else str(scenario.path))
    samples.sort(key=lambda s: (s[1], s[0].picking_s, s[0].courier_wait_s, s[0].road_s, s[0].plan_s))  # any order
    model = fit_express_model(samples, quantile)
    leads = [model.lead_s(b) for b, _ in samples]
    met = sum(actual <= lead for (_, actual), lead in zip(samples, leads, strict=True)) / len(samples)
    slack = sum(lead - actual for (_, actual), lead in zip(samples, leads, strict=True)) / len(samples) / 60.0
    return Calibration(model=model, seeds=tuple(seeds), samples=len(samples), met_rate=round(met, 4),
                       slack_mean_min=round(slack, 2))
