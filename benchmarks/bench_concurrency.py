"""Concurrent sessions through the sync API: 16 threads, 5 text turns each, one session per thread.

The same workload runs with the factory's managers, with the PyPI peer ``strands-session-mongodb``
(its ``MongoDBSessionManager`` on one shared sync ``MongoClient``, same server), with Strands' own
``FileSessionManager`` (in a temporary directory) and without a session manager, in the same run.
Two more workloads give floors for the client CPU per persisted message, the same threads storing
as many message-sized documents as the turns persist: raw sync PyMongo ``insert_one``, and raw
``AsyncMongoClient.insert_one`` on one event-loop thread that every thread hands its insert to and
waits for (what any sync API over an async core pays at least: the async driver plus a hop to its
loop and back).
Each thread builds its manager and agent first; the clock covers the turns only (all threads start
together at a barrier).
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from pymongo import MongoClient
from strands import Agent
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.session import FileSessionManager
from strands.session.session_manager import SessionManager

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel

from ._common import AsyncClientThread, CommandCounter, Context, Row, cpu_seconds, per_op, summarize

NAME = "concurrency"
GROUP = "16 threads x 5 turns"
THREADS = 16
TURNS = 5
MESSAGES_PER_TURN = 2
PIPELINED_BY_DEFAULT = inspect.signature(MongoDBSessionManager).parameters["pipelined_writes"].default is True


def _variant(pipelined: bool) -> str:
    default = " (default)" if pipelined == PIPELINED_BY_DEFAULT else ""
    return f"factory managers, pipelined_writes={pipelined}{default}"


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
    # "mongo": pipelined_writes=False (each write awaited), "pipelined": pipelined_writes=True.
    timings: dict[str, list[float]] = {
        key: [] for key in ("mongo", "pipelined", "peer", "file", "none", "raw", "async_raw")
    }
    # CPU seconds (this process, the server) spent during the measured workloads of each variant.
    cpu: dict[str, list[float]] = {key: [0.0, 0.0] for key in timings}
    sent: dict[str, int] = {"mongo": 0, "pipelined": 0}

    def measured(key: str, make_manager: Callable[[str], SessionManager | None], label: str) -> None:
        own, server = cpu_seconds(), ctx.cpu(uri)
        elapsed, count = _workload(make_manager, label, commands if key in sent else None)
        timings[key].append(elapsed)
        cpu[key][0] += cpu_seconds() - own
        if server is not None:
            cpu[key][1] += (ctx.cpu(uri) or 0.0) - server
        if key in sent:
            sent[key] += count

    peer_client: MongoClient[Any] = MongoClient(uri)
    raw_collection = peer_client[database]["raw_inserts"]

    def peer(sid: str) -> SessionManager:
        from strands_session_mongodb import MongoDBSessionManager as PeerSessionManager

        return PeerSessionManager(sid, client=peer_client, database_name=database + "_peer")

    async_floor = AsyncClientThread(uri)
    async_collection = async_floor.client[database]["async_raw_inserts"]

    def async_insert_one(document: dict[str, Any]) -> None:
        async_floor.run(async_collection.insert_one(document))

    def raw_inserts(key: str, workload: Callable[[], float]) -> None:
        own, server = cpu_seconds(), ctx.cpu(uri)
        timings[key].append(workload())
        cpu[key][0] += cpu_seconds() - own
        if server is not None:
            cpu[key][1] += (ctx.cpu(uri) or 0.0) - server

    def awaited(sid: str) -> SessionManager:
        return factory.create_session_manager(sid, pipelined_writes=False)

    def pipelined(sid: str) -> SessionManager:
        return factory.create_session_manager(sid, pipelined_writes=True)

    try:
        with tempfile.TemporaryDirectory(prefix="bench-file-sessions-") as storage:
            # Warm-up: one small round of each, not measured.
            _workload(awaited, f"warm-{next(runs)}")
            _workload(pipelined, f"warm-{next(runs)}")
            _workload(peer, f"warm-{next(runs)}")
            _workload(lambda sid: FileSessionManager(sid, storage_dir=storage), f"warm-{next(runs)}")
            _raw_insert_workload(raw_collection.insert_one)
            _raw_insert_workload(async_insert_one)
            for _ in range(repeats):
                # Interleaved, so that machine noise hits every variant alike.
                label = f"run-{next(runs)}"
                measured("mongo", awaited, label)
                measured("pipelined", pipelined, label + "-p")
                measured("peer", peer, label)
                measured("file", lambda sid: FileSessionManager(sid, storage_dir=storage), label)
                measured("none", lambda sid: None, label)
                raw_inserts("raw", lambda: _raw_insert_workload(raw_collection.insert_one))
                raw_inserts("async_raw", lambda: _raw_insert_workload(async_insert_one))
    finally:
        factory.close()
        peer_client.close()
        async_floor.close()

    turns = THREADS * TURNS
    rows: dict[str, Row] = {}
    for key, case in (
        ("none", "no session manager"),
        ("file", "Strands FileSessionManager"),
        ("peer", "strands-session-mongodb 0.2.0 (PyPI peer)"),
        ("mongo", _variant(False)),
        ("pipelined", _variant(True)),
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
                        if key in ("mongo", "pipelined", "peer") and uri in ctx.server_pids
                        else {}
                    ),
                },
            )
        )
    for key, count in sent.items():
        rows[key].commands = per_op(count, turns * repeats)
    for key in ("none", "peer"):
        rows[key].ratio = _throughput_ratio(timings[key], timings["file"])
        rows[key].baseline = "FileSessionManager turns/s"
    for key in ("mongo", "pipelined"):
        rows[key].ratio = _throughput_ratio(timings[key], timings["peer"])
        rows[key].baseline = "strands-session-mongodb turns/s"
        rows[key].notes["vs_file"] = f"{_throughput_ratio(timings[key], timings['file']):.2f}x"
    default = "pipelined" if PIPELINED_BY_DEFAULT else "mongo"

    # Client CPU per persisted message: the managers' CPU over the same turns without one, per message,
    # against raw inserts of as many documents from as many threads.
    messages = turns * MESSAGES_PER_TURN * repeats
    per_message = {key: (cpu[key][0] - cpu["none"][0]) / messages for key in ("mongo", "pipelined", "peer")}
    floors = {key: cpu[key][0] / messages for key in ("raw", "async_raw")}
    for key, case in (
        ("raw", "floor: raw sync PyMongo insert_one"),
        ("async_raw", "floor: raw AsyncMongoClient insert_one on one loop thread, each thread waiting for its own"),
    ):
        stats = summarize(timings[key])
        report.add(
            Row(
                GROUP,
                f"{case}, {THREADS} threads x {TURNS * MESSAGES_PER_TURN}",
                value=THREADS * TURNS * MESSAGES_PER_TURN / stats.median,
                unit="inserts/s",
                commands=1,
                notes={
                    "client_cpu_per_insert": f"{floors[key] * 1e3:.3f}ms",
                    **({"vs_sync": f"{floors[key] / floors['raw']:.2f}x"} if key == "async_raw" else {}),
                    "repeats": stats.n,
                },
            )
        )
    for key in ("mongo", "pipelined", "peer"):
        rows[key].notes["client_cpu_per_message"] = (
            f"{per_message[key] * 1e3:.3f}ms = {per_message[key] / floors['raw']:.2f}x raw insert_one, "
            f"{per_message[key] / floors['async_raw']:.2f}x the async floor"
        )
    other = "mongo" if default == "pipelined" else "pipelined"
    option = {"mongo": "pipelined_writes=False", "pipelined": "pipelined_writes=True"}
    report.target(
        "16 threads x 5 turns, sync API",
        ">= 1.3x strands-session-mongodb turns/s",
        f"default ({option[default]}) {rows[default].value:.0f} vs {rows['peer'].value:.0f} turns/s = "
        f"{rows[default].ratio or 0:.2f}x; {option[other]} {rows[other].value:.0f} turns/s = "
        f"{rows[other].ratio or 0:.2f}x (FileSessionManager {rows['file'].value:.0f} turns/s)",
        (rows[default].ratio or 0) >= 1.3,
    )
    report.target(
        "client CPU per persisted message, 16 threads",
        "<= 1.3x a raw sync PyMongo insert_one",
        f"{per_message[default] * 1e3:.3f} ms vs {floors['raw'] * 1e3:.3f} ms = "
        f"{per_message[default] / floors['raw']:.2f}x (peer: {per_message['peer'] / floors['raw']:.2f}x; "
        f"raw async insert_one behind a hop: {floors['async_raw'] / floors['raw']:.2f}x)",
        per_message[default] <= 1.3 * floors["raw"],
    )


def _raw_insert_workload(insert_one: Callable[[dict[str, Any]], Any]) -> float:
    """Wall-clock seconds for THREADS threads inserting TURNS * MESSAGES_PER_TURN message-sized documents each."""
    start = threading.Barrier(THREADS + 1, timeout=120)
    documents = [
        {"role": "user", "content": [{"text": f"message {index}"}], "seq": index}
        for index in range(TURNS * MESSAGES_PER_TURN)
    ]

    def worker() -> None:
        start.wait()
        for document in documents:
            insert_one(dict(document))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(120)
    return time.perf_counter() - started


def _throughput_ratio(times: list[float], baseline: list[float]) -> float:
    return statistics.median(baseline) / statistics.median(times)
