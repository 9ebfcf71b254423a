"""Backend registry and the `auto` choice, made per kind of problem from measured results.

`make bench` (suites `solomon` and `cvrp`, `benchmarks/results/latest-solvers.md`) runs every backend at the same
budget. What it measured decides `auto`:

- time windows, release times or soft deadlines that the compiled search models: `hybrid` (on the 56 Solomon
  VRPTW instances at 10 s it is closer to the best known than PyVRP);
- otherwise PyVRP where it honours every feature (capacities alone: closer on CVRPLIB X; multi-trip,
  shipments with windows);
- otherwise `hybrid`, which falls back on OR-Tools' local search inside ruin and recreate (skills that differ
  between vehicles, breaks, soft deadlines beside shipments).
"""

from __future__ import annotations

from routing.errors import InvalidProblemError
from routing.problem import Problem
from routing.solvers import lns
from routing.solvers.base import Backend, SolveParams, SolveResult, run_backend
from routing.solvers.ortools import HybridBackend, OrToolsBackend, SisrBackend
from routing.solvers.pyvrp import PyVrpBackend

BACKENDS: dict[str, type[OrToolsBackend] | type[SisrBackend] | type[PyVrpBackend]] = {
    "pyvrp": PyVrpBackend,
    "ortools": OrToolsBackend,
    "sisr": SisrBackend,
    "hybrid": HybridBackend,
}
BACKEND_NAMES = ("auto", *BACKENDS)


def timed(problem: Problem) -> bool:
    """Whether any job has a time window, a release time or a soft deadline."""
    return any(j.stop.time_windows or j.release or (j.deadline is not None and j.lateness_cost)
               for j in problem.jobs)


def choose_backend(problem: Problem) -> Backend:
    """The backend that measured best for this kind of problem among those that honour all of it."""
    hybrid, pyvrp = HybridBackend(), PyVrpBackend()
    if timed(problem) and not hybrid.unsupported(problem) and not lns.unsupported(problem):
        return hybrid
    reasons = []
    for backend in (pyvrp, hybrid):
        missing = backend.unsupported(problem)
        if not missing:
            return backend
        reasons.append(f"{backend.name} lacks {', '.join(missing)}")
    raise InvalidProblemError("backend: no backend supports this problem (" + "; ".join(reasons) + ")")


def get_backend(name: str, problem: Problem) -> Backend:
    if name == "auto":
        return choose_backend(problem)
    if name not in BACKENDS:
        raise InvalidProblemError(f"backend: unknown backend {name!r}, choose one of {', '.join(BACKEND_NAMES)}")
    return BACKENDS[name]()


def solve(problem: Problem, params: SolveParams | None = None, *, backend: str = "auto") -> SolveResult:
    """Solve `problem` with the named backend (or the one `auto` chooses for it)."""
    return run_backend(get_backend(backend, problem), problem, params or SolveParams())
