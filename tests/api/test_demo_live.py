"""`lastmile serve --demo`: the tiny Ostankino day driven through the live API over HTTP, at a high clock speed."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from api.cli import main
from api.console import overdue
from api.demo_live import CourierApp, LiveDemo, PacedClock, default_speed
from api.scenario_file import load_scenario
from api.settings import Settings
from api.store import order_key
from api.store.base import EVENTS_STREAM, Applied
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


def test_a_paced_clock_stands_still_while_held_and_goes_on_from_there() -> None:
    """Held, the clock does not move; released, it goes on from where it stood at its speed, and `held_s`
    counts the real seconds it stood still."""
    clock = PacedClock(36_000, 1000.0)
    clock.hold()
    held = clock()
    time.sleep(0.05)
    assert clock() == held and 36_000 <= held < 36_000 + 50
    clock.release()
    time.sleep(0.05)
    assert held + 40 <= clock() < held + 1000 and clock.held_s >= 0.05


def test_the_demo_clock_waits_for_a_worker_or_an_app_that_is_behind() -> None:
    """A command nobody applies holds the demo's clock after one dispatch tick of service time, and so does a
    courier app's post due longer ago; once the command is applied and the post made the clock runs again (no
    worker or app runs here: the store's applied count and the app's plan are moved by hand)."""
    demo = LiveDemo(Settings(scenario=TINY, speed=600.0, port=free_port(), admin_key=SecretStr("demo-admin")),
                    echo=lambda _: None)
    demo.next_order_at = None  # the order system is not running either
    store = demo.service.store
    seq = store.append({"op": "tick"}, now=demo.clock()).seq
    pacer = threading.Thread(target=demo.pace)
    pacer.start()
    try:
        time.sleep(demo.deployment.options.tick_s / demo.speed + 0.3)
        stood = demo.clock()
        time.sleep(0.2)
        assert demo.clock() == stood  # held: 0.2 s at x600 would be 120 s
        assert store.lease("by-hand", 10_000) and store.publish("by-hand", [Applied(seq=seq, ops=(), reply={})])
        time.sleep(0.2)
        assert demo.clock() > stood + 60
        app = CourierApp(id="c", store="vdnh", http=demo.osys, shift_start=0, shift_end=86_400)
        app.plan.append((demo.clock() - 600, "pickup", {}))
        demo.apps = [app]
        time.sleep(0.1)
        stood = demo.clock()
        time.sleep(0.2)
        assert demo.clock() == stood
        app.plan.clear()
        time.sleep(0.2)
        assert demo.clock() > stood + 60
    finally:
        demo.stop.set()
        pacer.join()
    assert demo.clock.held_s >= 0.2
