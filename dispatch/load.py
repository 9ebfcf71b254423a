"""The live load of a dark store, as allocation and quoting see it: when picking and a courier would be done."""

from __future__ import annotations

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

