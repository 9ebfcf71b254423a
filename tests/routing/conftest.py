"""Fixtures of the routing tests."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["pyvrp", "ortools"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every backend in turn."""
    return str(request.param)
