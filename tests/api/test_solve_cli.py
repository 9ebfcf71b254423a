"""`lastmile solve` on VROOM documents and its limits: shipments listed in routes, bounded --seed, --time-limit and
--iterations, and every fault of a file one line naming the file and the field (exit status 2, no traceback)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from api.cli import main

DATA = Path(__file__).resolve().parent.parent / "data"
TWO = DATA / "vroom_two_vehicles.json"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path: Path, name: str, doc: dict[str, Any] | str) -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


@pytest.mark.parametrize("backend", ["auto", "ortools", "hybrid"])
def test_json_routes_list_shipment_stops(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--json lists a shipment's stops in its route as {"pickup": id} and {"delivery": id}, beside the jobs'
    ids, and they agree with --vroom's steps: every task of the file is on a route once."""
    limits = ["--iterations", "20", "--seed", "1", "--backend", backend]
    code, out, _ = run(["solve", str(TWO), "--json", *limits], capsys)
    assert code == 0
    routes = json.loads(out)["routes"]
    stops = [s for r in routes for s in r]
    assert sorted(s for s in stops if isinstance(s, int)) == [10, 11, 12]
    assert [s for s in stops if isinstance(s, dict)] == [{"pickup": 20}, {"delivery": 21}]
    code, out, _ = run(["solve", str(TWO), "--vroom", *limits], capsys)
    steps = [[(s["type"], s["id"]) for s in r["steps"] if "id" in s] for r in json.loads(out)["routes"]]
    assert steps == [[("job", s) if isinstance(s, int) else next(iter(s.items())) for s in r] for r in routes]


def test_text_routes_name_shipment_stops(capsys: pytest.CaptureFixture[str]) -> None:
    """The text output writes a shipment's stops as `pickup 20` and `delivery 21`."""
    code, out, _ = run(["solve", str(TWO), "--iterations", "20"], capsys)
    assert code == 0
    route = next(line for line in out.splitlines() if "pickup" in line)
    assert route.index("pickup 20") < route.index("delivery 21")


@pytest.mark.parametrize(("args", "message"), [
    (["--seed", "9223372036854775808"], "argument --seed: must be at most 2147483647, got 9223372036854775808"),
    (["--seed=-1", "--backend", "pyvrp"], "argument --seed: must be 0 or more, got -1"),
    (["--seed", "4294967296", "--backend", "pyvrp"], "argument --seed: must be at most 2147483647"),
    (["--seed", "x"], "argument --seed: expected an integer, got 'x'"),
    (["--time-limit", "1e308"], "argument --time-limit: must be at most 86400, got 1e308"),
    (["--iterations", "9223372036854775808"], "argument --iterations: must be at most 1000000000"),
])
def test_out_of_range_options_name_the_option(args: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """--seed outside [0, 2^31 - 1], --time-limit past a day and --iterations past 10^9 exit 2 with one line
    naming the option (they crashed PyVRP, OR-Tools or the compiled search with a traceback)."""
    code, _, err = run(["solve", str(TWO), *args], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err


def test_the_bounds_themselves_are_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    """The largest seed is a valid seed for PyVRP."""
    code, out, _ = run(["solve", str(DATA / "vrplib_6_customers.vrp"), "--iterations", "5", "--seed", "2147483647",
                        "--backend", "pyvrp", "--json"], capsys)
    assert code == 0 and json.loads(out)["unassigned"] == []


BAD_FILES: list[tuple[str, dict[str, Any] | str, list[str], str]] = [
    ("long integer", '{"vehicles": [{"id": ' + "1" * 5000 + "}]}", [], "an integer has more than 4300 digits"),
    ("service", {**json.loads(TWO.read_text()), "jobs": [{"id": 1, "location_index": 1, "service": -5}]}, [],
     "jobs[0].service: must lie in [0, "),
    ("break", {"vehicles": [{"id": 1, "start_index": 0, "end_index": 0, "time_window": [0, 100],
                             "breaks": [{"id": 1, "service": 10, "time_windows": [[500, 600]]}]}],
               "jobs": [{"id": 1, "location_index": 1}, {"id": 2, "location_index": 2}],
               "matrices": {"car": {"durations": [[0, 10, 20], [10, 0, 10], [20, 10, 0]]}}}, [],
     "vehicles[0].breaks[0]: cannot be over within the vehicle's time_window [0, 100]"),
    ("diagonal", {"vehicles": [{"id": 1, "start_index": 0, "end_index": 0}],
                  "jobs": [{"id": 1, "location_index": 0}, {"id": 2, "location_index": 1}],
                  "matrices": {"car": {"durations": [[5, 10], [10, 0]]}}}, ["--backend", "pyvrp"],
     "backend pyvrp cannot honour: travel from a place to itself"),
]


@pytest.mark.parametrize(("doc", "extra", "message"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
@pytest.mark.parametrize("output", ["--json", "--vroom"])
def test_bad_documents_are_one_line_naming_file_and_field(doc: dict[str, Any] | str, extra: list[str],
                                                          message: str, output: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A fault of a VROOM file, or a backend that cannot honour it, exits 2 with one line naming the file and the
    field, for --json and --vroom alike."""
    path = write(tmp_path, "doc.json", doc)
    code, out, err = run(["solve", str(path), output, "--iterations", "5", *extra], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"lastmile: error: {path}: ") and message in err


def test_a_diagonal_no_plan_pays_is_solved_by_pyvrp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """/tmp/probe_a/diag2.json (the vehicle's place 5 s from itself, no task there) is solved with PyVRP."""
    path = write(tmp_path, "diag2.json", {
        "vehicles": [{"id": 1, "start_index": 0, "end_index": 0, "capacity": [4]}],
        "shipments": [{"pickup": {"id": 1, "location_index": 1}, "delivery": {"id": 2, "location_index": 2},
                       "amount": [1]}],
        "matrices": {"car": {"durations": [[5, 10, 20], [10, 0, 10], [20, 10, 0]]}}})
    code, out, _ = run(["solve", str(path), "--vroom", "--iterations", "5", "--backend", "pyvrp"], capsys)
    assert code == 0 and json.loads(out)["summary"]["cost"] == 40


@pytest.mark.parametrize("path", [DATA / "solomon_c101_9_customers.txt", TWO])
def test_max_snap_without_network_is_refused(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--max-snap-m` without `--network` (which it was silently ignored without) exits 2 with one line naming both."""
    code, out, err = run(["solve", str(path), "--max-snap-m", "10", "--iterations", "5"], capsys)
    assert code == 2 and out == ""
    assert err.splitlines() == ["lastmile: error: --max-snap-m goes with --network (how far a point of a VROOM "
                                "document may lie from the map's roads)"]


def test_network_folder_is_named_as_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--network DIR` exits 2 with one line saying the folder is a folder, not that an OSM file is missing."""
    code, _, err = run(["solve", str(DATA / "vroom_docs_example.json"), "--network", str(tmp_path)], capsys)
    assert code == 2 and err.splitlines() == [f"lastmile: error: {str(tmp_path)!r} is a folder, not an OSM file "
                                              "(.osm, .osm.bz2 or .osm.gz)"]


@pytest.mark.parametrize("output", ["--json", "--vroom"])
def test_point_off_the_map_is_one_line_exit_2(output: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A point off the `--network` map exits 2 with one line naming the file and the point's field (the API's
    answer is VROOM's code 3; the CLI's is an error line, as docs/routing.md says)."""
    path = DATA / "vroom_docs_example.json"
    code, out, err = run(["solve", str(path), output, "--iterations", "5", "--network",
                          str(DATA / "moscow_ostankino_drive.osm.bz2"), "--max-snap-m", "300"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"lastmile: error: {path}: vehicles[0].start: ") and "off the map?" in err
