"""Writes scenarios/porto-metro-day.toml: dark stores placed where the day's demand is, on the Porto metro map.

    .venv/bin/python scenarios/make_porto_metro.py [--stores 44] [--orders 50000]

Demand is drawn around the metro area's town centres (weights roughly by population). A sample of it (another
seed than the day's) is clustered with k-means into `--stores` groups; each store stands at the road node nearest
its group's centre, with pickers and couriers in proportion to the share of demand it is nearest to (per peak
hour: one picker per 18 orders, one courier per 8 orders, in two shifts). The 28 busiest stores each feed a
locker and a pickup point beside them. The file is written once and committed; this script documents how.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from scipy.cluster.vq import kmeans2

from routing.network import RoadNetwork
from routing.snap import snap
from simulator.demand import generate
from simulator.scenario import DEFAULT_HOURLY, Clock, Demand

HERE = Path(__file__).resolve().parent
MAP = HERE / "maps" / "porto_drive.osm.bz2"
CENTRES = [  # (name, lon, lat, weight)
    ("aliados", -8.611, 41.149, 5), ("boavista", -8.630, 41.158, 3), ("bonfim", -8.590, 41.150, 2),
    ("foz", -8.675, 41.153, 1), ("paranhos", -8.600, 41.175, 2), ("matosinhos", -8.690, 41.185, 3),
    ("senhora-da-hora", -8.651, 41.188, 2), ("maia", -8.622, 41.235, 2), ("gaia", -8.612, 41.128, 4),
    ("mafamude", -8.620, 41.110, 2), ("gondomar", -8.532, 41.143, 2), ("rio-tinto", -8.557, 41.178, 2),
    ("ermesinde", -8.553, 41.214, 2), ("valadares", -8.640, 41.090, 1), ("leca", -8.700, 41.195, 1),
]
SPREAD_M = 2200
START, END = 8 * 3600, 23 * 3600
M_PER_DEG = 6_371_000.0 * math.pi / 180.0
LOCKERS, PICKUP_POINTS = 28, 28
ORDERS_PER_PICKER_HOUR = 18.0
ORDERS_PER_COURIER_HOUR = 8.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=44)
    parser.add_argument("--orders", type=int, default=50_000)
    args = parser.parse_args()
    network = RoadNetwork.from_osm(MAP)
    demand = Demand(kind="generate", orders=20_000, centres=tuple((c[1], c[2]) for c in CENTRES),
                    centre_weights=tuple(float(c[3]) for c in CENTRES), spread_m=SPREAD_M)
    sample = generate(demand, Clock(start=START, end=END), network, seed=1001)
    xy = np.array([o.location for o in sample])
    scale = np.array([M_PER_DEG * math.cos(math.radians(41.15)), M_PER_DEG])
    centroids, label = kmeans2(xy * scale, args.stores, seed=7, minit="++")
    share = np.bincount(label, minlength=args.stores) / len(label)
    order = np.argsort(-share)
    sites = centroids[order] / scale
    nodes = snap(network, sites, max_distance_m=2000).nodes
    sites = np.column_stack([network.lon[nodes], network.lat[nodes]])
    share = share[order]
    peak = max(DEFAULT_HOURLY) / sum(DEFAULT_HOURLY[START // 3600:END // 3600])
    lines = [_header(args)]
    for k, ((lon, lat), s) in enumerate(zip(sites.tolist(), share.tolist(), strict=True)):
        per_peak_hour = args.orders * s * peak
        lines.append(f'[[stores]]\nid = "s{k + 1:02d}"\nlocation = [{lon:.6f}, {lat:.6f}]\n'
                     f"pickers = {max(2, math.ceil(per_peak_hour / ORDERS_PER_PICKER_HOUR))}\npicking_s = 180\n")
    for k, (lon, lat) in enumerate(sites[:LOCKERS].tolist()):
        lines.append(f'[[lockers]]\nid = "locker-{k + 1:02d}"\nlocation = [{lon + 0.002:.6f}, {lat + 0.001:.6f}]\n'
                     f'compartments = {{ S = 60, M = 40, L = 16 }}\nstore = "s{k + 1:02d}"\n')
    for k, (lon, lat) in enumerate(sites[:PICKUP_POINTS].tolist()):
        lines.append(f'[[pickup_points]]\nid = "pickup-{k + 1:02d}"\nlocation = [{lon - 0.0015:.6f}, '
                     f'{lat + 0.001:.6f}]\ncapacity = 150\nstore = "s{k + 1:02d}"\n')
    for k, s in enumerate(share.tolist()):
        couriers = max(2, math.ceil(args.orders * s * peak / ORDERS_PER_COURIER_HOUR))
        store = f"s{k + 1:02d}"
        for shift, count in ((("08:00", "15:30"), math.ceil(couriers * 0.7)), (("15:00", "23:45"), couriers)):
            lines.append(f'[[fleet]]\nstore = "{store}"\nprofile = "bike"\ncount = {count}\n'
                         f'shift = ["{shift[0]}", "{shift[1]}"]\ncapacity = 4\n')
        if k % 4 == 0:
            lines.append(f'[[fleet]]\nstore = "{store}"\nprofile = "car"\ncount = 1\n'
                         f'shift = ["11:00", "21:00"]\ncapacity = 10\n')
    (HERE / "porto-metro-day.toml").write_text("\n".join(lines))


def _header(args: argparse.Namespace) -> str:
    centres = ", ".join(f"[{c[1]}, {c[2]}]" for c in CENTRES)
    weights = ", ".join(str(c[3]) for c in CENTRES)
    return f"""# A city-scale grocery day on the whole Porto metro map (real OSM streets, 50,521 nodes):
# {args.stores} dark stores placed where the demand is (k-means over a sample of it), lockers and pickup points
# beside the busiest,
# {args.orders:,} orders from 08:00 to 23:00 around fifteen town centres, bikes in two shifts and a car at every
# fourth store. Written by scenarios/make_porto_metro.py; `make bench` (city suite) simulates it.
name = "porto-metro-day"
seed = 11

[map]
file = "maps/porto_drive.osm.bz2"
max_snap_m = 300

[clock]
start = "08:00"
end = "23:00"
tick_s = 60
decision_latency_s = 0
traffic = true

[policy]
name = "batch"
max_orders = 3
hold_s = 180
radius_s = 300

[allocation]
rank = "eta"
max_detour_s = 600

[promise]
margin_s = 300
margin_rate = 0.2

[demand]
kind = "generate"
orders = {args.orders}
centres = [{centres}]
centre_weights = [{weights}]
spread_m = {SPREAD_M}
modes = {{ courier = 0.88, locker = 0.06, pickup_point = 0.06 }}
basket = [1, 6]
express_s = 2700

[delivery]
service_s = 120
failure_rate = 0.015
failed_to = "locker"
cancel_rate = 0.01
cancel_after_s = 300
collect_after_s = 10800
"""


if __name__ == "__main__":
    main()
