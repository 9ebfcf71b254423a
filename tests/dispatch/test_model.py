"""Orders, items and facilities: validated on construction, with errors naming the bad field."""

from __future__ import annotations

import dataclasses

import pytest
from shapely.geometry import Polygon, box

from dispatch.errors import DispatchError, InvalidFacilityError, InvalidOrderError
from dispatch.model import DAY_S, DarkStore, Item, Locker, Order, PickupPoint, open_at

MILK = Item(sku="MILK", qty=2, weight_g=1050, dims_mm=(95, 95, 200))


def test_valid_order_is_frozen_and_normalised() -> None:
    """A valid order keeps its fields as tuples and floats and cannot be changed afterwards."""
    order = Order(id="o1", location=[37.6, 55.81], mode="courier", items=[MILK], placed_at=3600)  # type: ignore[arg-type]
    assert order.location == (37.6, 55.81) and order.items == (MILK,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        order.mode = "locker"  # type: ignore[misc]


def test_quantities_sum_repeated_skus_in_first_seen_order() -> None:
    """Order.quantities adds up lines of the same SKU and keeps the order SKUs first appear in."""
    bread = Item(sku="BREAD", qty=1, weight_g=400, dims_mm=(250, 110, 90))
    order = Order(id="o1", location=(37.6, 55.81), mode="courier", items=(bread, MILK, bread))
    assert list(order.quantities().items()) == [("BREAD", 2), ("MILK", 2)]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"qty": -1}, "qty: must be positive, got -1"),
    ({"qty": 0}, "qty: must be positive, got 0"),
    ({"qty": 1.5}, "qty: must be an integer, got 1.5"),
    ({"qty": True}, "qty: must be an integer, got True"),
    ({"weight_g": 0}, "weight_g: must be positive"),
    ({"sku": ""}, "sku: must be a non-empty string"),
    ({"dims_mm": (10, 20)}, "dims_mm: must be three integers"),
    ({"dims_mm": (10, 20, -3)}, r"dims_mm\[2\]: must be positive, got -3"),
    ({"weight_g": 10**23}, "weight_g: must be at most 2147483647, got 100000000000000000000000"),
])
def test_bad_item_names_the_field(kwargs: dict[str, object], message: str) -> None:
    """Each invalid Item field raises InvalidOrderError (a ValueError) whose message starts with the field."""
    fields: dict[str, object] = {"sku": "MILK", "qty": 1, "weight_g": 100, "dims_mm": (1, 2, 3), **kwargs}
    with pytest.raises(InvalidOrderError, match=f"^{message}") as info:
        Item(**fields)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"id": ""}, "id: must be a non-empty string"),
    ({"location": (200.0, 55.0)}, r"location: invalid \(lon, lat\)"),
    ({"location": (37.6,)}, r"location: must be a \(lon, lat\) pair"),
    ({"mode": "drone"}, "mode: must be one of"),
    ({"items": ()}, "items: an order needs at least one item"),
    ({"items": ("MILK",)}, r"items\[0\]: must be an Item"),
    ({"placed_at": -5}, "placed_at: must not be negative, got -5"),
    ({"placed_at": 2**63}, "placed_at: must be at most 2147483647"),
])
def test_bad_order_names_the_field(kwargs: dict[str, object], message: str) -> None:
    """Each invalid Order field raises InvalidOrderError naming it."""
    fields: dict[str, object] = {"id": "o1", "location": (37.6, 55.8), "mode": "courier", "items": (MILK,), **kwargs}
    with pytest.raises(InvalidOrderError, match=f"^{message}"):
        Order(**fields)  # type: ignore[arg-type]


def test_error_paths_nest_under_a_prefix() -> None:
    """DispatchError.within puts a field path under its container, as the file readers report it."""
    with pytest.raises(InvalidOrderError) as info:
        Item(sku="X", qty=-1, weight_g=1, dims_mm=(1, 1, 1))
    nested = info.value.within("orders[3].items[0]")
    assert str(nested) == "orders[3].items[0].qty: must be positive, got -1"
    assert isinstance(nested, InvalidOrderError) and isinstance(nested, DispatchError)


def test_store_stock_is_read_only_copy() -> None:
    """A store copies its stock into a read-only mapping, so later edits of the input do not leak in."""
    stock = {"MILK": 3}
    store = DarkStore(id="s1", location=(37.6, 55.81), stock=stock)
    stock["MILK"] = 99
    assert store.stock["MILK"] == 3
    with pytest.raises(TypeError):
        store.stock["MILK"] = 1  # type: ignore[index]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"stock": {"MILK": -1}}, r"stock\['MILK'\]: must not be negative, got -1"),
    ({"stock": ["MILK"]}, "stock: must be a mapping"),
    ({"hours": (8 * 3600, 8 * 3600)}, "hours: opens and closes at the same time"),
    ({"hours": (8 * 3600, DAY_S + 1)}, "hours: must lie within one day"),
    ({"hours": (-1, 3600)}, r"hours\[0\]: must not be negative"),
    ({"zone": box(0, 0, 1, 1).boundary}, "zone: must be a shapely Polygon"),
    ({"zone": Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])}, "zone: invalid polygon: Self-intersection"),
    ({"picking_s": -60}, "picking_s: must not be negative"),
])
def test_bad_store_names_the_field(kwargs: dict[str, object], message: str) -> None:
    """Each invalid DarkStore field raises InvalidFacilityError naming it."""
    fields: dict[str, object] = {"id": "s1", "location": (37.6, 55.8), "stock": {"MILK": 1}, **kwargs}
    with pytest.raises(InvalidFacilityError, match=f"^{message}"):
        DarkStore(**fields)  # type: ignore[arg-type]


def test_hours_over_midnight_and_modulo_day() -> None:
    """Hours are [opens, closes); closing before opening means open over midnight; times wrap every day."""
    night = (22 * 3600, 2 * 3600)
    assert open_at(night, [23 * 3600, 3600, 12 * 3600, 2 * 3600]).tolist() == [True, True, False, False]
    store = DarkStore(id="s1", location=(37.6, 55.8), stock={}, hours=(8 * 3600, 23 * 3600))
    assert store.is_open(8 * 3600) and not store.is_open(23 * 3600)
    assert store.is_open(DAY_S + 9 * 3600) and not store.is_open(DAY_S + 7 * 3600)
    assert DarkStore(id="s2", location=(37.6, 55.8), stock={}).is_open(3 * 3600)


def test_locker_compartments_default_to_zero_and_reject_unknown_sizes() -> None:
    """Missing compartment sizes count zero; an unknown size, no compartment at all or a negative count fail."""
    locker = Locker(id="l1", location=(37.6, 55.8), compartments={"M": 2})
    assert dict(locker.compartments) == {"S": 0, "M": 2, "L": 0}
    with pytest.raises(InvalidFacilityError, match=r"^compartments\['XL'\]: unknown key"):
        Locker(id="l1", location=(37.6, 55.8), compartments={"XL": 1})  # type: ignore[dict-item]
    with pytest.raises(InvalidFacilityError, match=r"^compartments: a locker needs at least one compartment"):
        Locker(id="l1", location=(37.6, 55.8), compartments={"S": 0})
    with pytest.raises(InvalidFacilityError, match=r"^compartments\['S'\]: must not be negative"):
        Locker(id="l1", location=(37.6, 55.8), compartments={"S": -1})


def test_pickup_point_capacity_and_store_are_checked() -> None:
    """A pickup point needs a non-negative integer capacity and, when given, a non-empty store id."""
    assert PickupPoint(id="p1", location=(37.6, 55.8), capacity=0).capacity == 0
    with pytest.raises(InvalidFacilityError, match=r"^capacity: must not be negative"):
        PickupPoint(id="p1", location=(37.6, 55.8), capacity=-2)
    with pytest.raises(InvalidFacilityError, match=r"^store: must be a non-empty string"):
        PickupPoint(id="p1", location=(37.6, 55.8), capacity=1, store="")
