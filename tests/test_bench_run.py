"""The solver suites' runner: ablation variants run beside the backend they take apart and never count as one."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import gh
from benchmarks.run import ABLATIONS, gh_tasks, summarise
from routing.solvers.ortools import HybridBackend


def test_gh_runs_the_ablation_beside_hybrid_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With `hybrid` among the backends every Gehring-Homberger instance is also solved by each ablation variant
    (with its best known cost); without `hybrid` no variant runs."""
    for name in ("C1_10_1", "R2_10_2"):
        (tmp_path / f"{name}.vrp").write_text("NAME : x\n")
        (tmp_path / f"{name}.sol").write_text("Route #1: 1 2\nCost 123.5\n")
    monkeypatch.setattr(gh, "GH_DIR", tmp_path)
    tasks = gh_tasks(["pyvrp", "hybrid"], 60.0, None)
    assert sorted((Path(t["path"]).stem, t["backend"]) for t in tasks) == sorted(
        (n, b) for n in ("C1_10_1", "R2_10_2") for b in ("pyvrp", "hybrid", *ABLATIONS))
    assert {t["bks"] for t in tasks} == {123.5}
    assert {t["backend"] for t in gh_tasks(["pyvrp"], 60.0, None)} == {"pyvrp"}


def test_an_ablation_is_summarised_apart_and_left_out_of_the_best_of_backends() -> None:
    """The ablation gets its own summary row, but the best of backends takes only the real backends' gaps."""
    variant = next(iter(ABLATIONS))

    def row(instance: str, backend: str, gap: float) -> dict[str, object]:
        return {"instance": instance, "backend": backend, "feasible": True, "gap_pct": gap, "runtime_s": 60.0,
                "phases": [], "auto_choice": "pyvrp"}

    rows = [row("a", "pyvrp", 2.0), row("a", "hybrid", 3.0), row("a", variant, 0.5),
            row("b", "pyvrp", 4.0), row("b", "hybrid", 1.0), row("b", variant, 0.5)]
    out = summarise(rows)
    assert out[variant]["mean_gap_pct"] == 0.5
    assert out["best of backends"]["mean_gap_pct"] == 1.5
    assert out["auto"]["mean_gap_pct"] == 3.0


def test_the_ablation_is_the_hybrid_with_insertion_neighbours_by_arc_cost() -> None:
    """The variant is the hybrid backend, its compiled search with both time weights of the neighbours at 0."""
    backend = ABLATIONS["hybrid, neighbours by arc cost"]()
    assert isinstance(backend, HybridBackend)
    lns = backend.options.string_removal
    assert lns is not None and lns.wait_weight == 0 and lns.warp_weight == 0
