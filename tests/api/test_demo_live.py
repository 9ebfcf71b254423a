"""`lastmile serve --demo`: the tiny Ostankino day driven through the live API over HTTP, at a high clock speed."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from api.cli import main
from api.console import overdue
from api.demo_live import LiveDemo, default_speed
from api.scenario_file import load_scenario
from api.settings import Settings
from api.store import order_key
from api.store.base import EVENTS_STREAM
from api.worker import FINAL, ON_TIME_KEY
from tests.api.live import free_port

TINY = Path(__file__).resolve().parents[2] / "scenarios" / "moscow-ostankino-tiny.toml"


def test_the_tiny_day_runs_through_the_api_and_most_orders_are_delivered(tmp_path: Path) -> None:
    """Console URL first, hourly KPI lines, then the day's KPIs: every order posted over HTTP and accounted for;
    absent customers' deliveries fail and cancelling customers cancel, as the simulator draws them; the couriers
    whose shift ends at 12:30 go off then (after their last trip) and deliver nothing later."""
    text = TINY.read_text()
    early = '[[fleet]]\nstore = "vdnh"\nprofile = "bike"\ncount = 2\nshift = ["10:00", "14:30"]'
    assert early in text
    scenario = tmp_path / "tiny-early-shift.toml"
    scenario.write_text(text.replace(early, early.replace('"14:30"', '"12:30"')).replace(
        'file = "maps/', f'file = "{TINY.parent}/maps/'))
    lines: list[str] = []
    port = free_port()
    demo = LiveDemo(Settings(scenario=scenario, speed=1200.0, port=port, admin_key=SecretStr("demo-admin")),
                    echo=lines.append)
    started = time.monotonic()
    kpis = demo.run(exit_after=True)
    assert time.monotonic() - started < 50
    assert re.fullmatch(rf"console: http://127\.0\.0\.1:{port}/console\?key=lm_[\w-]+", lines[0])
    hourly = [line for line in lines if re.match(r"\d\d:00  placed +\d+  delivered +\d+  on time .*  open +\d+$", line)]
    assert [h[:5] for h in hourly[:4]] == ["11:00", "12:00", "13:00", "14:00"]
    assert json.loads(lines[-1].removeprefix("kpis: ")) == kpis
    placed = kpis["placed"]
    assert placed == len(demo.orders) == 120
    assert kpis["delivered"] >= 0.8 * placed and kpis["errors"] == {}
    assert sum(kpis[k] for k in ("delivered", "rejected", "cancelled", "failed", "open")) == placed
    # customers as the simulator draws them: absent ones' deliveries fail, cancelling ones cancel if still open
    assert demo.failed and kpis["failed"] == len(demo.failed) and all(demo.absent[o] for o in demo.failed)
    assert demo.cancelled and kpis["cancelled"] == len(demo.cancelled)
    assert all(demo.cancelling[o] for o in demo.cancelled)
    assert kpis["on_time_rate"] is not None and kpis["on_time_rate"] >= 0.8
    store = demo.service.store
    records = [store.hgetall(order_key(o.id)) for o in demo.orders]
    assert all(r.get("tracking") for r in records)  # placed through POST /v1/orders
    assert sum(r["state"] in ("delivered", "collected") for r in records) == kpis["delivered"]
    # orders still open past their promise when the day's KPIs were taken count as late (the clock runs on)
    counted = store.hgetall(ON_TIME_KEY)
    on_time, late = int(counted.get("on_time", 0)), int(counted.get("late", 0))
    assert kpis["on_time_rate"] == round(on_time / (on_time + late + kpis["overdue"]), 4)
    assert kpis["overdue"] <= sum(overdue(r, demo.clock()) for r in records if r["state"] not in FINAL)
    assert demo.server is not None and not demo.thread.is_alive()  # type: ignore[union-attr]
    events = [json.loads(line) for _, line in store.read_stream(EVENTS_STREAM, "0", count=100_000)]
    off = {e["courier"]: e["t"] for e in events if e["event"] == "shift_off"}
    fleet = demo.deployment.couriers.values()
    vdnh_bikes = [c.id for c in fleet if c.store == "vdnh" and c.profile == "bike"]
    assert len(vdnh_bikes) == 2 and all(c.shift_end == 12 * 3600 + 1800 for c in fleet if c.id in vdnh_bikes)
    for cid in vdnh_bikes:
        assert 12 * 3600 + 1800 <= off[cid] < 14 * 3600  # went off after the shift, well before the day's end
        assert not [e for e in events if e.get("courier") == cid and e["event"] == "delivered" and e["t"] > off[cid]]
    assert all(t >= 14 * 3600 for c, t in off.items() if c not in vdnh_bikes)  # the others at the day's end


def test_demo_flags_are_checked_and_the_default_speed_makes_a_five_minute_day(
        capsys: pytest.CaptureFixture[str]) -> None:
    """--exit needs --demo, --demo takes no --scenario or Redis store; the default speed gives a 300 s day."""
    assert main(["serve", "--scenario", str(TINY), "--exit"]) == 2
    assert main(["serve", "--demo", str(TINY), "--scenario", str(TINY)]) == 2
    assert main(["serve", "--demo", str(TINY), "--store", "redis://127.0.0.1:1/0"]) == 2
    err = capsys.readouterr().err
    assert "--exit is for --demo" in err and "leave out --scenario" in err and "leave out --store" in err
    clock = load_scenario(TINY).clock
    assert (clock.end - clock.start) / default_speed(load_scenario(TINY)) == 300
