"""No traceback on any input: every file the `lastmile` CLI reads, mutated, exits 0 or 2 with one line naming it.

The real small files of tests/data and the tiny Moscow scenario are truncated, have bytes flipped, values swapped
for other types, NaN, infinities and huge numbers, lines dropped or repeated, are re-encoded (UTF-16, Latin-1) or
replaced by binary garbage. Hypothesis draws the mutations derandomized, so a run is repeatable and bounded; set
LASTMILE_FUZZ_EXAMPLES to draw more of them on a local machine. A mutation may leave a valid file: then the command
succeeds (exit 0) or refuses it (exit 2); it never raises, never prints a traceback and never exits otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.cli import main

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
NETWORK = DATA / "moscow_ostankino_drive.osm.bz2"
TINY = ROOT / "scenarios" / "moscow-ostankino-tiny.toml"
EXAMPLES = int(os.environ.get("LASTMILE_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

SWAPS = ("nan", "NaN", "inf", "-inf", "1e309", "1e308", "-1", "0", "1.5", "99999999999999999999999",
         "-99999999999999999999999", '"x"', "null", "true", "[]", "{}", "", "[[[[[[[[", "\u00e9", "\\t")
"""What a number or string of a file is replaced with: other types, NaN, infinities, huge values, junk."""

_TOKEN = re.compile(rb'-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|"[^"\n]*"|\b(?:true|false|null)\b')


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` broken one way: truncated, bytes flipped, a value swapped, a line dropped or repeated,
    re-encoded, emptied or replaced by garbage."""
    kind = draw(st.sampled_from(["truncate", "flip", "swap", "swap", "swap", "line", "encode", "garbage",
                                 "empty"]))
    if kind == "truncate":
        return original[: draw(st.integers(0, len(original) - 1))]
    if kind == "flip":
        out = bytearray(original)
        for at, value in draw(st.lists(st.tuples(st.integers(0, len(out) - 1), st.integers(0, 255)),
                                       min_size=1, max_size=4)):
            out[at] = value
        return bytes(out)
    if kind == "swap":
        out = original
        for _ in range(draw(st.integers(1, 3))):
            tokens = list(_TOKEN.finditer(out))
            if not tokens:
                break
            token = draw(st.sampled_from(tokens))
            out = out[: token.start()] + draw(st.sampled_from(SWAPS)).encode() + out[token.end():]
        return out
    if kind == "line":
        lines = original.split(b"\n")
        at = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["drop", "repeat", "swap"]))
        if how == "drop":
            del lines[at]
        elif how == "repeat":
            lines.insert(at, lines[at])
        else:
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        return b"\n".join(lines)
    if kind == "encode":
        text = original.decode("utf-8")
        at = draw(st.integers(0, len(text)))
        accented = text[:at] + "\u00e9\u00fc" + text[at:]
        return draw(st.sampled_from([text.encode("utf-16"), text.encode("utf-16-le"), accented.encode("latin-1"),
                                     "\ufeff".encode() + original]))
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=400))
    return b""


def check_one_line(code: int, err: str, names: str, *, also: str | None = None) -> None:
    """Exit 0 (the mutation left a valid file) or 2 with one line on stderr that names the file (`names`),
    or says `also` (a cheap path's own refusal of a valid file); never a traceback."""
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        lines = err.splitlines()
        assert len(lines) == 1 and err.endswith("\n") and lines[0].startswith("lastmile: error: "), err
        assert names in lines[0] or (also is not None and also in lines[0]), err


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err


# --- routing.io: `lastmile solve` ---------------------------------------------------------------------------------

INSTANCES = ("solomon_c101_9_customers.txt", "vrplib_6_customers.vrp", "vroom_two_vehicles.json")


@pytest.mark.parametrize("name", INSTANCES)
@FUZZ
@given(data=st.data())
def test_solve_mutated_instance(name: str, data: st.DataObject, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """`solve` on a mutated Solomon, VRPLIB or VROOM file exits 0 or 2 with one line naming the file."""
    path = tmp_path / f"fuzzed{Path(name).suffix}"
    path.write_bytes(data.draw(mutated((DATA / name).read_bytes()), label="file"))
    code, err = run(capsys, ["solve", str(path), "--iterations", "5", "--json"])
    check_one_line(code, err, str(path))


# --- api.schemas via api.allocate: `lastmile allocate` ------------------------------------------------------------

@pytest.mark.parametrize("which", ["facilities", "orders"])
@FUZZ
@given(data=st.data())
def test_allocate_mutated_file(which: str, data: st.DataObject, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """`allocate` with a mutated facilities or orders file exits 0 or 2 with one line naming the file."""
    files = {"facilities": DATA / "moscow_facilities.json", "orders": DATA / "moscow_orders.json"}
    path = files[which] = tmp_path / f"{which}.json"
    path.write_bytes(data.draw(mutated((DATA / f"moscow_{which}.json").read_bytes()), label="file"))
    code, err = run(capsys, ["allocate", "--network", str(NETWORK), "--facilities", str(files["facilities"]),
                             "--orders", str(files["orders"]), "--json"])
    check_one_line(code, err, str(path))


# --- simulator.mdrp: `lastmile simulate --mdrp` -------------------------------------------------------------------

MDRP_FILES = ("orders.txt", "couriers.txt", "restaurants.txt", "instance_parameters.txt")


@FUZZ
@given(data=st.data())
def test_mdrp_mutated_folder(data: st.DataObject, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`simulate --mdrp` on a folder with one mutated file exits 0 or 2 with one line naming the folder's file."""
    folder = tmp_path / "mdrp"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(DATA / "mdrp_tiny", folder)
    name = data.draw(st.sampled_from(MDRP_FILES), label="which")
    (folder / name).write_bytes(data.draw(mutated((folder / name).read_bytes()), label="file"))
    code, err = run(capsys, ["simulate", "--mdrp", str(folder), "--json"])
    check_one_line(code, err, str(folder))


# --- api.scenario_file: `lastmile simulate`, `sweep`, `fleet-size` ------------------------------------------------

def tiny_scenario_bytes() -> bytes:
    """The tiny scenario with its map path made absolute, so a copy elsewhere still finds the map."""
    return TINY.read_bytes().replace(b'file = "maps/', f'file = "{TINY.parent}/maps/'.encode())


SEED_LIST_REFUSED = "--seed-list: must be integers"


@FUZZ
@given(data=st.data())
def test_scenario_mutated_file(data: st.DataObject, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sweep` (load_scenario, as `simulate` and `fleet-size`) refuses a mutated scenario in one line naming it."""
    path = tmp_path / "fuzzed.toml"
    path.write_bytes(data.draw(mutated(tiny_scenario_bytes()), label="file"))
    code, err = run(capsys, ["sweep", str(path), "--seed-list", "x", "--no-progress"])
    assert code == 2
    check_one_line(code, err, str(path), also=SEED_LIST_REFUSED)


# --- simulator.demand: the replay CSV of a scenario, `lastmile simulate` ------------------------------------------

def replay_scenario(folder: Path, csv_path: Path) -> Path:
    """The tiny scenario replaying `csv_path` instead of generating its demand."""
    text = tiny_scenario_bytes().decode()
    text = text[: text.index("[demand]")] + f'[demand]\nkind = "replay"\nfile = "{csv_path}"\n'
    path = folder / "replay.toml"
    path.write_text(text)
    return path


@settings(FUZZ, max_examples=max(EXAMPLES // 2, 1))
@given(data=st.data())
def test_demand_mutated_csv(data: st.DataObject, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`simulate` replaying a mutated demand CSV exits 0 or 2 with one line naming the CSV file."""
    csv_path = tmp_path / "demand.csv"
    csv_path.write_bytes(data.draw(mutated((DATA / "demand_three_orders.csv").read_bytes()), label="file"))
    scenario = replay_scenario(tmp_path, csv_path)
    code, err = run(capsys, ["simulate", str(scenario), "--out", str(tmp_path / "out"), "--no-progress"])
    check_one_line(code, err, str(csv_path))


# --- the same kinds of bad input for every reader, spelled out --------------------------------------------------

def _write(content: bytes) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        path.write_bytes(content)
        return path
    return make


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


def _missing(path: Path) -> Path:
    return path


BAD_FILES: dict[str, Callable[[Path], Path]] = {
    "missing": _missing,
    "directory": _directory,
    "empty": _write(b""),
    "binary": _write(bytes(range(256)) * 3),
    "utf-16": _write("caf\u00e9 \u00e9t\u00e9\n".encode("utf-16")),
    "latin-1": _write("caf\u00e9 \u00e9t\u00e9\n".encode("latin-1")),
    "deep nesting": _write(b"[" * 100_000),
    "nan": _write(b"NaN"),
}


def _solve(tmp: Path, bad: Path) -> list[str]:
    return ["solve", str(bad), "--iterations", "5"]


COMMANDS: dict[str, tuple[str, Callable[[Path, Path], list[str]]]] = {
    "solomon": ("bad.txt", _solve),
    "vrplib": ("bad.vrp", _solve),
    "vroom": ("bad.json", _solve),
    "facilities": ("facilities.json", lambda tmp, bad: [
        "allocate", "--network", str(NETWORK), "--facilities", str(bad), "--orders", str(DATA / "moscow_orders.json")]),
    "orders": ("orders.json", lambda tmp, bad: [
        "allocate", "--network", str(NETWORK), "--facilities", str(DATA / "moscow_facilities.json"),
        "--orders", str(bad)]),
    "scenario (simulate)": ("bad.toml", lambda tmp, bad: ["simulate", str(bad), "--out", str(tmp / "out")]),
    "scenario (fleet-size)": ("bad.toml", lambda tmp, bad: ["fleet-size", str(bad), "--target", "on_time=0.9"]),
    "demand": ("demand.csv", lambda tmp, bad: ["simulate", str(replay_scenario(tmp, bad)), "--out", str(tmp / "out"),
                                               "--no-progress"]),
}


@pytest.mark.parametrize("reader", sorted(COMMANDS))
@pytest.mark.parametrize("bad", sorted(BAD_FILES))
def test_bad_file_one_line_exit_2(reader: str, bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Missing, a folder, empty, binary, UTF-16, Latin-1, NaN or deeply nested: exit 2, one line naming the file."""
    name, argv = COMMANDS[reader]
    path = BAD_FILES[bad](tmp_path / name)
    code, err = run(capsys, argv(tmp_path, path))
    assert code == 2
    check_one_line(code, err, str(path))


@pytest.mark.parametrize("bad", sorted(BAD_FILES))
@pytest.mark.parametrize("name", MDRP_FILES)
def test_bad_mdrp_file_one_line_exit_2(name: str, bad: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """An MDRP folder with one file missing, a folder, empty, binary or not UTF-8 exits 2 naming that file."""
    folder = tmp_path / "mdrp"
    shutil.copytree(DATA / "mdrp_tiny", folder)
    (folder / name).unlink()
    path = BAD_FILES[bad](folder / name)
    code, err = run(capsys, ["simulate", "--mdrp", str(folder), "--json"])
    assert code == 2
    check_one_line(code, err, str(path))


@pytest.mark.parametrize("bad", ["missing", "a file"])
def test_bad_mdrp_folder_one_line_exit_2(bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`simulate --mdrp` on a missing folder or on a file instead of a folder exits 2 with one line naming it."""
    path = tmp_path / "mdrp" if bad == "missing" else _write(b"x")(tmp_path / "mdrp")
    code, err = run(capsys, ["simulate", "--mdrp", str(path), "--json"])
    assert code == 2
    check_one_line(code, err, str(path))


def test_internal_bug_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error inside a reader (a bug, not bad input) escapes `main` as a traceback, not as exit 2."""
    def broken(path: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr("api.cli.read_instance", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["solve", str(DATA / INSTANCES[0]), "--iterations", "5"])
