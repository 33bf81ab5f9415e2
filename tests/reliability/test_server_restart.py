"""A server that goes away and comes back: on a dedicated server per test module, never the shared one.

* While the server is down, every call fails within the configured server-selection timeout with the
  driver's connection error (no hang), and closing a factory does not hang either.
* After a restart, the same factory (not recreated) works again.
* Nothing acknowledged is lost across a clean restart (SIGTERM), nor across ``kill -9`` of a server
  started with ``--sync-on-commit``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import ConnectionFailure
from reliability_support import COLLECTION, first_text, snapshot, stop_process, stored_messages
from strands import Agent
from support import add, with_options

from mongodb_session_manager import MongoDBSessionManagerFactory, ServerUnavailableError
from mongodb_session_manager.scripted_model import ScriptedModel, tool_call
from mongodb_session_manager.testing import LocalMongoServer

# Dedicated servers are started here, so this module does not run against MONGODB_URI.
pytestmark = [
    pytest.mark.requires_local_server,
    pytest.mark.timeout(90),
    pytest.mark.usefixtures("collect_abandoned_sockets"),
]

SELECTION_TIMEOUT_MS = 1000
# Generous: the selection timeout plus a retry, on a loaded machine. A hang would take 30 s or forever.
FAIL_FAST = 8.0
DB = "restarts"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalMongoServer]:
    with LocalMongoServer(enable_test_commands=True) as server:
        yield server


@pytest.fixture(scope="module")
def durable_server() -> Iterator[LocalMongoServer]:
    with LocalMongoServer(enable_test_commands=True, sync_on_commit=True) as server:
        yield server


def uri_of(server: LocalMongoServer) -> str:
    return with_options(server.uri, "serverMonitoringMode=poll")


def make_factory(server: LocalMongoServer, database: str) -> MongoDBSessionManagerFactory:
    return MongoDBSessionManagerFactory(
        uri_of(server),
        database_name=database,
        collection_name=COLLECTION,
        serverSelectionTimeoutMS=SELECTION_TIMEOUT_MS,
    )


def fails_fast(call: Callable[[], Any]) -> ServerUnavailableError:
    """The call fails within FAIL_FAST seconds with the library's typed error, chaining the driver's."""
    started = time.monotonic()
    with pytest.raises(ServerUnavailableError) as raised:
        call()
    elapsed = time.monotonic() - started
    print("TIMING", call, round(elapsed, 2))
    assert elapsed < FAIL_FAST, f"took {elapsed:.1f} s to fail"
    assert isinstance(raised.value.__cause__, ConnectionFailure)
    return raised.value


def test_calls_fail_fast_while_the_server_is_down_and_work_again_after_restart(server: LocalMongoServer) -> None:
    factory = make_factory(server, "down_and_up")
    # Closed while the server is down, with PyMongo's default 30 s server selection timeout.
    bystander = MongoDBSessionManagerFactory(uri_of(server), database_name="down_and_up_closed")
    try:
        manager = factory.create_session_manager("s")
        # The turn while down may use a reply (pipelined, the model runs before the prompt's insert is
        # acknowledged): the later ones all say the same.
        agent = Agent(
            model=ScriptedModel(["before"], default_text="after"), session_manager=manager, callback_handler=None
        )
        agent("hello")
        manager.update_metadata({"phase": "before"})
        manager.add_feedback({"rating": "up"})
        bystander.create_session_manager("b").update_metadata({"x": 1})

        stop_process(server)
        calls: dict[str, Callable[[], Any]] = {
            "get_metadata": manager.get_metadata,
            "update_metadata": lambda: manager.update_metadata({"phase": "down"}),
            "add_feedback": lambda: manager.add_feedback({"rating": "down"}),
            "get_feedbacks": manager.get_feedbacks,
            "list_agents": manager.list_agents,
            "agent turn": lambda: agent("while down"),
            "restore": lambda: Agent(model=ScriptedModel([]), session_manager=factory.create_session_manager("s")),
        }
        for name, call in calls.items():
            error = fails_fast(call)
            assert f"127.0.0.1:{server.port}" in str(error), f"{name}: the error does not name the server: {error}"
        started = time.monotonic()
        stats = factory.get_connection_stats()  # a health endpoint: reports, never raises
        assert stats["status"] == "disconnected"
        assert time.monotonic() - started < FAIL_FAST
        started = time.monotonic()
        bystander.close()
        assert time.monotonic() - started < FAIL_FAST, "closing a factory hung while the server was down"

        server.restart()  # same port, same data
        # The same factory and manager work again at once; nothing acknowledged was lost.
        assert manager.get_metadata()["metadata"] == {"phase": "before"}
        assert [feedback["rating"] for feedback in manager.get_feedbacks()] == ["up"]
        agent("after restart")
        assert factory.get_connection_stats()["status"] == "connected"
        restored = Agent(model=ScriptedModel([]), session_manager=factory.create_session_manager("s"))
        texts = [first_text({"message": message}) for message in restored.messages]
        assert texts == ["hello", "before", "after restart", "after"]  # the failed turn stored nothing
    finally:
        factory.close()
        bystander.close()


def write_conversations(factory: MongoDBSessionManagerFactory, sessions: int) -> dict[str, list[Any]]:
    """Several sessions with tool calls, state, metadata and feedback; returns each agent's messages."""
    conversations: dict[str, list[Any]] = {}
    for index in range(sessions):
        manager = factory.create_session_manager(f"session-{index}")
        agent = Agent(
            model=ScriptedModel([tool_call("add", {"a": index, "b": 1}), f"{index} + 1 = {index + 1}", "bye"]),
            tools=[add],
            session_manager=manager,
            callback_handler=None,
        )
        agent(f"what is {index} + 1?")
        agent.state.set("turns", 2)
        agent(f"thanks {index}")
        manager.update_metadata({"index": index, "nested": {"binary": bytes([index]) * 3}})
        manager.add_feedback({"rating": index})
        conversations[f"session-{index}"] = agent.messages
    return conversations


def assert_restores(factory: MongoDBSessionManagerFactory, conversations: dict[str, list[Any]]) -> None:
    for session_id, messages in conversations.items():
        manager = factory.create_session_manager(session_id)
        restored = Agent(model=ScriptedModel([]), tools=[add], session_manager=manager, callback_handler=None)
        assert restored.messages == messages
        assert restored.state.get() == {"turns": 2}
        assert manager.get_metadata()["metadata"]["nested"]["binary"] == bytes([int(session_id.split("-")[1])]) * 3
        assert len(manager.get_feedbacks()) == 1


def test_nothing_acknowledged_is_lost_across_a_clean_restart(server: LocalMongoServer) -> None:
    with make_factory(server, DB) as factory:
        conversations = write_conversations(factory, sessions=4)
        inspector: MongoClient[dict[str, Any]] = MongoClient(uri_of(server))
        try:
            before = snapshot(inspector[DB])
            server.restart()
            after = snapshot(inspector[DB])
        finally:
            inspector.close()
        assert after == before
        assert sum(len(stored) for stored in conversations.values()) == 4 * 6
        assert_restores(factory, conversations)  # through the same factory, not recreated


def test_acknowledged_writes_survive_kill_9_with_sync_on_commit(durable_server: LocalMongoServer) -> None:
    with make_factory(durable_server, DB) as factory:
        conversations = write_conversations(factory, sessions=3)
        stop_process(durable_server, kill=True)  # right after the last acknowledged write
        durable_server.restart()
        assert_restores(factory, conversations)
        inspector: MongoClient[dict[str, Any]] = MongoClient(uri_of(durable_server))
        try:
            for session_id, messages in conversations.items():
                stored = stored_messages(inspector[DB], session_id)
                assert [document["message_id"] for document in stored] == list(range(len(messages)))
        finally:
            inspector.close()
