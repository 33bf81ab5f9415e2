"""Pipelined writes within an invocation (docs/sync-and-async.md): each write starts when its event
fires, the invocation waits for all of them before it returns, a failure fails the invocation with
a typed error, the agent-state versions stay in order, and nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent, tool
from strands.agent.conversation_manager import NullConversationManager
from strands.hooks import MessageAddedEvent
from strands.types.tools import ToolContext
from support import fail_point, unique_app, with_options

from mongodb_session_manager import (
    AsyncMongoDBSessionManagerFactory,
    DatabaseError,
    MongoDBSessionError,
    MongoDBSessionManagerFactory,
)
from mongodb_session_manager.scripted_model import ScriptedModel, tool_call
from mongodb_session_manager.testing import CommandRecorder

COLLECTION = "sessions"


@tool(context=True)
def count_visit(tool_context: ToolContext) -> str:
    """Count a visit in the agent's state."""
    state = tool_context.agent.state
    state.set("visits", (state.get("visits") or 0) + 1)
    return f"visit {state.get('visits')}"


def stored_texts(db: Any, session_id: str) -> list[tuple[int, str]]:
    """(message_id, role + first text or block kind) of the stored messages, in id order."""
    rows = []
    for document in db[COLLECTION + ".messages"].find({"session_id": session_id}).sort("message_id", 1):
        block = document["message"]["content"][0]
        label = block.get("text") or next(iter(block))
        rows.append((document["message_id"], f"{document['message']['role']}:{label}"))
    return rows


def tool_turn_model(*answers: str) -> ScriptedModel:
    model = ScriptedModel([])
    for answer in answers:
        model.add(tool_call("count_visit", {}), answer)
    return model


def test_a_tool_turn_costs_the_same_round_trips_pipelined_or_not(mongodb_uri: str, db_name: str, db: Any) -> None:
    counts = {}
    for pipelined in (True, False):
        commands = CommandRecorder(only={"insert", "update", "find", "findAndModify"})
        with MongoDBSessionManagerFactory(
            mongodb_uri, database_name=db_name, collection_name=COLLECTION, event_listeners=[commands]
        ) as factory:
            session_id = f"rt-{pipelined}"
            agent = Agent(
                model=tool_turn_model("first", "second"),
                tools=[count_visit],
                session_manager=factory.create_session_manager(session_id, pipelined_writes=pipelined),
                callback_handler=None,
            )
            commands.take()
            agent("visit")
            agent("visit again")
            counts[pipelined] = Counter(commands.take())
        # Acknowledged means stored: the invocation returned, so every message and the state are there.
        assert [label for _, label in stored_texts(db, session_id)] == [
            "user:visit",
            "assistant:toolUse",
            "user:toolResult",
            "assistant:first",
            "user:visit again",
            "assistant:toolUse",
            "user:toolResult",
            "assistant:second",
        ]
        record = db[COLLECTION].find_one({"_id": session_id})["agents"][0]
        assert record["state"] == {"visits": 2}
    assert counts[True] == counts[False]
    assert counts[True]["insert"] == 8


def test_state_versions_are_written_in_order(mongodb_uri: str, db_name: str, db: Any) -> None:
    """Each tool call changes the state; the pipelined state writes are chained, each checking the
    version the previous one wrote, so none is refused and the last one wins."""
    with MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as factory:
        model = ScriptedModel(
            [tool_call("count_visit", {}), tool_call("count_visit", {}), tool_call("count_visit", {})]
        )
        model.add("done")
        agent = Agent(
            model=model,
            tools=[count_visit],
            session_manager=factory.create_session_manager("versions", pipelined_writes=True),
            callback_handler=None,
        )
        version_before = db[COLLECTION].find_one({"_id": "versions"})["agents"][0].get("version", 0)
        agent("visit three times")
        record = db[COLLECTION].find_one({"_id": "versions"})["agents"][0]
        assert record["state"] == {"visits": 3}
        assert record["version"] > version_before
        # A new manager continues from that version: its state write is accepted.
        restored = Agent(
            model=tool_turn_model("again"),
            tools=[count_visit],
            session_manager=factory.create_session_manager("versions", pipelined_writes=True),
            callback_handler=None,
        )
        assert restored.state.get("visits") == 3
        restored("visit once more")
        assert db[COLLECTION].find_one({"_id": "versions"})["agents"][0]["state"] == {"visits": 4}


def test_a_failed_insert_mid_turn_fails_the_invocation_and_loses_nothing_acknowledged(
    mongodb_uri: str, db_name: str, db: Any, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    app = unique_app("pipeline-fail")
    with MongoDBSessionManagerFactory(
        with_options(mongodb_uri, f"appname={app}"), database_name=db_name, collection_name=COLLECTION
    ) as factory:
        agent = Agent(
            model=tool_turn_model("first", "second", "third"),
            tools=[count_visit],
            session_manager=factory.create_session_manager("failing", pipelined_writes=True),
            callback_handler=None,
        )
        agent("visit")  # acknowledged
        acknowledged = stored_texts(db, "failing")
        assert len(acknowledged) == 4
        # The third insert of the next tool turn fails (the first two and the fourth go through).
        with (
            fail_point(mongodb_client, app, {"skip": 2, "times": 1}, failCommands=["insert"], errorCode=2),
            pytest.raises(DatabaseError),  # the error the awaited path raises too (the driver's chained)
        ):
            agent("visit again")
        stored = stored_texts(db, "failing")
        assert stored[:4] == acknowledged
        assert len(stored) == 7  # the failed one is missing: that invocation was not acknowledged
        # The manager keeps working: the next turn is stored after everything else.
        agent("and once more")
        after = stored_texts(db, "failing")
        assert after[:7] == stored
        assert [label for _, label in after[7:]] == [
            "user:and once more",
            "assistant:toolUse",
            "user:toolResult",
            "assistant:third",
        ]
        assert [message_id for message_id, _ in after] == sorted({message_id for message_id, _ in after})


@pytest.mark.anyio
async def test_a_cancelled_invocation_does_not_cancel_its_writes(
    mongodb_uri: str, db_name: str, db: Any, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    app = unique_app("pipeline-cancel")
    async with AsyncMongoDBSessionManagerFactory(
        with_options(mongodb_uri, f"appname={app}"), database_name=db_name, collection_name=COLLECTION
    ) as factory:
        manager = await factory.create_session_manager("cancelled", preload=True, pipelined_writes=True)
        agent = Agent(
            model=ScriptedModel(["warm-up", "answer", "later"]),
            session_manager=manager,
            conversation_manager=NullConversationManager(),
            callback_handler=None,
        )
        await agent.invoke_async("warm up")
        issued = asyncio.Event()
        agent.hooks.add_callback(MessageAddedEvent, lambda event: issued.set())
        with fail_point(
            mongodb_client, app, {"times": 2}, failCommands=["insert"], blockConnection=True, blockTimeMS=300
        ):
            turn = asyncio.ensure_future(agent.invoke_async("question"))
            await issued.wait()
            await asyncio.sleep(0.05)  # the inserts are on the wire, held by the server
            turn.cancel()
            with pytest.raises(asyncio.CancelledError):
                await turn
            # The manager's next awaited call waits for the writes the cancelled turn issued.
            await manager.get_message_count_async("default")
        labels = [label for _, label in stored_texts(db, "cancelled")]
        assert labels[:2] == ["user:warm up", "assistant:warm-up"]
        assert labels[2] == "user:question"  # issued before the cancellation: stored, not cancelled
        await agent.invoke_async("next")
        ids = [message_id for message_id, _ in stored_texts(db, "cancelled")]
        assert ids == list(range(len(ids)))


def test_a_writer_that_took_the_ids_meanwhile_keeps_both_conversations_in_order(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    """Two managers restored the same conversation; the first stores a turn, then the second's
    pipelined tool turn finds its first two ids taken: its messages end up after the first writer's,
    in their own order, none lost."""
    with MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as factory:
        Agent(
            model=ScriptedModel(["hello"]),
            session_manager=factory.create_session_manager("shared", pipelined_writes=True),
            callback_handler=None,
        )("start")
        first = Agent(
            model=ScriptedModel(["from the first writer"]),
            session_manager=factory.create_session_manager("shared", pipelined_writes=True),
            callback_handler=None,
        )
        second = Agent(
            model=tool_turn_model("from the second writer"),
            tools=[count_visit],
            session_manager=factory.create_session_manager("shared", pipelined_writes=True),
            callback_handler=None,
        )
        first("first writer asks")
        second("second writer asks")
        labels = [label for _, label in stored_texts(db, "shared")]
        assert labels == [
            "user:start",
            "assistant:hello",
            "user:first writer asks",
            "assistant:from the first writer",
            "user:second writer asks",
            "assistant:toolUse",
            "user:toolResult",
            "assistant:from the second writer",
        ]
        # The second manager's records follow the renumbering: its next turn continues after them.
        second.model = ScriptedModel(["bye"])  # type: ignore[assignment]
        second("second writer again")
        ids = [message_id for message_id, _ in stored_texts(db, "shared")]
        assert ids == list(range(10))


def test_pipelined_writes_must_be_a_bool(mongodb_uri: str, db_name: str) -> None:
    with (
        MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as factory,
        pytest.raises(MongoDBSessionError),
    ):
        factory.create_session_manager("x", pipelined_writes="yes")  # type: ignore[arg-type]
