"""Restoring an agent with 10, 1,000 and 10,000 stored messages, against a raw PyMongo ``find``.

Restore = ``factory.create_session_manager(id)`` + ``Agent(session_manager=manager)`` (which reads
the session and the messages) + ``manager.close()``. The floor is a raw PyMongo ``find`` of the
same message documents (same filter, sort, projection and batch size as the library) on a warm
sync ``MongoClient``. Two more rows split the restore: the library's message read alone
(``repository.list_messages``), and Strands building an ``Agent`` from the same messages without
any session manager. The cases of one size are timed round-robin, so that load from elsewhere on
the machine hits them alike.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel

from ._common import Case, CommandCounter, Context, Report, Row, interleave, relate, summarize
from ._data import conversation, lookup

NAME = "restore"
GROUP = "restore"
COLLECTION = "sessions"
AGENT_ID = "assistant"


def run(ctx: Context) -> None:
    with ctx.mongodb(NAME) as (uri, database):
        _run(ctx, uri, database)


def _agent(manager: MongoDBSessionManager | None, messages: Any = None) -> Agent:
    return Agent(
        model=ScriptedModel(default_text="ok"),
        agent_id=AGENT_ID,
        tools=[lookup],
        messages=messages,
        session_manager=manager,
        callback_handler=None,
    )


def _plan(quick: bool) -> list[tuple[int, int, float]]:
    """(messages, repeats, budget seconds) per size."""
    if quick:
        # 10,000 messages: only the restore and the floor, twice each (see _restore_size).
        return [(10, 10, 1.2), (1_000, 5, 2.5), (10_000, 2, 4.0)]
    return [(10, 60, 6.0), (1_000, 25, 15.0), (10_000, 7, 40.0)]


def _run(ctx: Context, uri: str, database: str) -> None:
    report = ctx.report
    commands = CommandCounter()
    factory = MongoDBSessionManagerFactory(
        uri, database_name=database, collection_name=COLLECTION, event_listeners=[commands]
    )
    raw_commands = CommandCounter()
    raw = MongoClient(uri, event_listeners=[raw_commands])
    raw_messages = raw[database][COLLECTION + ".messages"]
    try:
        for size, repeats, budget in _plan(ctx.quick):
            session_id = f"restore-{size}"
            seeded_at = time.perf_counter()
            seed = factory.create_session_manager(session_id)
            _agent(seed, conversation(size))
            seed.close()
            seed_seconds = time.perf_counter() - seeded_at
            brief = ctx.quick and size >= 10_000
            row = _restore_size(
                report, factory, commands, raw_messages, raw_commands, session_id, size, repeats, budget, brief
            )
            row.notes["seed_s"] = round(seed_seconds, 2)
    finally:
        raw.close()
        factory.close()


def _restore_size(
    report: Report,
    factory: MongoDBSessionManagerFactory,
    commands: CommandCounter,
    raw_messages: Any,
    raw_commands: CommandCounter,
    session_id: str,
    size: int,
    repeats: int,
    budget: float,
    brief: bool,
) -> Row:
    """Measure one size, the cases round-robin; returns the library's restore row.

    ``brief``: only the restore and the floor, no warm-up.
    """
    group = f"{GROUP} {size:,} msgs"
    restored: list[int] = []

    def restore() -> None:
        manager = factory.create_session_manager(session_id)
        agent = _agent(manager)
        restored.append(len(agent.messages))
        manager.close()

    def floor() -> None:
        cursor = raw_messages.find(
            {"session_id": session_id, "agent_id": AGENT_ID},
            {"_id": 0},
            sort=[("session_id", 1), ("agent_id", 1), ("message_id", 1)],
            batch_size=100_000,
        )
        restored.append(len(list(cursor)))

    # The awaited path (what the FastAPI dependency does): load_async, then Agent(...) without I/O; run
    # on one event loop of this thread, kept for all the calls.
    loop = asyncio.new_event_loop()

    async def restore_async() -> None:
        manager = factory.create_session_manager(session_id)
        await manager.load_async()
        agent = _agent(manager)
        restored.append(len(agent.messages))
        await manager.close_async()

    # Where the time goes: the library's message read alone, and Strands' Agent construction alone.
    probe = factory.create_session_manager(session_id)
    runtime = probe.repository.runtime

    def list_messages() -> None:
        restored.append(len(runtime.run_blocking(probe.repository.list_messages, session_id, AGENT_ID)))

    listed = runtime.run_blocking(probe.repository.list_messages, session_id, AGENT_ID)
    messages = [message.to_message() for message in listed]

    cases = [
        Case("library restore (sync Agent init)", restore, commands),
        Case("floor: raw PyMongo find", floor, raw_commands),
    ]
    if not brief:
        cases += [
            Case(
                "library restore (await load_async + Agent)", lambda: loop.run_until_complete(restore_async()), commands
            ),
            Case("part: repository.list_messages (sync call)", list_messages, commands),
            Case("part: Agent(messages=...) without session manager", lambda: _agent(None, messages)),
        ]
    try:
        interleave(cases, repeats=repeats, warmup=0 if brief else 1, budget=budget)
    finally:
        probe.close()
        loop.close()
    assert all(count == size for count in restored), f"restored {sorted(set(restored))} instead of {size} messages"

    rows = []
    for case in cases:
        notes = {"commands": case.commands_by_name()} if case.commands is not None else {}
        rows.append(
            report.add(
                Row(group, case.name, time=summarize(case.samples), commands=case.commands_per_op(), notes=notes)
            )
        )
    restore_row, floor_row = rows[0], rows[1]
    for row in rows:
        if row is not floor_row:
            relate(row, floor_row, "raw find")
    if size == 1_000:
        ratio = restore_row.ratio or float("inf")
        report.target(
            "restore 1,000 messages",
            "<= 2 round trips, <= 1.5x raw find",
            f"{restore_row.commands:.0f} round trips, {ratio:.2f}x raw find",
            (restore_row.commands or 0) <= 2 and ratio <= 1.5,
        )
    return restore_row
