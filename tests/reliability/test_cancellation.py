"""Cancelled callers never cancel, fail or poison work that others share or that must finish.

The server is stalled with ``failCommand`` fail points (``blockConnection``) scoped to the test's
client by ``appName``; a caller is cancelled while its command is in flight (the test waits for the
command to reach the server, no timing guesses), and later calls, from any manager, must work and
the session must restore.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from strands import Agent
from support import COLLECTION, fail_point, unique_app

from mongodb_session_manager import AsyncMongoDBSessionManagerFactory
from mongodb_session_manager.scripted_model import ScriptedModel

pytestmark = [
    pytest.mark.requires_local_server,
    pytest.mark.anyio,
    pytest.mark.usefixtures("collect_abandoned_sockets"),
]

STALL_MS = 600
# Upper bound for a stalled command to reach the server (a failure, never a timing assertion).
WAIT = 30


class CommandStarted(monitoring.CommandListener):
    """Tells the test loop when the n-th command of a name (counted from :meth:`expect`) reaches the
    server. Listeners run on the client's loop thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: list[list[Any]] = []

    def expect(self, name: str, nth: int = 1) -> asyncio.Event:
        event = asyncio.Event()
        with self._lock:
            self._waiters.append([name, nth, asyncio.get_running_loop(), event])
        return event

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        with self._lock:
            for waiter in self._waiters:
                name, remaining, loop, flag = waiter
                if name == event.command_name and remaining > 0:
                    waiter[1] = remaining - 1
                    if remaining == 1:
                        loop.call_soon_threadsafe(flag.set)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def app_name() -> str:
    return unique_app("cancel")


@pytest.fixture
def listener() -> CommandStarted:
    return CommandStarted()


@pytest.fixture
def admin(mongodb_client: MongoClient[dict[str, Any]]) -> MongoClient[dict[str, Any]]:
    return mongodb_client


@pytest.fixture
async def factory(
    mongodb_uri: str, db_name: str, app_name: str, listener: CommandStarted
) -> AsyncIterator[AsyncMongoDBSessionManagerFactory]:
    async with AsyncMongoDBSessionManagerFactory(
        mongodb_uri,
        database_name=db_name,
        collection_name=COLLECTION,
        appname=app_name,
        serverSelectionTimeoutMS=5000,
        event_listeners=[listener],
    ) as factory:
        yield factory


def stall(admin: MongoClient[dict[str, Any]], app_name: str, *commands: str, times: int | None = None) -> Any:
    """Block these commands of the test's client for STALL_MS each (the first ``times``, or all)."""
    return fail_point(
        admin,
        app_name,
        "alwaysOn" if times is None else {"times": times},
        failCommands=list(commands),
        blockConnection=True,
        blockTimeMS=STALL_MS,
    )


def turn(manager: Any, answer: str = "hello back") -> Agent:
    return Agent(model=ScriptedModel([answer]), session_manager=manager, callback_handler=None)


# -- the shared index creation ----------------------------------------------------------------------


async def test_cancelled_waiter_does_not_cancel_the_shared_index_creation(
    factory: AsyncMongoDBSessionManagerFactory,
    admin: MongoClient[dict[str, Any]],
    app_name: str,
    listener: CommandStarted,
) -> None:
    first = await factory.create_session_manager("first")
    second = await factory.create_session_manager("second")
    started = listener.expect("createIndexes")
    with stall(admin, app_name, "createIndexes", times=3):
        creator = asyncio.create_task(first.update_metadata_async({"who": "first"}))
        await asyncio.wait_for(started.wait(), WAIT)
        waiter = asyncio.create_task(second.update_metadata_async({"who": "second"}))
        await asyncio.sleep(0)  # let the waiter reach the shared creation
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await creator  # the creator succeeds: the waiter's cancellation did not reach it
    assert (await first.get_metadata_async())["metadata"] == {"who": "first"}
    # Later calls on that namespace, from any manager, work.
    await second.update_metadata_async({"who": "second"})
    assert (await second.get_metadata_async())["metadata"] == {"who": "second"}
    third = await factory.create_session_manager("third", preload=True)
    agent = turn(third)
    await agent.invoke_async("hello")
    restored = turn(await factory.create_session_manager("third", preload=True))
    assert restored.messages == agent.messages


async def test_cancelled_creator_does_not_cancel_the_shared_index_creation(
    factory: AsyncMongoDBSessionManagerFactory,
    admin: MongoClient[dict[str, Any]],
    app_name: str,
    listener: CommandStarted,
) -> None:
    first = await factory.create_session_manager("first")
    second = await factory.create_session_manager("second")
    started = listener.expect("createIndexes")
    with stall(admin, app_name, "createIndexes", times=3):
        creator = asyncio.create_task(first.update_metadata_async({"who": "first"}))
        await asyncio.wait_for(started.wait(), WAIT)
        waiter = asyncio.create_task(second.update_metadata_async({"who": "second"}))
        await asyncio.sleep(0)
        creator.cancel()
        with pytest.raises(asyncio.CancelledError):
            await creator
        await waiter  # the creation went on without its first caller
    assert (await second.get_metadata_async())["metadata"] == {"who": "second"}
    await first.update_metadata_async({"who": "first"})
    assert (await first.get_metadata_async())["metadata"] == {"who": "first"}


# -- every public async operation, cancelled while its commands are stalled ------------------------

SESSION = "cancelled"
Operation = Callable[[AsyncMongoDBSessionManagerFactory], Coroutine[Any, Any, Any]]


async def preload(factory: AsyncMongoDBSessionManagerFactory) -> Any:
    return await factory.create_session_manager(SESSION, preload=True)


async def a_turn(factory: AsyncMongoDBSessionManagerFactory) -> Any:
    agent = turn(await factory.create_session_manager(SESSION, preload=True), "cancelled answer")
    return await agent.invoke_async("cancelled question")


async def an_awaited_turn(factory: AsyncMongoDBSessionManagerFactory) -> Any:
    """One insert per message, in sequence: the n-th insert is the n-th message."""
    manager = await factory.create_session_manager(SESSION, preload=True, pipelined_writes=False)
    return await turn(manager, "cancelled answer").invoke_async("cancelled question")


async def a_state_change(factory: AsyncMongoDBSessionManagerFactory) -> Any:
    manager = await factory.create_session_manager(SESSION, preload=True)
    agent = turn(manager)
    agent.state.set("counter", 1)
    return await manager.sync_agent_async(agent)


def on_manager(name: str, *args: Any) -> Operation:
    async def operation(factory: AsyncMongoDBSessionManagerFactory) -> Any:
        manager = await factory.create_session_manager(SESSION)
        return await getattr(manager, name)(*args)

    operation.__name__ = name
    return operation


CASES = [
    pytest.param(preload, "find", 1, id="preload-session-read"),
    pytest.param(preload, "find", 2, id="preload-messages-read"),
    pytest.param(a_turn, "insert", 1, id="turn-claim"),  # pipelined: the rest waits behind it
    pytest.param(an_awaited_turn, "insert", 1, id="turn-user-message"),
    pytest.param(an_awaited_turn, "insert", 2, id="turn-assistant-message"),
    pytest.param(a_state_change, "update", 1, id="sync-agent-state"),
    pytest.param(on_manager("update_metadata_async", {"topic": "cancelled"}), "update", 1, id="update-metadata"),
    pytest.param(on_manager("delete_metadata_async", ["topic"]), "update", 1, id="delete-metadata"),
    pytest.param(on_manager("add_feedback_async", {"rating": "up"}), "insert", 1, id="add-feedback"),
    pytest.param(on_manager("get_metadata_async"), "find", 1, id="get-metadata"),
    pytest.param(on_manager("get_feedbacks_async"), "find", 1, id="get-feedbacks"),
    pytest.param(on_manager("list_agents_async"), "find", 1, id="list-agents"),
    pytest.param(on_manager("get_message_count_async", "default"), "aggregate", 1, id="message-count"),
    pytest.param(on_manager("get_agent_config_async", "default"), "find", 1, id="agent-config"),
]


@pytest.mark.parametrize(("operation", "command", "nth"), CASES)
async def test_a_cancelled_operation_leaves_the_session_usable(
    factory: AsyncMongoDBSessionManagerFactory,
    admin: MongoClient[dict[str, Any]],
    app_name: str,
    listener: CommandStarted,
    operation: Operation,
    command: str,
    nth: int,
) -> None:
    first = turn(await factory.create_session_manager(SESSION, preload=True), "first answer")
    await first.invoke_async("first question")
    await (await factory.create_session_manager(SESSION)).update_metadata_async({"topic": "before"})

    started = listener.expect(command, nth)
    with stall(admin, app_name, command):
        task = asyncio.create_task(operation(factory))
        await asyncio.wait_for(started.wait(), WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    # Later operations work, and the session restores into a conversation a provider accepts.
    manager = await factory.create_session_manager(SESSION, preload=True)
    agent = turn(manager, "later answer")
    await agent.invoke_async("later question")
    assert_alternating(agent.messages)
    assert [message["content"] for message in agent.messages[-2:]] == [
        [{"text": "later question"}],
        [{"text": "later answer"}],
    ]
    restored = turn(await factory.create_session_manager(SESSION, preload=True))
    assert restored.messages == agent.messages
    await manager.update_metadata_async({"after": True})
    assert (await manager.get_metadata_async())["metadata"]["after"] is True
    stored = await manager.repository.list_messages(SESSION, "default")
    assert [message.message_id for message in stored] == list(range(len(stored)))


def assert_alternating(messages: list[Any]) -> None:
    roles = [message["role"] for message in messages]
    assert all(a != b for a, b in itertools.pairwise(roles)), roles
    assert roles[0] == "user", roles


async def test_a_cancelled_storage_write_completes_and_leaves_no_orphaned_file(
    mongodb_uri: str,
    db_name: str,
    admin: MongoClient[dict[str, Any]],
    app_name: str,
    listener: CommandStarted,
) -> None:
    from mongodb_session_manager import MongoDBStorage

    storage = MongoDBStorage(
        mongodb_uri, db_name, "kv", gridfs_threshold=16, appname=app_name, event_listeners=[listener]
    )
    try:
        await storage.write("key", b"first value, stored through GridFS")
        started = listener.expect("findAndModify")
        with stall(admin, app_name, "findAndModify"):
            task = asyncio.create_task(storage.write("key", b"second value, stored through GridFS"))
            await asyncio.wait_for(started.wait(), WAIT)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The write goes on without its caller; the next write of the key waits for it (key lock).
            await storage.write("key", b"third value, stored through GridFS")
        assert await storage.read("key") == b"third value, stored through GridFS"
        files = [name for name in admin[db_name].list_collection_names() if name.endswith(".files")]
        assert [admin[db_name][name].count_documents({}) for name in files] == [1]  # only the live value's file
    finally:
        await storage.aclose()
