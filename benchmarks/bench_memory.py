"""Memory: 10,000 live managers from one factory.

Measured in a fresh child process (``python -m benchmarks.bench_memory URI DATABASE COUNT``) so
that earlier benchmarks' freed memory does not hide the growth: the RSS delta (``VmRSS``) after
creating and holding the managers, and the Python allocations counted by ``tracemalloc`` for a second
batch. The baseline is the same number of plain ``dict`` session records (what an application
would hold anyway), measured the same way.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from typing import Any

from ._common import CommandCounter, ConnectionCounter, Context, Row, proc_status_kib

NAME = "memory"
GROUP = "memory"
MANAGERS = 10_000
BUDGET_MB = 50.0


def run(ctx: Context) -> None:
    with ctx.mongodb(NAME) as (uri, database):
        completed = subprocess.run(
            [sys.executable, "-m", f"{__package__}.bench_memory", uri, database, str(MANAGERS)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=os.getcwd(),
        )
    if completed.returncode != 0:
        raise RuntimeError(f"memory child failed ({completed.returncode}): {completed.stderr[-2000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    report = ctx.report
    count = result["count"]
    for key, case in (
        ("managers", f"{count:,} live managers from one factory"),
        ("dicts", f"baseline: {count:,} dicts"),
    ):
        figures = result[key]
        report.add(
            Row(
                GROUP,
                case + " (RSS delta)",
                value=figures["rss_delta_mib"],
                unit="MiB",
                commands=figures.get("commands"),
                notes={
                    "tracemalloc": f"{figures['traced_mib']:.2f}MiB",
                    "per_item": f"{figures['traced_mib'] * 1048576 / count:.0f}B",
                    "create_time": f"{figures['create_s'] * 1e3:.0f}ms",
                    **({"new_connections": figures["connections"]} if "connections" in figures else {}),
                },
            )
        )
    managers = result["managers"]
    rows = [row for row in report.rows if row.group == GROUP]
    if len(rows) >= 2 and rows[-1].value:
        rows[-2].ratio = (rows[-2].value or 0.0) / rows[-1].value
        rows[-2].baseline = "dicts (RSS)"
    growth = max(managers["rss_delta_mib"], managers["traced_mib"])
    report.target(
        f"{count:,} live managers",
        f"< {BUDGET_MB:.0f} MB",
        f"RSS +{managers['rss_delta_mib']:.1f} MiB, tracemalloc {managers['traced_mib']:.1f} MiB",
        growth * 1.048576 < BUDGET_MB,
    )


# -- the child process ------------------------------------------------------------------------------


def _rss_mib() -> float:
    return proc_status_kib(os.getpid(), "VmRSS") / 1024


def _measure(build: Any) -> dict[str, float]:
    gc.collect()
    before = _rss_mib()
    t0 = time.perf_counter()
    held = build()
    created = time.perf_counter() - t0
    gc.collect()
    rss_delta = _rss_mib() - before
    del held
    gc.collect()
    tracemalloc.start()
    held = build()
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] / 1048576
    tracemalloc.stop()
    del held
    gc.collect()
    return {"rss_delta_mib": round(rss_delta, 2), "traced_mib": round(traced, 2), "create_s": round(created, 4)}


def child(uri: str, database: str, count: int) -> dict[str, Any]:
    from mongodb_session_manager import MongoDBSessionManagerFactory

    commands = CommandCounter()
    connections = ConnectionCounter()
    factory = MongoDBSessionManagerFactory(
        uri, database_name=database, collection_name="sessions", event_listeners=[commands, connections]
    )
    try:
        warm = factory.create_session_manager("warm-up")
        warm.get_metadata()  # the client, its pool and the repository exist before measuring
        warm.close()
        deadline = time.monotonic() + 5  # let the pool's background filler reach minPoolSize (10)
        while connections.created < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        batch = iter(range(10 * count))
        sent_before, created_before = commands.total, connections.created

        def managers() -> list[Any]:
            return [factory.create_session_manager(f"session-{next(batch)}") for _ in range(count)]

        def dicts() -> list[Any]:
            return [{"session_id": f"session-{next(batch)}", "metadata": {}} for _ in range(count)]

        result = {"count": count, "managers": _measure(managers), "dicts": _measure(dicts)}
        result["managers"]["commands"] = commands.total - sent_before
        result["managers"]["connections"] = connections.created - created_before
        return result
    finally:
        factory.close()


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
