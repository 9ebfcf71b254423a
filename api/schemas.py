"""The facilities and orders files of `lastmile allocate` as pydantic models, their JSON Schemas and readable errors.

The models only describe and validate the JSON; `to_domain()` converts them at the edge into the frozen
dataclasses of `dispatch.model`. Checks that need the whole file or the domain (duplicate ids, a valid zone
polygon, hours that open and close at different times) happen in `to_domain()`, and every error, from pydantic or
from the domain, is raised as a `DispatchError` naming the field, e.g. `orders[3].items[0].qty`.
`docs/schemas/*.schema.json` are generated from these models: `lastmile schema facilities|orders`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import shapely.geometry
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import ErrorDetails

from dispatch import model as domain
from dispatch.errors import DispatchError, InvalidDispatchError, InvalidFacilityError, InvalidOrderError
from dispatch.model import MAX_INT, parse_clock
from dispatch.operations import CourierSetup
from simulator.scenario import MAX_COUNT

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# A clock time: "H:MM", "HH:MM" or "HH:MM:SS" up to "24:00", or whole seconds from midnight.
CLOCK_PATTERN = r"^(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?$|^24:00(?::00)?$"


def clock_seconds(value: Any) -> int:
    """Seconds from midnight of "HH:MM" or "HH:MM:SS" (up to "24:00"), or whole seconds up to a day
    (`dispatch.model.parse_clock`)."""
    return parse_clock(value)


def clock_text(seconds: int) -> str:
    """Seconds from midnight as "HH:MM", or "HH:MM:SS" when not whole minutes (how errors quote a time back)."""
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}" + (f":{seconds % 60:02d}" if seconds % 60 else "")


Clock = Annotated[
    int,
    PlainValidator(clock_seconds),
    WithJsonSchema({
        "anyOf": [
            {"type": "string", "pattern": CLOCK_PATTERN, "description": "\"HH:MM\" or \"HH:MM:SS\", 00:00 to 24:00"},
            {"type": "integer", "minimum": 0, "description": "seconds from midnight"},
        ],
        "examples": ["08:00", "23:30"],
    }),
]


def ordered_span(span: tuple[int, int]) -> tuple[int, int]:
    """A [from, to] pair of times that runs forward; the message quotes the times back."""
    if span[1] <= span[0]:
        raise ValueError(f"must end after it starts, got {[clock_text(t) for t in span]}")
    return span


DaySpan = Annotated[tuple[Clock, Clock], AfterValidator(ordered_span)]
"""[from, to] within one day (00:00 to 24:00), running forward: a courier's shift, a store's opening hours."""
def _integral(value: Any) -> Any:
    """A float with no fraction (2.0) as the integer it is: JSON Schema's `integer` admits it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Id = Annotated[str, Strict(), Field(min_length=1)]
STORE_STOPS = ("pickup", "return")
"""The ids of a courier route's stops at its store (`/v1/couriers/{id}/stops/pickup`); its doors go by order id, so no
order may take these."""
MAX_ID = 128
"""The longest order, facility or courier id (characters)."""
URL_ID_PATTERN = r"^[^/?#%\s\x00-\x1f\x7f]+$"
DOT_SEGMENTS = (".", "..")


def _no_dot_segment(value: str) -> str:
    if value in DOT_SEGMENTS:
        raise ValueError(f"{value!r} is a path segment that HTTP clients remove from URLs; a URL could not address it")
    return value


UrlId = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_ID, pattern=URL_ID_PATTERN,
                                       json_schema_extra={"not": {"enum": list(DOT_SEGMENTS)}}),
                  AfterValidator(_no_dot_segment)]
"""An order, facility or courier id: the API addresses it in URL paths (`/v1/orders/{id}`, a courier's stops), so it
holds none of `/ ? # %`, no whitespace or control character (a client need not escape it), is not `.` or `..`
(clients resolve those away) and has at most `MAX_ID` characters."""
_URL_ID: TypeAdapter[str] = TypeAdapter(UrlId)


def url_id_problem(value: str) -> str | None:
    """Why `value` cannot be an id the API addresses in URL paths (`UrlId`'s own checks and words), or None."""
    try:
        _URL_ID.validate_python(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        return value_message(error) or str(error.get("ctx", {}).get("error", error["msg"]))
    return None
Count = Annotated[int, Strict(), Field(ge=0, le=MAX_INT), BeforeValidator(_integral)]
PositiveInt = Annotated[int, Strict(), Field(ge=1, le=MAX_INT), BeforeValidator(_integral)]
Longitude = Annotated[float, Strict(), Field(ge=-180, le=180, allow_inf_nan=False, description="longitude, degrees")]
Latitude = Annotated[float, Strict(), Field(ge=-90, le=90, allow_inf_nan=False, description="latitude, degrees")]
LonLat = tuple[Longitude, Latitude]
Ring = Annotated[list[LonLat], Field(min_length=4, description="closed ring: the last position repeats the first")]
LOCATION_DOC = "[longitude, latitude] in degrees (WGS 84), the GeoJSON order"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", field_title_generator=lambda name, _info: name)


class Polygon(_Model):
    """A GeoJSON Polygon: an outer ring, then any holes."""

    type: Literal["Polygon"] = Field(description="GeoJSON geometry type")
    coordinates: list[Ring] = Field(min_length=1, description="rings of [longitude, latitude]; the first is the "
                                                              "outline, any others are holes")

    def to_domain(self) -> shapely.geometry.Polygon:
        return shapely.geometry.Polygon(self.coordinates[0], self.coordinates[1:])


class MultiPolygon(_Model):
    """A GeoJSON MultiPolygon: several polygons, each an outer ring and any holes."""

    type: Literal["MultiPolygon"] = Field(description="GeoJSON geometry type")
    coordinates: list[Annotated[list[Ring], Field(min_length=1)]] = Field(
        min_length=1, description="polygons, each a list of rings as in a Polygon"
    )

    def to_domain(self) -> shapely.geometry.MultiPolygon:
        return shapely.geometry.MultiPolygon([(rings[0], rings[1:]) for rings in self.coordinates])


Zone = Annotated[Polygon | MultiPolygon, Field(discriminator="type")]


class DarkStore(_Model):
    """A dark store: holds stock, delivers `courier` orders within its zone while open, feeds pickups and lockers."""

    kind: Literal["dark_store"] = Field(description="what the facility is")
    id: UrlId = Field(description="unique among all facilities", examples=["ostankino"])
    location: LonLat = Field(description=LOCATION_DOC, examples=[[37.6020, 55.8177]])
    stock: dict[Id, Count] = Field(description="units on hand per SKU; an SKU not listed is out of stock",
                                   examples=[{"MILK-1L": 10, "BREAD": 5}])
    zone: Zone | None = Field(None, description="delivery area (GeoJSON); without one it delivers anywhere it can "
                                                "reach by road")
    hours: tuple[Clock, Clock] | None = Field(None, description="[opens, closes], may span midnight; without hours "
                                                                "it never closes", examples=[["08:00", "23:00"]])
    picking_s: Count = Field(0, description="seconds to pick an order")
    pickers: Annotated[int, Strict(), Field(ge=1, le=MAX_COUNT), BeforeValidator(_integral)] = Field(
        1, description="pickers working at once (the live service's picking queue; `lastmile allocate` does not use "
                       "it); at most a scenario file's bound")

    def to_domain(self) -> domain.DarkStore:
        return domain.DarkStore(id=self.id, location=self.location, stock=self.stock,
                                zone=None if self.zone is None else self.zone.to_domain(), hours=self.hours,
                                picking_s=self.picking_s)


class PickupPoint(_Model):
    """A staffed pickup point holding up to `capacity` orders at a time."""

    kind: Literal["pickup_point"] = Field(description="what the facility is")
    id: UrlId = Field(description="unique among all facilities", examples=["pvz-1"])
    location: LonLat = Field(description=LOCATION_DOC, examples=[[37.6018, 55.8139]])
    capacity: Count = Field(description="orders it can hold", examples=[20])
    hours: tuple[Clock, Clock] | None = Field(None, description="[opens, closes] for customers; allocation does not "
                                                                "depend on them", examples=[["10:00", "21:00"]])
    store: UrlId | None = Field(None, description="id of the dark store that always feeds it; otherwise the nearest "
                                               "open store holding the stock")

    def to_domain(self) -> domain.PickupPoint:
        return domain.PickupPoint(id=self.id, location=self.location, capacity=self.capacity, hours=self.hours,
                                  store=self.store)


class Locker(_Model):
    """A parcel locker: compartments of sizes S, M and L, one box per compartment."""

    kind: Literal["locker"] = Field(description="what the facility is")
    id: UrlId = Field(description="unique among all facilities", examples=["locker-a"])
    location: LonLat = Field(description=LOCATION_DOC, examples=[[37.5942, 55.8132]])
    compartments: dict[domain.CompartmentSize, Count] = Field(
        description="free compartments per size (S, M, L); at least one in all", examples=[{"S": 4, "M": 2, "L": 1}]
    )
    store: UrlId | None = Field(None, description="id of the dark store that always feeds it; otherwise the nearest "
                                               "open store holding the stock")

    def to_domain(self) -> domain.Locker:
        return domain.Locker(id=self.id, location=self.location, compartments=self.compartments, store=self.store)


Facility = Annotated[DarkStore | PickupPoint | Locker, Field(discriminator="kind")]


def _to_domain(error: type[DispatchError], key: str, entries: Sequence[Any]) -> tuple[Any, ...]:
    """`entries` converted in file order; an error names `key[i].field`, a repeated id is an `error`."""
    seen: set[str] = set()
    converted = []
    for i, entry in enumerate(entries):
        try:
            converted.append(entry.to_domain())
        except DispatchError as exc:
            raise exc.within(f"{key}[{i}]") from None
        if entry.id in seen:
            raise error(f"{key}[{i}].id", f"duplicate id {entry.id!r}")
        seen.add(entry.id)
    return tuple(converted)


class FacilitiesFile(_Model):
    """Dark stores, pickup points and lockers for `lastmile allocate --facilities`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"facilities": [
        {"id": "ostankino", "kind": "dark_store", "location": [37.6020, 55.8177], "stock": {"MILK-1L": 10},
         "hours": ["08:00", "23:00"], "zone": {"type": "Polygon", "coordinates": [[
             [37.58, 55.80], [37.612, 55.80], [37.612, 55.83], [37.58, 55.83], [37.58, 55.80]]]}},
        {"id": "pvz-1", "kind": "pickup_point", "location": [37.6018, 55.8139], "capacity": 20,
         "hours": ["10:00", "21:00"]},
        {"id": "locker-a", "kind": "locker", "location": [37.5942, 55.8132], "compartments": {"S": 4, "M": 2, "L": 1},
         "store": "ostankino"},
    ]}]})

    facilities: list[Facility] = Field(description="facilities by `kind`; ids unique")

    def to_domain(self) -> tuple[domain.Facility, ...]:
        """The facilities as `dispatch.model` objects; raises `InvalidFacilityError` naming `facilities[i].field`."""
        return _to_domain(InvalidFacilityError, "facilities", self.facilities)


class Item(_Model):
    """One order line: `qty` identical units of the SKU."""

    sku: UrlId = Field(description="stock-keeping unit, as in the dark stores' `stock` (an id as in URLs: "
                                   "`PUT /v1/stores/{id}/stock/{sku}` addresses it)", examples=["MILK-1L"])
    qty: Annotated[int, Strict(), Field(ge=1, le=domain.MAX_UNITS), BeforeValidator(_integral)] = Field(
        description="number of units", examples=[2])
    weight_g: PositiveInt = Field(description="weight of one unit, grams", examples=[1050])
    dims_mm: tuple[PositiveInt, PositiveInt, PositiveInt] = Field(
        description="outer dimensions of one unit, millimetres, in any order", examples=[[95, 95, 200]]
    )

    def to_domain(self) -> domain.Item:
        return domain.Item(sku=self.sku, qty=self.qty, weight_g=self.weight_g, dims_mm=self.dims_mm)


class ExpressPromise(_Model):
    """Express delivery: at the door within `within_min` minutes of placing the order."""

    kind: Literal["express"] = Field(description="the promise class")
    within_min: PositiveInt = Field(description="minutes from placing the order to delivery", examples=[30])

    def to_domain(self) -> domain.Promise:
        return domain.Promise.express(self.within_min * 60)


class SlotPromise(_Model):
    """A delivery slot: at the door between the two times of day (the next such slot if it is already over)."""

    kind: Literal["slot"] = Field(description="the promise class")
    window: tuple[Clock, Clock] = Field(description="[start, end] of the slot, start before end, within one day",
                                        examples=[["18:00", "19:00"]])

    def to_domain(self) -> domain.Promise:
        return domain.Promise.slot(*self.window)


class NextDayPromise(_Model):
    """Next-day delivery: by the end of the day after the one the order was placed on."""

    kind: Literal["next_day"] = Field(description="the promise class")

    def to_domain(self) -> domain.Promise:
        return domain.Promise.next_day()


PromiseClass = Annotated[ExpressPromise | SlotPromise | NextDayPromise, Field(discriminator="kind")]


class Order(_Model):
    """A customer order, delivered to `location` (`courier`) or collected at a pickup point, locker or store."""

    id: UrlId = Field(description="unique within the file; not `pickup` or `return` (a courier's route names its "
                                  "store stops so, its doors by order id)", examples=["o1"],
                      json_schema_extra={"not": {"enum": list(STORE_STOPS)}})
    location: LonLat = Field(description=f"the customer's address, {LOCATION_DOC}", examples=[[37.6029, 55.8215]])
    mode: domain.Mode = Field(description="`courier`: home delivery from a dark store; `pickup_point`, `locker`: "
                                          "delivered there for collection; `store`: click and collect; "
                                          "`return_pickup_point`: the customer drops `returns` at a pickup point "
                                          "(no `items`)")
    items: list[Item] = Field(default_factory=list, min_length=1, max_length=domain.MAX_UNITS,
                              description="the order lines; required except for a `return_pickup_point` order, "
                                          "which has none")
    placed_at: Clock = Field(0, description="time of day the order was placed (default 00:00)")
    promise: PromiseClass | None = Field(None, description="the delivery promise sold with the order, by `kind`: "
                                                           "express, slot or next_day")
    returns: list[Item] = Field(default_factory=list, max_length=domain.MAX_UNITS,
                                description="items to take back from the customer: collected at the door "
                                            "(`courier`), handed in at the store (`store`) or dropped at a "
                                            "pickup point (`return_pickup_point`)")

    @field_validator("id")
    @classmethod
    def _not_a_store_stop(cls, value: str) -> str:
        if value in STORE_STOPS:
            raise ValueError(f"{value!r} is reserved: a courier's route names its store stops {list(STORE_STOPS)}")
        return value

    def to_domain(self) -> domain.Order:
        if self.mode != "return_pickup_point" and "items" not in self.model_fields_set:
            raise InvalidOrderError("items", "missing")
        lines: dict[str, list[domain.Item]] = {"items": [], "returns": []}
        for key, models in (("items", self.items), ("returns", self.returns)):
            for j, item in enumerate(models):
                try:
                    lines[key].append(item.to_domain())
                except DispatchError as exc:
                    raise exc.within(f"{key}[{j}]") from None
        try:
            promise = None if self.promise is None else self.promise.to_domain()
        except DispatchError as exc:
            raise exc.within("promise") from None
        return domain.Order(id=self.id, location=self.location, mode=self.mode, items=tuple(lines["items"]),
                            placed_at=self.placed_at, promise=promise, returns=tuple(lines["returns"]))


class OrdersFile(_Model):
    """Orders for `lastmile allocate --orders`, allocated first come first served in file order."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"orders": [
        {"id": "o1", "location": [37.6029, 55.8215], "mode": "courier", "placed_at": "12:30",
         "items": [{"sku": "MILK-1L", "qty": 2, "weight_g": 1050, "dims_mm": [95, 95, 200]}],
         "promise": {"kind": "express", "within_min": 30}},
        {"id": "r1", "location": [37.6008, 55.8146], "mode": "return_pickup_point", "placed_at": "12:40",
         "returns": [{"sku": "KETTLE", "qty": 1, "weight_g": 1400, "dims_mm": [220, 180, 250]}]},
    ]}]})

    orders: list[Order] = Field(description="orders in the order they are allocated; ids unique")

    def to_domain(self) -> tuple[domain.Order, ...]:
        """The orders as `dispatch.model` objects; raises `InvalidOrderError` naming `orders[i].field`."""
        return _to_domain(InvalidOrderError, "orders", self.orders)


class Courier(_Model):
    """A courier of a dark store's fleet, for `PUT /v1/couriers`."""

    id: UrlId = Field(description="unique among the couriers; a courier key is bound to it", examples=["c1"])
    profile: Literal["bike", "ebike", "foot", "car"] = Field(description="vehicle profile (road speeds, CO2)")
    store: UrlId = Field(description="id of its dark store", examples=["ostankino"])
    shift: DaySpan = Field(description="[start, end] of its shift", examples=[["08:00", "20:00"]])
    capacity: PositiveInt = Field(4, description="boxes it carries at once")

    def to_domain(self) -> CourierSetup:
        return CourierSetup(id=self.id, store=self.store, profile=self.profile, capacity=self.capacity,
                            shift_start=self.shift[0], shift_end=self.shift[1])


class CouriersFile(_Model):
    """The couriers of the deployment, for `PUT /v1/couriers` (they replace the ones before)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"couriers": [
        {"id": "c1", "profile": "bike", "store": "ostankino", "shift": ["08:00", "20:00"], "capacity": 6}]}]})

    couriers: list[Courier] = Field(description="couriers; ids unique")

    def to_domain(self) -> tuple[CourierSetup, ...]:
        return _to_domain(InvalidDispatchError, "couriers", self.couriers)


FileModel = TypeVar("FileModel", FacilitiesFile, OrdersFile, CouriersFile)
SCHEMAS: dict[str, type[FacilitiesFile] | type[OrdersFile]] = {"facilities": FacilitiesFile, "orders": OrdersFile}


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the `facilities` or `orders` file, generated from the models."""
    return {"$schema": JSON_SCHEMA_DIALECT, **SCHEMAS[name].model_json_schema()}


def json_schema_text(name: str) -> str:
    """`json_schema(name)` as the text of `docs/schemas/{name}.schema.json`."""
    return json.dumps(json_schema(name), indent=2, ensure_ascii=False) + "\n"


def validate(file_model: type[FileModel], data: Any, error: type[DispatchError]) -> FileModel:
    """`data` (decoded JSON) as `file_model`; a pydantic error becomes `error(path, message)` of the first problem."""
    try:
        return file_model.model_validate(data)
    except ValidationError as exc:
        field, message = describe(exc.errors()[0], file_model)
        raise error(field, message) from None


def facilities_from_json(data: Any) -> tuple[domain.Facility, ...]:
    """Facilities from a decoded facilities file; any problem raises `InvalidFacilityError` naming the field."""
    return validate(FacilitiesFile, data, InvalidFacilityError).to_domain()


def couriers_from_json(data: Any) -> tuple[CourierSetup, ...]:
    """Couriers from a decoded couriers document; any problem raises `InvalidDispatchError` naming the field."""
    return validate(CouriersFile, data, InvalidDispatchError).to_domain()


def facilities_and_pickers_from_json(data: Any) -> tuple[tuple[domain.Facility, ...], dict[str, int]]:
    """`facilities_from_json` and the pickers of each dark store, from one validation of the document."""
    model = validate(FacilitiesFile, data, InvalidFacilityError)
    return model.to_domain(), {f.id: f.pickers for f in model.facilities if isinstance(f, DarkStore)}


def orders_from_json(data: Any) -> tuple[domain.Order, ...]:
    """Orders from a decoded orders file; any problem raises `InvalidOrderError` naming the field."""
    return validate(OrdersFile, data, InvalidOrderError).to_domain()


# --- pydantic errors as `field.path: message` ---------------------------------------------------------------------

_KEY = "[key]"  # pydantic's `loc` entry for an error in a mapping's key
_BOUNDS = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}
_BOUND_WORDS = {"gt": "must be greater than", "ge": "must be at least", "lt": "must be less than",
                "le": "must be at most"}
_NAMED_BOUNDS: dict[tuple[str, Any], str] = {
    ("gt", 0): "must be positive", ("ge", 1): "must be positive", ("ge", 0): "must not be negative"
}
_TYPE_WORDS = {"int_type": "must be an integer", "int_parsing": "must be an integer",
               "int_from_float": "must be an integer", "float_type": "must be a number",
               "float_parsing": "must be a number", "finite_number": "must be a finite number",
               "string_type": "must be a string", "bool_type": "must be true or false",
               "bool_parsing": "must be true or false"}


def _strip(tp: Any) -> Any:
    """`tp` without `Annotated[...]` and without `| None`."""
    while True:
        args = get_args(tp)
        if get_origin(tp) is Annotated:
            tp = args[0]
        elif get_origin(tp) in (Union, UnionType) and len(args) == 2 and type(None) in args:
            tp = args[0] if args[1] is type(None) else args[1]
        else:
            return tp


def _tagged(union: Any, tag: Any) -> Any:
    """The model in a discriminated union whose Literal discriminator takes the value `tag`."""
    for member in get_args(union):
        fields = member.model_fields.values() if isinstance(member, type) and issubclass(member, BaseModel) else []
        if any(get_origin(f.annotation) is Literal and tag in get_args(f.annotation) for f in fields):
            return member
    return None


def _fixed_length(tp: Any) -> int | None:
    """The number of items of a fixed-length tuple type, else None."""
    tp = _strip(tp)
    return len(get_args(tp)) if get_origin(tp) is tuple and Ellipsis not in get_args(tp) else None


def _typename(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _article(model: type[BaseModel] | None) -> str:
    """`a dark store` for DarkStore, `an order` for Order."""
    if model is None:
        return "this object"
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", model.__name__).lower()
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


@dataclass
class _Place:
    """What an error's `loc` points at: the field path as text, the type there, the type holding it, its model."""

    path: str = ""
    node: Any = None
    holder: Any = None
    model: type[BaseModel] | None = None
    in_key: bool = False

    @classmethod
    def find(cls, root: type[BaseModel], loc: tuple[int | str, ...], *, dotted_keys: bool = False) -> _Place:
        """`dotted_keys`: a mapping's key written as TOML writes it (`per_km.car`), not as `per_km['car']`."""
        place = cls(node=root)
        for part in loc:
            node = _strip(place.node)
            origin, args = get_origin(node), get_args(node)
            if origin in (Union, UnionType):  # a discriminated union: `part` is the tag, not a field
                place.node = _tagged(node, part)
                continue
            place.holder = node
            if isinstance(node, type) and issubclass(node, BaseModel) and isinstance(part, str):
                field = node.model_fields.get(part)
                place.model, place.node = node, None if field is None else field.annotation
                place.path += f".{part}" if place.path else part
            elif part == _KEY:
                place.in_key, place.node = True, args[0] if origin is dict else None
            elif isinstance(part, int):
                place.path += f"[{part}]"
                if _fixed_length(node) is not None:
                    place.node = args[part] if part < len(args) else None
                else:
                    place.node = args[0] if args else None
            elif origin is dict:  # a key of a mapping
                key = repr(part)
                place.path += f".{key[1:-1]}" if dotted_keys and key.startswith("'") else f"[{key}]"
                place.node = args[1]
            else:  # a place the models do not describe
                place.path += f".{part}"
                place.node = None
        return place


def value_message(error: Mapping[str, Any], *, bounds_by_value: bool = False) -> str | None:
    """The readable message of a pydantic error about one value, whatever holds it (a model's field, a query
    parameter): a choice, a bound, a string's length or shape, a type; None for another kind of error.
    `bounds_by_value`: every bound named by its value (`must be at least 0`, not `must not be negative`)."""
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    got = f"got {value!r}"
    if kind in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected')}, {got}"
    if kind in _BOUNDS:
        bound, limit = _BOUNDS[kind], ctx.get(_BOUNDS[kind])
        limit = int(limit) if isinstance(limit, float) and limit.is_integer() else limit
        words = (None if bounds_by_value else _NAMED_BOUNDS.get((bound, limit))) or f"{_BOUND_WORDS[bound]} {limit}"
        return f"{words}, {got}"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "string_too_long":
        return f"must have at most {ctx.get('max_length')} characters, got {len(str(value))}"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == URL_ID_PATTERN:
        return f"must not contain / ? # %, whitespace or control characters (ids appear in URLs), got {value!r}"
    if kind in _TYPE_WORDS:
        return f"{_TYPE_WORDS[kind]}, {got}"
    return None


def describe(error: ErrorDetails, root: type[BaseModel], *, dotted_keys: bool = False,
             bounds_by_value: bool = False) -> tuple[str, str]:
    """A pydantic error found validating `root`, as (field path like `orders[3].items[0].qty`, readable message).
    `dotted_keys`: a mapping's keys as TOML writes them (`costs.per_km.car`); `bounds_by_value`: every bound named
    by its value (`must be at least 0`, not `must not be negative`)."""
    kind, loc, ctx = error["type"], tuple(error["loc"]), error.get("ctx", {})
    value = error.get("input")
    place = _Place.find(root, loc, dotted_keys=dotted_keys)
    path = place.path
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str(ctx.get("discriminator", "")).strip("'")
        path = f"{path}.{discriminator}" if path else discriminator
        if kind == "union_tag_not_found":
            return path, "missing"
        return path, f"unknown {discriminator} {ctx.get('tag')!r}; expected one of [{ctx.get('expected_tags')}]"
    if kind == "missing" and loc and isinstance(loc[-1], int) and _fixed_length(place.holder) is not None:
        given = len(value) if isinstance(value, list) else 0  # a fixed-length array with too few items
        return path[: path.rfind("[")], f"must have {_fixed_length(place.holder)} items, got {given}"
    if kind == "missing":
        return path, "missing"
    if kind == "extra_forbidden":
        fields = sorted(place.model.model_fields) if place.model else []
        return path, f"not a field of {_article(place.model)}; expected {fields}"
    if kind == "value_error" and "error" in ctx:
        return path, str(ctx["error"])
    if kind == "literal_error" and place.in_key:
        return path, f"unknown key; expected one of {ctx.get('expected')}"
    if kind in ("too_short", "too_long"):
        actual, length = ctx.get("actual_length"), _fixed_length(place.node)
        if length is not None:
            return path, f"must have {length} items, got {actual}"
        if kind == "too_short" and ctx.get("min_length") == 1:
            return path, "must not be empty"
        bound = f"at least {ctx.get('min_length')}" if kind == "too_short" else f"at most {ctx.get('max_length')}"
        return path, f"must have {bound} items, got {actual}"
    message = value_message(error, bounds_by_value=bounds_by_value)
    if message is not None:
        return path, message
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        keys = ", ".join(f"{json.dumps(key)}: [...]" for key in root.model_fields)
        shape = f" {{{keys}}}" if not loc else ""
        return path, f"must be an object{shape}, got {_typename(value)}"
    if kind in ("list_type", "tuple_type"):
        return path, f"must be a list, got {_typename(value)}"
    message = error["msg"]
    return path, message[:1].lower() + message[1:]
