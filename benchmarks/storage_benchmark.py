"""``MongoDBStorage`` against Strands' ``LocalFileStorage`` on the same snapshot workload.

``python -m benchmarks.storage_benchmark [--sessions N] [--turns N] [--repeats N]``

The workload is what ``SnapshotSessionManager`` sends to its storage for ``--sessions`` agents
that each restore (nothing yet), run ``--turns`` turns (a tool call and a reply, ``snapshot_latest``
saved after every turn, an immutable checkpoint every 5th turn), then restore again, list and
restore their checkpoints and delete the session. It is recorded once from real agents (scripted
model, no network) and then measured three ways against each backend:

* ``replay, sequential``: the recorded storage calls, one after the other.
* ``replay, concurrent``: each session's calls in order, all sessions at once (``asyncio.gather``),
  as a server handling many sessions would issue them.
* ``agents end-to-end``: the real agents and ``SnapshotSessionManager`` again, on that backend.

It prints the median time of each over ``--repeats`` runs (the backends take turns within each
run) and the ratio MongoDB / local files (below 1: MongoDB faster). For scale, the replays also run
on a bare ``AsyncMongoClient`` issuing the same commands on the benchmark's own loop: the ratio
``MongoDBStorage`` / bare driver is the library's overhead (hop to the home loop, validation, locks).

Without ``MONGODB_URI`` a local test server (SecantusDB, a MongoDB wire-protocol server written for
tests, much slower than ``mongod``) is started and stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import builtins
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bson import Binary
from pymongo import AsyncMongoClient, MongoClient, ReturnDocument
from strands import Agent, tool
from strands.session import SnapshotSessionManager
from strands.storage import InMemoryStorage, LocalFileStorage, Storage
from strands.storage.storage import StorageSearchResult

from mongodb_session_manager.scripted_model import ScriptedModel, tool_call
from mongodb_session_manager.storage import MongoDBStorage
from mongodb_session_manager.testing import server_uri_from_env_or_start

CHECKPOINT_EVERY = 5
REPLY = "Here is what I found. " * 60  # ~1.3 KB per reply, so snapshots grow like a real conversation


@tool
def lookup(topic: str) -> str:
    """Look a topic up.

    Args:
        topic: What to look up.
    """
    return f"Notes about {topic}: " + "lorem ipsum " * 40


# -- the workload -----------------------------------------------------------------------------------


@dataclass
class Op:
    name: str  # "write" | "read" | "list" | "delete"
    key: str
    data: bytes = b""


@dataclass
class Recorder:
    """A Storage that records every call and serves it from memory."""

    inner: InMemoryStorage = field(default_factory=InMemoryStorage)
    ops: list[Op] = field(default_factory=list)

    async def write(self, key: str, data: bytes) -> None:
        self.ops.append(Op("write", key, data))
        await self.inner.write(key, data)

    async def read(self, key: str) -> bytes | None:
        self.ops.append(Op("read", key))
        return await self.inner.read(key)

    async def delete(self, key: str) -> None:
        self.ops.append(Op("delete", key))
        await self.inner.delete(key)

    async def list(self, query: str = "") -> builtins.list[str]:
        self.ops.append(Op("list", query))
        return await self.inner.list(query)

    async def search(self, query: str) -> builtins.list[StorageSearchResult]:
        return await self.inner.search(query)


class BareDriver:
    """The floor: the same MongoDB commands straight from an ``AsyncMongoClient`` on this loop.

    No hop to a home loop, no key validation, no GridFS branch or file clean-up; replay only.
    """

    def __init__(self, uri: str, database: str) -> None:
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
        self.collection = self.client[database]["bare_driver"]

    async def write(self, key: str, data: bytes) -> None:
        replacement = {"data": Binary(data), "gridfs_id": None, "size": len(data), "updated_at": time.time()}
        await self.collection.find_one_and_replace(
            {"_id": key}, replacement, {"gridfs_id": 1}, upsert=True, return_document=ReturnDocument.BEFORE
        )

    async def read(self, key: str) -> bytes | None:
        document = await self.collection.find_one({"_id": key}, {"data": 1, "gridfs_id": 1})
        return None if document is None else document["data"]

    async def delete(self, key: str) -> None:
        await self.collection.find_one_and_delete({"_id": key}, {"gridfs_id": 1})

    async def list(self, query: str = "") -> builtins.list[str]:
        bounds: dict[str, str] = {"$gte": query}
        if query:
            bounds["$lt"] = query[:-1] + chr(ord(query[-1]) + 1)
        cursor = self.collection.find({"_id": bounds}, {"_id": 1}, sort=[("_id", 1)])
        return [document["_id"] async for document in cursor]

    async def search(self, query: str) -> builtins.list[StorageSearchResult]:
        raise NotImplementedError


def session_id(index: int) -> str:
    return f"bench-{index:03d}"


def every_fifth_turn() -> Callable[..., bool]:
    turns = 0

    def trigger(**_: Any) -> bool:
        nonlocal turns
        turns += 1
        return turns % CHECKPOINT_EVERY == 0

    return trigger


def new_agent(storage: Storage, session: str, turns: int) -> tuple[Agent, SnapshotSessionManager]:
    script = []
    for turn in range(turns):
        script += [tool_call("lookup", {"topic": f"topic {turn}"}, tool_use_id=f"t{turn}"), REPLY]
    manager = SnapshotSessionManager(session, storage=storage, snapshot_trigger=every_fifth_turn())
    agent = Agent(
        model=ScriptedModel(script, default_text=None),
        tools=[lookup],
        agent_id="assistant",
        system_prompt="You are a research assistant.",
        session_manager=manager,
        callback_handler=None,
    )
    return agent, manager


async def run_session(storage: Storage, session: str, turns: int) -> None:
    """One session's life: create (restore finds nothing), converse, restore, time-travel, delete."""
    agent, _ = await asyncio.to_thread(new_agent, storage, session, turns)  # Agent() restores synchronously
    for turn in range(turns):
        await agent.invoke_async(f"Question {turn}?")
    restored, manager = await asyncio.to_thread(new_agent, storage, session, 0)
    ids = await manager.list_snapshot_ids(restored)
    await manager.restore_snapshot(restored, snapshot_id=ids[0])
    await manager.delete_session()


async def record(sessions: int, turns: int) -> list[list[Op]]:
    """The storage calls of each session, recorded from real agents."""
    recorders = [Recorder() for _ in range(sessions)]
    for index, recorder in enumerate(recorders):
        await run_session(recorder, session_id(index), turns)
    return [recorder.ops for recorder in recorders]


async def replay(storage: Storage, ops: list[Op]) -> None:
    for op in ops:
        if op.name == "write":
            await storage.write(op.key, op.data)
        elif op.name == "read":
            await storage.read(op.key)
        elif op.name == "list":
            await storage.list(op.key)
        else:
            await storage.delete(op.key)


# -- measuring --------------------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    storage: Storage
    reset: Callable[[], Awaitable[None]]
    agents: bool = True  # whether the end-to-end agent phase can run on it
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def median(self, phase: str) -> float | None:
        samples = self.seconds.get(phase)
        return statistics.median(samples) if samples else None


PHASES = ("replay, sequential", "replay, concurrent", "agents end-to-end")


async def run_phase(phase: str, backend: Backend, workload: list[list[Op]], args: argparse.Namespace) -> None:
    storage = backend.storage
    if phase == "replay, sequential":
        await replay(storage, [op for ops in workload for op in ops])
    elif phase == "replay, concurrent":
        await asyncio.gather(*(replay(storage, ops) for ops in workload))
    else:
        await asyncio.gather(*(run_session(storage, session_id(i), args.turns) for i in range(args.sessions)))


async def measure(backends: list[Backend], workload: list[list[Op]], args: argparse.Namespace) -> None:
    """Median of ``args.repeats`` runs per backend and phase; the backends take turns within each
    repeat, so that a machine busy with something else slows them all alike."""
    for backend in backends:  # warm-up: connections, collection creation, imports
        await replay(backend.storage, [op for ops in workload for op in ops])
    for phase in PHASES:
        for _ in range(args.repeats):
            for backend in backends:
                if phase == "agents end-to-end" and not backend.agents:
                    continue
                await backend.reset()
                started = time.perf_counter()
                await run_phase(phase, backend, workload, args)
                backend.seconds.setdefault(phase, []).append(time.perf_counter() - started)
        print(f"  measured {phase}", file=sys.stderr, flush=True)


async def main_async(args: argparse.Namespace) -> None:
    workload = await record(args.sessions, args.turns)
    everything = [op for ops in workload for op in ops]
    counts = {name: sum(1 for op in everything if op.name == name) for name in ("write", "read", "list", "delete")}
    written = [len(op.data) for op in everything if op.name == "write"]

    uri, server = server_uri_from_env_or_start()
    directory = tempfile.mkdtemp(prefix="storage-bench-")
    database = f"storage_bench_{secrets.token_hex(4)}"
    mongo = MongoDBStorage(uri, database_name=database)
    bare = BareDriver(uri, database)
    try:
        local = LocalFileStorage(directory)

        async def reset_local() -> None:
            shutil.rmtree(directory, ignore_errors=True)
            os.makedirs(directory)

        async def reset_mongo() -> None:
            for key in await mongo.list(""):
                await mongo.delete(key)

        async def reset_bare() -> None:
            await bare.collection.delete_many({})

        backends = [
            Backend("LocalFileStorage", local, reset_local),
            Backend("MongoDBStorage", mongo, reset_mongo),
            Backend("bare AsyncMongoClient", bare, reset_bare, agents=False),
        ]
        await measure(backends, workload, args)
    finally:
        await mongo.aclose()
        await bare.client.close()
        shutil.rmtree(directory, ignore_errors=True)
        with MongoClient(uri) as client:
            client.drop_database(database)
        if server is not None:
            server.stop()

    print()
    print(
        f"Snapshot workload: {args.sessions} sessions x {args.turns} turns "
        f"(checkpoint every {CHECKPOINT_EVERY} turns), recorded from SnapshotSessionManager agents"
    )
    print(
        f"  {len(everything)} storage calls: {counts['write']} writes ({sum(written) / 2**20:.1f} MiB, "
        f"median {statistics.median(written) / 1024:.1f} KiB, max {max(written) / 1024:.1f} KiB), "
        f"{counts['read']} reads, {counts['list']} lists, {counts['delete']} deletes"
    )
    print(
        f"  server: {'MONGODB_URI' if server is None else 'local test server (SecantusDB)'}; "
        f"files: a temporary directory under {tempfile.gettempdir()}"
    )
    print(f"  median of {args.repeats} runs\n")
    header = (
        f"{'phase':<20}{'LocalFileStorage':>18}{'MongoDBStorage':>16}{'ratio Mongo/Local':>19}"
        f"{'bare driver':>13}{'ratio Mongo/bare':>18}"
    )
    print(header)
    print("-" * len(header))
    for phase in PHASES:
        local_s, mongo_s, bare_s = (backend.median(phase) for backend in backends)
        assert local_s is not None
        assert mongo_s is not None
        bare_cells = (
            f"{bare_s * 1000:>10.1f} ms{mongo_s / bare_s:>17.2f}x" if bare_s is not None else f"{'-':>13}{'-':>18}"
        )
        print(f"{phase:<20}{local_s * 1000:>15.1f} ms{mongo_s * 1000:>13.1f} ms{mongo_s / local_s:>18.2f}x{bare_cells}")
    calls = len(everything)
    per_call = {backend.name: (backend.median("replay, sequential") or 0.0) / calls * 1e6 for backend in backends}
    print(
        "\nper storage call (sequential): " + ", ".join(f"{name} {micros:.0f} us" for name, micros in per_call.items())
    )
    print(
        "bare driver: the same commands from an AsyncMongoClient on the benchmark's own loop (no hop to a home\n"
        "loop, no key validation, no GridFS branch); the MongoDBStorage/bare ratio is the library's overhead."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.storage_benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20, help="concurrent sessions (default 20)")
    parser.add_argument("--turns", type=int, default=10, help="turns per session (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is shown (default 3)")
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
