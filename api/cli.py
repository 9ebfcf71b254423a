"""The `lastmile` command line: solve routing instances and run the demo."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from routing.errors import RoutingError
from routing.io import Instance, read_instance
from routing.solvers.auto import BACKEND_NAMES, solve
from routing.solvers.base import SolveParams, SolveResult


class CliError(Exception):
    """A bad argument or input file: reported as one line, exit status 2."""


def solution_json(instance: Instance, result: SolveResult) -> dict[str, Any]:
    """The `solve --json` object: routes as the file's own customer numbers, distance by the file's rule."""
    labels = instance.job_labels
    routes = [[labels[x.index] for x in r.visits if x.kind == "job"] for r in result.plan.routes]
    return {
        "instance": instance.name,
        "backend": result.backend,
        "distance": round(instance.exact_distance(result.plan), 6),
        "vehicles": result.evaluation.vehicles_used,
        "feasible": result.evaluation.feasible and not result.plan.unassigned,
        "runtime_s": round(result.runtime_s, 3),
        "routes": routes,
        "unassigned": [{"job": labels[u.index], "reason": u.reason} for u in result.plan.unassigned],
        "violations": list(result.evaluation.violations),
    }


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def cmd_solve(args: argparse.Namespace) -> None:
    instance = read_instance(args.path)
    params = SolveParams(time_limit=args.time_limit, iterations=args.iterations, seed=args.seed)
    result = solve(instance.problem, params, backend=args.backend)
    out = solution_json(instance, result)
    if args.json:
        print(json.dumps(out))
        return
    print(f"{out['instance']}: distance {out['distance']:.2f} with {out['vehicles']} vehicles "
          f"({out['backend']}, {out['runtime_s']:.1f} s, {'feasible' if out['feasible'] else 'INFEASIBLE'})")
    for k, route in enumerate(out["routes"], 1):
        print(f"  route {k}: {' '.join(str(c) for c in route)}")
    for u in out["unassigned"]:
        print(f"  unassigned {u['job']}: {u['reason']}")


def cmd_demo(args: argparse.Namespace) -> None:
    from api.demo import run_demo

    run_demo(orders=args.orders, seed=args.seed, time_limit=args.time_limit, echo=print)


def cmd_allocate(args: argparse.Namespace) -> None:
    from api.allocate import allocations_json, allocations_table, run_allocate

    allocations = run_allocate(args.network, args.facilities, args.orders)
    print(json.dumps(allocations_json(allocations)) if args.json else allocations_table(allocations))


def cmd_schema(args: argparse.Namespace) -> None:
    from api.schemas import json_schema_text

    print(json_schema_text(args.file), end="")


def cmd_simulate(args: argparse.Namespace) -> None:
    from dispatch.meal import GreedyMealPolicy, MealPolicy, RollingHorizonMealPolicy
    from simulator.mdrp import compute_metrics, deliveries_csv, read_instance, simulate

    started = time.perf_counter()
    instance = read_instance(args.mdrp)
    rules = instance.parameters.rules
    policy: MealPolicy = (RollingHorizonMealPolicy(rules=rules) if args.policy == "rolling"
                          else GreedyMealPolicy(rules=rules))
    recorder = simulate(instance, policy)
    metrics = compute_metrics(instance, recorder)
    if args.deliveries is not None:
        args.deliveries.write_text(deliveries_csv(instance, recorder))
    out = {"instance": instance.name, "policy": args.policy, **metrics.as_dict(),
           "runtime_s": round(time.perf_counter() - started, 3)}
    if args.json:
        print(json.dumps(out))
        return
    print(f"{instance.name} ({args.policy}, {out['runtime_s']:.2f} s)")
    for key, value in out.items():
        if key not in ("instance", "policy", "runtime_s"):
            print(f"  {key:<22} {value}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CliError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lastmile", description="lastmile: last-mile delivery and dark-store dispatch engine.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("solve", help="solve a Solomon, VRPLIB or VROOM-shaped instance, minimising distance")
    p.add_argument("path", type=Path, help="Solomon .txt, VRPLIB .vrp or VROOM-shaped .json instance")
    p.add_argument("--time-limit", type=_positive(float), default=None,
                   help="seconds to search (default 10 when no --iterations)")
    p.add_argument("--iterations", type=_positive(int), default=None,
                   help="iteration limit: the same seed and limit give the same routes")
    p.add_argument("--backend", choices=BACKEND_NAMES, default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=cmd_solve)
    d = sub.add_parser("demo", help="route couriers from dark stores on the Porto centre map")
    d.add_argument("--orders", type=_positive(int), default=40)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--time-limit", type=_positive(float), default=5.0)
    d.set_defaults(run=cmd_demo)
    a = sub.add_parser("allocate", help="allocate orders to dark stores, pickup points and lockers by road time")
    a.add_argument("--network", type=Path, required=True, metavar="OSMFILE", help="OSM extract (.osm, .osm.bz2)")
    a.add_argument("--facilities", type=Path, required=True, metavar="FACILITIES.json",
                   help='{"facilities": [...]}: dark stores, pickup points and lockers')
    a.add_argument("--orders", type=Path, required=True, metavar="ORDERS.json", help='{"orders": [...]}')
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.set_defaults(run=cmd_allocate)
    s = sub.add_parser("schema", help="print the JSON Schema of the allocate facilities or orders file")
    s.add_argument("file", choices=("facilities", "orders"), help="which file of `lastmile allocate`")
    s.set_defaults(run=cmd_schema)
    m = sub.add_parser("simulate", help="simulate a Grubhub MDRP day and print the paper's metrics")
    m.add_argument("--mdrp", type=Path, required=True, metavar="INSTANCE_DIR",
                   help="folder with orders.txt, couriers.txt, restaurants.txt, instance_parameters.txt")
    m.add_argument("--policy", choices=("greedy", "rolling"), default="greedy",
                   help="greedy: nearest courier per order at once; rolling: rolling-horizon bundling and matching")
    m.add_argument("--json", action="store_true", help="print one JSON object")
    m.add_argument("--deliveries", type=Path, default=None, metavar="FILE",
                   help="write the delivered orders as CSV order,placement_time,ready_time,pickup_time,"
                        "dropoff_time,courier")
    m.set_defaults(run=cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: every input error becomes one line on stderr and exit status 2."""
    try:
        args = build_parser().parse_args(argv)
        args.run(args)
    except (CliError, RoutingError, ValueError, OSError) as exc:
        print(f"lastmile: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
