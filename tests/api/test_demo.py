"""`lastmile demo` routes every order on the real Porto centre map or says why not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.demo import run_demo


def test_demo_accounts_for_every_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each of the orders appears exactly once, on a courier's route with an ETA or as unassigned with a reason."""
    monkeypatch.setenv("LASTMILE_CACHE_DIR", str(tmp_path))
    lines: list[str] = []
    run_demo(orders=15, seed=3, time_limit=1.5, echo=lines.append)
    text = "\n".join(lines)
    routed = re.findall(r"(order-\d+) \d\d:\d\d", text)
    unassigned = re.findall(r"unassigned (order-\d+): \w+", text)
    assert sorted(routed + unassigned) == sorted(f"order-{k}" for k in range(1, 16))
    assert "© OpenStreetMap contributors" in text
    assert re.search(r"total \d+\.\d km, \d+ late deliveries", text)
