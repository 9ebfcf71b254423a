"""Plots and report.html of a simulated day, made after the run from its Recorder."""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.sparse.csgraph import dijkstra

from routing.errors import InvalidProblemError
from routing.network import RoadNetwork
from simulator.recorder import Hourly, Recorder, TripRecord, hourly, percentile, quote_calibration
from simulator.scenario import Scenario

IMAGES = ("map.png", "click_to_door.png", "hourly.png", "utilisation.png")
ATTRIBUTION = "Map data © OpenStreetMap contributors, ODbL"
DPI = 100
NO_PATH = -9999

KPI_LABELS: dict[str, tuple[str, str]] = {
    "orders": ("Orders placed", "count"),
    "delivered": ("Delivered", "count"),
    "rejected": ("Rejected", "count"),
    "cancelled": ("Cancelled", "count"),
    "failed": ("Failed, parcel back at the store", "count"),
    "open_at_end": ("Open at end of run", "count"),
    "redirected_to_locker": ("Absent customers' parcels sent to a locker", "count"),
    "on_time_rate": ("On time", "%"),
    "express_met_rate": ("Express promise met", "%"),
    "express_quote_met_rate": ("Express quote met (checkout ETA)", "%"),
    "express_quote_mean_min": ("Express quote, mean lead", "min"),
    "express_quote_slack_mean_min": ("Express quote, slack (quoted − actual)", "min"),
    "click_to_door_mean_min": ("Click-to-door, mean", "min"),
    "click_to_door_p50_min": ("Click-to-door, median", "min"),
    "click_to_door_p90_min": ("Click-to-door, p90", "min"),
    "click_to_door_p99_min": ("Click-to-door, p99", "min"),
    "ready_to_pickup_mean_min": ("Ready to pickup, mean", "min"),
    "couriers": ("Couriers", "count"),
    "courier_hours": ("Courier hours on shift", "h"),
    "courier_utilisation": ("Courier utilisation", "%"),
    "orders_per_courier_hour": ("Orders per courier-hour", "number"),
    "km": ("Distance driven", "km"),
    "km_per_order": ("Distance per order", "km"),
    "cost": ("Cost", "money"),
    "cost_per_order": ("Cost per order", "money"),
    "co2_g": ("CO₂", "g"),
    "co2_g_per_order": ("CO₂ per order", "g"),
    "trips": ("Trips", "count"),
    "orders_per_trip": ("Orders per trip", "number"),
    "decisions": ("Dispatch decisions", "count"),
}


def kpi_label(key: str) -> str:
    """A readable label for a KPI key (known keys by table, others from the key itself)."""
    known = KPI_LABELS.get(key)
    return known[0] if known else key.replace("_", " ").capitalize()


def kpi_table(kpis: Mapping[str, Any]) -> str:
    """The KPIs as the text table `lastmile simulate` prints (and the README shows): one line per KPI."""
    labels = {key: label for key, (label, _) in KPI_LABELS.items()}
    width = max(len(v) for v in labels.values())
    lines = []
    for key, value in kpis.items():
        label = labels.get(key, key)
        shown = "-" if value is None else (f"{value:.1%}" if key.endswith(("_rate", "utilisation"))
                                           else f"{value:,}" if isinstance(value, int) else f"{value:,.2f}")
        lines.append(f"  {label:<{width}}  {shown:>10}")
    return "\n".join(lines)


def format_kpi(key: str, value: Any) -> str:
    """A KPI value as shown in the report: rates in %, times in min, distances in km, n/a for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    unit = KPI_LABELS.get(key, ("", "number"))[1]
    if unit == "%":
        return f"{value * 100:.1f} %"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "money":
        return f"{value:,.2f}"
    if unit == "number":
        return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"
    if unit in ("min", "km"):  # as the text table shows them: kpis.json keeps 2 or 3 decimals, rounded once here
        return f"{value:,.2f} {unit}"
    return f"{value:,.1f} {unit}"


def sample_trips(trips: Sequence[TripRecord], k: int, seed: int) -> list[TripRecord]:
    """`k` trips drawn without replacement by `seed` (all of them if there are no more), in their run order."""
    if k <= 0 or not trips:
        return []
    if k >= len(trips):
        return list(trips)
    chosen = np.random.default_rng(seed).choice(len(trips), size=k, replace=False)
    return [trips[i] for i in sorted(chosen.tolist())]


def trip_paths(network: RoadNetwork, trips: Sequence[TripRecord]) -> list[npt.NDArray[np.float64]]:
    """Each trip as a (m, 2) lon/lat polyline along the fastest roads of its profile (straight where none)."""
    lonlat = network.lonlat
    valid = [t for t in trips if t.nodes and all(0 <= n < network.n_nodes for n in t.nodes)]
    predecessors: dict[str, tuple[dict[int, int], npt.NDArray[np.int32]] | None] = {}
    for profile in sorted({t.profile for t in valid}):
        sources = sorted({n for t in valid if t.profile == profile for n in t.nodes[:-1]})
        try:
            graph = network.csr(profile, metric="time")
        except InvalidProblemError:
            predecessors[profile] = None
            continue
        if not sources:
            predecessors[profile] = None
            continue
        _, pred = dijkstra(graph, directed=True, indices=sources, return_predecessors=True)
        predecessors[profile] = ({s: i for i, s in enumerate(sources)}, np.atleast_2d(pred))
    paths = []
    for trip in valid:
        found = predecessors.get(trip.profile)
        nodes = [trip.nodes[0]]
        for a, b in itertools.pairwise(trip.nodes):
            if a == b:
                continue
            nodes.extend(_leg(found, a, b))
        paths.append(lonlat[np.array(nodes, dtype=np.int64)])
    return paths


def _leg(found: tuple[dict[int, int], npt.NDArray[np.int32]] | None, a: int, b: int) -> list[int]:
    if found is None:
        return [b]
    row = found[1][found[0][a]]
    leg = [b]
    while leg[-1] != a:
        prev = int(row[leg[-1]])
        if prev == NO_PATH or prev < 0 or len(leg) > len(row):
            return [b]
        leg.append(prev)
    return leg[-2::-1]


def _new_figure(width: float, height: float, rows: int = 1, *, sharex: bool = False) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=sharex, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None})


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def plot_map(path: Path, *, scenario: Scenario, network: RoadNetwork, trips: Sequence[TripRecord]) -> None:
    """map.png: roads, facilities and `trips` drawn along the roads."""
    fig, (ax,) = _new_figure(8.0, 8.0)
    lonlat = network.lonlat
    arcs = network.arcs("car")
    pairs = np.unique(np.sort(np.column_stack((arcs.tail, arcs.head)), axis=1), axis=0)
    ax.add_collection(LineCollection(list(lonlat[pairs]), colors="#c8c8c8", linewidths=0.6, zorder=1))
    points = [lonlat]
    for i, line in enumerate(trip_paths(network, trips)):
        ax.plot(line[:, 0], line[:, 1], color=f"C{i % 10}", linewidth=1.6, alpha=0.85, zorder=2,
                label="courier trips" if i == 0 else None)
        points.append(line)
    for sites, marker, colour, label, size in (
        (scenario.stores, "s", "#1b1b3a", "dark stores", 90),
        (scenario.lockers, "^", "#d95f02", "lockers", 60),
        (scenario.pickup_points, "o", "#1b9e77", "pickup points", 50),
    ):
        if sites:
            xy = np.array([s.location for s in sites], dtype=np.float64)
            ax.scatter(xy[:, 0], xy[:, 1], marker=marker, s=size, c=colour, edgecolors="white", linewidths=0.8,
                       zorder=3, label=f"{label} ({len(sites)})")
            points.append(xy)
    every = np.vstack(points)
    lo, hi = every.min(axis=0), every.max(axis=0)
    pad = np.maximum((hi - lo) * 0.03, 1e-3)
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ax.set_aspect(1.0 / math.cos(math.radians(float(np.clip((lo[1] + hi[1]) / 2, -89.0, 89.0)))))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(f"{scenario.name}: road network and {len(trips)} sampled trips")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize="small")
    ax.text(0.01, 0.01, ATTRIBUTION, transform=ax.transAxes, fontsize="x-small", color="grey")
    _save(fig, path)


def plot_click_to_door(path: Path, recorder: Recorder) -> None:
    """click_to_door.png: histogram of click-to-door minutes of delivered orders, with mean and p90."""
    fig, (ax,) = _new_figure(9.0, 4.5)
    minutes = np.array([o.click_to_door_s / 60.0 for o in recorder.orders.values()
                        if o.status == "delivered" and o.click_to_door_s is not None], dtype=np.float64)
    if minutes.size:
        ax.hist(minutes, bins=int(np.clip(np.sqrt(minutes.size) * 2, 5, 40)), color="#4c72b0", alpha=0.85)
        mean, p90 = float(minutes.mean()), float(percentile(minutes, 90) or 0.0)
        ax.axvline(mean, color="black", linestyle="--", label=f"mean {mean:.1f} min")
        ax.axvline(p90, color="#c44e52", linestyle="-", label=f"p90 {p90:.1f} min")
        ax.legend()
    else:
        _empty(ax, "no delivered orders")
    ax.set_xlabel("click to door (minutes)")
    ax.set_ylabel("delivered orders")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Click-to-door time")
    _save(fig, path)


def _hour_ticks(ax: Axes, hours: Sequence[int]) -> None:
    if hours:
        step = max(1, math.ceil(len(hours) / 16))
        ticks = list(hours)[::step]
        ax.set_xticks(ticks, [f"{h % 24:02d}" for h in ticks])
    ax.set_xlabel("hour of day")


def plot_hourly(path: Path, series: Hourly) -> None:
    """hourly.png: on-time rate by hour (line) over open orders at the top of each hour (bars)."""
    fig, (top, bottom) = _new_figure(9.0, 6.0, rows=2, sharex=True)
    hours = list(series.hours)
    if hours:
        top.plot(hours, np.array(series.on_time_rate, dtype=np.float64) * 100, marker="o", color="#55a868")
        bottom.bar(hours, series.open_orders, color="#8172b2")
        top.set_xlim(hours[0] - 0.6, hours[-1] + 0.6)
    else:
        _empty(top, "no orders")
        _empty(bottom, "no orders")
    top.set_ylim(0, 105)
    top.set_ylabel("on time (%)")
    top.set_title("On-time rate and open orders by hour")
    bottom.set_ylabel("open orders")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    _hour_ticks(bottom, hours)
    _save(fig, path)


def plot_utilisation(path: Path, series: Hourly) -> None:
    """utilisation.png: courier utilisation by hour (bars) and orders placed per hour (twin axis)."""
    fig, (ax,) = _new_figure(9.0, 4.5)
    hours = list(series.hours)
    twin = ax.twinx()
    if hours:
        util = np.nan_to_num(np.array(series.utilisation, dtype=np.float64), nan=0.0) * 100
        ax.bar(hours, util, color="#dd8452", alpha=0.8, label="courier utilisation")
        twin.plot(hours, series.placed, marker=".", color="#4c72b0", label="orders placed")
        ax.set_xlim(hours[0] - 0.6, hours[-1] + 0.6)
        handles = ax.get_legend_handles_labels()
        twin_handles = twin.get_legend_handles_labels()
        ax.legend(handles[0] + twin_handles[0], handles[1] + twin_handles[1], loc="upper left", fontsize="small")
    else:
        _empty(ax, "no orders")
    ax.set_ylim(0, 105)
    ax.set_ylabel("courier utilisation (%)")
    twin.set_ylabel("orders placed")
    twin.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Courier utilisation and demand by hour")
    _hour_ticks(ax, hours)
    _save(fig, path)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def calibration_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """The express quotes' calibration table (`simulator.recorder.quote_calibration`) as an HTML section."""
    if not rows:
        return ""
    e = html.escape
    body = "\n".join(f"<tr><td>{r['decile']}</td><td>{r['orders']:,}</td><td>{r['quoted_min']:.1f}</td>"
                     f"<td>{r['delivered_min']:.1f}</td><td>{r['met_rate'] * 100:.1f} %</td>"
                     f"<td>{r['slack_min']:.1f}</td></tr>" for r in rows)
    head = "".join(f"<th>{e(h)}</th>" for h in ("decile of quoted lead", "orders", "quoted, min", "delivered, min",
                                               "met", "slack, min"))
    return (f"<h2>Express quotes: quoted vs delivered</h2>\n<table>\n<tr>{head}</tr>\n{body}\n</table>")


def render_html(*, scenario: Scenario, kpis: Mapping[str, Any], shown_trips: int, all_trips: int,
                calibration: Sequence[Mapping[str, Any]] = ()) -> str:
    """The report page: title, facts, KPI table, the express quotes' calibration table and the four images
    (relative links), all text escaped."""
    e = html.escape
    facts = " · ".join((_plural(len(scenario.stores), "dark store"), _plural(len(scenario.lockers), "locker"),
                        _plural(len(scenario.pickup_points), "pickup point"), _plural(scenario.couriers, "courier")))
    rows = "\n".join(f"<tr><th>{e(kpi_label(k))}</th><td>{e(format_kpi(k, v))}</td></tr>" for k, v in kpis.items())
    captions = {
        "map.png": f"Road network, facilities and {shown_trips} of {all_trips} courier trips",
        "click_to_door.png": "Click-to-door time of delivered orders",
        "hourly.png": "On-time rate and open orders by hour",
        "utilisation.png": "Courier utilisation and orders placed by hour",
    }
    figures = "\n".join(f'<figure><img src="{e(name)}" alt="{e(captions[name])}">'
                        f"<figcaption>{e(captions[name])}</figcaption></figure>" for name in IMAGES)
    title = e(f"{scenario.name}: simulated day")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ padding: 0.25em 1em; border-bottom: 1px solid #ddd; }}
th {{ text-align: left; font-weight: normal; color: #555; }}
td {{ text-align: right; font-variant-numeric: tabular-nums; }}
img {{ max-width: 100%; }}
figure {{ margin: 1.5em 0; }}
footer {{ margin-top: 2em; font-size: small; color: #777; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>{e(facts)}</p>
<h2>Key figures</h2>
<table>
{rows}
</table>
{calibration_html(calibration)}
{figures}
<footer>{e(ATTRIBUTION)}</footer>
</body>
</html>
"""


def write_report(out_dir: Path, *, scenario: Scenario, network: RoadNetwork, recorder: Recorder,
                 kpis: Mapping[str, Any], sample_routes: int = 12, seed: int = 0) -> Path:
    """Write map.png, click_to_door.png, hourly.png, utilisation.png and report.html into `out_dir`; returns
    the path of report.html."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shown = sample_trips(recorder.trips, sample_routes, seed)
    series = hourly(recorder)
    plot_map(out_dir / "map.png", scenario=scenario, network=network, trips=shown)
    plot_click_to_door(out_dir / "click_to_door.png", recorder)
    plot_hourly(out_dir / "hourly.png", series)
    plot_utilisation(out_dir / "utilisation.png", series)
    page = out_dir / "report.html"
    page.write_text(render_html(scenario=scenario, kpis=kpis, shown_trips=len(shown), all_trips=len(recorder.trips),
                                calibration=quote_calibration(recorder)), encoding="utf-8")
    return page
