"""Backend registry and the `auto` choice: PyVRP where it supports the problem, OR-Tools otherwise."""

from __future__ import annotations

from routing.errors import InvalidProblemError
from routing.problem import Problem
from routing.solvers.base import Backend, SolveParams, SolveResult, run_backend
from routing.solvers.ortools import OrToolsBackend
from routing.solvers.pyvrp import PyVrpBackend

BACKENDS: dict[str, type[OrToolsBackend] | type[PyVrpBackend]] = {
    "pyvrp": PyVrpBackend,
    "ortools": OrToolsBackend,
}
BACKEND_NAMES = ("auto", *BACKENDS)


def choose_backend(problem: Problem) -> Backend:
    """The strongest backend that honours every feature of `problem`."""
    reasons = []
    for name, cls in BACKENDS.items():
        backend = cls()
        missing = backend.unsupported(problem)
        if not missing:
            return backend
        reasons.append(f"{name} lacks {', '.join(missing)}")
    raise InvalidProblemError("backend: no backend supports this problem (" + "; ".join(reasons) + ")")


def get_backend(name: str, problem: Problem) -> Backend:
    if name == "auto":
        return choose_backend(problem)
    if name not in BACKENDS:
        raise InvalidProblemError(f"backend: unknown backend {name!r}, choose one of {', '.join(BACKEND_NAMES)}")
    return BACKENDS[name]()


def solve(problem: Problem, params: SolveParams | None = None, *, backend: str = "auto") -> SolveResult:
    """Solve `problem` with the named backend (or the best one for it)."""
    return run_backend(get_backend(backend, problem), problem, params or SolveParams())
