"""Fixtures of the routing tests."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["pyvrp", "ortools"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every backend in turn."""
    return str(request.param)


@pytest.fixture(scope="session", autouse=True)
def compiled_search() -> None:
    """Load (or compile, on a fresh clone) the string-removal kernels once, before any timed test."""
    from routing.solvers.lns import kernels

    kernels()
