"""Packaging: the smallest box that fits, several boxes by first-fit decreasing, compartments from boxes."""

from __future__ import annotations

import pytest

from dispatch.errors import InvalidFacilityError, InvalidOrderError
from dispatch.model import Item
from dispatch.packaging import (
    DEFAULT_CATALOGUE,
    Box,
    BoxCatalogue,
    choose_boxes,
    compartments_for,
    first_unboxable,
    largest_compartment,
)


def item(sku: str, dims: tuple[int, int, int], weight_g: int, qty: int = 1) -> Item:
    return Item(sku=sku, qty=qty, weight_g=weight_g, dims_mm=dims)


def names(items: list[Item], catalogue: BoxCatalogue = DEFAULT_CATALOGUE) -> list[str]:
    return [b.name for b in choose_boxes(items, catalogue)]


def test_default_catalogue_is_kept_smallest_first() -> None:
    """The default catalogue lists its boxes by increasing volume, S compartments for the two smallest."""
    volumes = [b.volume_mm3 for b in DEFAULT_CATALOGUE.boxes]
    assert volumes == sorted(volumes) and len(set(volumes)) == len(volumes)
    assert [b.compartment for b in DEFAULT_CATALOGUE.boxes] == ["S", "S", "M", "L"]


def test_smallest_box_that_fits_is_chosen() -> None:
    """A small item goes in the pouch; a 1 l carton (too thick for the pouch) in the next box up."""
    assert names([item("COFFEE", (160, 100, 50), 250)]) == ["pouch"]
    assert names([item("MILK", (95, 95, 200), 1050)]) == ["small"]


def test_items_may_be_turned_to_fit() -> None:
    """An item fits when its sorted dimensions fit the box's sorted dimensions, whatever order they are given in."""
    assert names([item("FLAT", (240, 55, 170), 300)]) == ["pouch"]
    assert names([item("FLAT", (55, 170, 240), 300)]) == ["pouch"]


def test_fill_factor_limits_several_units_in_one_box() -> None:
    """Two 0.8 l packs share a pouch (2.7 l, 80 % fill = 2.16 l) but three need the next box."""
    assert names([item("COFFEE", (160, 100, 50), 250, qty=2)]) == ["pouch"]
    assert names([item("COFFEE", (160, 100, 50), 250, qty=3)]) == ["small"]


def test_weight_limit_moves_to_a_stronger_box() -> None:
    """A heavy item small enough for the pouch goes in a box whose weight limit carries it."""
    assert names([item("DUMBBELL", (100, 100, 50), 3000)]) == ["small"]


def test_too_much_for_one_box_is_split_first_fit_decreasing() -> None:
    """Nine pillows (18 l each) fill two large boxes with four each; the ninth alone shrinks to a medium box."""
    boxes = choose_boxes([item("PILLOW", (400, 300, 150), 2000, qty=9)])
    assert [b.name for b in boxes] == ["large", "large", "medium"]
    assert compartments_for(boxes) == ("L", "L", "M") and largest_compartment(boxes) == "L"


def test_weight_alone_can_force_a_split() -> None:
    """Three 15 kg packs fit one large box by volume but not by its 25 kg limit, so each gets its own box."""
    boxes = choose_boxes([item("WATER-6", (300, 200, 250), 15_000, qty=3)])
    assert [b.name for b in boxes] == ["large"] * 3


def test_mixed_order_packs_big_items_first_and_fills_gaps() -> None:
    """Small items travel in a box already opened for bigger ones rather than in a box of their own."""
    items = [item("COFFEE", (160, 100, 50), 250, qty=2), item("PILLOW", (400, 300, 150), 2000, qty=5)]
    assert names(items) == ["large", "medium"]
    assert names(items[:1]) == ["pouch"]


def test_item_fitting_no_box_raises_naming_it() -> None:
    """An item too big or too heavy for every box raises InvalidOrderError naming items[i] and its SKU."""
    tv = item("TV-65", (1500, 900, 150), 22_000)
    anvil = item("ANVIL", (200, 200, 200), 40_000)
    with pytest.raises(InvalidOrderError, match=r"^items\[1\]: TV-65 \(1500×900×150 mm, 22000 g\) fits no box"):
        choose_boxes([item("COFFEE", (160, 100, 50), 250), tv])
    with pytest.raises(InvalidOrderError, match=r"^items\[0\]: ANVIL"):
        choose_boxes([anvil])
    assert first_unboxable([item("COFFEE", (160, 100, 50), 250), anvil, tv]) == 1


def test_custom_catalogue_order_does_not_matter() -> None:
    """A custom catalogue is sorted smallest first, so the same box is chosen whatever order it is listed in."""
    envelope = Box(name="envelope", inner_dims_mm=(300, 220, 20), max_weight_g=500, compartment="S")
    crate = Box(name="crate", inner_dims_mm=(500, 500, 500), max_weight_g=30_000, compartment="L")
    for boxes in ((envelope, crate), (crate, envelope)):
        catalogue = BoxCatalogue(boxes=boxes, fill_factor=1.0)
        assert names([item("CARD", (210, 148, 5), 20)], catalogue) == ["envelope"]
        assert names([item("CARD", (210, 148, 5), 20), item("MUG", (120, 90, 100), 350)], catalogue) == ["crate"]


@pytest.mark.parametrize(("make", "message"), [
    (lambda: BoxCatalogue(boxes=()), "^boxes: a catalogue needs at least one box"),
    (lambda: BoxCatalogue(boxes=DEFAULT_CATALOGUE.boxes[:1] * 2), r"^boxes\[1\]\.name: duplicate box name 'pouch'"),
    (lambda: BoxCatalogue(boxes=DEFAULT_CATALOGUE.boxes, fill_factor=0.0), r"^fill_factor: must be in \(0, 1\]"),
    (lambda: Box(name="b", inner_dims_mm=(1, 2, 3), max_weight_g=1, compartment="XL"),  # type: ignore[arg-type]
     "^compartment: must be one"),
    (lambda: Box(name="b", inner_dims_mm=(1, 0, 3), max_weight_g=1, compartment="S"), r"^inner_dims_mm\[1\]"),
])
def test_bad_catalogue_names_the_field(make: object, message: str) -> None:
    """Invalid boxes and catalogues raise InvalidFacilityError naming the field."""
    with pytest.raises(InvalidFacilityError, match=message):
        make()  # type: ignore[operator]
