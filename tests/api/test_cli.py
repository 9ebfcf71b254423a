"""The `lastmile solve` command: JSON output a checker can verify, one-line errors with exit status 2."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.cli import main

DATA = Path(__file__).resolve().parent.parent / "data"


def test_solve_json(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints one object with the required keys; routes hold every customer number exactly once."""
    code = main(["solve", str(DATA / "solomon_c101_9_customers.txt"), "--iterations", "200", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"instance", "distance", "vehicles", "feasible", "runtime_s", "routes"} <= out.keys()
    assert out["feasible"] is True and isinstance(out["distance"], float)
    assert sorted(c for r in out["routes"] for c in r) == list(range(1, 10))
    assert out["vehicles"] == len(out["routes"])


def test_solve_json_names_the_algorithms_that_ran(capsys: pytest.CaptureFixture[str]) -> None:
    """`solve --json` on a windowed instance says `auto` chose the hybrid, lists its phases in order with the cost
    each left, and credits only phases that improved the plan; a backend asked for by name is the one that runs."""
    assert main(["solve", str(DATA / "solomon_c101_9_customers.txt"), "--iterations", "50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backend"] == "hybrid"
    assert [a["algorithm"] for a in out["algorithms"]] == ["ortools.gls", "sisr", "ortools.gls_polish"]
    costs = [a["cost"] for a in out["algorithms"]]
    credited = [a["algorithm"] for k, a in enumerate(out["algorithms"]) if k == 0 or a["cost"] < min(costs[:k])]
    assert out["credit"] == credited
    assert main(["solve", str(DATA / "vrplib_6_customers.vrp"), "--iterations", "50", "--json",
                 "--backend", "pyvrp"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backend"] == "pyvrp" and [a["algorithm"] for a in out["algorithms"]] == ["pyvrp.ils"]


VRPLIB_6 = [(0, 0), (10, 0), (20, 0), (0, 10), (0, 20), (-10, 0), (-20, 3)]  # NODE_COORD_SECTION of the file


def test_solve_vrplib_numbers_customers_from_one(capsys: pytest.CaptureFixture[str]) -> None:
    """VRPLIB routes use customers 1..n-1 as in .sol files, and the distance is the sum of the printed routes'
    legs rounded to the nearest integer each (EUC_2D), depot to depot, computed here from the coordinates."""
    assert main(["solve", str(DATA / "vrplib_6_customers.vrp"), "--iterations", "100", "--json",
                 "--backend", "ortools"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(c for r in out["routes"] for c in r) == [1, 2, 3, 4, 5, 6]

    def leg(a: int, b: int) -> int:
        (xa, ya), (xb, yb) = VRPLIB_6[a], VRPLIB_6[b]
        return int(((xa - xb) ** 2 + (ya - yb) ** 2) ** 0.5 + 0.5)

    expected = sum(leg(a, b) for route in out["routes"] for a, b in itertools.pairwise([0, *route, 0]))
    assert out["distance"] == expected
    assert expected != sum(((VRPLIB_6[a][0] - VRPLIB_6[b][0]) ** 2 + (VRPLIB_6[a][1] - VRPLIB_6[b][1]) ** 2) ** 0.5
                           for route in out["routes"] for a, b in itertools.pairwise([0, *route, 0]))


def test_same_seed_same_output(capsys: pytest.CaptureFixture[str]) -> None:
    """The same seed and iteration limit print the same routes."""
    args = ["solve", str(DATA / "solomon_c101_9_customers.txt"), "--iterations", "300", "--seed", "4", "--json"]
    main(args)
    first = json.loads(capsys.readouterr().out)
    main(args)
    second = json.loads(capsys.readouterr().out)
    assert first["routes"] == second["routes"]


@pytest.mark.parametrize(("args", "message"), [
    (["solve", "nope.txt"], "nope.txt: no such file"),
    (["solve", str(DATA / "unknown_format.csv")], "unknown format"),
    (["solve", str(DATA / "solomon_negative_demand.txt")], "demand must not be negative"),
    (["solve", str(DATA / "solomon_window_closes_before_open.txt")], "closes at 67 before it opens"),
    (["solve", "x.txt", "--backend", "foo"], "invalid choice: 'foo'"),
    (["solve", "x.txt", "--time-limit", "-1"], "--time-limit: must be positive"),
    (["bogus"], "invalid choice: 'bogus'"),
    (["demo", "--seed", "-1"], "--seed: must be 0 or more, got -1"),
    (["demo", "--seed", "99999999999"], "--seed: must be at most 2147483647"),
    (["demo", "--orders", "10000000000"], "--orders: must be at most 1000"),
    (["demo", "--time-limit", "100000"], "--time-limit: must be at most 86400"),
])
def test_bad_input_one_line_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input exits with status 2 and one readable line on stderr naming the fault."""
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_console_script_exit_status() -> None:
    """The installed `lastmile` entry point returns exit status 2 to the shell on bad input."""
    proc = subprocess.run([sys.executable, "-m", "api.cli", "solve", "missing.vrp"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "lastmile: error: missing.vrp: no such file"


def test_an_unassigned_shipment_is_named_as_a_shipment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`solve --json` lists a shipment that cannot be served under `shipment` with its own id, not a job label."""
    doc = {"vehicles": [{"id": 1, "start_index": 0, "end_index": 0, "capacity": [1]}],
           "shipments": [{"pickup": {"id": 10, "location_index": 1}, "delivery": {"id": 11, "location_index": 2},
                          "amount": [5]}],
           "matrices": {"car": {"durations": [[0, 5, 5], [5, 0, 5], [5, 5, 0]]}}}
    (tmp_path / "one.json").write_text(json.dumps(doc))
    assert main(["solve", str(tmp_path / "one.json"), "--iterations", "10", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unassigned"] == [{"shipment": "10/11", "reason": "over_capacity"}]


def test_serve_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`--admission` overrides LASTMILE_ADMISSION (the other serve flags too); a value not offered exits 2."""
    from api.cli import _settings, build_parser

    monkeypatch.setenv("LASTMILE_ADMISSION", "worker")
    scenario = str(Path(__file__).resolve().parents[2] / "scenarios" / "moscow-ostankino-tiny.toml")
    args = build_parser().parse_args(["serve", "--scenario", scenario, "--admission", "api", "--workers", "0"])
    settings = _settings(args)
    assert settings.admission == "api" and settings.workers == 0
    assert _settings(build_parser().parse_args(["serve", "--scenario", scenario])).admission == "worker"
    assert main(["serve", "--scenario", scenario, "--admission", "everyone"]) == 2
    assert "--admission" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_worker_idle_runs_the_worker_in_the_idle_scheduling_class(redis_prefix: str) -> None:
    """`lastmile worker --idle` (or LASTMILE_WORKER_IDLE) runs in SCHED_IDLE, every thread of it; without, the
    normal class."""
    from tests.api.conftest import REDIS_URL
    from tests.api.live import LASTMILE, ROOT, TINY

    for flags, variable, expected in ((["--idle"], "false", os.SCHED_IDLE), ([], "true", os.SCHED_IDLE),
                                      ([], "false", os.SCHED_OTHER)):
        env = {**os.environ, "LASTMILE_REDIS_PREFIX": redis_prefix, "LASTMILE_WORKER_IDLE": variable}
        proc = subprocess.Popen([*LASTMILE, "worker", "--scenario", str(TINY), "--store", REDIS_URL, *flags],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith(b"lastmile worker")  # printed once it runs
            threads = [int(t) for t in os.listdir(f"/proc/{proc.pid}/task")]
            assert {os.sched_getscheduler(t) for t in threads} == {expected}, (flags, variable)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()


def test_worker_nice_lowers_the_worker_process_priority(redis_prefix: str) -> None:
    """`lastmile worker --nice 7` runs at a priority 7 lower than it started with; a nice above 19 exits 2."""
    from tests.api.conftest import REDIS_URL
    from tests.api.live import LASTMILE, ROOT, TINY

    assert main(["worker", "--scenario", str(TINY), "--store", REDIS_URL, "--nice", "20"]) == 2
    env = {**os.environ, "LASTMILE_REDIS_PREFIX": redis_prefix, "LASTMILE_WORKER_NICE": "3"}
    before = os.getpriority(os.PRIO_PROCESS, 0)
    proc = subprocess.Popen([*LASTMILE, "worker", "--scenario", str(TINY), "--store", REDIS_URL, "--nice", "7"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(b"lastmile worker")  # printed once it runs
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == min(19, before + 7)  # the flag, not the variable
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_redis_store_that_does_not_answer_is_one_line_exit_2(command: str, capsys: pytest.CaptureFixture[str],
                                                               ) -> None:
    """`serve` and `worker` with a Redis URL nobody listens on exit 2 with one line naming --store, its password
    masked, rather than a traceback."""
    import socket

    from tests.api.live import TINY

    with socket.socket() as s:  # a port that was just free: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"redis://:s3cret@127.0.0.1:{port}/0"
    assert main([command, "--scenario", str(TINY), "--store", url]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"lastmile: error: --store redis://:***@127.0.0.1:{port}/0: cannot reach Redis")
    assert captured.err.count("\n") == 1 and "s3cret" not in captured.err + captured.out
    assert "admin key" not in captured.out  # nothing is minted for a server that never starts


def test_a_store_url_is_printed_with_its_password_masked() -> None:
    """`shown_store` masks a Redis URL's password and keeps the user, host, port and database; other specs as given."""
    from api.cli import shown_store

    assert shown_store("redis://ops:pw@db.local:6380/2") == "redis://ops:***@db.local:6380/2"
    assert shown_store("rediss://:pw@10.0.0.1/0") == "rediss://:***@10.0.0.1/0"
    assert shown_store("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert shown_store("memory") == "memory"


@pytest.mark.parametrize("flags", [["--scenario"], ["--demo"]])
def test_a_port_in_use_is_one_line_exit_2(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`serve` and `serve --demo` on a port another socket listens on exit 2 with one line naming --port, before
    printing an address or a key."""
    import socket

    from tests.api.live import TINY

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", *flags, str(TINY), "--port", str(port), *(["--exit"] if flags == ["--demo"] else [])]
                    ) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"lastmile: error: --port {port}: cannot listen on 127.0.0.1:{port}")
    assert captured.err.count("\n") == 1 and captured.out == ""
