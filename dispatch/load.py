"""The live load of a dark store, as allocation and quoting see it: when picking and a courier would be done."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from dispatch.model import DarkStore


class StoreLoad(Protocol):
    """What the allocator and the quoter need from the live side of a store (estimates at `now`, absolute s)."""

    def picking_done_at(self, store: DarkStore, now: int) -> int:
        """When an order placed at `store` now would be picked (behind the orders already queued)."""
        ...

    def courier_free_at(self, store: DarkStore, now: int) -> int | None:
        """When a courier would be free at `store` to leave with a new order (behind the orders already waiting
        for one), or None when no courier is on shift there."""
        ...

    def planned_at(self, store: DarkStore, node: int, ready_at: int, boxes: int, now: int) -> int | None:
        """When the store's dispatcher would plan to hand over an order placed now for road node `node`, ready
        at `ready_at`, of `boxes` boxes (a dry run of its policy: nothing changes), or None when the policy makes
        no plan for it (greedy and batch plan only orders ready by their next tick) or the store has none."""
        ...



class PublishedLoad:
    """A `StoreLoad` from estimates another process published (`Operations.load_estimates`): per store id, when an
    order placed at the time of publishing would be picked and when a courier would be free (None: none on
    shift). Asked later, an estimate is never earlier than `now` plus the store's picking time; a store without
    one has an idle picker and an idle courier. It makes no plans."""

    def __init__(self) -> None:
        self.estimates: dict[str, tuple[int, int | None]] = {}

    def update(self, estimates: Mapping[str, Sequence[int | None]]) -> None:
        """Take newly published estimates ({store: [picking_done_at, courier_free_at]})."""
        out: dict[str, tuple[int, int | None]] = {}
        for store, pair in estimates.items():
            picking, free = pair
            out[str(store)] = (int(picking or 0), None if free is None else int(free))
        self.estimates = out

    def picking_done_at(self, store: DarkStore, now: int) -> int:
        picking = self.estimates.get(store.id, (0, 0))[0]
        return max(now + store.picking_s, picking)

    def courier_free_at(self, store: DarkStore, now: int) -> int | None:
        free = self.estimates.get(store.id, (0, 0))[1]
        return None if free is None else max(now, free)

    def planned_at(self, store: DarkStore, node: int, ready_at: int, boxes: int, now: int) -> int | None:
        return None
