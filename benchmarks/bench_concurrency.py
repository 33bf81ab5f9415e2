"""Concurrent sessions through the sync API: 16 threads, 5 text turns each, one session per thread.

The same workload runs with the factory's managers, with Strands' own ``FileSessionManager`` (in a
temporary directory) and without a session manager, in the same run. Each thread builds its manager
and agent first; the clock covers the turns only (all threads start together at a barrier).
"""

from __future__ import annotations

import contextlib
import itertools
import statistics
import tempfile
import threading
import time
from collections.abc import Callable

from strands import Agent
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.session import FileSessionManager
from strands.session.session_manager import SessionManager

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel

from ._common import CommandCounter, Context, Row, cpu_seconds, per_op, summarize

NAME = "concurrency"
GROUP = "16 threads x 5 turns"
THREADS = 16
TURNS = 5


def run(ctx: Context) -> None:
    with ctx.mongodb(NAME) as (uri, database):
        _run(ctx, uri, database)


def _workload(
    make_manager: Callable[[str], SessionManager | None], label: str, commands: CommandCounter | None = None
) -> tuple[float, int]:
    """Wall-clock seconds for THREADS threads doing TURNS text turns each, and the commands sent meanwhile."""
    # Every party always reaches `finished`, even after an error (which breaks `start`).
    start = threading.Barrier(THREADS + 1, timeout=120)
    finished = threading.Barrier(THREADS + 1, timeout=300)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        manager = None
        try:
            manager = make_manager(f"{label}-{index}")
            agent = Agent(
                model=ScriptedModel(default_text="Noted. (scripted reply)"),
                conversation_manager=SlidingWindowConversationManager(window_size=1000),
                session_manager=manager,
                callback_handler=None,
            )
            start.wait()
            for turn in range(TURNS):
                agent(f"message {turn}")
        except BaseException as error:
            errors.append(error)
            start.abort()
        finally:
            with contextlib.suppress(threading.BrokenBarrierError):
                finished.wait()
            close = getattr(manager, "close", None)
            if close is not None:
                close()

    threads = [threading.Thread(target=worker, args=(index,), daemon=True) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait()
    started = time.perf_counter()
    sent_before = commands.total if commands else 0
    with contextlib.suppress(threading.BrokenBarrierError):
        finished.wait()
    elapsed = time.perf_counter() - started
    sent = (commands.total if commands else 0) - sent_before
    for thread in threads:
        thread.join(30)
    if errors:
        raise errors[0]
    return elapsed, sent


def _run(ctx: Context, uri: str, database: str) -> None:
    report = ctx.report
    repeats = 1 if ctx.quick else 5
    commands = CommandCounter()
    factory = MongoDBSessionManagerFactory(
        uri, database_name=database, collection_name="sessions", event_listeners=[commands]
    )
    runs = itertools.count()
    timings: dict[str, list[float]] = {"mongo": [], "file": [], "none": []}
    # CPU seconds (this process, the server) spent during the measured workloads of each variant.
    cpu: dict[str, list[float]] = {key: [0.0, 0.0] for key in timings}
    sent_total = 0

    def measured(key: str, make_manager: Callable[[str], SessionManager | None], label: str) -> int:
        own, server = cpu_seconds(), ctx.cpu(uri)
        elapsed, sent = _workload(make_manager, label, commands if key == "mongo" else None)
        timings[key].append(elapsed)
        cpu[key][0] += cpu_seconds() - own
        if server is not None:
            cpu[key][1] += (ctx.cpu(uri) or 0.0) - server
        return sent

    try:
        with tempfile.TemporaryDirectory(prefix="bench-file-sessions-") as storage:
            # Warm-up: one small round of each, not measured.
            _workload(lambda sid: factory.create_session_manager(sid), f"warm-{next(runs)}")
            _workload(lambda sid: FileSessionManager(sid, storage_dir=storage), f"warm-{next(runs)}")
            for _ in range(repeats):
                # Interleaved, so that machine noise hits every variant alike.
                label = f"run-{next(runs)}"
                sent_total += measured("mongo", lambda sid: factory.create_session_manager(sid), label)
                measured("file", lambda sid: FileSessionManager(sid, storage_dir=storage), label)
                measured("none", lambda sid: None, label)
    finally:
        factory.close()

    turns = THREADS * TURNS
    rows: dict[str, Row] = {}
    for key, case in (
        ("none", "no session manager"),
        ("file", "Strands FileSessionManager"),
        ("mongo", "factory managers (sync API)"),
    ):
        stats = summarize(timings[key])
        rows[key] = report.add(
            Row(
                GROUP,
                case,
                value=turns / stats.median,
                unit="turns/s",
                notes={
                    "wall_median": f"{stats.median * 1e3:.0f}ms",
                    "wall_p95": f"{stats.p95 * 1e3:.0f}ms",
                    "repeats": stats.n,
                    "client_cpu_per_turn": f"{cpu[key][0] / (turns * stats.n) * 1e3:.2f}ms",
                    **(
                        {"server_cpu_per_turn": f"{cpu[key][1] / (turns * stats.n) * 1e3:.2f}ms"}
                        if key == "mongo" and uri in ctx.server_pids
                        else {}
                    ),
                },
            )
        )
    rows["mongo"].commands = per_op(sent_total, turns * repeats)
    for key in ("mongo", "none"):
        rows[key].ratio = _throughput_ratio(timings[key], timings["file"])
        rows[key].baseline = "FileSessionManager turns/s"
    report.target(
        "16 threads x 5 turns, sync API",
        "turns/s reported, ratio to FileSessionManager",
        f"{rows['mongo'].value:.0f} turns/s, {rows['mongo'].ratio:.2f}x FileSessionManager "
        f"({rows['file'].value:.0f} turns/s)",
        None,
    )


def _throughput_ratio(times: list[float], baseline: list[float]) -> float:
    return statistics.median(baseline) / statistics.median(times)
