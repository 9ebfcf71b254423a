"""Gehring and Homberger's 1000-customer VRPTW instances (VRPLIB form, as in PyVRP/Instances `VRPTW/`).

They are not in `../shared`: point `$LASTMILE_GH_DIR` at a folder of `*.vrp` / `*.sol` pairs (e.g. a clone of
https://github.com/PyVRP/Instances, folder `VRPTW`); without it the suite is skipped with a note. Each instance
is rewritten in Solomon's format (which `lastmile solve` reads) and solved like a Solomon instance; the best
known cost of the `.sol` file follows the DIMACS convention (each arc's length truncated to one decimal), so the
plan's distance is measured the same way for the gap.
"""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import numpy as np

from benchmarks import SHARED

GH_DIR = Path(os.environ.get("LASTMILE_GH_DIR", SHARED / "benchmarks" / "gh"))
DEFAULT = tuple(f"{cls}_10_{k}" for cls in ("C1", "C2", "R1", "R2", "RC1", "RC2") for k in (1, 2))
"""The first two instances of each of the six classes (by default; `--instances` picks others)."""


def _sections(text: str) -> tuple[dict[str, str], dict[str, list[list[str]]]]:
    specs: dict[str, str] = {}
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line == "EOF":
            continue
        if line.endswith("_SECTION"):
            current = sections.setdefault(line, [])
        elif ":" in line and not line[0].isdigit():
            key, _, value = line.partition(":")
            specs[key.strip()] = value.strip()
            current = None
        elif current is not None:
            current.append(line.split())
    return specs, sections


def to_solomon(vrp: Path) -> str:
    """The VRPLIB VRPTW instance `vrp` as Solomon-format text."""
    specs, sections = _sections(vrp.read_text())
    coords = {int(r[0]): (r[1], r[2]) for r in sections["NODE_COORD_SECTION"]}
    demand = {int(r[0]): r[1] for r in sections["DEMAND_SECTION"]}
    windows = {int(r[0]): (r[1], r[2]) for r in sections["TIME_WINDOW_SECTION"]}
    service = ({int(r[0]): r[1] for r in sections["SERVICE_TIME_SECTION"]} if "SERVICE_TIME_SECTION" in sections
               else {i: specs.get("SERVICE_TIME", "0") for i in coords})
    depot = int(sections.get("DEPOT_SECTION", [["1"]])[0][0])
    order = [depot, *sorted(i for i in coords if i != depot)]
    rows = [f"{k} {coords[i][0]} {coords[i][1]} {demand[i] if i != depot else 0} {windows[i][0]} {windows[i][1]} "
            f"{service[i] if i != depot else 0}" for k, i in enumerate(order)]
    return "\n".join([specs.get("NAME", vrp.stem), "VEHICLE", "NUMBER CAPACITY",
                      f"{specs['VEHICLES']} {specs['CAPACITY']}", "CUSTOMER",
                      "CUST NO. XCOORD. YCOORD. DEMAND READY TIME DUE DATE SERVICE TIME", *rows]) + "\n"


def best_known(vrp: Path) -> float:
    for line in vrp.with_suffix(".sol").read_text().splitlines():
        if line.lower().startswith("cost"):
            return float(line.split()[1])
    raise ValueError(f"{vrp.with_suffix('.sol')}: no Cost line")


def dimacs_distance(coords: np.ndarray, routes: list[list[int]]) -> float:
    """Sum over arcs (depot 0) of the Euclidean length truncated to one decimal."""
    total = 0.0
    for route in routes:
        path = [0, *route, 0]
        for a, b in itertools.pairwise(path):
            total += math.floor(10 * float(np.hypot(*(coords[a] - coords[b])))) / 10
    return total
