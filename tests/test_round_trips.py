"""Round-trip budgets (DESIGN.md section 7), counted with a PyMongo ``CommandListener``.

Counts are exact and stable, unlike timings. Only data commands are counted; server monitoring
(``hello`` heartbeats) never goes through a ``CommandListener``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from strands import Agent, tool
from strands.types.content import Message
from strands.types.session import SessionMessage

from mongodb_session_manager import AsyncMongoDBSessionManagerFactory, MongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel, tool_call
from mongodb_session_manager.testing import CommandRecorder

COUNTED = {
    "find",
    "insert",
    "update",
    "findAndModify",
    "getMore",
    "createIndexes",
    "delete",
    "aggregate",
    "count",
    "listIndexes",
    "killCursors",
}


@tool
def lookup(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    return f"order {order_id}: shipped"


@pytest.fixture
def commands() -> CommandRecorder:
    return CommandRecorder(only=COUNTED)


@pytest.fixture
def factory(mongodb_uri: str, db_name: str, commands: CommandRecorder) -> Iterator[MongoDBSessionManagerFactory]:
    factory = MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name="sessions", event_listeners=[commands]
    )
    yield factory
    factory.close()


def conversation(count: int) -> list[Message]:
    """``count`` realistic messages: text turns with a tool round trip every tenth turn."""
    messages: list[Message] = []
    turn = 0
    while len(messages) < count:
        if turn % 10 == 9 and count - len(messages) >= 4:
            tool_use_id = f"tooluse_{turn}"
            messages += [
                {"role": "user", "content": [{"text": f"Where is order {turn}?"}]},
                {
                    "role": "assistant",
                    "content": [
                        {"toolUse": {"toolUseId": tool_use_id, "name": "lookup", "input": {"order_id": str(turn)}}}
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "toolResult": {
                                "toolUseId": tool_use_id,
                                "status": "success",
                                "content": [{"text": "shipped"}],
                            }
                        }
                    ],
                },
                {"role": "assistant", "content": [{"text": f"Order {turn} has shipped."}]},
            ]
        else:
            messages += [
                {"role": "user", "content": [{"text": f"Question {turn}: " + "lorem ipsum " * 20}]},
                {
                    "role": "assistant",
                    "content": [{"text": f"Answer {turn}: " + "dolor sit amet " * 20}],
                    "metadata": {"usage": {"inputTokens": 10, "outputTokens": 20, "totalTokens": 30}},
                },
            ]
        turn += 1
    return messages[:count]


def seed_long_conversation(factory: MongoDBSessionManagerFactory, session_id: str, count: int) -> list[Message]:
    """Create the agent through Strands, then store ``count`` messages through the repository."""
    manager = factory.create_session_manager(session_id)
    Agent(model=ScriptedModel([]), tools=[lookup], session_manager=manager, callback_handler=None)
    messages = conversation(count)
    records = [SessionMessage.from_message(message, index) for index, message in enumerate(messages)]
    repository = manager.repository
    repository.runtime.run_blocking(repository.create_messages, session_id, "default", records)
    return messages


def test_creating_a_manager_costs_nothing_and_indexes_are_created_once(
    factory: MongoDBSessionManagerFactory, commands: CommandRecorder
) -> None:
    first = factory.create_session_manager("first")
    assert commands.take() == []
    Agent(model=ScriptedModel([]), session_manager=first, callback_handler=None)
    created = commands.take()
    assert "createIndexes" in created
    # A new session: one upsert-read of the session and one write recording the agent.
    assert [name for name in created if name != "createIndexes"] == ["findAndModify", "update"]

    for session_id in ("second", "third", "first"):
        manager = factory.create_session_manager(session_id)
        assert commands.take() == []
        Agent(model=ScriptedModel([]), session_manager=manager, callback_handler=None)
        names = commands.take()
        assert "createIndexes" not in names
        assert len(names) <= 2, names


def test_restoring_1000_messages_costs_two_round_trips(
    factory: MongoDBSessionManagerFactory, commands: CommandRecorder
) -> None:
    messages = seed_long_conversation(factory, "long", 1000)
    commands.take()

    manager = factory.create_session_manager("long")
    assert commands.take() == []
    agent = Agent(model=ScriptedModel([]), tools=[lookup], session_manager=manager, callback_handler=None)
    assert commands.take() == ["findAndModify", "find"]  # no getMore: one batch
    assert len(agent.messages) == 1000
    assert agent.messages == messages


def turn_inserts(names: list[str], pipelined: bool, awaited: int) -> None:
    """A turn's commands: ``awaited`` inserts, one per message; pipelined (the default), what waits
    behind the insert in flight goes out with the next one: never more, and at least the claim."""
    assert set(names) == {"insert"}, names
    if pipelined:
        assert 1 <= len(names) <= awaited, names
    else:
        assert len(names) == awaited, names


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "awaited"])
def test_plain_text_turn_is_two_inserts(
    factory: MongoDBSessionManagerFactory, commands: CommandRecorder, pipelined: bool
) -> None:
    seed_long_conversation(factory, "turns", 10)
    agent = Agent(
        model=ScriptedModel(["First answer.", "Second answer."]),
        tools=[lookup],
        session_manager=factory.create_session_manager("turns", pipelined_writes=pipelined),
        callback_handler=None,
    )
    commands.take()
    agent("First question")
    turn_inserts(commands.take(), pipelined, 2)
    agent("Second question")
    turn_inserts(commands.take(), pipelined, 2)


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "awaited"])
def test_tool_turn_costs_at_most_five_commands(
    factory: MongoDBSessionManagerFactory, commands: CommandRecorder, pipelined: bool
) -> None:
    agent = Agent(
        model=ScriptedModel([tool_call("lookup", {"order_id": "42"}), "Order 42 has shipped."]),
        tools=[lookup],
        session_manager=factory.create_session_manager("tool-turn", pipelined_writes=pipelined),
        callback_handler=None,
    )
    commands.take()
    agent("Where is order 42?")
    names = commands.take()
    if pipelined:
        # The claim, then the rest (tools run once the claim is stored): 2 to 4 inserts, nothing else.
        assert set(names) == {"insert"}, names
        assert 2 <= len(names) <= 4, names
    else:
        assert names.count("insert") == 4  # user, assistant(toolUse), user(toolResult), assistant
        assert len(names) <= 5, names


def test_manager_for_an_existing_session_restores_in_two_round_trips(
    factory: MongoDBSessionManagerFactory, commands: CommandRecorder
) -> None:
    manager = factory.create_session_manager("existing")
    agent = Agent(model=ScriptedModel(["hi"]), session_manager=manager, callback_handler=None)
    agent("hello")
    manager.update_metadata({"priority": "high"})
    commands.take()

    restored_manager = factory.create_session_manager("existing")
    assert commands.take() == []
    restored = Agent(model=ScriptedModel([]), session_manager=restored_manager, callback_handler=None)
    assert commands.take() == ["findAndModify", "find"]
    assert restored.messages == agent.messages


@pytest.mark.anyio
async def test_preloaded_manager_constructs_the_agent_without_any_command(mongodb_uri: str, db_name: str) -> None:
    commands = CommandRecorder(only=COUNTED)
    async with AsyncMongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name="sessions", event_listeners=[commands]
    ) as factory:
        manager = await factory.create_session_manager("preloaded", preload=True)
        agent = Agent(model=ScriptedModel(["one"]), tools=[lookup], session_manager=manager, callback_handler=None)
        await agent.invoke_async("first")
        commands.take()

        # An existing session: the awaited preload reads it; Agent(...) then sends nothing.
        manager = await factory.create_session_manager("preloaded", preload=True)
        assert commands.take() == ["find", "find"]
        restored = Agent(model=ScriptedModel(["two"]), tools=[lookup], session_manager=manager, callback_handler=None)
        assert commands.take() == []
        assert restored.messages == agent.messages
        await restored.invoke_async("second")
        turn_inserts(commands.take(), pipelined=True, awaited=2)

        # A new session: the preload only reads (a request that only reads creates nothing); nothing in
        # Agent(...); the first write creates the session and records the agent, then the two messages.
        manager = await factory.create_session_manager("fresh", preload=True)
        assert commands.take() == ["find"]
        fresh = Agent(model=ScriptedModel(["hi"]), session_manager=manager, callback_handler=None)
        assert commands.take() == []
        await fresh.invoke_async("hello")
        # The agent's first write is awaited (it records the agent); its answer is queued.
        assert commands.take() == ["findAndModify", "update", "insert", "insert"]
        assert await manager.get_message_count_async("default") == 2
        assert [agent["agent_id"] for agent in await manager.list_agents_async()] == ["default"]


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "awaited"])
def test_turn_after_another_writers_turn_catches_up_in_four_extra_commands(
    factory: MongoDBSessionManagerFactory, commands: CommandRecorder, pipelined: bool
) -> None:
    seed_long_conversation(factory, "contended", 10)
    first = Agent(model=ScriptedModel(["first"]), session_manager=factory.create_session_manager("contended"))
    stale = Agent(
        model=ScriptedModel(["second"]),
        session_manager=factory.create_session_manager("contended", pipelined_writes=pipelined),
    )
    first("one")
    commands.take()
    # The stale agent's prompt collides with the other turn's messages: it reads the tail (free), the
    # messages it missed and the agent record, then stores its prompt after them and its answer
    # (pipelined: in one insert when the answer was queued behind the colliding claim, else two).
    stale("two")
    if pipelined:
        names = commands.take()
        assert names[:5] == ["insert", "find", "find", "find", "insert"]
        assert names[5:] in ([], ["insert"])
    else:
        assert commands.take() == ["insert", "find", "find", "find", "insert", "insert"]
    assert [message["content"][0]["text"] for message in stale.messages[-4:]] == ["one", "first", "two", "second"]
