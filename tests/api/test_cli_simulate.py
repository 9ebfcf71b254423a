"""`lastmile simulate SCENARIO`: settings, flags and replayed demand it cannot honour exit 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import main

TINY = Path(__file__).resolve().parents[2] / "scenarios" / "moscow-ostankino-tiny.toml"


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single stderr line of a refused command (exit 2 checked by the caller)."""
    err = capsys.readouterr().err
    assert err.startswith("lastmile: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(("argv", "names"), [
    (["--set", "fleet.scale=1e308"], "--set fleet.scale: would make a fleet group larger than 1000000 couriers"),
    (["--set", "stores.pickers_scale=1e308"], "--set stores.pickers_scale: would give a store more than 1000000"),
    (["--set", "lockers.compartments_scale=1e308"], "--set lockers.compartments_scale: would give a locker more"),
    (["--set", "pickup_points.capacity_scale=1e308"], "--set pickup_points.capacity_scale: would give a pickup"),
    (["--set", "fleet.bike=2", "--set", "fleet.bike=8"], "--set fleet.bike: is given twice"),
    (["--set", "policy=reoptimize", "--set", "policy.backend=ortools"],
     "--set policy.backend: ortools cannot price both click-to-door and lateness past the quote"),
    (["--policy", "reoptimize", "--set", "policy.backend=hybrid"], "--set policy.backend: hybrid cannot price"),
    (["--set", "policy.backend=ortools", "--policy", "reoptimize"], "--set policy.backend: ortools cannot price"),
    (["--set", "policy.quote_minute_cost_m=5", "--set", "policy.backend=hybrid", "--policy", "reoptimize"],
     "--set policy.backend: hybrid cannot price"),
    (["--seed", "99999999999"], "--seed: must be at most 2147483647, got 99999999999"),
    (["--policy", "magic"], "--policy: must be one of ['greedy', 'batch', 'reoptimize'], got 'magic'"),
    (["--out", ""], "argument --out: must name a folder, got ''"),
])
def test_a_setting_the_run_cannot_honour_is_one_line_exit_2(argv: list[str], names: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Overflowing scales, a key given twice, a policy the run could not build, a seed past 2^31 - 1 or an empty
    --out: exit 2, one line naming the flag or key, and nothing written (not even into the current folder)."""
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", str(TINY), "--no-progress", *argv] + ([] if "--out" in argv else
                                                                   ["--out", str(tmp_path / "out")])) == 2
    assert names in one_line(capsys)
    assert list(tmp_path.iterdir()) == []


def replay(tmp_path: Path, rows: str) -> Path:
    """The tiny scenario (clock 10:00-14:00) replaying a demand CSV of `rows` instead of generating its orders."""
    (tmp_path / "day.csv").write_text("id,placed_at,lon,lat,mode,items,promise_s\n" + rows)
    text = TINY.read_text().replace('file = "maps/', f'file = "{TINY.parent}/maps/')
    start = text.index("[demand]")
    end = text.find("\n[", start + 1)
    path = tmp_path / "replay.toml"
    path.write_text(text[:start] + '[demand]\nkind = "replay"\nfile = "day.csv"\n' + (text[end:] if end > 0 else ""))
    return path


@pytest.mark.parametrize(("placed_at", "line"), [("03:00", 3), ("14:00", 3), ("23:30", 3)])
def test_a_replayed_row_outside_the_day_is_one_line_exit_2(placed_at: str, line: int, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A demand row placed before clock.start or from clock.end on exits 2 naming the CSV, its line and placed_at."""
    scenario = replay(tmp_path, f"a,10:30,37.6029,55.8215,courier,bread:1,2700\n"
                                f"b,{placed_at},37.6029,55.8215,courier,milk-1l:2,2700\n")
    assert main(["simulate", str(scenario), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert (f"{tmp_path / 'day.csv'} row {line}: placed_at: must be within the scenario's day, from clock.start "
            f"10:00 until before clock.end 14:00, got '{placed_at}'") in one_line(capsys)
    assert not (tmp_path / "out").exists()


def test_a_replayed_day_runs_and_refuses_demand_orders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Rows within the day replay (placed as written, promise after placement); `--set demand.orders` on them
    exits 2 naming the key and the file, instead of being ignored."""
    scenario = replay(tmp_path, "a,10:00,37.6029,55.8215,courier,bread:1,2700\n"
                                "b,13:59,37.6029,55.8215,courier,milk-1l:2,2700\n")
    out = tmp_path / "out"
    assert main(["simulate", str(scenario), "--out", str(out), "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["orders"] == 2
    placed = {e["order"]: e["t"] for e in map(json.loads, (out / "events.jsonl").read_text().splitlines())
              if e["event"] == "placed"}
    assert placed == {"a": 10 * 3600, "b": 13 * 3600 + 59 * 60}
    assert main(["simulate", str(scenario), "--out", str(out), "--no-progress", "--set", "demand.orders=50"]) == 2
    assert ("--set demand.orders: the demand is replayed from day.csv" in one_line(capsys))


@pytest.mark.parametrize(("out", "message"), [("afile", "is a file, not a folder"),
                                              ("afile/below", "cannot write there")])
def test_an_out_folder_that_cannot_be_written_is_refused_before_the_day_runs(
        out: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--out` naming a file, or a folder under one, is one line exit 2 naming `--out`, before anything runs."""
    (tmp_path / "afile").write_text("x")
    assert main(["simulate", str(TINY), "--out", str(tmp_path / out), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and f"--out {tmp_path / out}: {message}" in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_a_sweep_out_that_is_a_file_is_refused_before_any_run(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`sweep --out` naming a file is one line exit 2 naming `--out`, before any cluster starts."""
    (tmp_path / "afile").write_text("x")
    assert main(["sweep", str(TINY), "--set", "policy=batch,greedy", "--out", str(tmp_path / "afile"),
                 "--no-progress"]) == 2
    assert f"--out {tmp_path / 'afile'}: is a file, not a folder" in capsys.readouterr().err
