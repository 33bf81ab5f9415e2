"""HTTP throughput: 64 concurrent sessions through the FastAPI chat app, factory vs per-request client.

Each variant is served by uvicorn in its own process on 127.0.0.1 (``benchmarks._serve``), against
its own fresh MongoDB (local test server) or database, and driven by an ``httpx.AsyncClient`` load
generator in this process: 64 workers, one session each, each posting ``/chat/{session}`` in a loop
until the time is up (bounded in time and in count). Figures: successful requests/s, latency p50
and p99, errors, the server process's established connections to MongoDB (peak, sampled from
/proc/net/tcp every 100 ms), its peak RSS (``VmHWM``), and the MongoDB commands per request
(counted inside the server process). The factory variant is ``examples/fastapi_app.py`` unchanged;
the per-request variant is ``benchmarks/per_request_app.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import httpx

from ._common import Context, Row, cpu_seconds, open_connections_to, percentile, summarize

NAME = "http"
GROUP = "http, 64 sessions"
CONCURRENCY = 64
COLLECTION = "sessions"
VARIANTS = ("factory", "per-request")
# Diagnostic (full run only): the factory borrowing an AsyncMongoClient on uvicorn's own loop (no thread hop).
APP_LOOP = "factory-app-loop"
LABELS = {
    "factory": "factory (examples/fastapi_app.py)",
    "per-request": "per-request client",
    APP_LOOP: "factory, borrowed client on the app loop",
}


def run(ctx: Context) -> None:
    # Both variants run side by side (each with its own MongoDB and uvicorn process) and are driven in
    # alternating phases, so that load from elsewhere on the machine hits both alike.
    phases = 1 if ctx.quick else 3
    duration = 4.0 if ctx.quick else 7.0
    variants = VARIANTS if ctx.quick else (*VARIANTS, APP_LOOP)
    with contextlib.ExitStack() as stack:
        servers = {}
        for variant in variants:
            uri, database = stack.enter_context(ctx.mongodb(f"http_{variant.replace('-', '_')}"))
            servers[variant] = stack.enter_context(_Server(ctx, variant, uri, database))
        for phase in range(phases):
            for variant in variants:
                servers[variant].drive(duration, warm=phase == 0)
        results = {variant: servers[variant].result() for variant in variants}
    _report(ctx, results)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _mongo_port(uri: str) -> int | None:
    netloc = urlsplit(uri).netloc.rsplit("@", 1)[-1]
    if "," in netloc:
        return None
    return urlsplit(f"//{netloc}").port or 27017


class _Server:
    """One variant: its uvicorn process, and the figures of the phases driven so far."""

    def __init__(self, ctx: Context, variant: str, uri: str, database: str) -> None:
        self.ctx = ctx
        self.variant = variant
        self.uri = uri
        self.database = database
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.phases: list[dict[str, Any]] = []
        self.cpu = {"app": 0.0, "load_generator": 0.0, "mongodb": 0.0}

    def __enter__(self) -> _Server:
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-uvicorn-{self.variant}-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                f"{__package__}._serve",
                self.variant,
                self.uri,
                self.database,
                COLLECTION,
                str(self.port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=os.getcwd(),
        )
        try:
            _wait_until_up(self.process, self.base_url, self.log.name)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        _stop(self.process)
        self.log.close()
        if self.failed_requests():
            print(f"{self.variant}: failed requests; uvicorn log kept at {self.log.name}", file=sys.stderr)
            return
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)

    def failed_requests(self) -> int:
        return sum(
            sum(phase["transport_errors"].values()) + sum(phase["http_errors"].values()) for phase in self.phases
        )

    def drive(self, duration: float, *, warm: bool) -> None:
        server_cpu = self.ctx.cpu(self.uri)
        app_cpu = cpu_seconds(self.process.pid)
        own_cpu = cpu_seconds()
        self.phases.append(
            asyncio.run(_drive(self.base_url, self.process.pid, _mongo_port(self.uri), self.variant, duration, warm))
        )
        self.cpu["app"] += cpu_seconds(self.process.pid) - app_cpu
        self.cpu["load_generator"] += cpu_seconds() - own_cpu
        if server_cpu is not None:
            self.cpu["mongodb"] += (self.ctx.cpu(self.uri) or 0.0) - server_cpu

    def result(self) -> dict[str, Any]:
        """The phases' figures combined."""
        phases = self.phases
        merged: dict[str, Any] = {
            "requests": sum(phase["requests"] for phase in phases),
            "elapsed_s": sum(phase["elapsed_s"] for phase in phases),
            "latencies": [latency for phase in phases for latency in phase["latencies"]],
            "transport_errors": dict(sum((Counter(phase["transport_errors"]) for phase in phases), Counter())),
            "http_errors": dict(sum((Counter(phase["http_errors"]) for phase in phases), Counter())),
            "peak_connections": max((phase["peak_connections"] or 0 for phase in phases), default=None),
            "commands": sum(phase["commands"] for phase in phases),
            "by_name": dict(sum((Counter(phase["by_name"]) for phase in phases), Counter())),
            "connections_created": sum(phase["connections_created"] for phase in phases),
            "phase_rps": [round(phase["rps"], 1) for phase in phases],
            "mongodb_errors": dict(sum((Counter(phase["mongodb_errors"]) for phase in phases), Counter())),
            "error_log": [line for phase in phases for line in phase["error_log"]][:20],
        }
        merged["rps"] = merged["requests"] / merged["elapsed_s"] if merged["elapsed_s"] else 0.0
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            counters = client.get("/_bench/counters").json()
            if self.variant != "per-request":
                merged["health"] = client.get("/health").json()
        merged["peak_rss_mib"] = counters["vmhwm_kib"] / 1024
        requests = merged["requests"] or 1
        merged["cpu_ms_per_request"] = {
            name: round(seconds / requests * 1e3, 2)
            for name, seconds in self.cpu.items()
            if name != "mongodb" or self.uri in self.ctx.server_pids
        }
        return merged


def _wait_until_up(process: subprocess.Popen[bytes], base_url: str, log_path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                with open(log_path, encoding="utf-8", errors="replace") as log:
                    raise RuntimeError(f"uvicorn exited with {process.returncode}: {log.read()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/health").status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not answer /health within {timeout:g} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown runs the app's lifespan exit
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


async def _drive(
    base_url: str, app_pid: int, mongo_port: int | None, variant: str, duration: float, warm: bool
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    timeout = httpx.Timeout(30.0)
    max_requests = int(duration * 1000)  # a count bound far above what the machine can serve
    latencies: list[float] = []
    transport_errors: Counter[str] = Counter()
    http_errors: Counter[int] = Counter()
    issued = 0
    connection_samples: list[int] = []
    error_log: list[str] = []

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
        # Warm-up (not measured): one request per session, 8 at a time; creates the sessions.
        gate = asyncio.Semaphore(8)

        async def warm_up(index: int) -> None:
            async with gate:
                with contextlib.suppress(httpx.HTTPError):
                    await client.post(f"/chat/{variant}-{index}", json={"message": "hello"})

        if warm:
            await asyncio.gather(*(warm_up(index) for index in range(CONCURRENCY)))
        before = (await client.get("/_bench/counters")).json()

        stop_at = time.monotonic() + duration

        async def worker(index: int) -> None:
            nonlocal issued
            path = f"/chat/{variant}-{index}"
            while time.monotonic() < stop_at and issued < max_requests:
                issued += 1
                t0 = time.perf_counter()
                try:
                    response = await client.post(path, json={"message": "Where is my order?"})
                except httpx.TransportError as error:
                    transport_errors[type(error).__name__] += 1
                    error_log.append(
                        f"{type(error).__name__} after {time.perf_counter() - t0:.2f}s at "
                        f"+{time.monotonic() - stop_at + duration:.1f}s: {error!r}"
                    )
                    await asyncio.sleep(0.05)
                    continue
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    http_errors[response.status_code] += 1

        async def sample_connections() -> None:
            if mongo_port is None:
                return
            while True:
                connection_samples.append(open_connections_to(app_pid, mongo_port))
                await asyncio.sleep(0.1)

        sampler = asyncio.create_task(sample_connections())
        started = time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.gather(*(worker(index) for index in range(CONCURRENCY))), duration + 60)
        finally:
            elapsed = time.perf_counter() - started
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        after = (await client.get("/_bench/counters")).json()

    completed = len(latencies)
    return {
        "requests": completed,
        "elapsed_s": elapsed,
        "rps": completed / elapsed if elapsed else 0.0,
        "latencies": latencies,
        "transport_errors": dict(transport_errors),
        "http_errors": {str(code): count for code, count in http_errors.items()},
        "peak_connections": max(connection_samples, default=None),
        "final_connections": connection_samples[-1] if connection_samples else None,
        "commands": after["commands"] - before["commands"],
        "by_name": {
            name: count - before["by_name"].get(name, 0)
            for name, count in after["by_name"].items()
            if count - before["by_name"].get(name, 0)
        },
        "connections_created": after["connections_created"] - before["connections_created"],
        "mongodb_errors": {
            "checkout_failures": after["checkout_failures"] - before["checkout_failures"],
            "pool_clears": after["pool_clears"] - before["pool_clears"],
            "command_failures": sum(after["command_failures"].values()) - sum(before["command_failures"].values()),
        },
        "error_log": error_log[:20],
    }


def _report(ctx: Context, results: dict[str, dict[str, Any]]) -> None:
    report = ctx.report
    rows: dict[str, Row] = {}
    for variant, result in results.items():
        completed = result["requests"]
        latencies = result["latencies"]
        errors = sum(result["transport_errors"].values()) + sum(result["http_errors"].values())
        notes: dict[str, Any] = {
            "p50": f"{percentile(latencies, 0.5) * 1e3:.0f}ms" if latencies else "-",
            "p99": f"{percentile(latencies, 0.99) * 1e3:.0f}ms" if latencies else "-",
            "requests": completed,
            "errors": errors,
            "peak_mongo_conns": result["peak_connections"],
            "new_pool_conns_per_req": round(result["connections_created"] / completed, 2) if completed else None,
            "peak_rss": f"{result['peak_rss_mib']:.0f}MiB",
            "cpu_ms_per_req": result["cpu_ms_per_request"],
            "phase_rps": result["phase_rps"],
        }
        notes["mongodb_errors"] = sum(result["mongodb_errors"].values())
        if result["transport_errors"]:
            notes["transport_errors"] = result["transport_errors"]
            notes["error_log"] = result["error_log"]
            for line in result["error_log"]:
                print(f"{variant}: {line}", file=sys.stderr)
        if result["http_errors"]:
            notes["http_errors"] = result["http_errors"]
        if result.get("health", {}).get("mongodb", {}).get("pool_stats"):
            notes["pool_stats"] = result["health"]["mongodb"]["pool_stats"]
        label = LABELS[variant]
        rows[variant] = report.add(
            Row(
                GROUP,
                label + ": requests/s",
                value=round(result["rps"], 1),
                unit="req/s",
                commands=result["commands"] / completed if completed else None,
                notes=notes,
            )
        )
        rows[variant].notes["commands"] = {
            name: round(count / completed, 2) for name, count in sorted(result["by_name"].items()) if completed
        }
        if latencies:
            report.add(Row(GROUP, label + ": latency", time=summarize(latencies)))
    factory, per_request = results["factory"], results["per-request"]
    ratio = factory["rps"] / per_request["rps"] if per_request["rps"] else float("inf")
    rows["factory"].ratio = ratio
    rows["factory"].baseline = "per-request req/s"
    if APP_LOOP in results and factory["rps"]:
        rows[APP_LOOP].ratio = results[APP_LOOP]["rps"] / factory["rps"]
        rows[APP_LOOP].baseline = "factory req/s"
    factory_errors = sum(factory["transport_errors"].values()) + sum(factory["http_errors"].values())
    mongodb_errors = sum(factory["mongodb_errors"].values())
    pool_max = 100
    peak = factory["peak_connections"]
    bounded = peak is not None and peak <= pool_max + 2
    report.target(
        "HTTP throughput, 64 sessions",
        ">= 10x per-request client, 0 connection errors, bounded connections",
        f"{factory['rps']:.0f} vs {per_request['rps']:.0f} req/s = {ratio:.1f}x; failed requests {factory_errors}, "
        f"MongoDB connection/command errors {mongodb_errors}; "
        f"peak MongoDB connections {peak} (per-request: {per_request['peak_connections']})",
        ratio >= 10 and factory_errors == 0 and mongodb_errors == 0 and bounded,
    )
