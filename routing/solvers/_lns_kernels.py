"""Compiled kernels of the string-removal search (numba); imported on first use, compiled once and cached.

Nodes are the jobs (0..J-1), then each vehicle's start (J+v) and end (J+V+v). `nd` holds one row per node
attribute (the row constants below). A state is the tuple (next, previous, route of each node, earliest and
latest service start, loads, route sizes, route lateness costs, total cost at index 0).
"""

import math

import numpy as np
from numba import njit

LOC, SERVICE, READY, DUE, RELEASE, DEADLINE, LATE_COST, WAIT_FROM, WAIT_COST = range(9)
NXT, PRV, ROUTE, EARLY, LATE, LOAD, SIZE, LATENESS, COST = range(9)
NEVER = 4 * 10**18
"""A gap no search reaches: places tried before the next skipped one when none is (`_gap`)."""


@njit(cache=True)
def _seed(seed):
    np.random.seed(seed)


@njit(cache=True)
def _update(v, st, n_jobs, n_veh, nd, demand, times, profile):
    """Recompute route `v`'s schedule, load, size and lateness cost; False when a window or the shift breaks."""
    nxt, prv, early, late, load, size, lateness = st[NXT], st[PRV], st[EARLY], st[LATE], st[LOAD], st[SIZE], \
        st[LATENESS]
    p = profile[v]
    start, end = n_jobs + v, n_jobs + n_veh + v
    departure = nd[READY, start]
    for d in range(load.shape[1]):
        load[v, d] = 0
    count = 0
    cur = nxt[start]
    while cur != end:
        for d in range(load.shape[1]):
            load[v, d] += demand[cur, d]
        departure = max(departure, nd[RELEASE, cur])
        count += 1
        cur = nxt[cur]
    size[v] = count
    early[start] = departure
    feasible = True
    cost = 0
    prev, cur = start, nxt[start]
    while True:
        early[cur] = max(nd[READY, cur], early[prev] + nd[SERVICE, prev] + times[p, nd[LOC, prev], nd[LOC, cur]])
        if early[cur] > nd[DUE, cur]:
            feasible = False
        if cur == end:
            break
        if early[cur] > nd[DEADLINE, cur]:
            cost += nd[LATE_COST, cur] * (early[cur] - nd[DEADLINE, cur])
        if early[cur] > nd[WAIT_FROM, cur]:
            cost += nd[WAIT_COST, cur] * (early[cur] - nd[WAIT_FROM, cur])
        prev, cur = cur, nxt[cur]
    lateness[v] = cost
    late[end] = nd[DUE, end]
    cur = end
    while cur != start:
        before = prv[cur]
        late[before] = min(nd[DUE, before], late[cur] - nd[SERVICE, before] - times[p, nd[LOC, before], nd[LOC, cur]])
        cur = before
    return feasible


@njit(cache=True)
def _timed_insertion(v, a, c, st, n_jobs, n_veh, nd, times, profile):
    """Lateness cost of route `v` with job `c` after node `a`, walking the whole route; -1 when infeasible."""
    nxt, early = st[NXT], st[EARLY]
    p = profile[v]
    start, end = n_jobs + v, n_jobs + n_veh + v
    b = nxt[a]
    t = max(early[start], nd[RELEASE, c])
    cost = 0
    prev = start
    node = c if a == start else nxt[start]
    while True:
        begin = max(nd[READY, node], t + times[p, nd[LOC, prev], nd[LOC, node]])
        if begin > nd[DUE, node]:
            return -1
        if node == end:
            return cost
        if begin > nd[DEADLINE, node]:
            cost += nd[LATE_COST, node] * (begin - nd[DEADLINE, node])
        if begin > nd[WAIT_FROM, node]:
            cost += nd[WAIT_COST, node] * (begin - nd[WAIT_FROM, node])
        t = begin + nd[SERVICE, node]
        prev = node
        node = b if node == c else (c if node == a else nxt[node])


@njit(cache=True)
def _route_nodes(v, nxt, n_jobs, n_veh, out):
    count = 0
    cur = nxt[n_jobs + v]
    end = n_jobs + n_veh + v
    while cur != end:
        out[count] = cur
        count += 1
        cur = nxt[cur]
    return count


@njit(cache=True)
def _ruin(st, n_jobs, n_veh, nd, costs, profile, fixed, penalty, neighbours, removed_mean, max_string, scratch,
          touched):
    """Remove strings of jobs from routes near a random job; returns the change of arc, fixed and penalty costs."""
    nxt, prv, route, size = st[NXT], st[PRV], st[ROUTE], st[SIZE]
    loc = nd[LOC]
    assigned = 0
    used = 0
    for v in range(n_veh):
        if size[v] > 0:
            used += 1
            assigned += size[v]
    delta = 0
    if assigned == 0:
        return delta
    string_max = min(float(max_string), assigned / used)
    n_routes = int(np.random.random() * (4.0 * removed_mean / (1.0 + string_max) - 1.0)) + 1
    anchor = np.random.randint(n_jobs)
    while route[anchor] < 0:
        anchor = np.random.randint(n_jobs)
    ruined = 0
    k = -1
    while ruined < n_routes and k < n_jobs - 1:
        c = anchor if k < 0 else neighbours[anchor, k]
        k += 1
        v = route[c]
        if v < 0 or touched[v]:
            continue
        touched[v] = True
        ruined += 1
        count = _route_nodes(v, nxt, n_jobs, n_veh, scratch)
        pos = 0
        while scratch[pos] != c:
            pos += 1
        length = int(np.random.random() * min(float(count), string_max)) + 1
        keep = 0
        if length < count and np.random.random() < 0.5:
            keep = 1
            while length + keep < count and np.random.random() < 0.5:
                keep += 1
        span = length + keep
        lo = max(0, pos - span + 1)
        hi = min(pos, count - span)
        first = lo + int(np.random.random() * (hi - lo + 1))
        kept_from = first + int(np.random.random() * (length + 1)) if keep else -1
        p = profile[v]
        for i in range(first, first + span):
            if keep and kept_from <= i < kept_from + keep:
                continue
            node = scratch[i]
            a, b = prv[node], nxt[node]
            delta += costs[p, loc[a], loc[b]] - costs[p, loc[a], loc[node]] - costs[p, loc[node], loc[b]]
            delta += penalty[node]
            nxt[a] = b
            prv[b] = a
            route[node] = -1
        if span - keep == count:
            delta -= fixed[v] + costs[p, loc[n_jobs + v], loc[n_jobs + n_veh + v]]
    return delta


@njit(cache=True)
def _gap(blink):
    """How many places are tried before the next one skipped at rate `blink`: a geometric draw, so each place is
    skipped with probability `blink` independently of the others, at one random number per skipped place rather than
    one per place tried. At rate 0 no place is skipped and nothing is drawn."""
    if blink <= 0:
        return NEVER
    return int(min(math.log(1.0 - np.random.random()) / math.log1p(-blink), NEVER))


@njit(cache=True)
def _recreate(order, st, touched, n_jobs, n_veh, nd, demand, penalty, allowed, capacity, fixed, profile, vclass,
              times, costs, timed, blink, seen, neighbours, granular, places):
    """Insert each job of `order` at its cheapest feasible place (skipping places at rate `blink`); cost change.

    The places tried are every place of every route, or with `granular` > 0 (at most the columns of `neighbours`)
    only those next to (before or after) the job's first `granular` neighbours that are on a route; in both cases
    the start of one empty vehicle of each class. `places` is scratch room for (route, node after which the job
    goes) pairs."""
    nxt, prv, route, early, late, load, size, lateness = st[NXT], st[PRV], st[ROUTE], st[EARLY], st[LATE], \
        st[LOAD], st[SIZE], st[LATENESS]
    loc = nd[LOC]
    delta = 0
    gap = _gap(blink)
    near = granular > 0
    fits = np.zeros(n_veh, dtype=np.bool_)
    for c in order:
        seen[:] = False
        count = 0
        for v in range(n_veh):
            ok = allowed[c, v]
            for d in range(demand.shape[1]):
                if load[v, d] + demand[c, d] > capacity[v, d]:
                    ok = False
            fits[v] = ok
            if not ok or (near and size[v] > 0):
                continue
            if size[v] == 0:
                if seen[vclass[v]]:
                    continue
                seen[vclass[v]] = True
            a = n_jobs + v
            end = n_jobs + n_veh + v
            while a != end:
                places[count, 0] = v
                places[count, 1] = a
                count += 1
                a = nxt[a]
        if near:
            for i in range(granular):
                x = neighbours[c, i]
                v = route[x]
                if v >= 0 and fits[v]:
                    places[count, 0] = v
                    places[count, 1] = x
                    places[count + 1, 0] = v
                    places[count + 1, 1] = prv[x]
                    count += 2
        best = np.int64(2**62)
        best_a = -1
        best_v = -1
        for i in range(count):
            if gap == 0:  # this place blinks: skip it, and draw how many places until the next one does
                gap = _gap(blink)
                continue
            gap -= 1
            v, a = places[i, 0], places[i, 1]
            b = nxt[a]
            p = profile[v]
            cost = costs[p, loc[a], loc[c]] + costs[p, loc[c], loc[b]] - costs[p, loc[a], loc[b]]
            if size[v] == 0:
                cost += fixed[v] + costs[p, loc[a], loc[b]]
            if cost < best:
                if timed:
                    extra = _timed_insertion(v, a, c, st, n_jobs, n_veh, nd, times, profile)
                    if extra >= 0 and cost + extra - lateness[v] < best:
                        best, best_a, best_v = cost + extra - lateness[v], a, v
                else:
                    begin = max(early[a] + nd[SERVICE, a] + times[p, loc[a], loc[c]], nd[READY, c])
                    if begin <= nd[DUE, c] and begin + nd[SERVICE, c] + times[p, loc[c], loc[b]] <= late[b]:
                        best, best_a, best_v = cost, a, v
        if best_v < 0 or best >= penalty[c]:
            continue
        b = nxt[best_a]
        nxt[best_a] = c
        prv[c] = best_a
        nxt[c] = b
        prv[b] = c
        route[c] = best_v
        delta += best - penalty[c]
        _update(best_v, st, n_jobs, n_veh, nd, demand, times, profile)
        touched[best_v] = True
    return delta


@njit(cache=True)
def _copy(dst, src):
    dst[NXT][:] = src[NXT]
    dst[PRV][:] = src[PRV]
    dst[ROUTE][:] = src[ROUTE]
    dst[EARLY][:] = src[EARLY]
    dst[LATE][:] = src[LATE]
    dst[LOAD][:] = src[LOAD]
    dst[SIZE][:] = src[SIZE]
    dst[LATENESS][:] = src[LATENESS]
    dst[COST][:] = src[COST]


@njit(cache=True)
def _search(steps, temp_from, temp_to, cur, best, n_jobs, n_veh, nd, demand, penalty, allowed, capacity, fixed,
            profile, vclass, times, costs, neighbours, close, timed, removed_mean, max_string, blink, granular):
    """Run `steps` ruin-and-recreate steps from state `cur` under simulated annealing; keep the best in `best`."""
    st = (cur[NXT].copy(), cur[PRV].copy(), cur[ROUTE].copy(), cur[EARLY].copy(), cur[LATE].copy(),
          cur[LOAD].copy(), cur[SIZE].copy(), cur[LATENESS].copy(), cur[COST].copy())
    route, lateness, total = st[ROUTE], st[LATENESS], st[COST]
    loc = nd[LOC]
    touched = np.zeros(n_veh, dtype=np.bool_)
    scratch = np.zeros(n_jobs + 1, dtype=np.int64)
    seen = np.zeros(vclass.max() + 1, dtype=np.bool_)
    pending = np.zeros(n_jobs, dtype=np.int64)
    places = np.zeros((n_jobs + 2 * n_veh + 2 * granular, 2), dtype=np.int64)
    for step in range(steps):
        temperature = temp_from * (temp_to / temp_from) ** (step / steps)
        touched[:] = False
        delta = _ruin(st, n_jobs, n_veh, nd, costs, profile, fixed, penalty, neighbours, removed_mean, max_string,
                      scratch, touched)
        ok = True
        for v in range(n_veh):
            if touched[v]:
                ok &= _update(v, st, n_jobs, n_veh, nd, demand, times, profile)
                delta += lateness[v] - cur[LATENESS][v]
        accept = False
        if ok:
            count = 0
            for c in range(n_jobs):
                if route[c] < 0:
                    pending[count] = c
                    count += 1
            keys = np.empty(count, dtype=np.float64)
            rule = np.random.random()
            for i in range(count):
                c = pending[i]
                if rule < 4 / 11:
                    keys[i] = np.random.random()
                elif rule < 8 / 11:
                    keys[i] = -float(demand[c].sum())
                elif rule < 10 / 11:
                    keys[i] = -float(costs[0, loc[n_jobs], loc[c]])
                else:
                    keys[i] = float(costs[0, loc[n_jobs], loc[c]])
            order = pending[:count][np.argsort(keys, kind="mergesort")]
            delta += _recreate(order, st, touched, n_jobs, n_veh, nd, demand, penalty, allowed, capacity, fixed,
                               profile, vclass, times, costs, timed, blink, seen, close, granular, places)
            total[0] = cur[COST][0] + delta
            accept = total[0] < cur[COST][0] - temperature * math.log(1.0 - np.random.random())
        if accept:
            _copy(cur, st)
            if total[0] < best[COST][0]:
                _copy(best, st)
        else:
            _copy(st, cur)
