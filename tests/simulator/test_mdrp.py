"""The MDRP simulator on a hand-made instance (every rule by hand) and on one real Grubhub instance."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from api.cli import main
from dispatch.meal import (
    GreedyMealPolicy,
    MealAssignment,
    MealCourier,
    MealMove,
    MealOrder,
    MealPlan,
    RollingHorizonMealPolicy,
    meal_policy,
)
from simulator.errors import InstanceError, SimulatorError
from simulator.mdrp import (
    CSV_HEADER,
    Courier,
    Instance,
    Order,
    Parameters,
    Recorder,
    Restaurant,
    announced_early,
    busiest_window,
    compute_metrics,
    deliveries,
    deliveries_csv,
    lower_bound,
    read_instance,
    simulate,
    sped_up,
    undeliverable_alone,
    with_extra_couriers,
)

ROOT = Path(__file__).resolve().parent.parent.parent
TINY = ROOT / "tests" / "data" / "mdrp_tiny"
SHARED = Path(os.environ.get("LASTMILE_SHARED", ROOT.parent / "shared"))
REAL = SHARED / "mdrp" / "public_instances" / "0o50t75s1p100"
CHECKER = SHARED / "tools" / "mdrp_check.py"


def run(instance: Instance) -> Recorder:
    return simulate(instance, GreedyMealPolicy(rules=instance.parameters.rules))


@pytest.fixture(scope="module")
def tiny() -> tuple[Instance, Recorder]:
    instance = read_instance(TINY)
    return instance, run(instance)


def times(recorder: Recorder) -> dict[str, tuple[str, int, int]]:
    return {o: (d.courier, d.pickup_time, d.dropoff_time) for o, d in deliveries(recorder).items()}


def test_reads_tiny_instance() -> None:
    """The reader returns frozen records with integer times and the parameters of the file."""
    instance = read_instance(TINY)
    assert [o.id for o in instance.orders] == ["o1", "o2", "o3", "o4", "o5", "o6"]
    assert instance.couriers[1].off_time == 30 and instance.restaurant_by_id["r3"].location == (0.0, 2000.0)
    assert instance.parameters.pickup_service == 4 and instance.parameters.max_click_to_door == 90
    with pytest.raises(AttributeError):
        instance.orders[0].ready_time = 0  # type: ignore[misc]


def test_hand_computed_times(tiny: tuple[Instance, Recorder]) -> None:
    """Pickup = max(ready, arrival + 2), drop-off = arrival + 2, couriers wait where they stopped."""
    assert times(tiny[1]) == {
        "o1": ("c1", 10, 19),
        "o2": ("c2", 3, 10),
        "o3": ("c1", 38, 48),
        "o4": ("c1", 58, 142),
        "o5": ("c3", 62, 70),
    }


def test_pickup_never_before_ready(tiny: tuple[Instance, Recorder]) -> None:
    """Every pickup happens at or after the order's ready time."""
    instance, recorder = tiny
    done = deliveries(recorder)
    assert all(done[o.id].pickup_time >= o.ready_time for o in instance.orders if o.id in done)


def test_no_pickup_after_off_time(tiny: tuple[Instance, Recorder]) -> None:
    """c2 (off at 30) would reach r3 first for o3 but could not pick up before 32; o6 finds nobody on shift."""
    instance, recorder = tiny
    off = {c.id: c.off_time for c in instance.couriers}
    done = deliveries(recorder)
    assert all(d.pickup_time <= off[d.courier] for d in done.values())
    assert done["o3"].courier == "c1" and "o6" not in done


def test_late_dropoff_is_undelivered(tiny: tuple[Instance, Recorder]) -> None:
    """o4 is dropped at 142 (137 min after placement > 90): undelivered, though the CSV keeps its drop-off (the
    checker counts it as undelivered itself and checks the trip)."""
    instance, recorder = tiny
    metrics = compute_metrics(instance, recorder)
    assert metrics.delivered == 4 and metrics.undelivered_pct == pytest.approx(33.333)
    assert any(line.startswith("o4,") and line.split(",")[4] == "142"
               for line in deliveries_csv(instance, recorder).splitlines())


def test_metrics_by_hand(tiny: tuple[Instance, Recorder]) -> None:
    """Click-to-door 19/9/43/20, ready-to-pickup 0/1/13/2, cost (25+10+40)/4, utilisation with c1 over its shift."""
    m = compute_metrics(*tiny)
    assert m.click_to_door_mean == 22.75 and m.click_to_door_p90 == 36.1
    assert m.overage_mean == 0.75 and m.ready_to_pickup_mean == 4.0 and m.ready_to_pickup_p90 == 9.7
    assert m.cost_per_order == 18.75 and m.orders_per_bundle == 1.0
    assert m.utilisation_mean == round((136 / 100 + 11 / 30 + 22 / 160) / 3, 3)
    assert m.ctd_lower_bound == 29.0 and m.ctd_excess == -6.25


def test_excess_over_the_delivered_orders_own_bound_by_hand(tiny: tuple[Instance, Recorder]) -> None:
    """Click-to-door minus own bound for the delivered o1, o2, o3, o5: 19-19, 9-8, 43-30, 20-18, mean 4.0 (the
    excess over all orders' bound is negative: the undelivered o4 has the largest bound)."""
    m = compute_metrics(*tiny)
    assert m.ctd_excess_delivered == 4.0 and m.ctd_excess < 0


def test_structural_floor_by_hand(tiny: tuple[Instance, Recorder]) -> None:
    """o4 (door 80 min from r3) is undeliverable by any courier alone: c1 would drop it off 101 min after placement,
    c2 104 (and c3 starts later); o6 is deliverable alone (c3 from its start picks it up at its off-time, 200) though
    greedy left it: the floor is 1 order in 6."""
    instance, recorder = tiny
    assert undeliverable_alone(instance) == ("o4",)
    m = compute_metrics(instance, recorder)
    assert m.structurally_undeliverable_pct == 16.667 and m.undelivered_pct == 33.333


def test_no_courier_on_shift_makes_every_order_structurally_undeliverable() -> None:
    """With the only courier going off before any order is ready, the floor is every order."""
    instance = read_instance(TINY)
    gone = replace(instance, couriers=(replace(instance.couriers[1], off_time=1),))
    assert undeliverable_alone(gone) == tuple(o.id for o in gone.orders)
    assert compute_metrics(gone, run(gone)).structurally_undeliverable_pct == 100.0


def test_lower_bound_by_hand() -> None:
    """Direct delivery: ready - placement + 2 + travel + 2 per order, averaged over all orders = 174 / 6."""
    assert lower_bound(read_instance(TINY)) == pytest.approx(29.0)


def test_csv_header_and_rows(tiny: tuple[Instance, Recorder]) -> None:
    """The CSV has the checker's header and one row per drop-off, in instance order (o6 was never picked up)."""
    lines = deliveries_csv(*tiny).splitlines()
    assert lines[0] == ",".join(CSV_HEADER) == "order,placement_time,ready_time,pickup_time,dropoff_time,courier"
    assert lines[1:] == ["o1,0,10,10,19,c1", "o2,1,2,3,10,c2", "o3,5,25,38,48,c1", "o4,5,6,58,142,c1",
                         "o5,50,60,62,70,c3"]


def test_deterministic() -> None:
    """Two runs of the same instance give identical CSVs and metrics."""
    a, b = read_instance(TINY), read_instance(TINY)
    ra, rb = run(a), run(b)
    assert deliveries_csv(a, ra) == deliveries_csv(b, rb) and compute_metrics(a, ra) == compute_metrics(b, rb)


@pytest.mark.parametrize(("file", "old", "new", "expected"), [
    ("orders.txt", "o3\t0\t2600\t5\tr3\t25", "o3\t0\t2600\t5\tr3\tsoon", "orders.txt line 4, field ready_time"),
    ("orders.txt", "o3\t0\t2600\t5\tr3\t25", "o3\t0\t2600\t5\tr9\t25", "orders.txt line 4, field restaurant"),
    ("couriers.txt", "c2\t1000\t0\t0\t30", "c2\t1000\t0\t40\t30", "couriers.txt line 3, field off_time"),
    ("instance_parameters.txt", "100\t4\t4", "100\t3\t4", "instance_parameters.txt line 2, field pickup service"),
    ("restaurants.txt", "r2\t1000\t0", "r2\t1000", "restaurants.txt line 3: expected 3"),
    ("restaurants.txt", "r2\t1000\t0", "r2\t1e308\t0", "restaurants.txt line 3, field x: must be at most"),
    ("couriers.txt", "c2\t1000\t0\t0\t30", "c2\t1000\t0\t0\t99999999999", "couriers.txt line 3, field off_time"),
    ("instance_parameters.txt", "100\t4\t4", "1e-300\t4\t4", "field meters_per_minute: must be at least 1"),
    ("instance_parameters.txt", "\t40\t90\t", "\t40\t0\t",
     "instance_parameters.txt line 2, field maximum click-to-door: must be at least 1, got 0"),
    pytest.param("orders.txt", "o3\t0", "o3" + "x" * 200_000 + "\t0", "orders.txt line 4: not tab-separated text",
                 id="field-over-csv-limit"),
    ("orders.txt", "o3\t0\t2600\t5\tr3", "o3\t0\t2600\t5\tr\x0c9",
     r"orders.txt line 4, field restaurant: unknown restaurant 'r\\x0c9'"),
])
def test_bad_input_names_file_line_field(tmp_path: Path, file: str, old: str, new: str, expected: str) -> None:
    """A malformed value raises InstanceError naming the file, line and field."""
    folder = tmp_path / "bad"
    shutil.copytree(TINY, folder)
    (folder / file).write_text((folder / file).read_text().replace(old, new))
    with pytest.raises(InstanceError, match=expected):
        read_instance(folder)


@pytest.mark.parametrize("content", ["caf\u00e9".encode("latin-1"), "order".encode("utf-16")])
def test_not_utf8_names_the_file(tmp_path: Path, content: bytes) -> None:
    """A file that is not UTF-8 text raises InstanceError naming it (not a bare UnicodeDecodeError)."""
    folder = tmp_path / "bad"
    shutil.copytree(TINY, folder)
    (folder / "orders.txt").write_bytes(content)
    with pytest.raises(InstanceError, match=r"orders\.txt: not UTF-8 text"):
        read_instance(folder)


def test_cli_json_and_deliveries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`simulate --json` prints one object with the lower bound and excess, and writes the CSV."""
    csv_path = tmp_path / "d.csv"
    assert main(["simulate", "--mdrp", str(TINY), "--policy", "greedy", "--json", "--deliveries", str(csv_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ctd_lower_bound"] == 29.0 and out["ctd_excess"] == -6.25 and out["delivered"] == 4
    assert out["policy"] == "greedy" and csv_path.read_text().startswith("order,placement_time")


def test_rolling_policy_keeps_the_instance_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On the tiny day with a 30-minute limit, `simulate --mdrp` spends no courier on o3 (it would be late) and
    delivers 3 orders; a rolling policy left at 90 minutes picks o3 up and delivers only 2."""
    folder = tmp_path / "limit30"
    shutil.copytree(TINY, folder)
    params = folder / "instance_parameters.txt"
    params.write_text(params.read_text().replace("\t40\t90\t", "\t40\t30\t"))
    instance = read_instance(folder)
    assert instance.parameters.max_click_to_door == 30
    assert main(["simulate", "--mdrp", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["delivered"] == 3
    loose = simulate(instance, meal_policy("rolling", replace(instance.parameters.rules, max_click_to_door=90)))
    assert ("o3",) in [t.orders for t in loose.trips] and compute_metrics(instance, loose).delivered == 2


def test_cli_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json a small table is printed: one row per metric, with the values --json gives, in one column."""
    assert main(["simulate", "--mdrp", str(TINY), "--json"]) == 0
    values = json.loads(capsys.readouterr().out)
    assert main(["simulate", "--mdrp", str(TINY)]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    rows = dict(line.split(None, 1) for line in lines)
    assert set(rows) == set(values) - {"instance", "policy", "runtime_s"}
    for key in rows:
        assert rows[key].strip() == str(values[key]), key
    assert len({len(line) - len(line.split()[-1]) for line in lines}) == 1


def test_cli_bad_input_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input exits 2 with one line naming file, line and field."""
    folder = tmp_path / "bad"
    shutil.copytree(TINY, folder)
    (folder / "couriers.txt").write_text((folder / "couriers.txt").read_text().replace("\t100\n", "\tlate\n"))
    assert main(["simulate", "--mdrp", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "couriers.txt line 2, field off_time" in err[0]


def test_cli_zero_maximum_click_to_door_names_file_line_field(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A maximum click-to-door of 0 exits 2 with one line naming instance_parameters.txt, its line and the column."""
    folder = tmp_path / "zero"
    shutil.copytree(TINY, folder)
    params = folder / "instance_parameters.txt"
    params.write_text(params.read_text().replace("\t40\t90\t", "\t40\t0\t"))
    assert main(["simulate", "--mdrp", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"lastmile: error: {params} line 2, field maximum click-to-door: must be at least 1, got 0"]


def test_cli_set_changes_the_rolling_policys_knobs(capsys: pytest.CaptureFixture[str]) -> None:
    """`--set` with `--mdrp` changes knobs of the rolling policy: the rolling policy with rolling-stay's knobs set by
    hand gives rolling-stay's figures, and the JSON names the knobs that were set."""
    def run_json(*extra: str) -> dict[str, object]:
        assert main(["simulate", "--mdrp", str(REAL if REAL.is_dir() else TINY), "--json", *extra]) == 0
        out = json.loads(capsys.readouterr().out)
        del out["runtime_s"]
        return out

    stay = run_json("--policy", "rolling-stay")
    by_hand = run_json("--set", "move_to_match=false", "--set", "move_to_demand=off", "--set", "trip_weight=0.25",
                       "--set", "urgency_weight=1")
    assert by_hand.pop("set") == {"move_to_match": False, "move_to_demand": False, "trip_weight": 0.25,
                                  "urgency_weight": 1.0}
    assert by_hand.pop("policy") == "rolling" and stay.pop("policy") == "rolling-stay" and by_hand == stay
    assert "set" not in run_json()


@pytest.mark.parametrize(("argv", "expected"), [
    (["--set", "urgency_weight=fast"], "--set urgency_weight: expected a number, got 'fast'"),
    (["--set", "commit_ride=1.5"], "--set commit_ride: expected an integer, got '1.5'"),
    (["--set", "move_to_match=maybe"], "--set move_to_match: expected true or false, got 'maybe'"),
    (["--set", "speed=2"], "--set speed: not a knob of the rolling policy (one of bind_margin, bundle_max_delay"),
    (["--set", "urgency_weight"], "--set 'urgency_weight': expected KNOB=VALUE"),
    (["--set", "commit_ride=-5"], "commit_ride: must be an integer >= -1, got -5"),
    (["--policy", "greedy", "--set", "urgency_weight=1"], "--set urgency_weight: the greedy policy has no knobs"),
    (["--seed", "3"], "--seed is for scenario runs"),
    (["--out", "foo"], "--out is for scenario runs"),
    (["--out", "out"], "--out is for scenario runs"),
    (["--set", "urgency_weight=1", "--set", "urgency_weight=2"], "--set urgency_weight: is given twice"),
    (["--set", "max_bundle=10000000000"], "--set max_bundle: must be at most 8 orders, got 10000000000"),
    (["--set", "horizon=1441"], "--set horizon: must be at most 1440 (minutes: a day), got 1441"),
    (["--set", "commit_ride=100000"], "--set commit_ride: must be at most 1440"),
    (["--set", "bind_margin=1e9"], "--set bind_margin: must be at most 1440"),
    (["--set", "order_value=1e308"], "--set order_value: must be at most 1000000, got 1e+308"),
    (["--set", "trip_weight=inf"], "--set trip_weight: must be a finite non-negative number"),
])
def test_cli_bad_knob_one_line(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad, repeated or out-of-range `--set`, or a `--seed` or `--out` (which it would ignore), with `--mdrp` exits 2
    with one line naming the knob or the flag."""
    assert main(["simulate", "--mdrp", str(TINY), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err


def test_cli_what_ifs_replay_the_changed_day(capsys: pytest.CaptureFixture[str]) -> None:
    """`--known-early 5 --speed-factor 1.5` prints what `simulate` gives on the day announced 5 minutes early with
    couriers 1.5 times as fast, and says which what-ifs it ran."""
    assert main(["simulate", "--mdrp", str(TINY), "--known-early", "5", "--speed-factor", "1.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    day = sped_up(announced_early(read_instance(TINY), 5), 1.5)
    expected = compute_metrics(day, simulate(day, meal_policy("rolling", day.parameters.rules))).as_dict()
    assert out["what_if"] == {"known_early_min": 5, "speed_factor": 1.5} and out["instance"] == day.name
    assert {k: out[k] for k in expected} == expected
    assert main(["simulate", "--mdrp", str(TINY), "--json"]) == 0
    assert "what_if" not in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("argv", "expected"), [
    (["--mdrp", str(TINY), "--known-early", "-1"], "--known-early: must be 0 or more, got -1"),
    (["--mdrp", str(TINY), "--known-early", "soon"], "--known-early: expected an integer, got 'soon'"),
    (["--mdrp", str(TINY), "--speed-factor", "0"], "--speed-factor: must be positive and finite, got 0"),
    (["--mdrp", str(TINY), "--speed-factor", "nan"], "--speed-factor: must be positive and finite, got nan"),
    (["--mdrp", str(TINY), "--known-early", "5", "--deliveries", "d.csv"], "cannot be combined with --known-early"),
    (["scenarios/moscow-ostankino-tiny.toml", "--speed-factor", "1.1"], "--speed-factor is a what-if on an MDRP day"),
    (["--mdrp", str(TINY), "--extra-couriers", "0"], "--extra-couriers: the number of couriers must be from 1 to 1000"),
    (["--mdrp", str(TINY), "--extra-couriers", "1000000"], "--extra-couriers: the number of couriers must be from 1 "),
    (["--mdrp", str(TINY), "--extra-couriers", "2@0-99999999"], "--extra-couriers: the span must run forward within"),
    (["--mdrp", str(TINY), "--known-early", "5000"], "--known-early: must be at most 1440, got 5000"),
    (["--mdrp", str(TINY), "--speed-factor", "1e308"], "--speed-factor: must be at most 100, got 1e308"),
    (["--mdrp", str(TINY), "--deliveries", "/nonexistent/dir/d.csv"], "--deliveries: no folder '/nonexistent/dir'"),
    (["--mdrp", str(TINY), "--extra-couriers", "2@60"], "--extra-couriers: expected N or N@FROM-TO in minutes"),
    (["--mdrp", str(TINY), "--extra-couriers", "2@90-30"], "--extra-couriers: the span must run forward"),
    (["--mdrp", str(TINY), "--extra-couriers", "1", "--deliveries", "d.csv"], "cannot be combined with --known-early"),
    (["scenarios/moscow-ostankino-tiny.toml", "--extra-couriers", "1"], "--extra-couriers is a what-if on an MDRP"),
])
def test_cli_bad_what_if_one_line(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad what-if value, a what-if with `--deliveries` or on a scenario exits 2 with one line naming the flag."""
    assert main(["simulate", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err


@pytest.mark.skipif(not (REAL.is_dir() and CHECKER.is_file()), reason=f"MDRP data or checker not found under {SHARED}")
def test_real_instance_passes_checker(tmp_path: Path) -> None:
    """Greedy on 0o50t75s1p100: the independent checker finds no violation and the same metrics."""
    instance = read_instance(REAL)
    recorder = run(instance)
    csv_path = tmp_path / "deliveries.csv"
    csv_path.write_text(deliveries_csv(instance, recorder))
    done = subprocess.run([sys.executable, str(CHECKER), str(REAL), str(csv_path)], capture_output=True, text=True,
                          check=False)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["valid"] and report["problems"] == []
    ours = compute_metrics(instance, recorder).as_dict()
    for key in ("delivered", "click_to_door_mean", "ctd_lower_bound", "ctd_excess", "ready_to_pickup_mean",
                "cost_per_order", "utilisation_mean", "ctd_excess_delivered", "structurally_undeliverable_pct"):
        assert ours[key] == report[key], key


def test_rolling_delivers_at_least_greedy_on_tiny(tiny: tuple[Instance, Recorder]) -> None:
    """On the tiny instance the rolling-horizon policy delivers at least as many orders as greedy, deterministically."""
    from dispatch.meal import RollingHorizonMealPolicy

    instance, greedy = tiny
    policy = RollingHorizonMealPolicy(rules=instance.parameters.rules)
    first, second = simulate(instance, policy), simulate(instance, policy)
    assert compute_metrics(instance, first).delivered >= compute_metrics(instance, greedy).delivered
    assert times(first) == times(second)
    for o in instance.orders:
        d = deliveries(first).get(o.id)
        assert d is None or d.pickup_time >= o.ready_time


def test_cli_policy_rolling_is_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    """`simulate --mdrp` runs the rolling-horizon policy unless told otherwise (`--policy rolling` the same) and
    names it; its figures are the library's."""
    from dispatch.meal import RollingHorizonMealPolicy

    assert main(["simulate", "--mdrp", str(TINY), "--policy", "rolling", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert main(["simulate", "--mdrp", str(TINY), "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in default.items() if not k.startswith("runtime")} == {
        k: v for k, v in out.items() if not k.startswith("runtime")}
    instance = read_instance(TINY)
    library = compute_metrics(instance, simulate(instance, RollingHorizonMealPolicy(
        rules=instance.parameters.rules))).as_dict()
    assert out["policy"] == "rolling" and out["delivered"] >= 1
    for key in ("delivered", "click_to_door_mean", "ctd_excess", "cost_per_order"):
        assert out[key] == library[key], key


def one_order_day() -> Instance:
    """c1 at the origin on 0-300; o1 placed and ready at 10 at r1, 2,050 m north; its door 500 m further."""
    return Instance(name="one", orders=(Order(id="o1", location=(0, 2550), placement_time=10, restaurant="r1",
                                              ready_time=10),),
                    couriers=(Courier(id="c1", location=(0, 0), on_time=0, off_time=300),),
                    restaurants=(Restaurant(id="r1", location=(0, 2050)),),
                    parameters=Parameters(meters_per_minute=100, pickup_service=4, dropoff_service=4,
                                          target_click_to_door=40, max_click_to_door=90, pay_per_order=10,
                                          guaranteed_pay_per_hour=15))


def test_orders_announced_early_keep_the_excess_frame_and_let_a_courier_leave_sooner() -> None:
    """o1 placed and ready at 50, r1 21 minutes from c1: the rolling policy's excess is 23 minutes, and 0 when the
    order is known 23 minutes early (ready times, shifts and the 90-minute limit move 23 minutes later)."""
    day = one_order_day()
    day = replace(day, orders=(replace(day.orders[0], placement_time=50, ready_time=50),))
    early = announced_early(day, 23)
    assert early.orders[0].placement_time == 50 and early.orders[0].ready_time == 73
    assert (early.couriers[0].on_time, early.couriers[0].off_time) == (23, 323)
    assert early.parameters.max_click_to_door == 113 and announced_early(day, 0) is day

    def excess(instance: Instance) -> float:
        recorder = simulate(instance, RollingHorizonMealPolicy(rules=instance.parameters.rules))
        return compute_metrics(instance, recorder).ctd_excess

    assert excess(day) == 23 and excess(early) == 0
    with pytest.raises(ValueError, match="minutes must be a non-negative integer, got -1"):
        announced_early(day, -1)


def test_couriers_sped_up_ride_in_fewer_minutes_and_keep_the_excess_frame() -> None:
    """o1 placed and ready at 10, r1 21 minutes from c1 (at 100 m/min): excess 23 minutes; twice as fast, the ride
    is 11 minutes and the door 3 (its bound 7), so the excess is 13. Everything else about the day stays."""
    day = one_order_day()

    def excess(instance: Instance) -> float:
        recorder = simulate(instance, RollingHorizonMealPolicy(rules=instance.parameters.rules))
        return compute_metrics(instance, recorder).ctd_excess_delivered

    fast = sped_up(day, 2)
    assert fast.parameters.meters_per_minute == 200 and fast.name == "one (couriers 2x as fast)"
    assert fast.orders == day.orders and fast.couriers == day.couriers and sped_up(day, 1) is day
    assert excess(day) == 23 and excess(fast) == 13
    for bad in (0, -1.5, math.nan, math.inf, True):
        with pytest.raises(ValueError, match="factor must be a positive finite number"):
            sped_up(day, bad)


def test_the_busiest_window_holds_the_most_placements() -> None:
    """On the tiny day (placed at 0, 1, 5, 5, 50, 195): the busiest minute is 5 (two orders), the busiest 10 and 150
    minutes start at 0 (four and five orders); a window must be a positive whole number of minutes."""
    tiny = read_instance(TINY)
    assert busiest_window(tiny, 1) == (5, 6)
    assert busiest_window(tiny, 10) == (0, 10) and busiest_window(tiny, 150) == (0, 150)
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValueError, match="minutes must be a positive integer"):
            busiest_window(tiny, bad)  # type: ignore[arg-type]


def test_extra_couriers_start_at_busy_restaurants_and_serve_from_their_shift() -> None:
    """o1 (placed and ready at 10 at r1) waits 23 minutes past its bound for c1, 21 minutes away. One more courier
    from minute 0 at r1 (the restaurant with orders then) picks up on the spot: 2 minutes (the pickup service it
    starts at 10); from minute 20, 12; off at minute 5, no help (23). Its hours count in the cost per order."""
    day = one_order_day()

    def figures(instance: Instance) -> tuple[float, float]:
        m = compute_metrics(instance, simulate(instance, RollingHorizonMealPolicy(rules=instance.parameters.rules)))
        return m.ctd_excess_delivered, m.cost_per_order

    more = with_extra_couriers(day, 1, 0, 300)
    assert more.name == "one (1 more courier 0-300)" and more.orders == day.orders
    assert more.couriers == (*day.couriers, Courier(id="extra1", location=(0, 2050), on_time=0, off_time=300))
    assert figures(day) == (23, 75) and figures(more) == (2, 150)  # 5 hours at 15 more to pay for one order
    assert figures(with_extra_couriers(day, 1, 20, 300))[0] == 12
    assert figures(with_extra_couriers(day, 2, 0, 5))[0] == 23
    for bad in ((0, 0, 10), (1, 10, 10), (1, -1, 10), (True, 0, 10)):
        with pytest.raises(ValueError, match="must be"):
            with_extra_couriers(day, *bad)


def test_cli_extra_couriers_replay_the_day_with_them(capsys: pytest.CaptureFixture[str]) -> None:
    """`--extra-couriers 2@0-60` prints what `simulate` gives on the day with those couriers and says so with their
    hours; `--extra-couriers 1` puts one over the day's busiest two hours."""
    assert main(["simulate", "--mdrp", str(TINY), "--extra-couriers", "2@0-60", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    day = with_extra_couriers(read_instance(TINY), 2, 0, 60)
    expected = compute_metrics(day, simulate(day, meal_policy("rolling", day.parameters.rules))).as_dict()
    assert out["what_if"] == {"extra_couriers": 2, "extra_shift": [0, 60], "extra_courier_hours": 2.0}
    assert out["instance"] == day.name and {k: out[k] for k in expected} == expected
    assert main(["simulate", "--mdrp", str(TINY), "--extra-couriers", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["what_if"]["extra_shift"] == [0, 120]


class Scripted:
    """A planner called every minute: moves c1 toward `target` from minute 1 on, assigns o1 to c1 once it is open."""

    period = 1

    def __init__(self, target: tuple[float, float] | None, mover: str = "c1") -> None:
        self.target, self.mover = target, mover

    def assign(self, now: int, open_orders: Sequence[MealOrder], couriers: Sequence[MealCourier],
               ) -> list[MealAssignment]:
        return [MealAssignment(courier="c1", restaurant="r1", orders=("o1",))] if open_orders else []

    def plan(self, now: int, open_orders: Sequence[MealOrder], couriers: Sequence[MealCourier],
             placed: Sequence[MealOrder]) -> MealPlan:
        assignments = tuple(self.assign(now, open_orders, couriers))
        moves = (MealMove(courier=self.mover, target=self.target),) if self.target and not assignments and now == 1 \
            else ()
        return MealPlan(assignments=assignments, moves=moves)


def test_idle_courier_rides_toward_its_target_and_leaves_from_where_it_is() -> None:
    """Moved toward r1 at minute 1, c1 is ~900 m north at 10: 12 minutes to r1 (not 21), pickup at 24, drop-off at
    33; the 9 minutes it rode toward the restaurant it then picks up at count as delivery work (as the checker counts
    the direct ride from its last stop), not as repositioning."""
    instance = one_order_day()
    moved = simulate(instance, Scripted((0, 2050)))
    assert times(moved) == {"o1": ("c1", 24, 33)}
    assert times(simulate(instance, Scripted(None))) == {"o1": ("c1", 33, 42)}
    work = moved.couriers["c1"]
    assert work.repositioning_s == 0 and work.driving_s == (9 + 12 + 5) * 60
    metrics = compute_metrics(instance, moved)
    assert metrics.utilisation_mean == round((21 + 5 + 8) / 300, 3)
    assert metrics.repositioning_share == 0


def test_riding_away_from_the_next_restaurant_stays_repositioning() -> None:
    """Sent 300 m south at minute 1 (4 minutes at a hair under 100 m each), c1 then has 24 minutes to r1 against 21
    from where it stopped: no minute of that ride brought it nearer, so all 4 stay repositioning and delivery work
    counts the 24 it rode."""
    moved = simulate(one_order_day(), Scripted((0, -300)))
    assert times(moved) == {"o1": ("c1", 36, 45)}
    work = moved.couriers["c1"]
    assert work.repositioning_s == 4 * 60 and work.driving_s == (24 + 5) * 60


def test_courier_stops_at_its_target() -> None:
    """Sent to a point 350 m away at minute 1, c1 rides 4 minutes and waits there: from (0, 350) r1 is 17 minutes
    away, so it picks up at 29 (the 4 minutes brought it 4 minutes nearer: delivery work)."""
    moved = simulate(one_order_day(), Scripted((0, 350)))
    assert times(moved) == {"o1": ("c1", 29, 38)}
    assert moved.couriers["c1"].repositioning_s == 0 and moved.couriers["c1"].driving_s == (4 + 17 + 5) * 60


def test_riding_ends_at_the_off_time() -> None:
    """A courier sent far away at minute 1 and going off at 5 rides 4 minutes, however long the replay runs on."""
    day = one_order_day()
    short = replace(day, couriers=(replace(day.couriers[0], off_time=5),))
    moved = simulate(short, Scripted((0, 100_000)))
    assert moved.couriers["c1"].repositioning_s == 4 * 60 and times(moved) == {}


@pytest.mark.parametrize(("mover", "message"), [("c9", "unknown courier c9"), ("c1", "not idle")])
def test_moving_a_courier_that_is_unknown_or_busy_is_refused(mover: str, message: str) -> None:
    """A planner that moves an unknown courier, or one busy with an assignment, stops the replay with a clear
    error."""

    class Busy(Scripted):
        def plan(self, now: int, open_orders: Sequence[MealOrder], couriers: Sequence[MealCourier],
                 placed: Sequence[MealOrder]) -> MealPlan:
            plan = super().plan(now, open_orders, couriers, placed)
            if now == 12:
                return MealPlan(moves=(MealMove(courier=self.mover, target=(0, 0)),))
            return plan

    with pytest.raises(SimulatorError, match=message):
        simulate(one_order_day(), Busy(None, mover))


@pytest.mark.skipif(not (REAL.is_dir() and CHECKER.is_file()), reason=f"MDRP data or checker not found under {SHARED}")
def test_real_instance_with_moving_couriers_passes_checker(tmp_path: Path) -> None:
    """The default rolling policy (idle couriers move) on 0o50t75s1p100: couriers do reposition, the independent
    checker, which only knows the stops, finds every ride physically possible, and the utilisation by delivery work
    is the checker's (idle minutes ridden toward the next pickup count as the straight ride from the last stop)."""
    instance = read_instance(REAL)
    recorder = simulate(instance, meal_policy("rolling", instance.parameters.rules))
    assert compute_metrics(instance, recorder).repositioning_share > 0
    csv_path = tmp_path / "deliveries.csv"
    csv_path.write_text(deliveries_csv(instance, recorder))
    done = subprocess.run([sys.executable, str(CHECKER), str(REAL), str(csv_path)], capture_output=True, text=True,
                          check=False)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["valid"], report["problems"]
    ours = compute_metrics(instance, recorder).as_dict()
    for key in ("delivered", "utilisation_mean", "ctd_excess_delivered", "structurally_undeliverable_pct"):
        assert ours[key] == report[key], key


def test_cli_policy_choices(capsys: pytest.CaptureFixture[str]) -> None:
    """`--policy rolling-stay` runs the rolling policy with couriers staying put (no repositioning); an unknown
    policy exits 2 with one line listing the choices."""
    assert main(["simulate", "--mdrp", str(TINY), "--policy", "rolling-stay", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["policy"] == "rolling-stay" and out["repositioning_share"] == 0
    assert main(["simulate", "--mdrp", str(TINY), "--policy", "fastest"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rolling, rolling-stay, greedy" in err[0] and "fastest" in err[0]
