"""Concurrent writers on one session and agent never overwrite each other (docs/concurrency.md).

* Messages: every writer's messages are stored, with gap-free ids, none lost or duplicated.
* Agent state: optimistic versioning; the second of two writers gets ``ConcurrentModificationError``
  and the stored state stays the first writer's.
* Creating the same new agent at once: both writers succeed, one restores the other's record.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from reliability_support import COLLECTION, SCRIPTS, first_text, stored_messages
from strands import Agent
from strands.agent.conversation_manager import NullConversationManager

from mongodb_session_manager import (
    AsyncMongoDBSessionManagerFactory,
    ConcurrentModificationError,
    MongoDBSessionManagerFactory,
)
from mongodb_session_manager.scripted_model import ScriptedModel

WRITER = [sys.executable, str(SCRIPTS / "concurrent_writer.py")]


def assert_every_writer_stored(db: Any, session_id: str, writers: list[str], turns: int) -> None:
    """All messages stored once, ids 0..n-1 without gaps, each writer's messages in its own order."""
    stored = stored_messages(db, session_id)
    total = len(writers) * turns * 2
    assert [document["message_id"] for document in stored] == list(range(total))
    texts = [first_text(document) for document in stored]
    expected = {f"{writer}-{kind}{turn}" for writer in writers for turn in range(turns) for kind in "qa"}
    assert Counter(texts) == Counter(expected), "a message was lost, duplicated or overwritten"
    for writer in writers:
        own = [text for text in texts if text is not None and text.startswith(f"{writer}-")]
        assert own == [f"{writer}-{kind}{turn}" for turn in range(turns) for kind in "qa"]


def test_two_processes_append_to_the_same_agent_without_losing_a_message(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    writers, turns = ["w1", "w2"], 12
    processes = [
        subprocess.Popen(
            [*WRITER, mongodb_uri, db_name, COLLECTION, "shared", writer, str(turns)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for writer in writers
    ]
    try:
        for process in processes:  # both imported and connected: start them together
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", process.communicate(timeout=30)[1]
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = [process.communicate(timeout=90) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (out, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err[-3000:]
        summary = json.loads(out.strip().splitlines()[-1])
        # A turn that had to wait for the other writer's turn continued from the stored conversation:
        # its agent holds the other writer's messages too.
        assert summary["restored"] + 2 * turns <= summary["in_memory"] <= len(writers) * turns * 2

    assert_every_writer_stored(db, "shared", writers, turns)
    session = db[COLLECTION].find_one({"_id": "shared"})
    assert [record["agent_id"] for record in session["agents"]] == ["default"]  # created once


@pytest.mark.anyio
async def test_twenty_tasks_append_to_the_same_agent_without_losing_a_message(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    writers, turns = [f"t{index:02d}" for index in range(20)], 2
    async with AsyncMongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as f:
        # Every task preloads the still-empty session: all twenty create the same new agent at once.
        managers = await asyncio.gather(*(f.create_session_manager("crowded", preload=True) for _ in writers))
        agents = [
            Agent(
                model=ScriptedModel([f"{writer}-a{turn}" for turn in range(turns)]),
                session_manager=manager,
                conversation_manager=NullConversationManager(),
                callback_handler=None,
            )
            for writer, manager in zip(writers, managers, strict=True)
        ]

        async def run(writer: str, agent: Agent) -> None:
            for turn in range(turns):
                await agent.invoke_async(f"{writer}-q{turn}")

        await asyncio.gather(*(run(writer, agent) for writer, agent in zip(writers, agents, strict=True)))

        assert_every_writer_stored(db, "crowded", writers, turns)
        session = db[COLLECTION].find_one({"_id": "crowded"})
        assert [record["agent_id"] for record in session["agents"]] == ["default"]
        restored = Agent(
            model=ScriptedModel([]),
            session_manager=await f.create_session_manager("crowded", preload=True),
            conversation_manager=NullConversationManager(),
            callback_handler=None,
        )
        assert len(restored.messages) == len(writers) * turns * 2


def test_second_agent_state_writer_gets_concurrent_modification_error(
    factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    first_manager, second_manager = factory.create_session_manager("st"), factory.create_session_manager("st")
    first = Agent(model=ScriptedModel(["hello"]), state={"owner": None}, session_manager=first_manager)
    first("hi")
    # A second writer restores the same agent (same stored version), then both change its state.
    second = Agent(model=ScriptedModel(["hello again"]), session_manager=second_manager)
    assert second.state.get() == {"owner": None}

    first.state.set("owner", "first")
    first_manager.sync_agent(first)
    second.state.set("owner", "second")
    with pytest.raises(ConcurrentModificationError, match="changed by another writer"):
        second_manager.sync_agent(second)

    stored = db[COLLECTION].find_one({"_id": "st"})["agents"][0]
    assert stored["state"] == {"owner": "first"}, "last write won silently"
    # Through a turn: the second writer's turn fails on its state write; its messages are still appended.
    with pytest.raises(ConcurrentModificationError):
        second("and now?")
    assert db[COLLECTION].find_one({"_id": "st"})["agents"][0]["state"] == {"owner": "first"}

    # The documented recovery: a new manager restores the current state, and its write succeeds.
    retry = Agent(model=ScriptedModel(["ok"]), session_manager=factory.create_session_manager("st"))
    assert retry.state.get() == {"owner": "first"}
    retry.state.set("owner", "second")
    retry("retry")
    assert db[COLLECTION].find_one({"_id": "st"})["agents"][0]["state"] == {"owner": "second"}
    ids = [document["message_id"] for document in stored_messages(db, "st")]
    assert ids == list(range(len(ids)))


@pytest.mark.anyio
async def test_of_two_concurrent_state_writers_exactly_one_wins(mongodb_uri: str, db_name: str, db: Any) -> None:
    async with AsyncMongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as f:
        creator = Agent(
            model=ScriptedModel(["x"]),
            state={"n": 0},
            session_manager=await f.create_session_manager("race", preload=True),
        )
        await creator.invoke_async("start")
        for round_ in range(5):
            managers = [await f.create_session_manager("race", preload=True) for _ in range(2)]
            agents = [Agent(model=ScriptedModel([]), session_manager=manager) for manager in managers]
            for index, agent in enumerate(agents):
                agent.state.set("n", f"{round_}-{index}")
            outcomes = await asyncio.gather(
                *(manager.sync_agent_async(agent) for manager, agent in zip(managers, agents, strict=True)),
                return_exceptions=True,
            )
            winners = [index for index, outcome in enumerate(outcomes) if outcome is None]
            losers = [outcome for outcome in outcomes if isinstance(outcome, ConcurrentModificationError)]
            assert len(winners) == 1, outcomes
            assert len(losers) == 1, outcomes
            stored = db[COLLECTION].find_one({"_id": "race"})["agents"][0]["state"]
            assert stored == {"n": f"{round_}-{winners[0]}"}


@pytest.mark.anyio
async def test_two_writers_creating_the_same_new_agent_both_succeed(mongodb_uri: str, db_name: str, db: Any) -> None:
    async with AsyncMongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as f:
        # Not preloaded: both initialize concurrently (the loser of the create restores the winner's agent).
        for attempt in range(5):
            session_id = f"new-{attempt}"
            created = [await f.create_session_manager(session_id) for _ in range(2)]
            agents = [
                Agent(model=ScriptedModel([f"a{index}"]), state={"creator": index}, agent_id="bot")
                for index in range(2)
            ]
            await asyncio.gather(
                *(manager.initialize_async(agent) for manager, agent in zip(created, agents, strict=True))
            )
            session = db[COLLECTION].find_one({"_id": session_id})
            assert [record["agent_id"] for record in session["agents"]] == ["bot"]
            winner = session["agents"][0]["state"]["creator"]
            assert [agent.state.get() for agent in agents] == [{"creator": winner}] * 2  # one restored the other's

        # Preloaded (the FastAPI path): the record is created on the first write; the loser restores it.
        first, second = [await f.create_session_manager("new-preloaded", preload=True) for _ in range(2)]
        agent_a = Agent(model=ScriptedModel(["a"]), state={"creator": "a"}, session_manager=first)
        agent_b = Agent(model=ScriptedModel(["b"]), state={"creator": "b"}, session_manager=second)
        await agent_a.invoke_async("from a")
        await agent_b.invoke_async("from b")
        session = db[COLLECTION].find_one({"_id": "new-preloaded"})
        assert len(session["agents"]) == 1
        assert session["agents"][0]["state"] == {"creator": "a"}
        assert agent_b.state.get() == {"creator": "a"}, "the second writer did not restore the first's agent"
        assert [first_text(document) for document in stored_messages(db, "new-preloaded")] == [
            "from a",
            "a",
            "from b",
            "b",
        ]

        # A second writer that changed its state before its first write is refused, not merged silently.
        first, second = [await f.create_session_manager("new-changed", preload=True) for _ in range(2)]
        agent_a = Agent(model=ScriptedModel(["a"]), state={"creator": "a"}, session_manager=first)
        agent_b = Agent(model=ScriptedModel(["b"]), session_manager=second)
        agent_b.state.set("mine", True)
        await agent_a.invoke_async("from a")
        with pytest.raises(ConcurrentModificationError, match="created by another writer"):
            await agent_b.invoke_async("from b")
        session = db[COLLECTION].find_one({"_id": "new-changed"})
        assert session["agents"][0]["state"] == {"creator": "a"}
        assert [first_text(document) for document in stored_messages(db, "new-changed")] == ["from a", "a"]
