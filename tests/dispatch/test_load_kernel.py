"""The compiled first-come-first-served courier queue agrees with a plain heapq replay of the same queue."""

from __future__ import annotations

import heapq

import numpy as np

from dispatch._load_kernel import NONE, first_free


def reference(free_t, rank, shift_end, profile, round_trip, ready, service, handoff) -> int:
    free = [(int(t), int(r), c) for c, (t, r) in enumerate(zip(free_t, rank, strict=True))]
    heapq.heapify(free)
    for k in range(len(ready)):
        if not free:
            return NONE
        t, r, c = free[0]
        rt = int(round_trip[profile[c], k])
        if rt < 0:
            continue
        t = max(t, int(ready[k])) + rt + int(service[k]) + handoff
        if t < shift_end[c]:
            heapq.heapreplace(free, (t, r, c))
        else:
            heapq.heappop(free)
    return free[0][0] if free else NONE


def test_kernel_matches_a_heapq_replay_on_random_queues() -> None:
    """300 random stores (ties in free times, unreachable orders, shifts ending mid-queue): same first-free time."""
    rng = np.random.default_rng(4)
    ended_early = 0
    for _ in range(300):
        m, n, p = int(rng.integers(1, 8)), int(rng.integers(0, 40)), int(rng.integers(1, 3))
        free_t = rng.integers(0, 5, size=m) * 300
        rank = rng.permutation(m).astype(np.int64)
        shift_end = rng.integers(1_000, 20_000, size=m)
        profile = rng.integers(0, p, size=m)
        round_trip = rng.integers(200, 2_000, size=(p, n))
        round_trip[rng.random((p, n)) < 0.05] = -1
        ready = np.sort(rng.integers(0, 3_000, size=n))
        service = rng.integers(0, 200, size=n)
        want = reference(free_t, rank, shift_end, profile, round_trip, ready, service, 60)
        got = first_free(free_t, rank, shift_end, profile, round_trip, ready, service, 60)
        assert got == want
        ended_early += want == NONE
    assert 0 < ended_early < 300
