"""`lastmile allocate`: JSON and table output on the Moscow map, one-line errors with exit 2; `lastmile schema`."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from api.cli import main
from routing.network import CACHE_DIR_ENV
from routing.snap import haversine_m

DATA = Path(__file__).resolve().parent.parent / "data"
NETWORK = DATA / "moscow_ostankino_drive.osm.bz2"
FACILITIES = DATA / "moscow_facilities.json"
ORDERS = DATA / "moscow_orders.json"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _network_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(cache_dir))


def allocate(capsys: pytest.CaptureFixture[str], facilities: Path, orders: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["allocate", "--network", str(NETWORK), "--facilities", str(facilities), "--orders", str(orders),
                 *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def by_order(out: str) -> dict[str, dict[str, Any]]:
    return {a["order"]: a for a in json.loads(out)["allocations"]}


def test_json_lists_every_order_with_facility_or_reason(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints one allocation per order, in file order, each either served or carrying the expected reason."""
    code, out, err = allocate(capsys, FACILITIES, ORDERS, "--json")
    assert code == 0 and err == ""
    allocations = json.loads(out)["allocations"]
    order_ids = [o["id"] for o in json.loads(ORDERS.read_text())["orders"]]
    assert [a["order"] for a in allocations] == order_ids
    assert set(allocations[0]) == {"order", "facility", "store", "travel_time_s", "boxes", "compartments", "reason"}
    result = {a["order"]: (a["facility"], a["store"], a["reason"]) for a in allocations}
    assert result == {
        "road-beats-straight-line": ("vdnh", "vdnh", None),
        "bread-fallback": ("ostankino", "ostankino", None),
        "outside-zones": (None, None, "outside_service_area"),
        "night-order": (None, None, "store_closed"),
        "pickup-1": ("pvz-1", "ostankino", None),
        "pickup-2": (None, None, "pickup_point_full"),
        "locker-small": ("locker-a", "ostankino", None),
        "off-map": (None, None, "unreachable"),
        "unknown-sku": (None, None, "out_of_stock: CAVIAR"),
        "television": (None, None, "no_box_fits: TV-65"),
    }
    for a in allocations:
        served = a["reason"] is None
        assert (isinstance(a["travel_time_s"], int) and a["boxes"] != []) if served else a["travel_time_s"] is None


def test_road_time_not_straight_line_picks_the_store(capsys: pytest.CaptureFixture[str]) -> None:
    """The first order is nearer Ostankino as the crow flies, yet goes to VDNH, which is nearer by road."""
    facilities = {f["id"]: f for f in json.loads(FACILITIES.read_text())["facilities"]}
    first = json.loads(ORDERS.read_text())["orders"][0]
    crow = {sid: float(haversine_m(np.array(first["location"]), np.array(facilities[sid]["location"])))
            for sid in ("ostankino", "vdnh")}
    assert crow["ostankino"] < crow["vdnh"]
    code, out, _ = allocate(capsys, FACILITIES, ORDERS, "--json")
    assert code == 0
    assert by_order(out)["road-beats-straight-line"]["facility"] == "vdnh"
    assert by_order(out)["bread-fallback"]["travel_time_s"] > by_order(out)["road-beats-straight-line"]["travel_time_s"]


def test_full_locker_spills_to_the_next_and_to_bigger_compartments(capsys: pytest.CaptureFixture[str]) -> None:
    """locker_full.json: locker-a's one S box, then locker-b's S, then its M, then no_free_compartment."""
    code, out, _ = allocate(capsys, FACILITIES, DATA / "locker_full.json", "--json")
    assert code == 0
    got = [(a["facility"], a["compartments"], a["reason"]) for a in json.loads(out)["allocations"]]
    assert got == [("locker-a", ["S"], None), ("locker-b", ["S"], None), ("locker-b", ["M"], None),
                   (None, [], "no_free_compartment")]


def test_out_of_stock_after_the_last_units(capsys: pytest.CaptureFixture[str]) -> None:
    """out_of_stock.json: five orders for the last three coffees; the first three get them, the rest are refused."""
    code, out, _ = allocate(capsys, FACILITIES, DATA / "out_of_stock.json", "--json")
    assert code == 0
    assert [a["reason"] for a in json.loads(out)["allocations"]] == [None] * 3 + ["out_of_stock: COFFEE"] * 2


def test_table_output_is_readable(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json a table shows a header, one row per order with its result, and a summary line."""
    code, out, _ = allocate(capsys, FACILITIES, ORDERS)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["order", "facility", "store", "travel", "boxes", "result"]
    assert len(lines) == 1 + 10 + 1
    row = next(line for line in lines if line.startswith("road-beats-straight-line"))
    assert row.split()[1:3] == ["vdnh", "vdnh"] and row.endswith("allocated")
    assert "out_of_stock: CAVIAR" in out and lines[-1] == "10 orders: 4 allocated, 6 rejected"


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def facilities_with(change: Any) -> dict[str, Any]:
    data = json.loads(FACILITIES.read_text())
    change(data["facilities"])
    return data


def orders_with(change: Any) -> dict[str, Any]:
    data = json.loads(ORDERS.read_text())
    change(data["orders"])
    return data


BAD_FACILITIES = [
    (lambda f: f[2].update(kind="warehouse"), "facilities[2].kind: unknown kind 'warehouse'"),
    (lambda f: f[0].pop("location"), "facilities[0].location: missing"),
    (lambda f: f.append(copy.deepcopy(f[1])), "facilities[5].id: duplicate id 'vdnh'"),
    (lambda f: f[0]["stock"].update(MILK=-3), "facilities[0].stock['MILK']: must not be negative, got -3"),
    (lambda f: f[2].update(capacity=1.5), "facilities[2].capacity: must be an integer, got 1.5"),
    (lambda f: f[3].update(store="nowhere"), "facilities[3].store: unknown dark store 'nowhere'"),
    (lambda f: f[1].update(hours=["07:00", "25:00"]), "facilities[1].hours[1]: must be at most 24:00, got '25:00'"),
    (lambda f: f[0].update(zone={"type": "Point", "coordinates": [37.6, 55.8]}),
     "facilities[0].zone.type: unknown type 'Point'; expected one of ['Polygon', 'MultiPolygon']"),
    (lambda f: f[0]["zone"].update(coordinates=[[[37.58, 55.80], [37.61, 55.83], [37.61, 55.80], [37.58, 55.83],
                                                  [37.58, 55.80]]]), "facilities[0].zone: invalid polygon"),
    (lambda f: f[4].update(stock={"MILK": 1}), "facilities[4].stock: not a field of a locker"),
    (lambda f: f[4]["compartments"].update(XL=1), "facilities[4].compartments['XL']: unknown key"),
]


@pytest.mark.parametrize(("change", "message"), BAD_FACILITIES)
def test_bad_facilities_file_one_line_exit_2(
    change: Any, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad facilities file exits 2 with one line naming the file and the field."""
    path = write(tmp_path, "facilities.json", facilities_with(change))
    code, out, err = allocate(capsys, path, ORDERS)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"lastmile: error: {path}: {message}")


BAD_ORDERS = [
    (lambda o: o[3]["items"][0].update(qty=-1), "orders[3].items[0].qty: must be positive, got -1"),
    (lambda o: o[1].pop("location"), "orders[1].location: missing"),
    (lambda o: o[4].update(id="road-beats-straight-line"), "orders[4].id: duplicate id 'road-beats-straight-line'"),
    (lambda o: o[0].update(mode="drone"), "orders[0].mode: must be one of"),
    (lambda o: o[0].update(placed_at="noon"), "orders[0].placed_at: must be a time \"HH:MM\" or seconds"),
    (lambda o: o[2]["items"][0].update(dims_mm=[10, 20]), "orders[2].items[0].dims_mm: must have 3 items, got 2"),
    (lambda o: o[2]["items"][0].pop("weight_g"), "orders[2].items[0].weight_g: missing"),
    (lambda o: o[5].update(items=[]), "orders[5].items: must not be empty"),
    (lambda o: o[0].update(location=[37.6, 95.0]), "orders[0].location[1]: must be at most 90, got 95.0"),
]


@pytest.mark.parametrize(("change", "message"), BAD_ORDERS)
def test_bad_orders_file_one_line_exit_2(
    change: Any, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad orders file exits 2 with one line naming the file and the field."""
    path = write(tmp_path, "orders.json", orders_with(change))
    code, out, err = allocate(capsys, FACILITIES, path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"lastmile: error: {path}: {message}")


def test_facility_off_the_map_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    """facility_off_map.json: a locker 5 km from any road fails the run (exit 2) naming file, index and id."""
    code, out, err = allocate(capsys, DATA / "facility_off_map.json", ORDERS)
    assert code == 2 and out == ""
    assert err.startswith(f"lastmile: error: {DATA / 'facility_off_map.json'}: facilities[1].location: 'locker-far'")
    assert "from the nearest road node (limit 500 m)" in err and err.count("\n") == 1


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("{\"orders\": [", "not valid JSON"),
    ("[]", "must be an object {\"orders\": [...]}, got list"),
    ("{\"orders\": {}}", "orders: must be a list, got dict"),
    ("{\"orders\": [3]}", "orders[0]: must be an object, got int"),
])
def test_unreadable_orders_file(
    content: str | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Missing, malformed or wrongly shaped files exit 2 with one line naming the file."""
    path = tmp_path / "orders.json"
    if content is not None:
        path.write_text(content)
    code, _, err = allocate(capsys, FACILITIES, path)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"lastmile: error: {path}: ") and message in err


def test_missing_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Leaving out a required option exits 2 with argparse's one-line message."""
    assert main(["allocate", "--network", str(NETWORK), "--orders", str(ORDERS)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--facilities" in err


@pytest.mark.parametrize("name", ["facilities", "orders"])
def test_schema_command_prints_the_json_schema(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`lastmile schema NAME` prints the committed docs/schemas/NAME.schema.json byte for byte."""
    assert main(["schema", name]) == 0
    out = capsys.readouterr().out
    committed = DATA.parent.parent / "docs" / "schemas" / f"{name}.schema.json"
    assert out == committed.read_text(encoding="utf-8")
    assert json.loads(out)["required"] == [name]


def test_schema_command_rejects_an_unknown_file(capsys: pytest.CaptureFixture[str]) -> None:
    """`lastmile schema couriers` is a usage error: exit 2, one line listing the choices."""
    assert main(["schema", "couriers"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'facilities', 'orders'" in err
