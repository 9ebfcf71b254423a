"""A store's live places: road nodes that get a location index when they appear, and the matrices over them.

`LivePlaces` wraps a `routing.oracle.PlacePool`: `place(node)` gives the location index of a road node (an
order's door, a facility, a courier's reported position), computing its travel rows then; indices that no
open order or courier of the store refers to any more are recycled when room is needed. `matrices()` is the
`TravelMatrices` the dispatcher and its policies read, over the pool's current hour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dispatch.state import TravelMatrices
from routing.oracle import PlacePool


class LivePlaces:
    """Location indices of one store's live places and the `TravelMatrices` over them (see the module doc)."""

    def __init__(self, pool: PlacePool) -> None:
        self.pool = pool
        self._matrices: TravelMatrices | None = None
        self._version = -1

    def bind(self, referenced: Callable[[], Iterable[int]]) -> None:
        """Tell the pool how to find the indices still referred to, when it needs room."""
        self.pool.collect = referenced

    def place(self, node: int) -> int:
        """The location index of road node `node` (new places get their travel rows now)."""
        return self.pool.place(node)

    def node(self, index: int) -> int:
        return self.pool.node(index)

    def set_hour(self, hour: int | None) -> None:
        self.pool.set_hour(hour)

    def matrices(self) -> TravelMatrices:
        """Durations and distances over the pool's slots, per profile (shared with the pool, read-only)."""
        if self._matrices is None or self._version != self.pool.version:
            p = self.pool
            self._matrices = TravelMatrices(durations={k: p.durations(k) for k in p.profiles},
                                            distances={k: p.distances(k) for k in p.profiles})
            self._version = p.version
        return self._matrices
