"""Backend registry and the `auto` choice, made per kind of problem from measured results.

`make bench` (suites `solomon` and `cvrp`, `benchmarks/results/latest-solvers.md`) runs every backend at the same
budget. What it measured decides `auto`:

- time windows, release times or soft deadlines that the compiled search models, on at most
  `HYBRID_MAX_TIMED_JOBS` jobs: `hybrid` (on the 56 Solomon VRPTW instances, 100 customers, at 10 s it is closer to
  the best known than PyVRP; on Gehring and Homberger's 1000-customer instances at 60 s PyVRP is: suite `gh`);
- capacities alone (no windows) on fewer than `HYBRID_MAX_UNTIMED_JOBS` jobs, that the compiled search models:
  `hybrid` (with the compiled search trying only the nearest jobs' places from 300 jobs, it was closer to the best
  known than PyVRP on five of six CVRPLIB X instances of 161-438 customers at 20 s, and PyVRP on five of six of
  512-978 customers at 60 s; none of those twelve is in the `cvrp` suite);
- otherwise PyVRP where it honours every feature (capacities alone from 500 jobs; multi-trip, shipments with
  windows);
- otherwise `hybrid`, which falls back on OR-Tools' local search inside ruin and recreate (skills that differ
  between vehicles, breaks, soft deadlines beside shipments);
- otherwise the compiled search alone (`sisr`): jobs with both a wait cost and a soft deadline, which only it
  models.
"""

from __future__ import annotations

from routing.errors import UnsupportedProblemError
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
HYBRID_MAX_TIMED_JOBS = 300
"""Above this many jobs, timed problems go to PyVRP when it honours them. Measured: the hybrid wins at 100
customers, PyVRP at 1000; sizes in between are not measured, and 300 is where the hybrid's OR-Tools fallback
(ruin and recreate) stops too."""


HYBRID_MAX_UNTIMED_JOBS = 500
"""From this many jobs, problems with capacities alone go to PyVRP when it honours them (below, to the hybrid)."""


def timed(problem: Problem) -> bool:
    """Whether any job has a time window, a release time or a soft deadline."""
    return any(j.stop.time_windows or j.release or (j.deadline is not None and j.lateness_cost)
               or (j.wait_from is not None and j.wait_cost) for j in problem.jobs)


def choose_backend(problem: Problem) -> Backend:
    """The backend that measured best for this kind of problem among those that honour all of it."""
    hybrid, pyvrp, sisr = HybridBackend(), PyVrpBackend(), SisrBackend()
    n = len(problem.jobs)
    small = n <= HYBRID_MAX_TIMED_JOBS if timed(problem) else n < HYBRID_MAX_UNTIMED_JOBS
    if (small or pyvrp.unsupported(problem)) and not hybrid.unsupported(problem) and not lns.unsupported(problem):
        return hybrid
    reasons = []
    backends: tuple[Backend, ...] = (pyvrp, hybrid, sisr)
    for backend in backends:
        missing = backend.unsupported(problem)
        if not missing:
            return backend
        reasons.append(f"{backend.name} lacks {', '.join(missing)}")
    raise UnsupportedProblemError("backend: no backend supports this problem (" + "; ".join(reasons) + ")")


def get_backend(name: str, problem: Problem) -> Backend:
    if name == "auto":
        return choose_backend(problem)
    if name not in BACKENDS:
        raise UnsupportedProblemError(f"backend: unknown backend {name!r}, choose one of {', '.join(BACKEND_NAMES)}")
    return BACKENDS[name]()


def solve(problem: Problem, params: SolveParams | None = None, *, backend: str = "auto") -> SolveResult:
    """Solve `problem` with the named backend (or the one `auto` chooses for it)."""
    return run_backend(get_backend(backend, problem), problem, params or SolveParams())
