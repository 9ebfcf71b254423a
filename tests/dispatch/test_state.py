"""The dispatch data types' own checks: a decision accounts for each order once."""

from __future__ import annotations

import pytest

from dispatch.errors import InvalidDispatchError
from dispatch.state import NOT_READY, Decisions, Trip, unassigned


def trip(courier: str, *orders: str) -> Trip:
    n = len(orders)
    return Trip(courier_id=courier, profile="bike", order_ids=orders, etas=(60,) * n, lateness_s=(0,) * n,
                dispatch_at=0, departure=0, end_at=120, ends_at_store=True, distance_m=500, co2_g=0.0)


@pytest.mark.parametrize(("kwargs", "field", "culprit"), [
    ({"trips": (trip("c1", "a"),), "tentative": (trip("c2", "b", "a"),)}, "decisions", "'a' is planned twice"),
    ({"trips": (trip("c1", "a", "b"),), "unassigned": (unassigned("c", NOT_READY), unassigned("b", "x"))},
     "decisions", "'b' is both planned and unassigned"),
    ({"carried": (trip("c1", "a"),), "unassigned": (unassigned("c", NOT_READY), unassigned("c", "held"))},
     "decisions.unassigned", "'c' is listed twice"),
])
def test_a_decision_naming_an_order_twice_is_refused_with_the_order_named(
        kwargs: dict[str, object], field: str, culprit: str) -> None:
    """Decisions that plan an order twice, plan and leave it, or leave it twice raise, naming the order."""
    with pytest.raises(InvalidDispatchError) as e:
        Decisions(now=0, policy="test", **kwargs)  # type: ignore[arg-type]
    assert e.value.field == field and culprit in str(e.value)


def test_a_decision_with_thousands_waiting_accounts_for_each_once() -> None:
    """A decision with many orders left waiting and a few planned is accepted and keeps them all, in order."""
    waiting = tuple(unassigned(f"w{k}", NOT_READY) for k in range(5000))
    d = Decisions(now=0, policy="test", trips=(trip("c1", "a", "b"),), carried=(trip("c2", "c"),),
                  unassigned=waiting)
    assert d.unassigned == waiting and [t.order_ids for t in d.all_trips] == [("c",), ("a", "b")]


def test_trusted_decisions_equal_checked_ones_and_still_check_their_trips() -> None:
    """`Decisions.trusted` makes what the constructor makes from the same parts, and refuses a trip planned
    twice or a courier starting two trips as the constructor does (only the unassigned go unchecked)."""
    parts = {"now": 5, "policy": "batch", "trips": (trip("c1", "a"),), "carried": (trip("c2", "b"),),
             "unassigned": (unassigned("c", NOT_READY),)}
    assert Decisions.trusted(**parts) == Decisions(**parts)  # type: ignore[arg-type]
    with pytest.raises(InvalidDispatchError, match="'a' is planned twice"):
        Decisions.trusted(now=0, policy="batch", trips=(trip("c1", "a"),), tentative=(trip("c3", "a"),))
    with pytest.raises(InvalidDispatchError, match="at most one trip"):
        Decisions.trusted(now=0, policy="batch", trips=(trip("c1", "a"), trip("c1", "b")))
