"""MongoDBSessionManager with real Strands agents on a real MongoDB wire-protocol server.

Every agent runs a :class:`ScriptedModel` (no network); every assertion reads what MongoDB stored.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from strands import Agent
from strands.agent.conversation_manager import SlidingWindowConversationManager
from strands.types.exceptions import SessionException
from support import add

from mongodb_session_manager import (
    ClosedError,
    InvalidMetadataError,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
)
from mongodb_session_manager.scripted_model import ScriptedModel, redact, tool_call
from mongodb_session_manager.testing import CommandRecorder

COLLECTION = "sessions"
SCRIPTS = Path(__file__).parent / "scripts"
WRITES = {"insert", "update", "findAndModify", "delete"}


@pytest.fixture
def commands() -> CommandRecorder:
    return CommandRecorder()


@pytest.fixture
def factory(mongodb_uri: str, db_name: str, commands: CommandRecorder) -> Iterator[MongoDBSessionManagerFactory]:
    factory = MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name=COLLECTION, event_listeners=[commands]
    )
    yield factory
    factory.close()


def stored_messages(db: Any, session_id: str, agent_id: str = "default") -> list[dict[str, Any]]:
    return list(
        db[f"{COLLECTION}.messages"]
        .find({"session_id": session_id, "agent_id": agent_id}, {"_id": 0})
        .sort("message_id", 1)
    )


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def restore_in_fresh_process(
    uri: str, database: str, session_id: str, agent_id: str = "default", window_size: int | None = None
) -> dict[str, Any]:
    args = [sys.executable, str(SCRIPTS / "restore_agent.py"), uri, database, COLLECTION, session_id, agent_id]
    if window_size is not None:
        args.append(str(window_size))
    completed = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    restored: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return restored


# -- conversations ----------------------------------------------------------------------------------


def test_tool_conversation_restores_in_a_fresh_process_and_continues(
    factory: MongoDBSessionManagerFactory, db: Any, mongodb_uri: str, db_name: str
) -> None:
    model = ScriptedModel([tool_call("add", {"a": 2, "b": 3}), "2 + 3 = 5", "You asked about a sum."])
    agent = Agent(
        model=model, tools=[add], session_manager=factory.create_session_manager("conv"), callback_handler=None
    )
    agent.state.set("user", {"name": "Ada", "visits": 1})
    agent("What is 2 + 3?")
    agent("What did I ask?")
    assert [message["role"] for message in agent.messages] == ["user", "assistant"] * 3
    assert "toolUse" in agent.messages[1]["content"][0]
    assert "toolResult" in agent.messages[2]["content"][0]

    restored = restore_in_fresh_process(mongodb_uri, db_name, "conv")
    assert restored["messages"] == as_json(agent.messages)
    assert restored["state"] == agent.state.get() == {"user": {"name": "Ada", "visits": 1}}
    assert restored["conversation_manager_state"] == as_json(agent.conversation_manager.get_state())

    # Continue with a new manager and agent: new messages take the next ids, with no gap.
    again = Agent(
        model=ScriptedModel(["Still here."]),
        tools=[add],
        session_manager=factory.create_session_manager("conv"),
        callback_handler=None,
    )
    assert again.messages == agent.messages
    again("Are you there?")
    documents = stored_messages(db, "conv")
    assert [document["message_id"] for document in documents] == list(range(8))
    assert [document["message"] for document in documents] == again.messages
    assert documents[6]["message"]["content"] == [{"text": "Are you there?"}]


def test_sliding_window_restores_only_the_window_and_keeps_every_stored_message(
    factory: MongoDBSessionManagerFactory, db: Any, mongodb_uri: str, db_name: str
) -> None:
    agent = Agent(
        model=ScriptedModel([f"answer {turn}" for turn in range(4)]),
        conversation_manager=SlidingWindowConversationManager(window_size=4),
        session_manager=factory.create_session_manager("window"),
        callback_handler=None,
    )
    for turn in range(4):
        agent(f"question {turn}")
    assert len(agent.messages) == 4
    assert agent.conversation_manager.removed_message_count == 4
    assert [document["message_id"] for document in stored_messages(db, "window")] == list(range(8))

    restored = restore_in_fresh_process(mongodb_uri, db_name, "window", window_size=4)
    assert restored["messages"] == as_json(agent.messages)
    assert restored["conversation_manager_state"]["removed_message_count"] == 4

    again = Agent(
        model=ScriptedModel(["answer 4"]),
        conversation_manager=SlidingWindowConversationManager(window_size=4),
        session_manager=factory.create_session_manager("window"),
        callback_handler=None,
    )
    assert again.messages == agent.messages
    again("question 4")
    documents = stored_messages(db, "window")
    assert [document["message_id"] for document in documents] == list(range(10))
    assert documents[8]["message"]["content"] == [{"text": "question 4"}]
    assert documents[0]["message"]["content"] == [{"text": "question 0"}]


# The whole number: a random id in a message (tracking_id, a UUID) may contain "4111".
CARD = "4111 1111 1111 1111"


def test_guardrail_redaction_is_stored_and_restored(factory: MongoDBSessionManagerFactory, db: Any) -> None:
    agent = Agent(
        model=ScriptedModel([redact("[input blocked]", "I cannot help with that.")]),
        session_manager=factory.create_session_manager("redacted"),
        callback_handler=None,
    )
    agent(f"my card number is {CARD}")
    assert agent.messages[0]["content"] == [{"text": "[input blocked]"}]

    documents = stored_messages(db, "redacted")
    assert [document["message_id"] for document in documents] == [0, 1]
    assert documents[0]["redact_message"]["content"] == [{"text": "[input blocked]"}]
    assert documents[1]["redact_message"] is None

    restored = Agent(
        model=ScriptedModel([]), session_manager=factory.create_session_manager("redacted"), callback_handler=None
    )
    assert restored.messages[0]["content"] == [{"text": "[input blocked]"}]
    assert CARD not in json.dumps(restored.messages)
    assert restored.messages == agent.messages


def test_two_agents_in_one_session_are_kept_apart(factory: MongoDBSessionManagerFactory, db: Any) -> None:
    manager = factory.create_session_manager("pair")
    first = Agent(model=ScriptedModel(["from a"]), agent_id="a", session_manager=manager, callback_handler=None)
    second = Agent(
        model=ScriptedModel(["from b", "b again"]), agent_id="b", session_manager=manager, callback_handler=None
    )
    first.state.set("owner", "a")
    second.state.set("owner", "b")
    first("hello a")
    second("hello b")
    second("more b")

    assert [d["message"]["content"][0]["text"] for d in stored_messages(db, "pair", "a")] == ["hello a", "from a"]
    assert [d["message_id"] for d in stored_messages(db, "pair", "b")] == [0, 1, 2, 3]
    assert sorted(agent["agent_id"] for agent in manager.list_agents()) == ["a", "b"]
    assert manager.get_message_count("a") == 2
    assert manager.get_message_count("b") == 4

    other = factory.create_session_manager("pair")
    restored_b = Agent(model=ScriptedModel([]), agent_id="b", session_manager=other, callback_handler=None)
    restored_a = Agent(model=ScriptedModel([]), agent_id="a", session_manager=other, callback_handler=None)
    assert restored_a.messages == first.messages
    assert restored_b.messages == second.messages
    assert restored_a.state.get() == {"owner": "a"}
    assert restored_b.state.get() == {"owner": "b"}


def test_repeated_initialize_is_a_no_op_and_a_second_agent_object_is_rejected(
    factory: MongoDBSessionManagerFactory, commands: CommandRecorder
) -> None:
    manager = factory.create_session_manager("init")
    agent = Agent(model=ScriptedModel(["hi"]), session_manager=manager, callback_handler=None)
    agent("hello")
    before = list(agent.messages)
    commands.take()

    # The factory API's documented examples call these themselves after Agent(...) already did.
    manager.initialize(agent)
    manager.sync_agent(agent)
    assert commands.take() == []
    assert agent.messages == before

    with pytest.raises(SessionException):
        Agent(model=ScriptedModel([]), session_manager=manager, callback_handler=None)
    assert [name for name in commands.take() if name in WRITES] == []
    assert manager.get_message_count("default") == 2


@pytest.mark.anyio
async def test_repeated_initialize_async_is_a_no_op(
    factory: MongoDBSessionManagerFactory, commands: CommandRecorder
) -> None:
    manager = factory.create_session_manager("init-async")
    agent = Agent(model=ScriptedModel(["hi"]), session_manager=manager, callback_handler=None)
    await agent.invoke_async("hello")
    commands.take()
    await manager.initialize_async(agent)
    await manager.sync_agent_async(agent)
    assert commands.take() == []


def test_agent_state_is_written_only_when_it_changed(
    factory: MongoDBSessionManagerFactory, commands: CommandRecorder
) -> None:
    manager = factory.create_session_manager("state")
    agent = Agent(model=ScriptedModel(["one", "two", "three"]), session_manager=manager, callback_handler=None)
    commands.take()

    agent("first")
    assert set(commands.take()) == {"insert"}  # the messages only (grouped when pipelined)

    agent.state.set("mood", "curious")
    agent("second")
    names = commands.take()
    assert set(names) == {"insert", "update"}
    assert names.count("update") == 1
    stored = manager.repository.runtime.run_blocking(manager.repository.read_agent, "state", "default")
    assert stored is not None
    assert stored.state == {"mood": "curious"}
    commands.take()

    agent("third")
    assert set(commands.take()) == {"insert"}
    assert manager.get_agent_config("missing") is None


# -- metadata and feedback --------------------------------------------------------------------------


def test_metadata_update_get_delete_with_nested_merge(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("meta")
    manager.update_metadata({"priority": "high", "customer": {"tier": "gold", "region": "eu"}, "tags": ["a", "b"]})
    manager.update_metadata({"customer": {"tier": "platinum"}, "status": "open"})

    metadata = manager.get_metadata()["metadata"]
    assert metadata["priority"] == "high"
    assert metadata == {
        "priority": "high",
        "customer": {"tier": "platinum", "region": "eu"},
        "tags": ["a", "b"],
        "status": "open",
    }

    manager.delete_metadata(["priority", "not-there"])
    assert manager.get_metadata()["metadata"] == {
        "customer": {"tier": "platinum", "region": "eu"},
        "tags": ["a", "b"],
        "status": "open",
    }

    # Another manager on the same session sees the same metadata.
    assert factory.create_session_manager("meta").get_metadata()["metadata"]["status"] == "open"
    assert factory.create_session_manager("no-such-session").get_metadata()["metadata"] == {}


@pytest.mark.parametrize(
    "metadata",
    [
        {"$set": {"x": 1}},
        {"a.b": 1},
        {"nul\x00key": 1},
        {"ok": 1, "nested": {"$where": "1"}},
        {"ok": 1, "nested": {"a.b": 1}},
        {"ok": 1, "items": [{"$inc": 1}]},
    ],
    ids=["dollar", "dot", "nul", "nested-dollar", "nested-dot", "in-list"],
)
def test_unsafe_metadata_keys_are_rejected_and_nothing_is_written(
    factory: MongoDBSessionManagerFactory, commands: CommandRecorder, metadata: dict[str, Any]
) -> None:
    manager = factory.create_session_manager("unsafe")
    manager.update_metadata({"kept": True})
    commands.take()

    with pytest.raises(InvalidMetadataError):
        manager.update_metadata(metadata)
    assert commands.take() == []
    assert manager.get_metadata()["metadata"] == {"kept": True}


def test_unsafe_metadata_delete_keys_are_rejected(
    factory: MongoDBSessionManagerFactory, commands: CommandRecorder
) -> None:
    manager = factory.create_session_manager("unsafe-delete")
    manager.update_metadata({"kept": True})
    commands.take()
    for keys in (["$kept"], ["kept.x"], ["k\x00"]):
        with pytest.raises(InvalidMetadataError):
            manager.delete_metadata(keys)
    assert commands.take() == []
    assert manager.get_metadata()["metadata"] == {"kept": True}


def test_feedback_is_returned_oldest_first(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("feedback")
    assert manager.get_feedbacks() == []
    for rating in ("up", "down", "up"):
        manager.add_feedback({"rating": rating, "comment": f"was {rating}"})
    feedbacks = manager.get_feedbacks()
    assert [feedback["rating"] for feedback in feedbacks] == ["up", "down", "up"]
    assert all("created_at" in feedback for feedback in feedbacks)
    assert [feedback["created_at"] for feedback in feedbacks] == sorted(
        feedback["created_at"] for feedback in feedbacks
    )
    assert factory.create_session_manager("other").get_feedbacks() == []


def test_agent_manages_metadata_through_the_metadata_tool(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("tooling")
    manager.update_metadata({"customer": {"region": "eu"}})
    model = ScriptedModel(
        [
            tool_call(
                "manage_metadata",
                {"action": "update", "metadata": {"topic": "billing", "customer": {"tier": "gold"}}},
            ),
            tool_call("manage_metadata", {"action": "get"}),
            tool_call("manage_metadata", {"action": "update", "metadata": {"$where": "1"}}),
            tool_call("manage_metadata", {"action": "delete", "keys": ["topic"]}),
            "Saved.",
        ]
    )
    agent = Agent(model=model, tools=[manager.get_metadata_tool()], session_manager=manager, callback_handler=None)
    agent("Remember this is about billing.")

    results = [
        block["toolResult"] for message in agent.messages for block in message["content"] if "toolResult" in block
    ]
    assert [result["status"] for result in results] == ["success"] * 4
    assert "billing" in json.dumps(results[1]["content"])  # the "get" saw the update
    assert "Error" in json.dumps(results[2]["content"])  # the unsafe key was refused by the tool
    assert manager.get_metadata()["metadata"] == {"customer": {"region": "eu", "tier": "gold"}}


# -- inspection and lifecycle ----------------------------------------------------------------------


def test_list_agents_message_count_and_agent_config(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("inspect")
    assert manager.list_agents() == []
    agent = Agent(model=ScriptedModel(["hi"]), agent_id="helper", session_manager=manager, callback_handler=None)
    agent.state.set("language", "en")
    agent("hello")
    config = {"agent_id": "helper", "model": "scripted", "system_prompt": None, "prompt_metadata": None}
    assert manager.list_agents() == [config]
    assert manager.get_message_count("helper") == 2
    assert manager.get_message_count("nobody") == 0
    assert manager.get_agent_config("helper") == config


def test_standalone_manager_owns_its_client_and_close_is_idempotent(mongodb_uri: str, db_name: str) -> None:
    manager = MongoDBSessionManager("solo", connection_string=mongodb_uri, database_name=db_name)
    agent = Agent(model=ScriptedModel(["hi"]), session_manager=manager, callback_handler=None)
    agent("hello")
    manager.update_metadata({"k": "v"})
    assert manager.get_message_count("default") == 2

    runtime = manager.repository.runtime
    assert runtime.owns_client
    loop_thread = runtime._loop_thread
    assert loop_thread is not None
    assert loop_thread.thread.is_alive()
    client = runtime.port.client

    manager.close()
    manager.close()
    assert runtime.closed
    assert not loop_thread.thread.is_alive()
    assert client._closed
    with pytest.raises(ClosedError):
        manager.get_metadata()

    # The data stayed; a new standalone manager reads it.
    again = MongoDBSessionManager("solo", connection_string=mongodb_uri, database_name=db_name)
    try:
        assert again.get_metadata()["metadata"] == {"k": "v"}
        assert again.get_message_count("default") == 2
    finally:
        again.close()


def test_closing_a_factory_manager_leaves_the_shared_client_open(factory: MongoDBSessionManagerFactory) -> None:
    first = factory.create_session_manager("shared")
    second = factory.create_session_manager("shared")
    first.update_metadata({"a": 1})
    first.close()
    first.close()
    # The factory API's documented "with-metadata" endpoint reads metadata after close(): a factory-made manager
    # owns nothing, so it stays usable.
    assert first.get_metadata()["metadata"] == {"a": 1}
    assert second.get_metadata()["metadata"] == {"a": 1}
    assert factory.create_session_manager("shared").get_metadata()["metadata"] == {"a": 1}
