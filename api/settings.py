"""Settings of the live service (`lastmile serve`), read from `LASTMILE_*` environment variables.

Command-line flags of `lastmile serve` override them. Every setting is listed in docs/api.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """`LASTMILE_STORE=redis://127.0.0.1:6379/0`, `LASTMILE_ADMIN_KEY=...`, and so on."""

    model_config = SettingsConfigDict(env_prefix="LASTMILE_", extra="ignore")

    store: str = Field("memory", description="`memory` (embedded, one process) or a `redis://HOST:PORT/DB` URL")
    redis_prefix: str = Field("lastmile:", description="prefix of every Redis key of the deployment")
    admin_key: SecretStr | None = Field(None, description="bootstrap admin key (it mints the other keys)")
    scenario: Path | None = Field(None, description="scenario TOML whose facilities, stock and couriers are loaded")
    network: Path | None = Field(None, description="OSM file of the road network (default: the scenario's map)")
    speed: float | None = Field(None, gt=0, description="run the service clock this many times faster than real "
                                                        "time from the scenario's day start (default: wall clock)")
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="port to listen on")
    workers: int = Field(1, ge=0, description="dispatch workers in this process (0: run them with `lastmile "
                                               "worker`); one holds the lease, the others stand by")
    admission: Literal["worker", "api"] = Field(
        "worker", description="who admits a posted order (allocation, quote, stock and room reserved): `worker` "
                              "answers once the dispatch worker placed it (its courier plan included); `api` "
                              "answers as soon as this process admitted it and appended it with its counts "
                              "taken, and the worker dispatches it after (much higher throughput)")
    reply_timeout_s: float = Field(5.0, gt=0, le=55.0, description="how long a request waits for the dispatch "
                                   "worker before answering 202 (accepted, not yet applied); at most 55 s, under "
                                   "the Redis store's socket timeout")
    max_body_bytes: int = Field(1_000_000, gt=0, description="larger request bodies get 413")
    lease_ms: int = Field(5000, ge=100, description="a dead worker's lease expires after this long")
    snapshot_every: int = Field(1000, ge=1, description="commands between the worker's snapshots (at least: with "
                                                        "more than ten times as many open orders, one command per "
                                                        "ten of them; see `api.worker`)")
    worker_nice: int = Field(0, ge=0, le=19, description="`lastmile worker` lowers its CPU priority by this much "
                                                         "(`nice`): on a host it shares with API processes, 10 "
                                                         "leaves them the CPU when both are busy (the worker has "
                                                         "seconds to spare, a request milliseconds)")
    worker_idle: bool = Field(False, description="`lastmile worker` runs in Linux's SCHED_IDLE class: it gets only "
                                                 "the CPU that nothing else on the host wants, and a request that "
                                                 "wakes an API process takes the core from it at once (a nice "
                                                 "level only weighs the shares)")
    rate_per_s: float = Field(200.0, gt=0, description="requests per second allowed per API key (burst: 2 s worth)")
    webhooks: bool = Field(True, description="run the webhook sender in this process (one per deployment holds "
                                             "its lease, so any number of processes may)")
    track_rate_per_s: float = Field(1.0, gt=0, description="requests per second to `/v1/track` allowed per client "
                                                           "address (no key; burst: 2 s worth)")
    scheduler: str = Field("", description="Dask scheduler of planner jobs, e.g. tcp://10.0.0.5:8786 (empty: a "
                                           "LocalCluster started on the first job)")
    job_workers: int = Field(1, ge=1, description="worker processes of that LocalCluster (one run at a time each)")
    jobs_dir: Path | None = Field(None, description="where planner jobs write their files, a folder per job "
                                                    "(default: lastmile-jobs under the system temp folder)")
    scenarios_dir: Path = Field(Path("scenarios"), description="the scenario files planner jobs may name")
    max_jobs: int = Field(100, ge=1, description="queued and running planner jobs per API process; more get 429")
