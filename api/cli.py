"""The `lastmile` command line: solve routing instances, allocate orders, simulate days, run the demo."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from routing.errors import RoutingError, UnsupportedProblemError
from routing.io import Instance, read_instance, read_vroom, read_vroom_document
from routing.solvers.auto import BACKEND_NAMES, solve
from routing.solvers.base import MAX_ITERATIONS, MAX_SEED, MAX_TIME_LIMIT_S, SolveParams, SolveResult

if TYPE_CHECKING:
    from api.service import Deployment, Service
    from api.settings import Settings


MAX_DEMO_ORDERS = 1000
"""`lastmile demo --orders`: the addresses are drawn without repeats from the road nodes near the stores."""


class CliError(Exception):
    """A bad argument or input file: reported as one line, exit status 2."""


def solution_json(instance: Instance, result: SolveResult) -> dict[str, Any]:
    """The `solve --json` object: routes as the file's own customer numbers (a shipment's stops as
    `{"pickup": id}` and `{"delivery": id}`), distance by the file's rule."""
    labels = instance.job_labels
    routes = [[instance.stop_label(x) for x in r.visits if x.kind in ("job", "pickup", "delivery")]
              for r in result.plan.routes]
    return {
        "instance": instance.name,
        "backend": result.backend,
        "algorithms": [{"algorithm": ph.algorithm, "seconds": round(ph.seconds, 3), "cost": ph.cost,
                        "unassigned": ph.unassigned} for ph in result.phases],
        "credit": list(result.algorithms),
        "distance": round(instance.exact_distance(result.plan), 6),
        "vehicles": result.evaluation.vehicles_used,
        "feasible": result.evaluation.feasible and not result.plan.unassigned,
        "runtime_s": round(result.runtime_s, 3),
        "routes": routes,
        "unassigned": [{"job": labels[u.index], "reason": u.reason} if u.kind == "job" else
                       {"shipment": instance.problem.shipments[u.index].id, "reason": u.reason}
                       for u in result.plan.unassigned],
        "violations": list(result.evaluation.violations),
    }


def _positive(kind: type[int] | type[float], *, zero: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number of `kind` above 0 (or, with `zero`, at least 0)."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not (value >= 0 if zero else value > 0) or not math.isfinite(value):
            bound = "0 or more" if zero else "positive"
            raise argparse.ArgumentTypeError(f"must be {bound}{'' if kind is int else ' and finite'}, got {text}")
        return value

    return parse


def _bounded(kind: type[int] | type[float], maximum: float, *, zero: bool = False) -> Callable[[str], float]:
    """An argparse type of `lastmile solve`: `_positive`'s number, at most `maximum` (`routing.solvers.base`'s
    bounds, which every backend takes)."""
    positive = _positive(kind, zero=zero)

    def parse(text: str) -> float:
        value = positive(text)
        if value > maximum:
            shown = int(maximum) if float(maximum).is_integer() else maximum
            raise argparse.ArgumentTypeError(f"must be at most {shown}, got {text}")
        return value

    return parse


SOLVE_MAX_SNAP_M = 500.0
"""`solve --network`'s default `--max-snap-m`: metres a point may lie from the nearest road."""


def cmd_solve(args: argparse.Namespace) -> None:
    if args.max_snap_m is not None and args.network is None:
        raise CliError("--max-snap-m goes with --network (how far a point of a VROOM document may lie from the map's "
                       "roads)")
    try:
        _solve(args)
    except UnsupportedProblemError as exc:  # no backend (or not --backend) honours the file's problem
        raise CliError(f"{args.path}: {exc}") from None


def _solve(args: argparse.Namespace) -> None:
    router = None
    if args.vroom or args.network is not None:
        if args.path.suffix.lower() != ".json":
            raise CliError(f"{'--vroom' if args.vroom else '--network'} needs a VROOM .json document, got {args.path}")
        if args.network is not None:
            from routing.network import RoadNetwork
            from routing.vroom import RoadMatrices

            router = RoadMatrices(RoadNetwork.from_osm(args.network), max_snap_m=args.max_snap_m or SOLVE_MAX_SNAP_M)
    params = SolveParams(time_limit=args.time_limit, iterations=args.iterations, seed=args.seed)
    if args.vroom:
        from routing.vroom import render

        started = time.perf_counter()
        doc = read_vroom_document(args.path, router=router)
        loading_ms = round((time.perf_counter() - started) * 1000)
        print(json.dumps(render(doc, solve(doc.problem, params, backend=args.backend), loading_ms=loading_ms)))
        return
    instance = read_instance(args.path) if router is None else read_vroom(args.path, router=router)
    result = solve(instance.problem, params, backend=args.backend)
    out = solution_json(instance, result)
    if args.json:
        print(json.dumps(out))
        return
    print(f"{out['instance']}: distance {out['distance']:.2f} with {out['vehicles']} vehicles "
          f"({out['backend']}, {out['runtime_s']:.1f} s, {'feasible' if out['feasible'] else 'INFEASIBLE'})")
    for k, route in enumerate(out["routes"], 1):
        print(f"  route {k}: {' '.join(_shown_stop(c) for c in route)}")
    for u in out["unassigned"]:
        print(f"  unassigned {u['job'] if 'job' in u else 'shipment ' + str(u['shipment'])}: {u['reason']}")


def _shown_stop(stop: Any) -> str:
    """A `solve --json` stop in the text output: `12`, `pickup 20`, `delivery 21`."""
    return " ".join(f"{kind} {label}" for kind, label in stop.items()) if isinstance(stop, dict) else str(stop)


def cmd_demo(args: argparse.Namespace) -> None:
    from api.demo import run_demo

    run_demo(orders=args.orders, seed=args.seed, time_limit=args.time_limit, echo=print)


def cmd_allocate(args: argparse.Namespace) -> None:
    from api.allocate import allocations_json, allocations_table, run_allocate

    allocations = run_allocate(args.network, args.facilities, args.orders)
    print(json.dumps(allocations_json(allocations)) if args.json else allocations_table(allocations))


def cmd_schema(args: argparse.Namespace) -> None:
    from api import scenario_file, schemas

    print(scenario_file.json_schema_text() if args.file == "scenario" else schemas.json_schema_text(args.file), end="")


def _out_dir(text: str) -> Path:
    """An argparse type for `--out DIR`: a folder path, not empty (an empty one would be the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must name a folder, got {text!r}")
    return Path(text)


def ready_out(out: Path) -> Path:
    """Check, before any work is done, that the `--out` folder can be made and written in (a run that fails only
    when it writes would waste it): it is a folder or does not exist yet, and a file can be made in it or in its
    nearest existing parent (nothing is left behind). Raises CliError naming `--out`."""
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out}: is a file, not a folder")
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        if not parent.is_dir():
            raise NotADirectoryError(20, "Not a directory")
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        raise CliError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    return out


def cmd_simulate(args: argparse.Namespace) -> None:
    if (args.scenario is None) == (args.mdrp is None):
        raise CliError("simulate takes a SCENARIO file or --mdrp INSTANCE_DIR (one of them)")
    if args.mdrp is not None:
        cmd_simulate_mdrp(args)
        return
    from api.simulate import configured, run_simulation

    if args.deliveries is not None:
        raise CliError("--deliveries is for --mdrp; a scenario run writes events.jsonl into --out")
    for flag, value in (("--known-early", args.known_early), ("--speed-factor", args.speed_factor),
                        ("--extra-couriers", args.extra_couriers)):
        if value is not None:
            raise CliError(f"{flag} is a what-if on an MDRP day (--mdrp); a scenario's knobs go through --set")
    scenario = configured(args.scenario, args.set, seed=args.seed, policy=args.policy)
    run_simulation(scenario, ready_out(args.out or SIMULATE_OUT), progress=not args.no_progress and not args.json,
                   echo=print, as_json=args.json)


TRUTH = {"true": True, "on": True, "1": True, "false": False, "off": False, "0": False}
"""How `--set` spells a yes/no knob."""


def _meal_knobs(pairs: list[str], policy: str) -> dict[str, Any]:
    """`--set KNOB=VALUE` for `--mdrp`: knobs of the rolling policies (`RollingHorizonOptions`), each parsed as the
    type of its default."""
    from dataclasses import fields

    from dispatch.errors import DispatchError
    from dispatch.meal import RollingHorizonOptions

    kinds = {f.name: type(f.default) for f in fields(RollingHorizonOptions)}
    knobs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = (part.strip() for part in pair.partition("="))
        if not sep or not key:
            raise CliError(f"--set {pair!r}: expected KNOB=VALUE")
        if policy == "greedy":
            raise CliError(f"--set {key}: the greedy policy has no knobs (--set is for rolling and rolling-stay)")
        if key not in kinds:
            raise CliError(f"--set {key}: not a knob of the rolling policy (one of {', '.join(sorted(kinds))})")
        if key in knobs:
            raise CliError(f"--set {key}: is given twice")
        kind = kinds[key]
        if kind is bool:
            if text.lower() not in TRUTH:
                raise CliError(f"--set {key}: expected true or false, got {text!r}")
            knobs[key] = TRUTH[text.lower()]
        else:
            try:
                knobs[key] = int(text) if kind is int else float(text)
            except ValueError:
                raise CliError(f"--set {key}: expected {'an integer' if kind is int else 'a number'}, got {text!r}"
                               ) from None
    try:  # each knob's range (`RollingHorizonOptions` checks every knob on its own), before the day is read
        RollingHorizonOptions(**knobs)
    except DispatchError as exc:
        raise CliError(f"--set {exc}") from None
    return knobs


SIMULATE_OUT = Path("out")
"""Where a scenario run writes when `simulate --out` is not given (the option defaults to None, so `--mdrp` can
refuse a `--out` it would ignore)."""
MDRP_MAX_EXTRA = 1000
"""The most couriers `simulate --mdrp --extra-couriers` adds (the shared days have 20 to 170)."""
MDRP_DAY_MIN = 1440
"""The instances' day in minutes: `--extra-couriers` spans and `--known-early` stay within it."""
MDRP_MAX_SPEED = 100.0
"""The largest `--speed-factor`."""


def _extra_couriers(text: str) -> tuple[int, tuple[int, int] | None]:
    """`N` or `N@FROM-TO` (minutes of the instance's day) for `simulate --mdrp --extra-couriers`."""
    count_text, at, span = text.partition("@")
    try:
        count = int(count_text)
        start, sep, end = span.partition("-")
        window = (int(start), int(end)) if at else None
        if at and not sep:
            raise ValueError
    except ValueError:
        raise CliError(f"--extra-couriers: expected N or N@FROM-TO in minutes (e.g. 3@1020-1140), got {text!r}"
                       ) from None
    if not 1 <= count <= MDRP_MAX_EXTRA:
        raise CliError(f"--extra-couriers: the number of couriers must be from 1 to {MDRP_MAX_EXTRA}, got {count}")
    if window is not None and not 0 <= window[0] < window[1] <= MDRP_DAY_MIN:
        raise CliError(f"--extra-couriers: the span must run forward within the day, minutes 0 to {MDRP_DAY_MIN}, "
                       f"got {span}")
    return count, window


def cmd_simulate_mdrp(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from dispatch.meal import MEAL_POLICIES, RollingHorizonMealPolicy, meal_policy
    from simulator.mdrp import (
        announced_early,
        busiest_window,
        compute_metrics,
        deliveries_csv,
        read_instance,
        simulate,
        sped_up,
        with_extra_couriers,
    )

    started = time.perf_counter()
    if args.policy not in (None, *MEAL_POLICIES):
        raise CliError(f"--policy for --mdrp must be one of {', '.join(MEAL_POLICIES)}, got {args.policy!r}")
    if args.seed is not None:
        raise CliError("--seed is for scenario runs; an MDRP day is replayed as recorded (nothing in it is random)")
    if args.out is not None:
        raise CliError("--out is for scenario runs; an MDRP day prints its metrics (--json for one object) and "
                       "writes only --deliveries FILE")
    name = args.policy or MEAL_POLICIES[0]
    knobs = _meal_knobs(args.set, name)
    extra = None if args.extra_couriers is None else _extra_couriers(args.extra_couriers)
    what_if: dict[str, Any] = {k: v for k, v in (("known_early_min", args.known_early),
                                                 ("speed_factor", args.speed_factor)) if v is not None}
    if (what_if or extra) and args.deliveries is not None:
        raise CliError("--deliveries writes the day as recorded, for mdrp_check.py; it cannot be combined with "
                       "--known-early, --speed-factor or --extra-couriers")
    if args.deliveries is not None and not args.deliveries.parent.is_dir():  # known before the day is replayed
        raise CliError(f"--deliveries: no folder {str(args.deliveries.parent)!r} to write {args.deliveries.name!r} in")
    instance = read_instance(args.mdrp)
    if extra is not None:
        count, window = extra
        start, end = window if window is not None else busiest_window(instance)
        instance = with_extra_couriers(instance, count, start, end)
        what_if.update(extra_couriers=count, extra_shift=[start, end],
                       extra_courier_hours=round(count * (end - start) / 60, 2))
    instance = sped_up(announced_early(instance, args.known_early or 0), args.speed_factor or 1.0)
    policy = meal_policy(name, instance.parameters.rules)
    if knobs and isinstance(policy, RollingHorizonMealPolicy):
        policy = replace(policy, options=replace(policy.options, **knobs))
    recorder = simulate(instance, policy)
    metrics = compute_metrics(instance, recorder)
    if args.deliveries is not None:
        try:
            args.deliveries.write_text(deliveries_csv(instance, recorder))
        except OSError as exc:
            raise CliError(f"--deliveries: cannot write {str(args.deliveries)!r}: {exc.strerror}") from None
    out = {"instance": instance.name, "policy": name, **({"set": knobs} if knobs else {}),
           **({"what_if": what_if} if what_if else {}), **metrics.as_dict(),
           "runtime_s": round(time.perf_counter() - started, 3)}
    if args.json:
        print(json.dumps(out))
        return
    changed = "".join(f", {k}={v}" for k, v in knobs.items())
    print(f"{instance.name} ({name}{changed}, {out['runtime_s']:.2f} s)")
    rows = {k: v for k, v in out.items() if k not in ("instance", "policy", "set", "what_if", "runtime_s")}
    width = max(map(len, rows))
    for key, value in rows.items():
        print(f"  {key:<{width}} {value}")


def cmd_sweep(args: argparse.Namespace) -> None:
    from api.sweep import run_sweep_cli

    run_sweep_cli(args.scenario, args.set, ready_out(args.out), seeds=args.seeds, seed_list=args.seed_list,
                  scheduler=args.scheduler, workers=args.workers, progress=not args.no_progress, echo=print)


def cmd_fleet_size(args: argparse.Namespace) -> None:
    from api.sweep import run_fleet_size_cli

    run_fleet_size_cli(args.scenario, args.target, seeds=args.seeds, scheduler=args.scheduler,
                       workers=args.workers, as_json=args.json, settings=args.set, policy=args.policy, echo=print)


def cmd_calibrate_quotes(args: argparse.Namespace) -> None:
    from api.sweep import run_calibrate_cli

    run_calibrate_cli(args.scenario, args.seeds, quantile=args.quantile, rounds=args.rounds, scheduler=args.scheduler,
                      workers=args.workers, as_json=args.json, progress=not args.no_progress, echo=print)


def _settings(args: argparse.Namespace) -> Any:
    """Settings from LASTMILE_* variables, overridden by the flags given."""
    from pydantic import ValidationError

    from api.settings import Settings

    flags = {"store": "store", "scenario": "scenario", "network": "network", "speed": "speed", "host": "host",
             "port": "port", "workers": "workers", "admission": "admission", "nice": "worker_nice",
             "idle": "worker_idle"}
    given = {setting: getattr(args, flag) for flag, setting in flags.items() if getattr(args, flag, None) is not None}
    try:
        settings = Settings(**given)
    except ValidationError as e:
        first = e.errors()[0]
        raise CliError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    if settings.scenario is None and settings.network is None:
        raise CliError("give --scenario FILE (facilities, stock, couriers and map) or --network OSMFILE (then PUT "
                       "/v1/facilities and /v1/couriers)")
    return settings


def shown_store(spec: str) -> str:
    """A store URL as printed: a password in it is masked (`redis://:***@host:6379/0`)."""
    from urllib.parse import urlsplit

    parts = urlsplit(spec)
    if parts.password is None:
        return spec
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _check_port(settings: Settings) -> None:
    """A port another process listens on is one line (exit 2) before anything starts, not a server that prints its
    address and then fails to bind."""
    import socket

    if not settings.port:
        return
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            raise CliError(f"--port {settings.port}: cannot listen on {settings.host}:{settings.port} "
                           f"({exc.strerror or exc})") from None


def _service(settings: Settings, deployment: Deployment) -> Service:
    """The service over the settings' store; a Redis server that does not answer is one line (exit 2), not a
    traceback."""
    import redis

    from api.service import Service

    try:
        return Service(settings, deployment)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise CliError(f"--store {shown_store(settings.store)}: cannot reach Redis ({exc})") from None


def cmd_serve(args: argparse.Namespace) -> None:
    import secrets

    import uvicorn
    from pydantic import SecretStr

    from api.app import create_app
    from api.service import Deployment

    if args.demo is not None:
        cmd_serve_demo(args)
        return
    if args.exit:
        raise CliError("--exit is for --demo (stop when the demo day is over)")
    settings = _settings(args)
    _check_port(settings)
    minted = settings.admin_key is None
    if minted:
        settings = settings.model_copy(update={"admin_key": SecretStr("lm_admin_" + secrets.token_urlsafe(24))})
    deployment = Deployment.load(settings.scenario, settings.network)
    service = _service(settings, deployment)
    if minted and settings.admin_key is not None:
        print(f"admin key (LASTMILE_ADMIN_KEY was not set): {settings.admin_key.get_secret_value()}", flush=True)
    print(f"lastmile: {deployment.name}, {len(deployment.stores)} stores, {len(deployment.couriers)} "
          f"couriers, store {shown_store(settings.store)}; API on http://{settings.host}:{settings.port} (docs at "
          f"/docs)", flush=True)
    uvicorn.run(create_app(service), host=settings.host, port=settings.port, log_level="warning")


def cmd_serve_demo(args: argparse.Namespace) -> None:
    from api.demo_live import run_live_demo

    if args.scenario is not None:
        raise CliError("--demo SCENARIO loads that scenario; leave out --scenario")
    if args.store not in (None, "memory"):
        raise CliError("--demo runs on the embedded store; leave out --store")
    if args.workers == 0:
        raise CliError("--demo needs a dispatch worker in this process; leave out --workers 0")
    args.scenario = args.demo
    args.store = "memory"
    settings = _settings(args)
    _check_port(settings)
    run_live_demo(settings, exit_after=args.exit, echo=lambda line: print(line, flush=True))


def cmd_worker(args: argparse.Namespace) -> None:
    import signal
    import threading

    from api.service import Deployment

    settings = _settings(args)
    if settings.store == "memory":
        raise CliError("worker: --store must be a redis:// URL (a memory store lives inside `lastmile serve`)")
    if settings.worker_nice:
        os.nice(settings.worker_nice)
    if settings.worker_idle:
        if not hasattr(os, "SCHED_IDLE") or not os.path.isdir("/proc/self/task"):
            raise CliError("worker: --idle needs Linux's SCHED_IDLE scheduling class; use --nice N here")
        for task in os.listdir("/proc/self/task"):  # the threads already running (a BLAS pool, ...); later ones
            os.sched_setscheduler(int(task), os.SCHED_IDLE, os.sched_param(0))  # take the class of their maker
    service = _service(settings.model_copy(update={"workers": 1}), Deployment.load(settings.scenario, settings.network))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"lastmile worker {service.workers[0].name} on {shown_store(settings.store)}", flush=True)
    try:
        service.workers[0].run(stop)
    except KeyboardInterrupt:
        stop.set()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CliError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lastmile", description="lastmile: last-mile delivery and dark-store dispatch engine.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("solve", help="solve a Solomon, VRPLIB or VROOM-shaped instance, minimising distance")
    p.add_argument("path", type=Path, help="Solomon .txt, VRPLIB .vrp or VROOM-shaped .json instance")
    p.add_argument("--time-limit", type=_bounded(float, MAX_TIME_LIMIT_S), default=None,
                   help="seconds to search, at most a day (default 10 when no --iterations)")
    p.add_argument("--iterations", type=_bounded(int, MAX_ITERATIONS), default=None,
                   help="iteration limit: the same seed and limit give the same routes")
    p.add_argument("--backend", choices=BACKEND_NAMES, default="auto")
    p.add_argument("--seed", type=_bounded(int, MAX_SEED, zero=True), default=0, help="0 to 2^31 - 1")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--vroom", action="store_true",
                     help="a VROOM .json document: print VROOM's output (routes with steps, summary, unassigned "
                          "tasks with reasons)")
    p.add_argument("--network", type=Path, default=None, metavar="OSMFILE",
                   help="a VROOM .json document with coordinates and no matrices: travel on this road map")
    p.add_argument("--max-snap-m", type=_positive(float), default=None, metavar="M",
                   help=f"with --network: how far a point may lie from the nearest road (default {SOLVE_MAX_SNAP_M:g})")
    p.set_defaults(run=cmd_solve)
    d = sub.add_parser("demo", help="route couriers from dark stores on the Porto centre map")
    d.add_argument("--orders", type=_bounded(int, MAX_DEMO_ORDERS), default=40,
                   help=f"orders to route, 1 to {MAX_DEMO_ORDERS} (default 40)")
    d.add_argument("--seed", type=_bounded(int, MAX_SEED, zero=True), default=7, help="0 to 2^31 - 1 (default 7)")
    d.add_argument("--time-limit", type=_bounded(float, MAX_TIME_LIMIT_S), default=5.0,
                   help="seconds each store's routes are searched, at most a day (default 5)")
    d.set_defaults(run=cmd_demo)
    a = sub.add_parser("allocate", help="allocate orders to dark stores, pickup points and lockers by road time")
    a.add_argument("--network", type=Path, required=True, metavar="OSMFILE", help="OSM extract (.osm, .osm.bz2)")
    a.add_argument("--facilities", type=Path, required=True, metavar="FACILITIES.json",
                   help='{"facilities": [...]}: dark stores, pickup points and lockers')
    a.add_argument("--orders", type=Path, required=True, metavar="ORDERS.json", help='{"orders": [...]}')
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.set_defaults(run=cmd_allocate)
    s = sub.add_parser("schema", help="print the JSON Schema of the allocate facilities or orders file, or of a "
                                      "scenario file")
    s.add_argument("file", choices=("facilities", "orders", "scenario"),
                   help="which file: of `lastmile allocate`, or a scenario (TOML, as parsed)")
    s.set_defaults(run=cmd_schema)
    m = sub.add_parser("simulate", help="simulate a scenario day (KPIs, events, report) or a Grubhub MDRP day")
    m.add_argument("scenario", type=Path, nargs="?", default=None, metavar="SCENARIO",
                   help="scenario file (.toml), e.g. scenarios/porto-centre-day.toml")
    m.add_argument("--out", type=_out_dir, default=None, metavar="DIR",
                   help="where a scenario run writes kpis.json, events.jsonl, couriers.json, report.html (default out)")
    m.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change a knob of the scenario, e.g. fleet.bike=30, policy.hold_s=120; with --mdrp a knob "
                        "of the rolling policy, e.g. urgency_weight=1.0 (repeatable)")
    m.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    m.add_argument("--no-progress", action="store_true", help="no progress bar")
    m.add_argument("--mdrp", type=Path, default=None, metavar="INSTANCE_DIR",
                   help="folder with orders.txt, couriers.txt, restaurants.txt, instance_parameters.txt")
    m.add_argument("--policy", default=None,
                   help="scenario: greedy, batch or reoptimize (default: the scenario's); --mdrp: rolling "
                        "(rolling-horizon bundling and matching, idle couriers ride toward expected work; the "
                        "default), rolling-stay (the same matching, couriers wait where they last stopped: the paper's "
                        "setting) or greedy (nearest courier per order at once: the paper's naive baseline)")
    m.add_argument("--json", action="store_true", help="print one JSON object")
    m.add_argument("--deliveries", type=Path, default=None, metavar="FILE",
                   help="write every drop-off (those past the maximum click-to-door too, which count as "
                        "undelivered) as CSV order,placement_time,ready_time,pickup_time,dropoff_time,courier")
    m.add_argument("--known-early", type=_bounded(int, MDRP_DAY_MIN, zero=True), default=None, metavar="MIN",
                   help="--mdrp what-if: every order known MIN minutes before it is placed (foresight no live "
                        "policy has; the excess and undelivered share compare with the day as recorded)")
    m.add_argument("--speed-factor", type=_bounded(float, MDRP_MAX_SPEED), default=None, metavar="X",
                   help="--mdrp what-if: couriers ride X times as fast (e.g. 1.05; at most 100)")
    m.add_argument("--extra-couriers", default=None, metavar="N[@FROM-TO]",
                   help="--mdrp what-if: N more couriers on shift from minute FROM to TO (default: the day's "
                        "busiest two hours of orders placed), each starting at a restaurant busy then")
    m.set_defaults(run=cmd_simulate)
    w = sub.add_parser("sweep", help="run a what-if grid of a scenario (--set KEY=V1,V2 ...) on Dask; CSV and plots")
    w.add_argument("scenario", type=Path, metavar="SCENARIO", help="scenario file (.toml)")
    w.add_argument("--set", action="append", default=[], metavar="KEY=V1,V2",
                   help="a knob and its values, e.g. fleet.bike=10,20,30 or policy=greedy,batch (repeatable)")
    seeds = w.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=_positive(int), default=None, metavar="N",
                       help="N seeds per combination, from the scenario's own (default 1)")
    seeds.add_argument("--seed-list", default=None, metavar="S1,S2", help="these seeds per combination")
    w.add_argument("--out", type=_out_dir, default=Path("out/sweep"), metavar="DIR",
                   help="where results.csv and kpi_vs_<knob>.png go (default out/sweep)")
    w.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a local cluster)")
    w.add_argument("--workers", type=_positive(int), default=2, help="local worker processes (default 2)")
    w.add_argument("--no-progress", action="store_true", help="no progress bar")
    w.set_defaults(run=cmd_sweep)
    f = sub.add_parser("fleet-size", help="the fewest couriers per shift meeting a KPI target, by simulation")
    f.add_argument("scenario", type=Path, metavar="SCENARIO", help="scenario file (.toml)")
    f.add_argument("--target", required=True, metavar="METRIC=VALUE",
                   help="e.g. on_time_rate=0.95 (or on_time=0.95); times (*_min) and open_at_end are met at <= VALUE; "
                        "a metric more couriers do not improve (utilisation, costs) is refused")
    f.add_argument("--seeds", type=_positive(int), default=1, metavar="N",
                   help="average each evaluation over N seeds from the scenario's own (default 1)")
    f.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change a knob of the scenario first, as in simulate (repeatable)")
    f.add_argument("--policy", default=None,
                   help="greedy, batch or reoptimize (default: the scenario's; batch searches fastest)")
    f.add_argument("--scheduler", default=None, metavar="ADDRESS", help="run the seeds on this Dask scheduler")
    f.add_argument("--workers", type=_positive(int), default=1,
                   help="1 (default): simulate here; more: a local Dask cluster running the seeds at once")
    f.add_argument("--json", action="store_true", help="print one JSON object")
    f.set_defaults(run=cmd_fleet_size)
    c = sub.add_parser("calibrate-quotes", help="fit the express quote model of a scenario on simulated days "
                                                "(prints a [promise.express_model] table)")
    c.add_argument("scenario", type=Path, metavar="SCENARIO", help="scenario file (.toml)")
    c.add_argument("--seeds", required=True, metavar="S1,S2",
                   help="the days to fit on: seeds other than those you score the scenario on, e.g. 11,12,13")
    c.add_argument("--quantile", type=float, default=0.95,
                   help="share of orders to deliver by their quote (default 0.95)")
    c.add_argument("--rounds", type=_positive(int), default=2,
                   help="fit, then simulate under the fitted quotes and fit again, this many times in all (default 2, "
                        "at most 20: a dispatcher that keeps quotes plans differently under tighter ones)")
    c.add_argument("--scheduler", default=None, metavar="ADDRESS", help="a Dask scheduler (default: a local cluster)")
    c.add_argument("--workers", type=_positive(int), default=2, help="local worker processes (default 2)")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(run=cmd_calibrate_quotes)
    for name, helptext, run in (("serve", "run the live API (FastAPI) with its dispatch workers", cmd_serve),
                                ("worker", "run a dispatch worker against a Redis store", cmd_worker)):
        v = sub.add_parser(name, help=helptext)
        v.add_argument("--scenario", type=Path, default=None, metavar="FILE",
                       help="scenario whose facilities, stock and couriers are loaded (and map, unless --network)")
        v.add_argument("--network", type=Path, default=None, metavar="OSMFILE", help="OSM extract of the road map")
        v.add_argument("--store", default=None, metavar="memory|redis://HOST:PORT/DB",
                       help="live state: memory (embedded default) or Redis")
        v.add_argument("--speed", type=_positive(float), default=None, metavar="X",
                       help="service clock X times real time from the scenario's day start (default: wall clock)")
        if name == "serve":
            v.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
            v.add_argument("--port", type=int, default=None, help="port (default 8000)")
            v.add_argument("--workers", type=int, default=None, metavar="N",
                           help="dispatch worker threads in this process (default 1; 0 with `lastmile worker`)")
            v.add_argument("--admission", choices=("worker", "api"), default=None,
                           help="who admits a posted order: worker (201 once the worker placed it; the default) or "
                                "api (201 once this process allocated it and took its stock in the store)")
            v.add_argument("--demo", type=Path, default=None, metavar="SCENARIO",
                           help="live demo: serve SCENARIO's stores and couriers and drive its day through the API "
                                "over HTTP (orders posted, simulated courier apps); --speed defaults to a five-minute "
                                "day; prints the console URL, hourly KPIs and the day's KPIs, then serves until Ctrl-C")
            v.add_argument("--exit", action="store_true", help="with --demo: stop when the day is over")
        if name == "worker":
            v.add_argument("--nice", type=int, default=None, metavar="N",
                           help="lower this worker's CPU priority by N (0-19; default 0), so that API processes on "
                                "the same host keep the CPU when both are busy")
            v.add_argument("--idle", action="store_const", const=True, default=None,
                           help="run in Linux's SCHED_IDLE class: only on CPU that nothing else on the host wants "
                                "(API processes sharing the host keep their latency; the worker catches up when "
                                "they are idle)")
        v.set_defaults(run=run)
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
