"""Pipelined writes within an invocation (docs/sync-and-async.md): the writes of a turn go through one
ordered queue per conversation (one command in flight, what waits goes out together); the invocation
waits for all of them before it returns; a failure fails it with a typed error and leaves a prefix of
the turn stored; the turn claims the conversation like an awaited one; a cancelled caller cancels no
write; the agent-state versions stay in order; nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient, monitoring
from strands import Agent, tool
from strands.agent.conversation_manager import NullConversationManager, SlidingWindowConversationManager
from strands.hooks import MessageAddedEvent
from strands.types.exceptions import ContextWindowOverflowException
from strands.types.tools import ToolContext
from support import fail_point, unique_app, with_options

from mongodb_session_manager import (
    AsyncMongoDBSessionManagerFactory,
    ClosedError,
    DatabaseError,
    MongoDBSessionError,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    SessionBusyError,
)
from mongodb_session_manager.scripted_model import ScriptedModel, tool_call
from mongodb_session_manager.testing import CommandRecorder

COLLECTION = "sessions"
# Upper bound for something that must happen (a failure if exceeded, never a timing assertion).
WAIT = 30.0


@tool(context=True)
def count_visit(tool_context: ToolContext) -> str:
    """Count a visit in the agent's state."""
    state = tool_context.agent.state
    state.set("visits", (state.get("visits") or 0) + 1)
    return f"visit {state.get('visits')}"


@tool
def lookup(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    return f"order {order_id}: shipped"


def stored_documents(db: Any, session_id: str) -> list[dict[str, Any]]:
    return list(db[COLLECTION + ".messages"].find({"session_id": session_id}).sort("message_id", 1))


def stored_texts(db: Any, session_id: str) -> list[tuple[int, str]]:
    """(message_id, role + first text or block kind) of the stored messages, in id order."""
    rows = []
    for document in stored_documents(db, session_id):
        block = document["message"]["content"][0]
        label = block.get("text") or next(iter(block))
        rows.append((document["message_id"], f"{document['message']['role']}:{label}"))
    return rows


def assert_acceptable(messages: list[dict[str, Any]], *, ended: bool = True) -> None:
    """What providers such as Bedrock's Converse API require of a conversation: it starts with the
    user, roles alternate, every toolUse is answered in the next message, no toolResult dangles.
    ``ended=False``: a toolUse may end it (an agent answers it when its next invocation starts)."""
    roles = [message["role"] for message in messages]
    assert roles[0] == "user", roles
    assert all(a != b for a, b in itertools.pairwise(roles)), roles
    for index, message in enumerate(messages):
        uses = sorted(block["toolUse"]["toolUseId"] for block in message["content"] if "toolUse" in block)
        if index + 1 == len(messages) and not ended:
            break
        following = messages[index + 1]["content"] if index + 1 < len(messages) else []
        assert uses == sorted(block["toolResult"]["toolUseId"] for block in following if "toolResult" in block)
        previous = messages[index - 1]["content"] if index else []
        results = sorted(block["toolResult"]["toolUseId"] for block in message["content"] if "toolResult" in block)
        assert results == sorted(block["toolUse"]["toolUseId"] for block in previous if "toolUse" in block) or (
            not results
        )


def tool_turn_model(*answers: str, delay: float = 0.0) -> ScriptedModel:
    model = ScriptedModel([], delay=delay)
    for answer in answers:
        model.add(tool_call("count_visit", {}), answer)
    return model


class Inserts(monitoring.CommandListener):
    """Counts finished insert commands (listeners run on the client's loop thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.finished = 0
        self.failures = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.command_name == "insert":
            with self._lock:
                self.finished += 1

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        if event.command_name == "insert":
            with self._lock:
                self.finished += 1
                self.failures += 1

    async def reach(self, count: int) -> None:
        """Until ``count`` inserts finished (or one failed: nothing after it is sent)."""
        deadline = time.monotonic() + WAIT
        while self.finished < count and not self.failures:
            assert time.monotonic() < deadline, f"{self.finished} of {count} inserts finished"
            await asyncio.sleep(0.001)


class LockstepModel(ScriptedModel):
    """A scripted model whose n-th call of a turn waits until n inserts finished, so that the turn's
    commands are known: the claim, then the toolUse with its result, then the answer."""

    def __init__(self, inserts: Inserts, script: list[Any]) -> None:
        super().__init__(script)
        self.inserts = inserts
        self.calls_in_turn = 0  # reset by the test per turn

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:  # type: ignore[override]
        self.calls_in_turn += 1
        await self.inserts.reach(self.calls_in_turn)
        async for event in super().stream(*args, **kwargs):
            yield event


@pytest.fixture
def app() -> str:
    return unique_app("pipeline")


@pytest.fixture
def inserts() -> Inserts:
    return Inserts()


@pytest.fixture
def factory(mongodb_uri: str, db_name: str, app: str, inserts: Inserts) -> Iterator[MongoDBSessionManagerFactory]:
    with MongoDBSessionManagerFactory(
        with_options(mongodb_uri, f"appname={app}"),
        database_name=db_name,
        collection_name=COLLECTION,
        event_listeners=[inserts],
    ) as factory:
        yield factory


# -- round trips ------------------------------------------------------------------------------------


def test_turns_never_cost_more_commands_than_awaited_writes(mongodb_uri: str, db_name: str, db: Any) -> None:
    counts: dict[bool, Counter[str]] = {}
    for pipelined in (True, False):
        commands = CommandRecorder(only={"insert", "update", "find", "findAndModify", "delete"})
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
    assert counts[False] == {"insert": 8, "update": 2}
    assert counts[True]["insert"] <= 8
    assert counts[True]["update"] == 2
    assert set(counts[True]) <= {"insert", "update"}


def test_an_uncontended_text_turn_costs_at_most_two_commands_and_a_tool_turn_four(
    mongodb_uri: str, db_name: str
) -> None:
    commands = CommandRecorder(only={"insert", "update", "find", "findAndModify", "delete", "aggregate"})
    with MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name=COLLECTION, event_listeners=[commands]
    ) as factory:
        model = ScriptedModel(["hello", "hi there", tool_call("lookup", {"order_id": "7"}), "shipped"])
        agent = Agent(
            model=model,
            tools=[lookup],
            session_manager=factory.create_session_manager("budget", pipelined_writes=True),
            callback_handler=None,
        )
        agent("warm up")
        commands.take()
        agent("hi")
        text_turn = commands.take()
        agent("where is order 7?")
        tool_turn = commands.take()
    assert set(text_turn) == {"insert"}
    assert 1 <= len(text_turn) <= 2
    assert set(tool_turn) == {"insert"}
    assert 2 <= len(tool_turn) <= 4  # the claim, then at least one more: tools run only after the claim


# -- failures: a prefix of the turn is stored -----------------------------------------------------

TOOL_TURN = ["user:where is order 7?", "assistant:toolUse", "user:toolResult", "assistant:shipped"]


@pytest.mark.parametrize(("failing", "stored_of_turn"), [(1, 0), (2, 1), (3, 3)])
def test_a_failed_insert_stores_a_prefix_of_the_turn_and_the_next_turn_repairs_it(
    factory: MongoDBSessionManagerFactory,
    mongodb_client: MongoClient[dict[str, Any]],
    app: str,
    inserts: Inserts,
    db: Any,
    failing: int,
    stored_of_turn: int,
) -> None:
    """The turn's inserts are known here (a lockstep model): the claim, the toolUse with its result,
    the answer. The ``failing``-th fails: the invocation raises the awaited path's typed error, the
    messages before it are stored, nothing after it, and a fresh manager restores and continues into a
    conversation providers accept."""
    model = LockstepModel(inserts, ["hello", tool_call("lookup", {"order_id": "7"}), "shipped", "next"])
    agent = Agent(
        model=model,
        tools=[lookup],
        session_manager=factory.create_session_manager("failing", pipelined_writes=True),
        callback_handler=None,
    )
    agent("hi")  # acknowledged
    acknowledged = stored_texts(db, "failing")
    assert [label for _, label in acknowledged] == ["user:hi", "assistant:hello"]
    inserts.finished = inserts.failures = model.calls_in_turn = 0
    with (
        fail_point(mongodb_client, app, {"skip": failing - 1, "times": 1}, failCommands=["insert"], errorCode=2),
        pytest.raises(DatabaseError),  # the error the awaited path raises too (the driver's chained)
    ):
        agent("where is order 7?")
    assert inserts.failures == 1
    stored = stored_texts(db, "failing")
    assert stored[:2] == acknowledged
    assert [label for _, label in stored[2:]] == TOOL_TURN[:stored_of_turn]
    assert [message_id for message_id, _ in stored] == list(range(len(stored)))
    # The manager's records end with what was stored: its next turn continues from there ...
    restored = Agent(
        model=ScriptedModel(["after the failure"]),
        session_manager=factory.create_session_manager("failing", pipelined_writes=True),
        callback_handler=None,
    )
    assert_acceptable(restored.messages, ended=False)
    restored("and now?")
    messages = [document["message"] for document in stored_documents(db, "failing")]
    assert_acceptable(messages)
    assert messages[-1]["content"] == [{"text": "after the failure"}]
    assert stored_texts(db, "failing")[: len(stored)] == stored  # nothing stored was changed or removed


@pytest.mark.parametrize("failing", [1, 2])
def test_a_failed_insert_with_an_instant_model_stores_a_prefix(
    factory: MongoDBSessionManagerFactory,
    mongodb_client: MongoClient[dict[str, Any]],
    app: str,
    db: Any,
    failing: int,
) -> None:
    """Without lockstep the queue groups what waits into one insert; a tool turn still makes at least
    two (the claim, then what follows it: tools run only once the claim is stored)."""
    agent = Agent(
        model=tool_turn_model("first", "second"),
        tools=[count_visit],
        session_manager=factory.create_session_manager("grouped", pipelined_writes=True),
        callback_handler=None,
    )
    agent("visit")
    with (
        fail_point(mongodb_client, app, {"skip": failing - 1, "times": 1}, failCommands=["insert"], errorCode=2),
        pytest.raises(MongoDBSessionError),
    ):
        agent("visit again")
    labels = [label for _, label in stored_texts(db, "grouped")]
    turn = ["user:visit again", "assistant:toolUse", "user:toolResult", "assistant:second"]
    assert labels[:4] == ["user:visit", "assistant:toolUse", "user:toolResult", "assistant:first"]
    assert labels[4:] == turn[: len(labels) - 4]
    assert len(labels) < 8
    Agent(
        model=ScriptedModel(["fine"]),
        session_manager=factory.create_session_manager("grouped", pipelined_writes=True),
        callback_handler=None,
    )("again")
    assert_acceptable([document["message"] for document in stored_documents(db, "grouped")])


# -- state versions ---------------------------------------------------------------------------------


def test_state_versions_are_written_in_order(mongodb_uri: str, db_name: str, db: Any) -> None:
    """Each tool call changes the state; the queued state writes go out in order, each checking the
    version the previous one wrote, so none is refused and the last one wins."""
    with MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as factory:
        for delay in (0.0, 0.002):
            model = ScriptedModel(
                [tool_call("count_visit", {}), tool_call("count_visit", {}), tool_call("count_visit", {})],
                delay=delay,
            )
            model.add("done")
            session_id = f"versions-{delay}"
            agent = Agent(
                model=model,
                tools=[count_visit],
                session_manager=factory.create_session_manager(session_id, pipelined_writes=True),
                callback_handler=None,
            )
            version_before = db[COLLECTION].find_one({"_id": session_id})["agents"][0].get("version", 0)
            agent("visit three times")
            record = db[COLLECTION].find_one({"_id": session_id})["agents"][0]
            assert record["state"] == {"visits": 3}
            assert record["version"] > version_before
            # A new manager continues from that version: its state write is accepted.
            restored = Agent(
                model=tool_turn_model("again"),
                tools=[count_visit],
                session_manager=factory.create_session_manager(session_id, pipelined_writes=True),
                callback_handler=None,
            )
            assert restored.state.get("visits") == 3
            restored("visit once more")
            assert db[COLLECTION].find_one({"_id": session_id})["agents"][0]["state"] == {"visits": 4}


# -- cancellation -----------------------------------------------------------------------------------


class Started(monitoring.CommandListener):
    """Sets an event (on the test's loop) when the n-th insert reaches the server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Event]] = []

    def expect(self, nth: int) -> asyncio.Event:
        event = asyncio.Event()
        with self._lock:
            self.count = 0
            self._waiters.append((nth, asyncio.get_running_loop(), event))
        return event

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name != "insert":
            return
        with self._lock:
            self.count += 1
            for nth, loop, flag in self._waiters:
                if nth == self.count:
                    loop.call_soon_threadsafe(flag.set)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("point", "delay"),
    [
        pytest.param(1, 0.0, id="before-the-claim-is-acknowledged"),
        pytest.param(2, 0.02, id="mid-queue"),
        pytest.param(3, 0.02, id="during-the-drain"),
    ],
)
async def test_a_cancelled_invocation_cancels_no_write_and_later_calls_work(
    mongodb_uri: str, db_name: str, db: Any, mongodb_client: MongoClient[dict[str, Any]], point: int, delay: float
) -> None:
    app = unique_app("pipeline-cancel")
    started = Started()
    async with AsyncMongoDBSessionManagerFactory(
        with_options(mongodb_uri, f"appname={app}"),
        database_name=db_name,
        collection_name=COLLECTION,
        event_listeners=[started],
    ) as factory:
        manager = await factory.create_session_manager("cancelled", preload=True, pipelined_writes=True)
        model = ScriptedModel(["warm-up"], delay=delay)
        model.add(tool_call("lookup", {"order_id": "1"}), "answer", "later")
        agent = Agent(
            model=model,
            tools=[lookup],
            session_manager=manager,
            conversation_manager=NullConversationManager(),
            callback_handler=None,
        )
        await agent.invoke_async("warm up")
        acknowledged = stored_texts(db, "cancelled")
        reached = started.expect(point)
        with fail_point(
            mongodb_client, app, "alwaysOn", failCommands=["insert"], blockConnection=True, blockTimeMS=200
        ):
            turn = asyncio.ensure_future(agent.invoke_async("question"))
            await asyncio.wait_for(reached.wait(), WAIT)
            turn.cancel()
            with pytest.raises(asyncio.CancelledError):
                await turn
            # The manager's next call waits for the writes the cancelled turn queued.
            await manager.get_message_count_async("default")
        labels = [label for _, label in stored_texts(db, "cancelled")]
        assert stored_texts(db, "cancelled")[:2] == acknowledged
        turn_labels = ["user:question", "assistant:toolUse", "user:toolResult", "assistant:answer"]
        assert labels[2:] == turn_labels[: len(labels) - 2]
        assert len(labels) >= 2 + point  # what reached the server was not cancelled
        await agent.invoke_async("next")
        documents = stored_documents(db, "cancelled")
        assert [document["message_id"] for document in documents] == list(range(len(documents)))
        assert_acceptable([document["message"] for document in documents])
        texts = [document["message"]["content"][0].get("text") for document in documents]
        assert "next" in texts
        assert documents[-1]["message"]["role"] == "assistant"
        assert "toolUse" not in documents[-1]["message"]["content"][0]
        assert "holder" not in (documents[-1].get("turn") or {})  # the conversation is free


class GatedModel(ScriptedModel):
    """A scripted model whose calls wait for :attr:`gate`, when one is set."""

    gate: asyncio.Event | None = None

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:  # type: ignore[override]
        if self.gate is not None:
            await asyncio.wait_for(self.gate.wait(), WAIT)
        async for event in super().stream(*args, **kwargs):
            yield event


@pytest.mark.anyio
@pytest.mark.parametrize("owner", ["standalone manager", "factory"])
async def test_a_blocking_close_stores_what_a_cancelled_invocation_queued(
    mongodb_uri: str, db_name: str, db: Any, mongodb_client: MongoClient[dict[str, Any]], owner: str
) -> None:
    """``close()`` (blocking) of the client's owner, a standalone manager or a factory, waits for the
    queued writes before the client goes: nothing the agent holds is dropped with the client's loop."""
    app = unique_app("pipeline-close")
    session_id = f"closed-by-{owner.replace(' ', '-')}"
    started = Started()
    options: dict[str, Any] = {
        "connection_string": with_options(mongodb_uri, f"appname={app}"),
        "database_name": db_name,
        "collection_name": COLLECTION,
        "event_listeners": [started],
    }
    closer: MongoDBSessionManager | MongoDBSessionManagerFactory
    if owner == "factory":
        closer = MongoDBSessionManagerFactory(**options)
        manager = closer.create_session_manager(session_id)
    else:
        closer = manager = MongoDBSessionManager(session_id, **options)
    model = GatedModel(["warm-up", "answer"])
    agent = await asyncio.to_thread(
        Agent,
        model=model,
        tools=[lookup],
        session_manager=manager,
        conversation_manager=NullConversationManager(),
        callback_handler=None,
    )
    await agent.invoke_async("warm up")
    answered = asyncio.Event()

    def after_the_managers_hook(event: MessageAddedEvent) -> None:  # runs once the manager queued it
        if event.message["content"][0].get("text") == "answer":
            answered.set()

    agent.hooks.add_callback(MessageAddedEvent, after_the_managers_hook)
    # The answer is queued while the prompt's insert is in flight (not sent along with it): when that
    # insert completes, the client is closing, and both the prompt's turn marker (its turn ended) and
    # the answer are written then.
    reached = model.gate = started.expect(1)
    with fail_point(mongodb_client, app, "alwaysOn", failCommands=["insert"], blockConnection=True, blockTimeMS=300):
        turn = asyncio.ensure_future(agent.invoke_async("question"))
        await asyncio.wait_for(reached.wait(), WAIT)  # the prompt's insert is in flight ...
        await asyncio.wait_for(answered.wait(), WAIT)  # ... and the answer waits behind it
        turn.cancel()
        with pytest.raises(asyncio.CancelledError):
            await turn
        closing = asyncio.ensure_future(asyncio.to_thread(closer.close))
        deadline = time.monotonic() + WAIT
        while not manager.repository.runtime.closed:
            assert time.monotonic() < deadline, "close() did not begin"
            await asyncio.sleep(0.001)
        with pytest.raises(ClosedError):  # while close waits for the queued writes, new calls are refused
            await manager.repository.read_session(session_id)
        await closing
    labels = [label for _, label in stored_texts(db, session_id)]
    held = [
        f"{message['role']}:{message['content'][0].get('text') or next(iter(message['content'][0]))}"
        for message in agent.messages
    ]
    assert labels == held  # every message the agent added before the cancellation is stored
    assert labels[-1] == "assistant:answer"  # queued behind the prompt's insert, and stored too


@pytest.mark.anyio
async def test_a_write_that_fails_after_its_caller_was_cancelled_is_logged(
    mongodb_uri: str, db_name: str, db: Any, mongodb_client: MongoClient[dict[str, Any]], caplog: Any
) -> None:
    """Nobody is left to receive the error of a write queued by a cancelled invocation: it is logged
    at ERROR, with how many messages were not stored, even when the client closes right after."""
    app = unique_app("pipeline-orphan")
    started = Started()
    manager = MongoDBSessionManager(
        "orphaned-failure",
        connection_string=with_options(mongodb_uri, f"appname={app}"),
        database_name=db_name,
        collection_name=COLLECTION,
        event_listeners=[started],
    )
    model = GatedModel(["warm-up", "answer"])
    agent = await asyncio.to_thread(
        Agent,
        model=model,
        session_manager=manager,
        conversation_manager=NullConversationManager(),
        callback_handler=None,
    )
    await agent.invoke_async("warm up")
    answered = asyncio.Event()
    agent.hooks.add_callback(
        MessageAddedEvent,
        lambda event: answered.set() if event.message["content"][0].get("text") == "answer" else None,
    )
    reached = model.gate = started.expect(1)
    failing = {"failCommands": ["insert"], "errorCode": 2, "blockConnection": True, "blockTimeMS": 1000}
    with (
        caplog.at_level(logging.ERROR, logger="mongodb_session_manager"),
        fail_point(mongodb_client, app, "alwaysOn", **failing),
    ):
        turn = asyncio.ensure_future(agent.invoke_async("question"))
        await asyncio.wait_for(reached.wait(), WAIT)  # the prompt's insert is in flight (and will fail)
        await asyncio.wait_for(answered.wait(), WAIT)  # the answer waits behind it
        turn.cancel()
        with pytest.raises(asyncio.CancelledError):
            await turn
        await asyncio.to_thread(manager.close)
    assert [label for _, label in stored_texts(db, "orphaned-failure")] == ["user:warm up", "assistant:warm-up"]
    reports = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(reports) == 1, [record.getMessage() for record in reports]
    assert "2 message(s) of it were not stored" in reports[0].getMessage()
    assert reports[0].exc_info is not None


# -- concurrent turns ------------------------------------------------------------------------------


def test_a_writer_that_appended_meanwhile_keeps_both_turns_whole_and_in_order(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    """Two managers restored the same conversation; the first stores a turn, then the second's tool
    turn finds its claim taken: it catches up (its model sees the first writer's turn before its
    tools run) and its messages are stored as one block after the first writer's."""
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
        # The second agent's conversation caught up before its prompt, as stored.
        assert [message["content"] for message in second.messages] == [
            document["message"]["content"] for document in stored_documents(db, "shared")
        ]
        # Its records follow the new ids: its next turn continues after them.
        second.model = ScriptedModel(["bye"])  # type: ignore[assignment]
        second("second writer again")
        ids = [message_id for message_id, _ in stored_texts(db, "shared")]
        assert ids == list(range(10))
        assert_acceptable([document["message"] for document in stored_documents(db, "shared")])


@pytest.mark.anyio
async def test_concurrent_pipelined_tool_turns_on_one_conversation_take_turns(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    writers = 6
    prompts = [f"question {n}" for n in range(writers)]
    async with AsyncMongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name=COLLECTION
    ) as factory:
        first = Agent(
            model=ScriptedModel(["hello"]),
            session_manager=await factory.create_session_manager("busy", preload=True, pipelined_writes=True),
            callback_handler=None,
        )
        await first.invoke_async("hi")

        async def request(n: int) -> None:
            manager = await factory.create_session_manager("busy", preload=True, pipelined_writes=True)
            script: list[Any] = [tool_call("lookup", {"order_id": str(n)}), f"answer {n}"] if n % 2 else [f"answer {n}"]
            agent = Agent(model=ScriptedModel(script), tools=[lookup], session_manager=manager, callback_handler=None)
            await agent.invoke_async(prompts[n])
            assert_acceptable(agent.messages)  # what the agent holds is acceptable too

        await asyncio.gather(*(request(n) for n in range(writers)))
        documents = stored_documents(db, "busy")
        messages = [document["message"] for document in documents]
        assert [document["message_id"] for document in documents] == list(range(len(documents)))
        assert_acceptable(messages)
        assert len(messages) == 2 + 2 * writers + 2 * (writers // 2)  # every turn whole, no repair needed
        for n, prompt in enumerate(prompts):
            (position,) = [i for i, message in enumerate(messages) if message["content"] == [{"text": prompt}]]
            turn = messages[position : position + (4 if n % 2 else 2)]
            assert turn[-1]["content"] == [{"text": f"answer {n}"}]  # the turn is not interleaved
        assert "holder" not in (documents[-1].get("turn") or {})  # the conversation is free


@pytest.mark.anyio
async def test_a_collided_turn_that_cannot_get_the_conversation_in_time_raises_session_busy(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    """The claim collides with a turn that holds the conversation longer than ``turn_wait``: the
    catch-up runs inside the event loop (before the tools), yet the caller gets the typed error, and
    nothing of the turn is stored."""
    async with AsyncMongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name=COLLECTION
    ) as factory:
        await Agent(
            model=ScriptedModel(["hello"]),
            session_manager=await factory.create_session_manager("held", preload=True),
            callback_handler=None,
        ).invoke_async("hi")
        release = asyncio.Event()
        holding = asyncio.Event()

        @tool
        async def slow() -> str:
            """Wait until released."""
            holding.set()
            await release.wait()
            return "done"

        # Restored before the other turn starts: its claim will collide.
        waiter = Agent(
            model=ScriptedModel([tool_call("lookup", {"order_id": "1"}), "never"]),
            tools=[lookup],
            session_manager=await factory.create_session_manager("held", preload=True, turn_wait=0.3),
            callback_handler=None,
        )
        holder = Agent(
            model=ScriptedModel([tool_call("slow", {}), "finished"]),
            tools=[slow],
            session_manager=await factory.create_session_manager("held", preload=True),
            callback_handler=None,
        )
        running = asyncio.create_task(holder.invoke_async("long task"))
        await asyncio.wait_for(holding.wait(), WAIT)
        with pytest.raises(SessionBusyError):
            await waiter.invoke_async("me too")
        release.set()
        await running
        messages = [document["message"] for document in stored_documents(db, "held")]
        assert_acceptable(messages)
        assert [message["content"][0].get("text") for message in messages][-2:] == [None, "finished"]
        assert all(message["content"] != [{"text": "me too"}] for message in messages)


def test_concurrent_pipelined_turns_from_threads_take_turns(mongodb_uri: str, db_name: str, db: Any) -> None:
    writers = 6
    errors: list[BaseException] = []
    with MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as factory:
        Agent(
            model=ScriptedModel(["hello"]),
            session_manager=factory.create_session_manager("threads", pipelined_writes=True),
            callback_handler=None,
        )("hi")
        agents = []
        for n in range(writers):
            model = ScriptedModel([tool_call("lookup", {"order_id": str(n)}), f"thread answer {n}"])
            agents.append(
                Agent(
                    model=model,
                    tools=[lookup],
                    session_manager=factory.create_session_manager("threads", pipelined_writes=True),
                    callback_handler=None,
                )
            )
        barrier = threading.Barrier(writers)

        def run(n: int) -> None:
            try:
                barrier.wait()
                agents[n](f"thread question {n}")
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    messages = [document["message"] for document in stored_documents(db, "threads")]
    assert_acceptable(messages)
    assert len(messages) == 2 + 4 * writers
    for n in range(writers):
        (position,) = [
            i for i, message in enumerate(messages) if message["content"] == [{"text": f"thread question {n}"}]
        ]
        assert messages[position + 3]["content"] == [{"text": f"thread answer {n}"}]


class Overflowing(ScriptedModel):
    """Raises ContextWindowOverflowException on its first call: Strands then trims the conversation and
    calls the manager's blocking sync_agent mid-turn, on the agent's loop."""

    overflowed = False

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:  # type: ignore[override]
        if not self.overflowed:
            self.overflowed = True
            raise ContextWindowOverflowException("the conversation is too long")
        async for event in super().stream(*args, **kwargs):
            yield event


@pytest.mark.anyio
@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "awaited"])
@pytest.mark.parametrize("client_loop", ["own thread", "this loop"])
async def test_a_sync_scheduled_mid_turn_on_the_agents_loop_is_stored_in_order(
    mongodb_uri: str, db_name: str, db: Any, pipelined: bool, client_loop: str
) -> None:
    """The context-overflow sync is scheduled on the agent's loop (pipelined writes are queued, or the
    client lives on that loop) and waited for by the turn's next write: it does not wait for itself."""
    client = AsyncMongoClient(mongodb_uri) if client_loop == "this loop" else None
    factory = AsyncMongoDBSessionManagerFactory(
        None if client else mongodb_uri, database_name=db_name, collection_name=COLLECTION, client=client
    )
    try:
        manager = await factory.create_session_manager("overflow", preload=True, pipelined_writes=pipelined)
        agent = Agent(
            model=ScriptedModel(["one", "two"]),
            session_manager=manager,
            conversation_manager=SlidingWindowConversationManager(window_size=10),
            callback_handler=None,
        )
        await agent.invoke_async("first")
        await agent.invoke_async("second")
        agent.model = Overflowing(["three"])
        await asyncio.wait_for(agent.invoke_async("third"), WAIT)
        removed = agent.conversation_manager.removed_message_count
        assert removed > 0
        record = db[COLLECTION].find_one({"_id": "overflow"})["agents"][0]
        assert record["conversation_manager_state"]["removed_message_count"] == removed
        assert [label for _, label in stored_texts(db, "overflow")] == [
            "user:first",
            "assistant:one",
            "user:second",
            "assistant:two",
            "user:third",
            "assistant:three",
        ]
    finally:
        await factory.close()
        if client is not None:
            await client.close()


def test_pipelined_writes_must_be_a_bool(mongodb_uri: str, db_name: str) -> None:
    with (
        MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as factory,
        pytest.raises(MongoDBSessionError),
    ):
        factory.create_session_manager("x", pipelined_writes="yes")  # type: ignore[arg-type]
