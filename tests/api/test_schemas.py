"""api.schemas: pydantic models of the allocate files, their committed JSON Schemas, errors naming the field."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import shapely.geometry
from pydantic import BaseModel

from api.schemas import (
    CLOCK_PATTERN,
    SCHEMAS,
    FacilitiesFile,
    OrdersFile,
    clock_seconds,
    describe,
    facilities_from_json,
    json_schema,
    json_schema_text,
    orders_from_json,
)
from dispatch import model as domain
from dispatch.errors import DispatchError, InvalidFacilityError, InvalidOrderError

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data"
SCHEMA_DIR = ROOT / "docs" / "schemas"
FACILITY_FILES = ["moscow_facilities.json", "facility_off_map.json"]
ORDER_FILES = ["moscow_orders.json", "locker_full.json", "out_of_stock.json"]
KETTLE = {"sku": "KETTLE", "qty": 1, "weight_g": 1400, "dims_mm": [220, 180, 250]}


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema_is_up_to_date(name: str) -> None:
    """docs/schemas/NAME.schema.json is exactly what the models generate (regenerate: `lastmile schema NAME`)."""
    committed = (SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8")
    assert committed == json_schema_text(name), (
        f"docs/schemas/{name}.schema.json is stale: run `lastmile schema {name} > docs/schemas/{name}.schema.json`"
    )


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_is_draft_2020_12_and_closed(name: str) -> None:
    """Every object the schema defines forbids unknown fields and documents each of its fields."""
    schema = json_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    objects = [schema, *schema["$defs"].values()]
    assert len(objects) >= 3
    for obj in objects:
        assert obj["additionalProperties"] is False and obj["description"]
        undocumented = [field for field, prop in obj["properties"].items() if not prop.get("description")]
        assert undocumented == [], obj["title"]


def test_schema_carries_the_constraints() -> None:
    """Constraints reach the schema: positive qty, weight and dims (within 32 bits), coordinate ranges, S/M/L, the
    kinds, clock times."""
    orders, facilities = json_schema("orders"), json_schema("facilities")
    item = orders["$defs"]["Item"]["properties"]
    assert item["qty"]["minimum"] == 1 and item["weight_g"]["minimum"] == 1
    assert item["dims_mm"]["minItems"] == item["dims_mm"]["maxItems"] == 3
    assert all(d == {"minimum": 1, "maximum": 2**31 - 1, "type": "integer"} for d in item["dims_mm"]["prefixItems"])
    lon, lat = orders["$defs"]["Order"]["properties"]["location"]["prefixItems"]
    assert (lon["minimum"], lon["maximum"], lat["minimum"], lat["maximum"]) == (-180, 180, -90, 90)
    assert orders["$defs"]["Order"]["properties"]["mode"]["enum"] == list(domain.MODES)
    assert orders["$defs"]["Order"]["properties"]["items"]["minItems"] == 1
    assert set(facilities["properties"]["facilities"]["items"]["discriminator"]["mapping"]) == {
        "dark_store", "pickup_point", "locker"}
    locker = facilities["$defs"]["Locker"]["properties"]
    assert locker["compartments"]["propertyNames"]["enum"] == list(domain.COMPARTMENT_SIZES)
    assert facilities["$defs"]["DarkStore"]["properties"]["stock"]["additionalProperties"]["minimum"] == 0
    opens = facilities["$defs"]["DarkStore"]["properties"]["hours"]["anyOf"][0]["prefixItems"][0]
    assert {"type": "string", "pattern": CLOCK_PATTERN}.items() <= opens["anyOf"][0].items()


@pytest.mark.parametrize("name", FACILITY_FILES)
def test_example_facility_files_validate(name: str) -> None:
    """The facility files in tests/data validate against the schema's models and convert to dispatch objects."""
    data = load(name)
    facilities = FacilitiesFile.model_validate(data).to_domain()
    assert [f.id for f in facilities] == [f["id"] for f in data["facilities"]]
    kinds = {"dark_store": domain.DarkStore, "pickup_point": domain.PickupPoint, "locker": domain.Locker}
    for f, raw in zip(facilities, data["facilities"], strict=True):
        assert type(f) is kinds[raw["kind"]]
        assert f.location == tuple(raw["location"])
        if raw["kind"] == "dark_store":
            assert dict(f.stock) == raw["stock"]
        elif raw["kind"] == "locker":
            assert dict(f.compartments) == {size: raw["compartments"].get(size, 0) for size in "SML"}
        else:
            assert f.capacity == raw["capacity"]


@pytest.mark.parametrize("name", ORDER_FILES)
def test_example_order_files_validate(name: str) -> None:
    """The order files in tests/data validate against the schema's models and convert to dispatch orders."""
    data = load(name)
    orders = OrdersFile.model_validate(data).to_domain()
    assert [o.id for o in orders] == [o["id"] for o in data["orders"]]
    for o, raw in zip(orders, data["orders"], strict=True):
        assert (o.mode, o.location) == (raw["mode"], tuple(raw["location"]))
        assert [(i.sku, i.qty) for i in o.items] == [(i["sku"], i["qty"]) for i in raw.get("items", [])]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_examples_validate(name: str) -> None:
    """The whole-file examples in each schema (the README's) are valid input themselves."""
    examples = json_schema(name)["examples"]
    assert examples
    for example in examples:
        assert SCHEMAS[name].model_validate(example).to_domain()


def test_conversion_to_dispatch_objects() -> None:
    """to_domain() turns clock strings into seconds, the zone into a shapely polygon, and fills locker sizes."""
    store, vdnh, pickup, locker_a, _ = facilities_from_json(load("moscow_facilities.json"))
    assert isinstance(store, domain.DarkStore) and store.hours == (8 * 3600, 23 * 3600)
    assert isinstance(store.zone, shapely.geometry.Polygon) and store.zone.contains(shapely.geometry.Point(37.6, 55.81))
    assert isinstance(vdnh, domain.DarkStore) and vdnh.hours == (7 * 3600, 3600)  # open over midnight
    assert isinstance(pickup, domain.PickupPoint) and pickup.capacity == 1 and pickup.store is None
    assert isinstance(locker_a, domain.Locker) and dict(locker_a.compartments) == {"S": 1, "M": 0, "L": 0}
    first = orders_from_json(load("moscow_orders.json"))[0]
    assert first.placed_at == 12 * 3600 and first.location == (37.6029, 55.8215)
    assert first.items == (domain.Item(sku="MILK-1L", qty=2, weight_g=1050, dims_mm=(95, 95, 200)),)


def test_promise_and_returns_convert_to_dispatch_objects() -> None:
    """Each promise kind becomes a dispatch Promise (minutes and clock times in seconds); returns become Items."""
    base = {"location": [37.6, 55.8], "mode": "courier", "items": [KETTLE]}
    data = {"orders": [
        {**base, "id": "e", "promise": {"kind": "express", "within_min": 30}, "returns": [KETTLE]},
        {**base, "id": "s", "promise": {"kind": "slot", "window": ["18:00", "19:00"]}},
        {**base, "id": "n", "promise": {"kind": "next_day"}},
        {"id": "r", "location": [37.6, 55.8], "mode": "return_pickup_point", "returns": [KETTLE]},
    ]}
    express, slot, next_day, dropped = orders_from_json(data)
    kettle = domain.Item(sku="KETTLE", qty=1, weight_g=1400, dims_mm=(220, 180, 250))
    assert express.promise == domain.Promise.express(1800) and express.returns == (kettle,)
    assert slot.promise == domain.Promise.slot(18 * 3600, 19 * 3600) and slot.returns == ()
    assert next_day.promise == domain.Promise.next_day()
    assert dropped.mode == "return_pickup_point" and dropped.items == () and dropped.returns == (kettle,)
    assert dropped.promise is None


def test_multipolygon_zone_is_accepted() -> None:
    """A GeoJSON MultiPolygon zone becomes a shapely MultiPolygon."""
    square = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
    zone = {"type": "MultiPolygon", "coordinates": [[square], [[[x + 2, y] for x, y in square]]]}
    data = {"facilities": [{"id": "s", "kind": "dark_store", "location": [0.5, 0.5], "stock": {}, "zone": zone}]}
    (store,) = facilities_from_json(data)
    assert isinstance(store, domain.DarkStore) and isinstance(store.zone, shapely.geometry.MultiPolygon)
    assert len(store.zone.geoms) == 2


def changed(name: str, key: str, change: Any) -> Any:
    data = copy.deepcopy(load(name))
    change(data[key])
    return data


BAD_FACILITIES = [
    (lambda f: f[2].update(kind="warehouse"), "facilities[2].kind",
     "unknown kind 'warehouse'; expected one of ['dark_store', 'pickup_point', 'locker']"),
    (lambda f: f[0].pop("kind"), "facilities[0].kind", "missing"),
    (lambda f: f[3].update(colour="red"), "facilities[3].colour",
     "not a field of a locker; expected ['compartments', 'id', 'kind', 'location', 'store']"),
    (lambda f: f[2].update(picking_s=30), "facilities[2].picking_s", "not a field of a pickup point; expected "
     "['capacity', 'hours', 'id', 'kind', 'location', 'store']"),
    (lambda f: f[0]["zone"].update(bbox=[0, 0, 1, 1]), "facilities[0].zone.bbox",
     "not a field of a polygon; expected ['coordinates', 'type']"),
    (lambda f: f[1].update(hours=["07:00", "25:00"]), "facilities[1].hours[1]", "must be at most 24:00, got '25:00'"),
    (lambda f: f[1].update(hours=["07:00"]), "facilities[1].hours", "must have 2 items, got 1"),
    (lambda f: f[1].update(hours=["7 am", "23:00"]), "facilities[1].hours[0]",
     "must be a time \"HH:MM\" or seconds, got '7 am'"),
    (lambda f: f[1].update(hours=["09:00", "09:00"]), "facilities[1].hours",
     "opens and closes at the same time (32400 s); use (0, 86400) for all day"),
    (lambda f: f[0]["stock"].update(MILK=-3), "facilities[0].stock['MILK']", "must not be negative, got -3"),
    (lambda f: f[2].update(capacity=True), "facilities[2].capacity", "must be an integer, got True"),
    (lambda f: f[4]["compartments"].update(XL=1), "facilities[4].compartments['XL']",
     "unknown key; expected one of 'S', 'M' or 'L'"),
    (lambda f: f[4].update(location=[237.0, 55.8]), "facilities[4].location[0]", "must be at most 180, got 237.0"),
    (lambda f: f[4].update(location=["37.6", 55.8]), "facilities[4].location[0]", "must be a number, got '37.6'"),
    (lambda f: f[0].update(id=""), "facilities[0].id", "must not be empty"),
    (lambda f: f.append(copy.deepcopy(f[1])), "facilities[5].id", "duplicate id 'vdnh'"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_FACILITIES)
def test_bad_facility_names_the_field(change: Any, field: str, message: str) -> None:
    """A bad facility raises InvalidFacilityError whose field is the exact path and whose message says why."""
    with pytest.raises(InvalidFacilityError) as caught:
        facilities_from_json(changed("moscow_facilities.json", "facilities", change))
    assert (caught.value.field, caught.value.message) == (field, message)


BAD_ORDERS = [
    (lambda o: o[3]["items"][0].update(qty=-1), "orders[3].items[0].qty", "must be positive, got -1"),
    (lambda o: o[3]["items"][0].update(qty=0), "orders[3].items[0].qty", "must be positive, got 0"),
    (lambda o: o[3]["items"][0].update(qty=1.5), "orders[3].items[0].qty", "must be an integer, got 1.5"),
    (lambda o: o[0]["items"][0].update(dims_mm=[95, 0, 200]), "orders[0].items[0].dims_mm[1]",
     "must be positive, got 0"),
    (lambda o: o[0]["items"][0].update(colour="red"), "orders[0].items[0].colour",
     "not a field of an item; expected ['dims_mm', 'qty', 'sku', 'weight_g']"),
    (lambda o: o[0].update(mode="drone"), "orders[0].mode",
     "must be one of 'courier', 'pickup_point', 'locker', 'store' or 'return_pickup_point', got 'drone'"),
    (lambda o: o[0].update(placed_at="12:00\n"), "orders[0].placed_at",
     "must be a time \"HH:MM\" or seconds, got '12:00\\n'"),
    (lambda o: o[0].update(location=[37.6, float("nan")]), "orders[0].location[1]", "must be a finite number, got nan"),
    (lambda o: o[2].pop("items"), "orders[2].items", "missing"),
    (lambda o: o[4].update(id="road-beats-straight-line"), "orders[4].id", "duplicate id 'road-beats-straight-line'"),
    (lambda o: o[0].update(promise={"kind": "drone"}), "orders[0].promise.kind",
     "unknown kind 'drone'; expected one of ['express', 'slot', 'next_day']"),
    (lambda o: o[0].update(promise={}), "orders[0].promise.kind", "missing"),
    (lambda o: o[0].update(promise={"kind": "express", "within_min": 0}), "orders[0].promise.within_min",
     "must be positive, got 0"),
    (lambda o: o[0].update(promise={"kind": "slot", "window": ["19:00", "18:00"]}), "orders[0].promise.window",
     "must satisfy 0 <= start < end <= 86400, got (68400, 64800)"),
    (lambda o: o[0].update(promise={"kind": "slot", "window": ["18:00"]}), "orders[0].promise.window",
     "must have 2 items, got 1"),
    (lambda o: o[0].update(promise={"kind": "next_day", "within_min": 5}), "orders[0].promise.within_min",
     "not a field of a next day promise; expected ['kind']"),
    (lambda o: o[0].update(returns=[{**KETTLE, "qty": 0}]), "orders[0].returns[0].qty", "must be positive, got 0"),
    (lambda o: o[4].update(returns=[KETTLE]), "orders[4].returns",
     "a pickup_point order cannot take returns (only courier, store, return_pickup_point); "
     "place a return_pickup_point order"),
    (lambda o: o[0].update(mode="return_pickup_point", returns=[KETTLE]), "orders[0].items",
     "a return_pickup_point order delivers nothing; list the items it returns in `returns`"),
    (lambda o: (o[0].update(mode="return_pickup_point"), o[0].pop("items")), "orders[0].returns",
     "a return_pickup_point order needs at least one item to return"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_ORDERS)
def test_bad_order_names_the_field(change: Any, field: str, message: str) -> None:
    """A bad order raises InvalidOrderError whose field is the exact path and whose message says why."""
    with pytest.raises(InvalidOrderError) as caught:
        orders_from_json(changed("moscow_orders.json", "orders", change))
    assert (caught.value.field, caught.value.message) == (field, message)


@pytest.mark.parametrize(("data", "field", "message"), [
    ([], "", 'must be an object {"orders": [...]}, got list'),
    ({}, "orders", "missing"),
    ({"orders": None}, "orders", "must be a list, got null"),
    ({"orders": [], "comment": "x"}, "comment", "not a field of an orders file; expected ['orders']"),
])
def test_bad_orders_file_shape(data: Any, field: str, message: str) -> None:
    """A file that is not {"orders": [...]} is reported at the top level or at the offending key."""
    with pytest.raises(InvalidOrderError) as caught:
        orders_from_json(data)
    assert (caught.value.field, caught.value.message) == (field, message)


def test_first_error_is_reported() -> None:
    """With several bad fields the error names the first in file order."""
    data = changed("moscow_orders.json", "orders", lambda o: (o[6]["items"][0].update(qty=-1), o[2].pop("mode")))
    with pytest.raises(DispatchError, match=r"^orders\[2\]\.mode: missing$"):
        orders_from_json(data)


def test_describe_an_error_outside_the_models() -> None:
    """An error at a place the models do not describe still gets a readable path and pydantic's own message."""
    error = {"type": "custom", "loc": ("orders", 0, "nope", 1, "x"), "msg": "Something odd", "input": None}
    assert describe(error, OrdersFile) == ("orders[0].nope[1].x", "something odd")


def test_clock_seconds() -> None:
    """Clock times parse to seconds from midnight; 24:00 closes a day; nonsense raises ValueError saying why."""
    assert clock_seconds("08:30") == 30_600
    assert clock_seconds("24:00") == 86_400
    assert clock_seconds("7:05:09") == 25_509
    assert clock_seconds(45) == 45
    for bad in ("12:60", "24:01", "8h", "١٢:٠٠", -1, 1.5, True, None):
        with pytest.raises(ValueError, match=r"^(must|not a time)"):
            clock_seconds(bad)


def test_clock_pattern_in_schema_matches_the_validator() -> None:
    """The schema's clock pattern accepts exactly the strings clock_seconds accepts (the two cannot drift)."""
    candidates = [f"{h}:{m:02d}" for h in range(26) for m in range(0, 62)]
    candidates += [f"{h:02d}:{m:02d}:{s:02d}" for h in (0, 9, 23, 24, 25) for m in (0, 59, 60) for s in (0, 1, 59, 60)]
    candidates += ["", "1:5", "123:00", "12:00:", "12-00", "24:00:00"]

    def valid(text: str) -> bool:
        try:
            clock_seconds(text)
        except ValueError:
            return False
        return True

    disagree = [c for c in candidates if bool(re.search(CLOCK_PATTERN, c)) != valid(c)]
    assert disagree == [] and sum(map(valid, candidates)) > 1000


def test_models_are_closed_and_documented() -> None:
    """Every model forbids extra fields (the schemas say additionalProperties: false because of it)."""
    models: list[type[BaseModel]] = [FacilitiesFile, OrdersFile]
    seen: set[type[BaseModel]] = set()
    while models:
        model = models.pop()
        seen.add(model)
        assert model.model_config.get("extra") == "forbid", model.__name__
        assert model.__doc__, model.__name__
        for field in model.model_fields.values():
            models += [t for t in _models_in(field.annotation) if t not in seen]
    assert {m.__name__ for m in seen} == {"FacilitiesFile", "DarkStore", "PickupPoint", "Locker", "Polygon",
                                          "MultiPolygon", "OrdersFile", "Order", "Item", "ExpressPromise",
                                          "SlotPromise", "NextDayPromise"}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


@pytest.mark.parametrize(("schema", "name"), [("facilities", n) for n in FACILITY_FILES]
                         + [("orders", n) for n in ORDER_FILES])
def test_example_files_pass_an_independent_validator(schema: str, name: str) -> None:
    """The committed JSON Schema files accept the example files when checked by `jsonschema`, not pydantic."""
    document = json.loads((SCHEMA_DIR / f"{schema}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(document)
    errors = list(jsonschema.Draft202012Validator(document).iter_errors(load(name)))
    assert errors == []


def test_independent_validator_rejects_a_negative_quantity() -> None:
    """The committed orders schema itself (not just the models) rejects a negative quantity and an unknown field."""
    document = json.loads((SCHEMA_DIR / "orders.schema.json").read_text(encoding="utf-8"))
    data = load("moscow_orders.json")
    data["orders"][0]["items"][0]["qty"] = -1
    data["orders"][0]["colour"] = "red"
    messages = [e.message for e in jsonschema.Draft202012Validator(document).iter_errors(data)]
    assert any("-1" in m for m in messages) and any("colour" in m for m in messages)
