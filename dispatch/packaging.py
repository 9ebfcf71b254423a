"""Boxes for an order: a configurable catalogue, the smallest box that fits, first-fit decreasing when it does not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dispatch.errors import InvalidFacilityError, InvalidOrderError
from dispatch.model import COMPARTMENT_SIZES, CompartmentSize, Item, check_id, check_int


@dataclass(frozen=True, slots=True, kw_only=True)
class Box:
    """A box type: inner dimensions, the weight it may carry and the locker compartment size it needs."""

    name: str
    inner_dims_mm: tuple[int, int, int]
    max_weight_g: int
    compartment: CompartmentSize

    def __post_init__(self) -> None:
        check_id(InvalidFacilityError, "name", self.name)
        dims = tuple(self.inner_dims_mm)
        if len(dims) != 3:
            raise InvalidFacilityError("inner_dims_mm", f"must be three integers, got {list(dims)}")
        checked = tuple(
            check_int(InvalidFacilityError, f"inner_dims_mm[{i}]", d, minimum=1) for i, d in enumerate(dims)
        )
        object.__setattr__(self, "inner_dims_mm", checked)
        check_int(InvalidFacilityError, "max_weight_g", self.max_weight_g, minimum=1)
        if self.compartment not in COMPARTMENT_SIZES:
            raise InvalidFacilityError(
                "compartment", f"must be one of {list(COMPARTMENT_SIZES)}, got {self.compartment!r}"
            )

    @property
    def volume_mm3(self) -> int:
        a, b, c = self.inner_dims_mm
        return a * b * c

    @property
    def sorted_dims(self) -> tuple[int, ...]:
        return tuple(sorted(self.inner_dims_mm))


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxCatalogue:
    """The boxes a store packs into, kept smallest first, and how full (by volume) several units may fill one.

    One unit alone fits a box when its sorted dimensions fit the box's sorted dimensions; several units
    together must also keep their summed volume within `fill_factor` of the box volume.
    """

    boxes: tuple[Box, ...]
    fill_factor: float = 0.8

    def __post_init__(self) -> None:
        boxes = tuple(self.boxes)
        if not boxes:
            raise InvalidFacilityError("boxes", "a catalogue needs at least one box")
        names: set[str] = set()
        for i, box in enumerate(boxes):
            if not isinstance(box, Box):
                raise InvalidFacilityError(f"boxes[{i}]", f"must be a Box, got {type(box).__name__}")
            if box.name in names:
                raise InvalidFacilityError(f"boxes[{i}].name", f"duplicate box name {box.name!r}")
            names.add(box.name)
        if not 0.0 < self.fill_factor <= 1.0:
            raise InvalidFacilityError("fill_factor", f"must be in (0, 1], got {self.fill_factor!r}")
        ordered = sorted(boxes, key=lambda b: (b.volume_mm3, b.max_weight_g, b.name))
        object.__setattr__(self, "boxes", tuple(ordered))

    def named(self, name: str) -> Box:
        """The box called `name`; raises InvalidOrderError naming `boxes` when the catalogue has none."""
        for box in self.boxes:
            if box.name == name:
                return box
        raise InvalidOrderError("boxes", f"no box {name!r} in the catalogue ({[b.name for b in self.boxes]})")


DEFAULT_CATALOGUE = BoxCatalogue(
    boxes=(
        Box(name="pouch", inner_dims_mm=(250, 180, 60), max_weight_g=2_000, compartment="S"),
        Box(name="small", inner_dims_mm=(350, 250, 100), max_weight_g=5_000, compartment="S"),
        Box(name="medium", inner_dims_mm=(450, 350, 200), max_weight_g=12_000, compartment="M"),
        Box(name="large", inner_dims_mm=(600, 400, 400), max_weight_g=25_000, compartment="L"),
    ),
)


@dataclass(slots=True)
class _Unit:
    item: int
    sorted_dims: tuple[int, ...]
    volume_mm3: int
    weight_g: int


@dataclass(slots=True)
class _Bin:
    box: Box
    units: list[_Unit] = field(default_factory=list)


def _fits(box: Box, units: Sequence[_Unit], fill_factor: float) -> bool:
    if sum(u.weight_g for u in units) > box.max_weight_g:
        return False
    dims = box.sorted_dims
    if any(any(u > b for u, b in zip(unit.sorted_dims, dims, strict=True)) for unit in units):
        return False
    return len(units) <= 1 or sum(u.volume_mm3 for u in units) <= fill_factor * box.volume_mm3


def _smallest_fitting(units: Sequence[_Unit], catalogue: BoxCatalogue) -> Box | None:
    return next((box for box in catalogue.boxes if _fits(box, units, catalogue.fill_factor)), None)


def _unit(index: int, item: Item) -> _Unit:
    return _Unit(item=index, sorted_dims=tuple(sorted(item.dims_mm)), volume_mm3=item.volume_mm3,
                 weight_g=item.weight_g)


def first_unboxable(items: Sequence[Item], catalogue: BoxCatalogue = DEFAULT_CATALOGUE) -> int | None:
    """The index of the first item whose unit fits no box of the catalogue (too big or too heavy), or None."""
    return next(
        (i for i, item in enumerate(items) if _smallest_fitting([_unit(i, item)], catalogue) is None), None
    )


def choose_boxes(items: Sequence[Item], catalogue: BoxCatalogue = DEFAULT_CATALOGUE) -> tuple[Box, ...]:
    """The boxes an order is packed into, largest first: one box (the smallest that holds everything) when
    possible, else first-fit decreasing by unit volume, each box then shrunk to the smallest that holds its units.

    Raises InvalidOrderError naming `items[i]` when a unit fits no box of the catalogue at all.
    """
    bad = first_unboxable(items, catalogue)
    if bad is not None:
        item, biggest = items[bad], catalogue.boxes[-1]
        raise InvalidOrderError(
            f"items[{bad}]",
            f"{item.sku} ({'×'.join(map(str, item.dims_mm))} mm, {item.weight_g} g) fits no box of the catalogue "
            f"(largest: {biggest.name}, {'×'.join(map(str, biggest.inner_dims_mm))} mm, {biggest.max_weight_g} g)",
        )
    units = [unit for i, item in enumerate(items) for unit in [_unit(i, item)] * item.qty]
    if not units:
        return ()
    single = _smallest_fitting(units, catalogue)
    if single is not None:
        return (single,)
    bins: list[_Bin] = []
    for unit in sorted(units, key=lambda u: (-u.volume_mm3, -u.weight_g, u.item)):
        target = next((b for b in bins if _fits(b.box, [*b.units, unit], catalogue.fill_factor)), None)
        if target is None:
            roomiest = max(
                (box for box in catalogue.boxes if _fits(box, [unit], catalogue.fill_factor)),
                key=lambda box: (box.volume_mm3, box.max_weight_g),
            )
            target = _Bin(box=roomiest)
            bins.append(target)
        target.units.append(unit)
    boxes = [_smallest_fitting(b.units, catalogue) or b.box for b in bins]
    return tuple(sorted(boxes, key=lambda box: (-box.volume_mm3, -box.max_weight_g, box.name)))


def compartments_for(boxes: Sequence[Box]) -> tuple[CompartmentSize, ...]:
    """The locker compartment each box needs (one compartment per box), largest first."""
    return tuple(sorted((box.compartment for box in boxes), key=COMPARTMENT_SIZES.index, reverse=True))


def largest_compartment(boxes: Sequence[Box]) -> CompartmentSize | None:
    """The largest compartment size the boxes need, or None for no boxes."""
    needed = compartments_for(boxes)
    return needed[0] if needed else None


LOAD_DIMENSIONS = ("boxes", "weight_g", "volume_ml")
"""What `order_load` measures, in order: a courier's `capacity` over the same dimensions limits all three."""


def order_load(items: Sequence[Item], boxes: Sequence[Box | str],
               catalogue: BoxCatalogue = DEFAULT_CATALOGUE) -> tuple[int, int, int]:
    """An order's courier load (boxes, weight_g, volume_ml) from the boxes it was packed into (`choose_boxes`,
    or the names an Allocation lists, looked up in `catalogue`): the number of boxes, the items' total weight
    and the boxes' total volume (inner dimensions, millilitres rounded up). Use it as `DispatchOrder.load`.
    """
    chosen = [catalogue.named(b) if isinstance(b, str) else b for b in boxes]
    for i, box in enumerate(chosen):
        if not isinstance(box, Box):
            raise InvalidOrderError(f"boxes[{i}]", f"must be a Box or a box name, got {type(box).__name__}")
    for i, item in enumerate(items):
        if not isinstance(item, Item):
            raise InvalidOrderError(f"items[{i}]", f"must be an Item, got {type(item).__name__}")
    weight = sum(item.weight_g * item.qty for item in items)
    volume_mm3 = sum(box.volume_mm3 for box in chosen)
    return len(chosen), weight, -(-volume_mm3 // 1000)
