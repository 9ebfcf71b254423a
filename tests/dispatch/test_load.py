"""PublishedLoad: a store's load from estimates another process published."""

from __future__ import annotations

from dispatch.load import PublishedLoad
from dispatch.model import DarkStore

STORE = DarkStore(id="s1", location=(37.6, 55.8), stock={"MILK": 1}, picking_s=120)
OTHER = DarkStore(id="s2", location=(37.6, 55.8), stock={"MILK": 1}, picking_s=300)


def test_published_estimates_age_but_never_run_backwards() -> None:
    """An estimate holds until `now` passes it; picking is never done before `now` plus the store's picking time."""
    load = PublishedLoad()
    load.update({"s1": [1_000, 1_500]})
    assert load.picking_done_at(STORE, 500) == 1_000 and load.courier_free_at(STORE, 500) == 1_500
    assert load.picking_done_at(STORE, 2_000) == 2_120 and load.courier_free_at(STORE, 2_000) == 2_000


def test_no_courier_and_no_estimate() -> None:
    """A store published with no courier has none; a store never published has an idle picker and courier."""
    load = PublishedLoad()
    load.update({"s1": [0, None]})
    assert load.courier_free_at(STORE, 100) is None
    assert load.picking_done_at(OTHER, 100) == 400 and load.courier_free_at(OTHER, 100) == 100
    assert load.planned_at(STORE, 0, 0, 1, 100) is None
