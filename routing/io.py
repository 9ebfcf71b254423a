"""Readers of benchmark and foreign instance files (Solomon, VRPLIB, VROOM-shaped JSON) into Problems.

Every problem with a file raises `InvalidProblemError` as one line naming the file and the field (and the line of
a text format), e.g. `c101.txt: line 12, DEMAND: must be an integer, got 'nan'`. The numbers a file may give are
bounded so that the solvers' integer arithmetic cannot overflow: times, amounts and costs up to `MAX_VALUE`,
matrix entries up to `UNREACHABLE`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routing import vroom
from routing.errors import InvalidProblemError
from routing.problem import HORIZON, UNREACHABLE, Job, Plan, Problem, Stop, TimeWindow, Vehicle, Visit

SOLOMON_SCALE = 1000
"""Solomon times and distances are multiplied by this and travel times rounded up, so no route is late."""

MAX_VALUE = HORIZON
"""The largest time, amount, capacity or cost a file may give."""

MAX_COORDINATE = 1e7
"""The largest absolute coordinate of a Solomon or VRPLIB node."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Instance:
    """A problem read from a file, with the file's own names for its jobs and its own distance rule."""

    name: str
    problem: Problem
    job_labels: tuple[str | int, ...]
    exact_distance: Callable[[Plan], float]
    job_kinds: tuple[str, ...] = ()
    """What each problem job is in the file when not a plain job: `pickup` or `delivery` (a VROOM shipment step
    that a vehicle has executed); empty when every job is a job."""
    shipment_labels: tuple[tuple[str | int, str | int], ...] = ()
    """The file's ids of each problem shipment's pickup and delivery (VROOM documents)."""

    def stop_label(self, visit: Visit) -> str | int | dict[str, str | int]:
        """A route's stop as the file names it: a job by its label, a shipment's pickup or delivery as
        `{"pickup": id}` or `{"delivery": id}`."""
        if visit.kind == "job":
            kind = self.job_kinds[visit.index] if self.job_kinds else "job"
            label = self.job_labels[visit.index]
            return label if kind == "job" else {kind: label}
        return {visit.kind: self.shipment_labels[visit.index][0 if visit.kind == "pickup" else 1]}


def _bad(message: str) -> InvalidProblemError:
    """An error about the file being read; `_naming` puts the file in front."""
    return InvalidProblemError(message)


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Put the file in front of every InvalidProblemError raised inside, from the reader or from `Problem`."""
    try:
        yield
    except InvalidProblemError as exc:
        raise InvalidProblemError(f"{path}: {exc}") from None


def _text(path: Path) -> str:
    """The file as UTF-8 text (a leading byte-order mark is dropped)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _bad("no such file") from None
    except IsADirectoryError:
        raise _bad("is a folder, not an instance file") from None
    except OSError as exc:
        raise _bad(f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _bad(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    if "\x00" in text:
        raise _bad("not a text file (it holds NUL bytes)")
    return text


def read_instance(path: str | Path) -> Instance:
    """Read a Solomon `.txt`, VRPLIB `.vrp` or VROOM-shaped `.json` instance."""
    path = Path(path)
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        if not path.exists():
            raise _bad(f"{path}: no such file")
        raise _bad(f"{path}: unknown format {suffix or '(no suffix)'!r}, "
                                  "expected a Solomon .txt, VRPLIB .vrp or VROOM-shaped .json file")
    return reader(path)


# --- numbers of text formats -----------------------------------------------------------------------------------

def _integer(text: str, where: str, *, minimum: int = 0, maximum: int = MAX_VALUE) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _bad(f"{where}: must be an integer, got {text!r}") from None
    if not minimum <= value <= maximum:
        raise _bad(f"{where}: must lie in [{minimum}, {maximum}], got {text}")
    return value


def _coordinate(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(f"{where}: must be a number, got {text!r}") from None
    if not (math.isfinite(value) and abs(value) <= MAX_COORDINATE):
        raise _bad(f"{where}: must be a finite number of at most {MAX_COORDINATE:g} in size, got {text!r}")
    return value


def _euclidean(coords: np.ndarray) -> np.ndarray:
    diff = coords[:, None, :] - coords[None, :, :]
    return np.sqrt((diff**2).sum(axis=-1))


def _matrix(arcs: np.ndarray, what: str) -> np.ndarray:
    """`arcs` rounded to the integer matrix of a Problem; an arc too long for it is an error."""
    ints = np.rint(arcs)
    if ints.size and ints.max() >= UNREACHABLE:
        raise _bad(f"{what}: an arc of {ints.max():.0f} does not fit the solvers' range (below {UNREACHABLE})")
    return ints.astype(np.int64)


def _useful(fleet: int, customers: int) -> int:
    """A fleet of identical vehicles cut to one per customer: a vehicle that is used serves at least one, so the
    others change nothing but the solvers' work (a file asking for 10**9 vehicles is solved as quickly)."""
    return max(1, min(fleet, customers))


def _plan_distance(euclid: np.ndarray, problem: Problem, plan: Plan) -> float:
    total = 0.0
    for route in plan.routes:
        v = problem.vehicles[route.vehicle]
        path = [v.start]
        for x in route.visits:
            if x.kind != "break":
                path.append(v.reload_location if x.kind == "reload" else problem.jobs[x.index].stop.location)
        path.append(v.end_location)
        total += float(sum(euclid[a, b] for a, b in itertools.pairwise(path)))
    return total


# --- Solomon ---------------------------------------------------------------------------------------------------

SOLOMON_COLUMNS = ("CUST NO.", "XCOORD.", "YCOORD.", "DEMAND", "READY TIME", "DUE DATE", "SERVICE TIME")


def _lines(text: str) -> list[tuple[int, str]]:
    """(line number, stripped text) of the lines that are not blank."""
    return [(k, s) for k, line in enumerate(text.split("\n"), 1) if (s := line.strip())]


def read_solomon(path: str | Path) -> Instance:
    """A Solomon VRPTW instance: name, `VEHICLE` / `NUMBER CAPACITY`, `CUSTOMER` and one row per customer,
    the depot first (customer 0). Times and distances are scaled by `SOLOMON_SCALE`."""
    path = Path(path)
    with _naming(path):
        return _solomon(path, _text(path))


def _solomon(path: Path, text: str) -> Instance:
    lines = _lines(text)

    def expect(k: int, words: tuple[str, ...], what: str) -> None:
        if len(lines) <= k or not all(w in lines[k][1].upper() for w in words):
            at = f"line {lines[k][0]}" if k < len(lines) else "end of file"
            raise _bad(f"{at}: expected the {what} of a Solomon file")

    if not lines:
        raise _bad("empty file; expected a Solomon instance")
    name = lines[0][1]
    expect(1, ("VEHICLE",), "VEHICLE heading")
    expect(2, ("NUMBER", "CAPACITY"), "NUMBER CAPACITY heading")
    if len(lines) <= 3 or len(lines[3][1].split()) != 2:
        raise _bad(f"line {lines[3][0] if len(lines) > 3 else 'end'}: expected the vehicle NUMBER and CAPACITY")
    line, (number, capacity) = lines[3][0], lines[3][1].split()
    fleet = _integer(number, f"line {line}, NUMBER", minimum=1)
    capacity_value = _integer(capacity, f"line {line}, CAPACITY")
    expect(4, ("CUSTOMER",), "CUSTOMER heading")
    expect(5, ("CUST", "XCOORD", "YCOORD", "DEMAND", "READY", "DUE", "SERVICE"), "column headings")
    rows = lines[6:]
    if not rows:
        raise _bad("no customer rows; expected the depot (customer 0) and the customers")
    coords = np.empty((len(rows), 2))
    values = np.empty((len(rows), 4), dtype=np.int64)  # demand, ready, due, service
    for i, (line, row) in enumerate(rows):
        cells = row.split()
        if len(cells) != len(SOLOMON_COLUMNS):
            raise _bad(f"line {line}: expected {len(SOLOMON_COLUMNS)} numbers ({', '.join(SOLOMON_COLUMNS)}), "
                       f"got {len(cells)}")
        if _integer(cells[0], f"line {line}, CUST NO.", maximum=len(rows)) != i:
            raise _bad(f"line {line}, CUST NO.: customers must be numbered 0, 1, 2, ... in order, got {cells[0]}")
        for c in (1, 2):  # integers, like every Solomon value: a decimal is refused naming the column
            coords[i, c - 1] = _integer(cells[c], f"line {line}, {SOLOMON_COLUMNS[c]}",
                                        minimum=-int(MAX_COORDINATE), maximum=int(MAX_COORDINATE))
        values[i, 0] = _integer(cells[3], f"line {line}, DEMAND", minimum=-MAX_VALUE)
        for c in range(4, 7):
            values[i, c - 3] = _integer(cells[c], f"line {line}, {SOLOMON_COLUMNS[c]}",
                                        maximum=MAX_VALUE // SOLOMON_SCALE)
        if values[i, 0] < 0:
            raise _bad(f"customer {i}: demand must not be negative, got {values[i, 0]}")
        if values[i, 2] < values[i, 1]:
            raise _bad(f"customer {i}: time window closes at {values[i, 2]} before it opens at {values[i, 1]}")
    n = len(rows)
    euclid = _euclidean(coords)
    s = SOLOMON_SCALE
    durations = _matrix(np.ceil(euclid * s - 1e-9), "XCOORD./YCOORD.")
    distances = _matrix(euclid * s, "XCOORD./YCOORD.")
    demand, ready, due, service = (values[:, c] for c in range(4))
    jobs = tuple(
        Job(id=str(i), stop=Stop(location=i, service=int(service[i]) * s,
                                 time_windows=(TimeWindow(start=int(ready[i]) * s, end=int(due[i]) * s),)),
            delivery=(int(demand[i]),))
        for i in range(1, n)
    )
    shift = TimeWindow(start=int(ready[0]) * s, end=int(due[0]) * s)
    vehicles = tuple(Vehicle(id=f"v{k}", start=0, shift=shift, capacity=(capacity_value,))
                     for k in range(_useful(fleet, n - 1)))
    problem = Problem(durations={"car": durations}, distances={"car": distances}, jobs=jobs, vehicles=vehicles)
    return Instance(name=name, problem=problem, job_labels=tuple(range(1, n)),
                    exact_distance=lambda plan: _plan_distance(euclid, problem, plan))


# --- VRPLIB ----------------------------------------------------------------------------------------------------

EDGE_WEIGHT_TYPES = ("EUC_2D", "EXACT_2D", "EXPLICIT")
EDGE_WEIGHT_FORMATS = ("FULL_MATRIX", "LOWER_ROW")


@dataclass(frozen=True, slots=True)
class _Section:
    name: str
    line: int
    rows: list[tuple[int, list[str]]]


def _vrplib_parts(text: str) -> tuple[dict[str, tuple[int, str]], dict[str, _Section]]:
    """The `KEY : VALUE` specifications and the `NAME_SECTION`s of a VRPLIB file, up to `EOF`."""
    specs: dict[str, tuple[int, str]] = {}
    sections: dict[str, _Section] = {}
    current: _Section | None = None
    for line, row in _lines(text):
        if row.startswith("#"):
            continue
        if row == "EOF":
            break
        head = row.split()[0].rstrip(":").upper()
        if head.endswith("_SECTION"):
            name = head.removesuffix("_SECTION")
            if name in sections:
                raise _bad(f"line {line}: {head} appears twice")
            current = sections[name] = _Section(name, line, [])
        elif ":" in row and current is None:
            key, value = (part.strip() for part in row.split(":", 1))
            specs[key.upper()] = (line, value)
        elif current is not None:
            current.rows.append((line, row.split()))
        else:
            raise _bad(f"line {line}: expected `KEY : VALUE` or a NAME_SECTION heading, got {row[:40]!r}")
    return specs, sections


def _spec_integer(specs: dict[str, tuple[int, str]], key: str, *, minimum: int, maximum: int) -> int | None:
    if key not in specs:
        return None
    line, value = specs[key]
    return _integer(value, f"line {line}, {key}", minimum=minimum, maximum=maximum)


def _indexed(section: _Section, n: int, width: int) -> list[tuple[int, list[str]]]:
    """The rows of a node section, `index value...` for nodes 1..n in order, as (line, values)."""
    if len(section.rows) != n:
        raise _bad(f"line {section.line}, {section.name}_SECTION: expected {n} rows (DIMENSION), "
                   f"got {len(section.rows)}")
    out = []
    for k, (line, cells) in enumerate(section.rows, 1):
        where = f"line {line}, {section.name}_SECTION"
        if len(cells) != width + 1:
            raise _bad(f"{where}: expected a node number and {width} value{'s' if width > 1 else ''}, "
                       f"got {len(cells)} fields")
        if _integer(cells[0], where, minimum=1, maximum=n) != k:
            raise _bad(f"{where}: nodes must be numbered 1, 2, 3, ... in order, got {cells[0]}")
        out.append((line, cells[1:]))
    return out


def _edge_weights(section: _Section, n: int, fmt: str) -> np.ndarray:
    values = [_coordinate(cell, f"line {line}, EDGE_WEIGHT_SECTION") for line, cells in section.rows for cell in cells]
    if any(v < 0 for v in values):
        raise _bad(f"line {section.line}, EDGE_WEIGHT_SECTION: weights must not be negative")
    if fmt == "FULL_MATRIX":
        if len(values) != n * n:
            raise _bad(f"line {section.line}, EDGE_WEIGHT_SECTION: a FULL_MATRIX of DIMENSION {n} needs {n * n} "
                       f"weights, got {len(values)}")
        return np.asarray(values, dtype=float).reshape(n, n)
    if len(values) != n * (n - 1) // 2:
        raise _bad(f"line {section.line}, EDGE_WEIGHT_SECTION: a LOWER_ROW of DIMENSION {n} needs "
                   f"{n * (n - 1) // 2} weights, got {len(values)}")
    arcs = np.zeros((n, n))
    arcs[np.tril_indices(n, k=-1)] = values
    return arcs + arcs.T


def read_vrplib(path: str | Path) -> Instance:
    """A CVRPLIB instance: DIMENSION, CAPACITY, EDGE_WEIGHT_TYPE (EUC_2D, EXACT_2D or EXPLICIT with a FULL_MATRIX
    or LOWER_ROW), NODE_COORD_SECTION, DEMAND_SECTION, DEPOT_SECTION; optional NAME and VEHICLES."""
    path = Path(path)
    with _naming(path):
        return _vrplib(path, _text(path))


def _vrplib(path: Path, text: str) -> Instance:
    specs, sections = _vrplib_parts(text)
    if not specs and not sections:
        raise _bad("empty file; expected a VRPLIB instance")
    n = _spec_integer(specs, "DIMENSION", minimum=2, maximum=100_000)
    capacity = _spec_integer(specs, "CAPACITY", minimum=0, maximum=MAX_VALUE)
    if n is None or capacity is None:
        raise _bad(f"{'DIMENSION' if n is None else 'CAPACITY'}: missing")
    kind = specs.get("EDGE_WEIGHT_TYPE", (0, "EUC_2D"))[1].upper()
    if kind not in EDGE_WEIGHT_TYPES:
        raise _bad(f"EDGE_WEIGHT_TYPE {kind} is not supported ({', '.join(EDGE_WEIGHT_TYPES)} are)")
    if "DEMAND" not in sections:
        raise _bad("DEMAND_SECTION: missing")
    demand = np.asarray([_integer(cells[0], f"line {line}, DEMAND_SECTION", minimum=-MAX_VALUE)
                         for line, cells in _indexed(sections["DEMAND"], n, 1)], dtype=np.int64)
    if "NODE_COORD" in sections:
        coords = np.asarray([[_coordinate(c, f"line {line}, NODE_COORD_SECTION") for c in cells]
                             for line, cells in _indexed(sections["NODE_COORD"], n, 2)], dtype=float)
    elif kind != "EXPLICIT":
        raise _bad(f"NODE_COORD_SECTION: missing (EDGE_WEIGHT_TYPE {kind} needs coordinates)")
    else:
        coords = np.zeros((n, 2))
    depot = 0
    if "DEPOT" in sections:
        ids = [_integer(c, f"line {line}, DEPOT_SECTION", minimum=-1, maximum=n)
               for line, cells in sections["DEPOT"].rows for c in cells]
        ids = ids[: ids.index(-1)] if -1 in ids else ids
        if len(ids) != 1 or ids[0] < 1:
            raise _bad(f"line {sections['DEPOT'].line}, DEPOT_SECTION: expected one depot node (then -1), got {ids}")
        depot = ids[0] - 1
    # customers are numbered 1..n-1 in the file's order, the depot left out (node k + 1 is customer k when the
    # depot is node 1, as in .sol files)
    labels = [0 if i == depot else i + (i < depot) for i in range(n)]

    def name(i: int) -> str:
        return f"the depot (node {i + 1})" if i == depot else f"customer {labels[i]} (node {i + 1})"

    for i, d in enumerate(demand):
        if d < 0:
            raise _bad(f"{name(i)}: demand must not be negative, got {d}")
    euclid = _euclidean(coords)
    if kind == "EUC_2D":
        arcs = np.floor(euclid + 0.5)
        ints = _matrix(arcs, "NODE_COORD_SECTION")
    elif kind == "EXACT_2D":
        arcs = euclid
        ints = _matrix(arcs * 1000, "NODE_COORD_SECTION")
    else:
        fmt = specs.get("EDGE_WEIGHT_FORMAT", (0, ""))[1].upper()
        if fmt not in EDGE_WEIGHT_FORMATS:
            raise _bad(f"EDGE_WEIGHT_FORMAT {fmt or '(missing)'} is not supported with EXPLICIT weights "
                       f"({', '.join(EDGE_WEIGHT_FORMATS)} are)")
        if "EDGE_WEIGHT" not in sections:
            raise _bad("EDGE_WEIGHT_SECTION: missing (EDGE_WEIGHT_TYPE EXPLICIT needs it)")
        arcs = _edge_weights(sections["EDGE_WEIGHT"], n, fmt)
        ints = _matrix(arcs, "EDGE_WEIGHT_SECTION")
    customers = [i for i in range(n) if i != depot]
    for i in customers:
        if demand[i] > capacity:
            raise _bad(f"{name(i)}: demand {demand[i]} exceeds the vehicle capacity {capacity}")
    jobs = tuple(Job(id=str(labels[i]), stop=Stop(location=i), delivery=(int(demand[i]),)) for i in customers)
    lower = math.ceil(int(demand.sum()) / capacity) if capacity else 1
    fleet = _spec_integer(specs, "VEHICLES", minimum=1, maximum=MAX_VALUE)
    if fleet is None:
        fleet = 2 * lower + 5
    vehicles = tuple(Vehicle(id=f"v{k}", start=depot, capacity=(capacity,))
                     for k in range(_useful(fleet, len(customers))))
    problem = Problem(durations={"car": ints}, distances={"car": ints}, jobs=jobs, vehicles=vehicles)
    return Instance(name=specs.get("NAME", (0, path.stem))[1] or path.stem, problem=problem,
                    job_labels=tuple(labels[i] for i in customers),
                    exact_distance=lambda plan: _plan_distance(arcs, problem, plan))


# --- VROOM-shaped JSON (routing.vroom) -----------------------------------------------------------------------

def read_vroom(path: str | Path, *, router: vroom.Router | None = None) -> Instance:
    """A VROOM document (`routing.vroom`): `vehicles`, `jobs`, `shipments` and per-profile `matrices`, or
    coordinates when `router` gives travel between them."""
    path = Path(path)
    doc = read_vroom_document(path, router=router)
    kinds = tuple(t.type for t in doc.jobs)
    return Instance(name=path.stem, problem=doc.problem, job_labels=doc.job_labels, exact_distance=doc.distance,
                    job_kinds=kinds if any(k != "job" for k in kinds) else (),
                    shipment_labels=tuple((p.id, d.id) for p, d in doc.shipments))


def read_vroom_document(path: str | Path, *, router: vroom.Router | None = None) -> vroom.VroomInput:
    """The parsed VROOM document of a file (for `routing.vroom.render`); errors name the file and the field."""
    path = Path(path)
    with _naming(path):
        return vroom.parse(vroom.loads(_text(path)), router=router, root="the file")


_READERS: dict[str, Callable[[Path], Instance]] = {".txt": read_solomon, ".vrp": read_vrplib, ".json": read_vroom}
