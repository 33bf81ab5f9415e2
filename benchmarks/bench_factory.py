"""``create_session_manager``: a factory's manager vs a new ``MongoDBSessionManager`` per request.

A manager does no I/O when it is constructed, so the fair per-request measurement is construct +
first use + close, for both variants. First use is ``get_metadata()`` of a new session, or an
``Agent`` restoring a 10-message session. The per-request variant is the spec's "without factory":
``MongoDBSessionManager(session_id, connection_string=uri, ...)`` (its own client and loop thread).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

from pymongo import AsyncMongoClient, MongoClient
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel
from mongodb_session_manager.testing import LocalMongoServer

from ._common import (
    CommandCounter,
    ConnectionCounter,
    Context,
    Row,
    arepeat,
    per_op,
    relate,
    repeat,
    run_async,
    summarize,
)
from ._data import conversation

NAME = "factory"
GROUP = "create_session_manager"
COLLECTION = "sessions"
RESTORED_SESSION = "restore-me"


def run(ctx: Context) -> None:
    with ctx.mongodb(NAME) as (uri, database):
        _run(ctx, uri, database)
    if ctx.external_uri is None:
        _with_auth(ctx)


def _agent(manager: MongoDBSessionManager) -> Agent:
    return Agent(
        model=ScriptedModel(default_text="ok"), agent_id="assistant", session_manager=manager, callback_handler=None
    )


def _wait_for_pool(connections: ConnectionCounter, minimum: int, timeout: float = 3.0) -> None:
    """Let the pool's background filler reach minPoolSize, so it does not count as per-request connections."""
    deadline = time.monotonic() + timeout
    while connections.created < minimum and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)


def _run(ctx: Context, uri: str, database: str) -> None:
    quick = ctx.quick
    report = ctx.report
    commands = CommandCounter()
    connections = ConnectionCounter()
    factory = MongoDBSessionManagerFactory(
        uri, database_name=database, collection_name=COLLECTION, event_listeners=[commands, connections]
    )
    ids = itertools.count()
    try:
        # Seed the session restored by the "Agent restore" cases (10 messages).
        seed = factory.create_session_manager(RESTORED_SESSION)
        Agent(
            model=ScriptedModel(default_text="ok"),
            agent_id="assistant",
            messages=conversation(10),
            session_manager=seed,
            callback_handler=None,
        )
        seed.close()
        _wait_for_pool(connections, 10)

        # 1. create_session_manager alone (no I/O).
        with commands.measure() as sent:
            before = connections.created
            calls = 1000
            samples = repeat(
                lambda: factory.create_session_manager(f"new-{next(ids)}"),
                repeats=10 if quick else 40,
                inner=calls,
                warmup=1,
                budget=2 if quick else 5,
            )
            new_connections = connections.created - before
        count = (len(samples) + 1) * calls
        create_only = report.add(
            Row(
                GROUP,
                "factory.create_session_manager() alone",
                time=summarize(samples),
                commands=per_op(sum(sent.values()), count),
                notes={"new_connections": new_connections},
            )
        )

        # 2. per request: construct + get_metadata() of a new session + close.
        def factory_request() -> None:
            manager = factory.create_session_manager(f"req-{next(ids)}")
            manager.get_metadata()
            manager.close()

        factory_meta = _measure(
            report,
            "factory: create + get_metadata + close",
            factory_request,
            commands,
            connections,
            repeats=60 if quick else 300,
            budget=3 if quick else 10,
        )

        def factory_restore() -> None:
            manager = factory.create_session_manager(RESTORED_SESSION)
            _agent(manager)
            manager.close()

        factory_agent = _measure(
            report,
            "factory: create + Agent restore (10 msgs) + close",
            factory_restore,
            commands,
            connections,
            repeats=40 if quick else 200,
            budget=3 if quick else 10,
        )

        # The floors: the same find_one through a warm raw PyMongo client, sync and async.
        floor = _raw_floor(report, uri, database, ids, quick)
        async_floor = run_async(_raw_async_floor(report, uri, database, ids, quick))

        # 3. the same with a new client per request.
        client_commands = CommandCounter()
        client_connections = ConnectionCounter()
        phases: dict[str, list[float]] = {"construct": [], "first_use": [], "close": []}

        def per_request(first_use: str, **options: Any) -> None:
            t0 = time.perf_counter()
            manager = MongoDBSessionManager(
                f"req-{next(ids)}" if first_use == "metadata" else RESTORED_SESSION,
                connection_string=uri,
                database_name=database,
                collection_name=COLLECTION,
                event_listeners=[client_commands, client_connections],
                **options,
            )
            t1 = time.perf_counter()
            if first_use == "metadata":
                manager.get_metadata()
            else:
                _agent(manager)
            t2 = time.perf_counter()
            manager.close()
            t3 = time.perf_counter()
            phases["construct"].append(t1 - t0)
            phases["first_use"].append(t2 - t1)
            phases["close"].append(t3 - t2)

        client_repeats = 8 if quick else 40
        client_budget = 4 if quick else 15
        for phase in phases.values():
            phase.clear()
        client_meta = _measure(
            report,
            "new client: construct + get_metadata + close",
            lambda: per_request("metadata"),
            client_commands,
            client_connections,
            repeats=client_repeats,
            budget=client_budget,
            phases=phases,
        )
        for phase in phases.values():
            phase.clear()
        client_agent = _measure(
            report,
            "new client: construct + Agent restore (10 msgs) + close",
            lambda: per_request("agent"),
            client_commands,
            client_connections,
            repeats=client_repeats,
            budget=client_budget,
            phases=phases,
        )
        # Diagnosis: the library's default minPoolSize=10 makes every new client open pool connections in
        # the background; how much of the per-request cost is that?
        for phase in phases.values():
            phase.clear()
        client_min0 = _measure(
            report,
            "new client, minPoolSize=0: construct + get_metadata + close",
            lambda: per_request("metadata", minPoolSize=0),
            client_commands,
            client_connections,
            repeats=client_repeats,
            budget=client_budget,
            phases=phases,
        )
    finally:
        factory.close()

    for row in (factory_meta, floor, async_floor, create_only):
        relate(row, client_meta, "new client")
    relate(factory_agent, client_agent, "new client")
    relate(client_min0, client_meta, "new client")
    speedup = 1 / (factory_meta.ratio or float("inf"))
    speedup_agent = 1 / (factory_agent.ratio or float("inf"))
    new_conn = factory_meta.notes["new_connections_per_op"] + create_only.notes["new_connections"]
    report.target(
        "factory manager for a new session",
        "<= 1 round trip, no new connection",
        f"create: {create_only.commands:.0f} cmds; create+get_metadata+close: {factory_meta.commands:.2f} cmds, "
        f"{new_conn:g} new connections",
        (factory_meta.commands or 0) <= 1 and (create_only.commands or 0) <= 1 and new_conn == 0,
    )
    report.target(
        "factory vs per-request client",
        ">= 50x faster (construct + first use + close)",
        f"{speedup:.1f}x (get_metadata), {speedup_agent:.1f}x (Agent restore)",
        speedup >= 50,
    )


def _with_auth(ctx: Context) -> None:
    """Diagnosis: the get_metadata pair again on a server requiring SCRAM authentication, as production
    deployments do; a new client then also pays the SCRAM handshake. Not part of the verdict."""
    report = ctx.report
    server = LocalMongoServer(auth=True, users={"bench": "bench-password"})
    ctx.servers.append(server)
    try:
        server.start()
        uri = server.uri_with_credentials("bench")
        database = "bench_factory_auth"
        commands = CommandCounter()
        connections = ConnectionCounter()
        ids = itertools.count()
        with MongoDBSessionManagerFactory(
            uri, database_name=database, collection_name=COLLECTION, event_listeners=[commands, connections]
        ) as factory:

            def factory_request() -> None:
                manager = factory.create_session_manager(f"req-{next(ids)}")
                manager.get_metadata()
                manager.close()

            factory_request()
            _wait_for_pool(connections, 10)
            factory_row = _measure(
                report,
                "SCRAM auth, factory: create + get_metadata + close",
                factory_request,
                commands,
                connections,
                repeats=40 if ctx.quick else 200,
                budget=2 if ctx.quick else 6,
            )

        def per_request() -> None:
            manager = MongoDBSessionManager(
                f"req-{next(ids)}",
                connection_string=uri,
                database_name=database,
                collection_name=COLLECTION,
                event_listeners=[commands, connections],
            )
            manager.get_metadata()
            manager.close()

        client_row = _measure(
            report,
            "SCRAM auth, new client: construct + get_metadata + close",
            per_request,
            commands,
            connections,
            repeats=8 if ctx.quick else 30,
            budget=4 if ctx.quick else 12,
        )
        if relate(factory_row, client_row, "new client, auth"):
            for target in report.targets:
                if target.name == "factory vs per-request client":
                    target.measured += f"; with SCRAM auth {1 / (factory_row.ratio or float('inf')):.1f}x (diagnostic)"
    finally:
        server.stop()
        ctx.servers.remove(server)


def _measure(
    report: Any,
    case: str,
    operation: Any,
    commands: CommandCounter,
    connections: ConnectionCounter,
    *,
    repeats: int,
    budget: float,
    phases: dict[str, list[float]] | None = None,
) -> Row:
    operation()  # warm-up, not counted
    with commands.measure() as sent:
        before = connections.created
        samples = repeat(operation, repeats=repeats, warmup=0, budget=budget)
        created = connections.created - before
    notes: dict[str, Any] = {"new_connections_per_op": per_op(created, len(samples))}
    if phases:
        for name, values in phases.items():
            if values:
                notes[name] = f"{summarize(values[-len(samples) :]).median * 1e3:.2f}ms"
    notes["commands"] = {name: round(count / len(samples), 2) for name, count in sorted(sent.items())}
    return report.add(
        Row(
            GROUP,
            case,
            time=summarize(samples),
            commands=per_op(sum(sent.values()), len(samples)),
            notes=notes,
        )
    )


def _raw_floor(report: Any, uri: str, database: str, ids: Iterator[int], quick: bool) -> Row:
    raw_commands = CommandCounter()
    with MongoClient(uri, event_listeners=[raw_commands]) as raw_client:
        sessions = raw_client[database][COLLECTION]
        sessions.find_one({"_id": "warm-up"})
        with raw_commands.measure() as sent:
            samples = repeat(
                lambda: sessions.find_one({"_id": f"req-{next(ids)}"}, {"metadata": 1}),
                repeats=60 if quick else 300,
                warmup=0,
                budget=2 if quick else 5,
            )
    return report.add(
        Row(
            GROUP,
            "floor: raw PyMongo find_one (warm client)",
            time=summarize(samples),
            commands=per_op(sum(sent.values()), len(samples)),
        )
    )


async def _raw_async_floor(report: Any, uri: str, database: str, ids: Iterator[int], quick: bool) -> Row:
    raw_commands = CommandCounter()
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri, event_listeners=[raw_commands])
    try:
        sessions = client[database][COLLECTION]
        await sessions.find_one({"_id": "warm-up"})
        with raw_commands.measure() as sent:
            samples = await arepeat(
                lambda: sessions.find_one({"_id": f"req-{next(ids)}"}, {"metadata": 1}),
                repeats=60 if quick else 300,
                warmup=0,
                budget=2 if quick else 5,
            )
    finally:
        await client.close()
    return report.add(
        Row(
            GROUP,
            "floor: raw AsyncMongoClient find_one (awaited on its loop)",
            time=summarize(samples),
            commands=per_op(sum(sent.values()), len(samples)),
        )
    )
