"""Inventory: reservations are all or nothing, counts never go negative, releasing restores them."""

from __future__ import annotations

import pytest

from dispatch.errors import InvalidFacilityError, ReservationError
from dispatch.inventory import Inventory
from dispatch.model import DarkStore, Locker, PickupPoint


@pytest.fixture
def inventory() -> Inventory:
    return Inventory([
        DarkStore(id="s1", location=(37.60, 55.81), stock={"MILK": 2, "BREAD": 1}),
        PickupPoint(id="p1", location=(37.60, 55.81), capacity=1),
        Locker(id="l1", location=(37.60, 55.81), compartments={"S": 1, "L": 1}),
    ])


def test_reserve_takes_and_release_gives_back(inventory: Inventory) -> None:
    """A reservation lowers stock, pickup-point room and compartments; releasing it restores every count."""
    inventory.reserve("o1", store="s1", stock={"MILK": 2}, locker="l1", compartments=("S",))
    inventory.reserve("o2", store="s1", stock={"BREAD": 1}, pickup_point="p1")
    assert inventory.available("s1", "MILK") == 0 and inventory.free_capacity("p1") == 0
    assert inventory.free_compartments("l1") == {"S": 0, "M": 0, "L": 1}
    released = inventory.release("o1")
    assert released.compartments == ("S",) and dict(released.stock) == {"MILK": 2}
    assert inventory.available("s1", "MILK") == 2 and inventory.free_compartments("l1")["S"] == 1
    assert inventory.reservation("o1") is None and inventory.reservation("o2") is not None


def test_reservation_is_all_or_nothing(inventory: Inventory) -> None:
    """When one SKU is short nothing is taken, not even the SKUs that were available."""
    with pytest.raises(ReservationError, match=r"^stock\['BREAD'\]: store 's1' has 1, 2 wanted"):
        inventory.reserve("o1", store="s1", stock={"MILK": 1, "BREAD": 2}, pickup_point="p1")
    assert inventory.available("s1", "MILK") == 2 and inventory.free_capacity("p1") == 1
    assert inventory.reservation("o1") is None


def test_counts_never_go_negative(inventory: Inventory) -> None:
    """Reserving past zero fails for stock, pickup-point room and compartments alike."""
    inventory.reserve("o1", store="s1", stock={"MILK": 2}, pickup_point="p1", locker="l1", compartments=("L",))
    with pytest.raises(ReservationError, match="MILK"):
        inventory.reserve("o2", store="s1", stock={"MILK": 1})
    with pytest.raises(ReservationError, match="'p1' is full"):
        inventory.reserve("o3", pickup_point="p1")
    with pytest.raises(ReservationError, match=r"compartments\['L'\]"):
        inventory.reserve("o4", locker="l1", compartments=("L",))
    assert inventory.available("s1", "MILK") == 0 and inventory.free_capacity("p1") == 0


def test_compartment_assignment_moves_up_a_size_when_full(inventory: Inventory) -> None:
    """Boxes take their own compartment size, else the next larger free one; None when nothing fits."""
    assert inventory.assign_compartments("l1", ["S"]) == ("S",)
    assert inventory.assign_compartments("l1", ["S", "S"]) == ("S", "L")
    assert inventory.assign_compartments("l1", ["M"]) == ("L",)
    assert inventory.assign_compartments("l1", ["L", "M"]) is None


def test_release_and_double_reserve_are_errors(inventory: Inventory) -> None:
    """Releasing an order holding nothing, or reserving twice for one order, raises ReservationError."""
    with pytest.raises(ReservationError, match="'o9' holds no reservation"):
        inventory.release("o9")
    inventory.reserve("o1", store="s1", stock={"MILK": 1})
    with pytest.raises(ReservationError, match="'o1' already holds a reservation"):
        inventory.reserve("o1", store="s1", stock={"MILK": 1})
    assert inventory.available("s1", "MILK") == 1


def test_unknown_facilities_and_duplicate_ids_are_rejected() -> None:
    """Unknown store ids raise ReservationError; duplicate facility ids raise InvalidFacilityError."""
    inventory = Inventory([DarkStore(id="s1", location=(37.6, 55.8), stock={})])
    with pytest.raises(ReservationError, match=r"^store: unknown dark store 's2'"):
        inventory.missing("s2", {"MILK": 1})
    with pytest.raises(InvalidFacilityError, match=r"^facilities\[1\]\.id: duplicate id 's1'"):
        Inventory([DarkStore(id="s1", location=(37.6, 55.8), stock={}),
                   PickupPoint(id="s1", location=(37.6, 55.8), capacity=1)])


def test_first_holding_and_holding() -> None:
    """first_holding finds the first store with every unit and names what the first lacks; holding lists reservers."""
    inv = Inventory([
        DarkStore(id="a", location=(37.60, 55.81), stock={"MILK": 1}),
        DarkStore(id="b", location=(37.61, 55.81), stock={"MILK": 3, "EGGS": 1}),
    ])
    assert inv.first_holding(["a", "b"], {"MILK": 2}) == (1, "MILK")
    assert inv.first_holding(["a", "b"], {"MILK": 1}) == (0, None)
    assert inv.first_holding(["a", "b"], {"CAVIAR": 1}) == (-1, "CAVIAR")
    inv.reserve("o1", store="b", stock={"EGGS": 1})
    assert inv.first_holding(["b"], {"EGGS": 1}) == (-1, "EGGS")
    assert inv.holding(["o1", "o2"]) == {"o1"}
