"""Order promise classes and returns: validation naming the field, and the deadline a DispatchOrder gets."""

from __future__ import annotations

import pytest

from dispatch.errors import InvalidOrderError
from dispatch.model import DAY_S, Item, Order, Promise, deadline

MILK = Item(sku="MILK", qty=1, weight_g=1050, dims_mm=(95, 95, 200))
KETTLE = Item(sku="KETTLE", qty=1, weight_g=1400, dims_mm=(220, 180, 250))
H = 3600


def order(mode: str = "courier", *, placed_at: int = 12 * H, promise: Promise | None = None,
          items: tuple[Item, ...] = (MILK,), returns: tuple[Item, ...] = ()) -> Order:
    return Order(id="o1", location=(37.6, 55.8), mode=mode, items=items,  # type: ignore[arg-type]
                 placed_at=placed_at, promise=promise, returns=returns)


def test_promise_constructors_build_valid_frozen_promises() -> None:
    """express/slot/next_day constructors set exactly the field their kind needs; an Order keeps the promise."""
    assert Promise.express(1800) == Promise(kind="express", within_s=1800)
    assert Promise.slot(18 * H, 19 * H).window == (18 * H, 19 * H)
    assert Promise.next_day() == Promise(kind="next_day")
    assert order(promise=Promise.express(900)).promise == Promise.express(900)
    assert order().promise is None and order().returns == ()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "drone"}, "kind: must be one of"),
    ({"kind": "express"}, "within_s: must be an integer, got None"),
    ({"kind": "express", "within_s": 0}, "within_s: must be positive, got 0"),
    ({"kind": "express", "within_s": 600, "window": (0, 60)}, "window: only a slot promise has one"),
    ({"kind": "slot"}, r"window: must be a \(start, end\) pair"),
    ({"kind": "slot", "window": (19 * H, 18 * H)}, "window: must satisfy 0 <= start < end"),
    ({"kind": "slot", "window": (0, DAY_S + 1)}, "window: must satisfy"),
    ({"kind": "slot", "window": (-1, 60)}, r"window\[0\]: must not be negative"),
    ({"kind": "slot", "window": (0, 60), "within_s": 60}, "within_s: only an express promise has one"),
    ({"kind": "next_day", "within_s": 60}, "within_s: only an express promise has one"),
])
def test_bad_promise_names_the_field(kwargs: dict[str, object], message: str) -> None:
    """Each invalid Promise raises InvalidOrderError whose message starts with the field."""
    with pytest.raises(InvalidOrderError, match=f"^{message}"):
        Promise(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"promise": "express"}, "promise: must be a Promise or None, got str"),
    ({"returns": ("KETTLE",)}, r"returns\[0\]: must be an Item"),
    ({"returns": KETTLE}, "returns: must be a sequence of Item"),
    ({"mode": "pickup_point", "returns": (KETTLE,)}, "returns: a pickup_point order cannot take returns"),
    ({"mode": "locker", "returns": (KETTLE,)}, "returns: a locker order cannot take returns"),
    ({"mode": "return_pickup_point", "returns": (KETTLE,)}, "items: a return_pickup_point order delivers nothing"),
    ({"mode": "return_pickup_point", "items": ()}, "returns: a return_pickup_point order needs at least one"),
])
def test_bad_promise_or_returns_on_an_order_names_the_field(kwargs: dict[str, object], message: str) -> None:
    """An order with a non-Promise promise, bad returns, or returns its mode cannot take names the field."""
    fields: dict[str, object] = {"id": "o1", "location": (37.6, 55.8), "mode": "courier", "items": (MILK,), **kwargs}
    with pytest.raises(InvalidOrderError, match=f"^{message}"):
        Order(**fields)  # type: ignore[arg-type]


def test_returns_are_allowed_at_the_door_the_store_and_a_pickup_point() -> None:
    """Courier and store orders may carry returns; a return_pickup_point order has returns and no items."""
    assert order(returns=[KETTLE]).returns == (KETTLE,)  # type: ignore[arg-type]
    assert order("store", returns=(KETTLE,)).returns == (KETTLE,)
    dropped = order("return_pickup_point", items=(), returns=(KETTLE,))
    assert dropped.is_return and dropped.items == () and not order().is_return


def test_express_deadline_counts_from_placing_the_order() -> None:
    """An express order placed at 12:00 with 30 min is due at 12:30; an explicit placed_at overrides the order's."""
    o = order(promise=Promise.express(1800))
    assert deadline(o) == 12 * H + 1800
    assert deadline(o, 13 * H) == 13 * H + 1800


def test_slot_deadline_is_the_end_of_the_next_slot_not_yet_over() -> None:
    """A slot still ahead (or under way) ends today; one already over ends tomorrow; later days keep their day."""
    evening = Promise.slot(18 * H, 19 * H)
    assert deadline(order(promise=evening)) == 19 * H
    assert deadline(order(promise=evening, placed_at=18 * H + 1800)) == 19 * H
    assert deadline(order(promise=evening, placed_at=20 * H)) == DAY_S + 19 * H
    assert deadline(order(promise=evening, placed_at=3 * DAY_S + 9 * H)) == 3 * DAY_S + 19 * H
    assert deadline(order(promise=Promise.slot(22 * H, DAY_S), placed_at=23 * H)) == DAY_S


def test_next_day_deadline_is_the_end_of_the_following_day() -> None:
    """next_day placed any time on day d is due at the end of day d + 1."""
    assert deadline(order(promise=Promise.next_day(), placed_at=0)) == 2 * DAY_S
    assert deadline(order(promise=Promise.next_day(), placed_at=DAY_S + 23 * H)) == 3 * DAY_S


def test_deadline_needs_a_promise() -> None:
    """Without a promise on the order or passed in, deadline raises naming `promise`; one passed in is used."""
    with pytest.raises(InvalidOrderError, match=r"^promise: order 'o1' has no promise"):
        deadline(order())
    assert deadline(order(), promise=Promise.express(60)) == 12 * H + 60
    with pytest.raises(InvalidOrderError, match=r"^placed_at: must not be negative"):
        deadline(order(promise=Promise.next_day()), -1)
