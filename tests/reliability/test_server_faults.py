"""Transient server faults injected with ``failCommand`` fail points, on the shared test server.

Each fail point is scoped to this test's client by ``appName`` and turned off in ``finally``.
Retryable writes are on by default: a transient fault during an insert is retried once, and the
message is stored exactly once. A fault that outlasts the retry fails the call with the driver's
error, and the next call works.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import AutoReconnect, ConnectionFailure, OperationFailure
from reliability_support import COLLECTION, first_text, stored_messages
from strands import Agent
from support import CommandRecorder, fail_point, unique_app

from mongodb_session_manager import DatabaseError, MongoDBSessionManagerFactory, ServerUnavailableError
from mongodb_session_manager.scripted_model import ScriptedModel

pytestmark = pytest.mark.usefixtures("collect_abandoned_sockets")


@pytest.fixture
def app_name() -> str:
    return unique_app("faults")


@pytest.fixture
def inserts() -> CommandRecorder:
    """Counts the ``insert`` commands a client sent (a retried insert is sent twice)."""
    return CommandRecorder(only={"insert"})


@pytest.fixture
def factory(
    mongodb_uri: str, db_name: str, app_name: str, inserts: CommandRecorder
) -> Iterator[MongoDBSessionManagerFactory]:
    factory = MongoDBSessionManagerFactory(
        mongodb_uri,
        database_name=db_name,
        collection_name=COLLECTION,
        appname=app_name,
        serverSelectionTimeoutMS=5000,
        event_listeners=[inserts],
    )
    yield factory
    factory.close()


TRANSIENT_FAULTS = [
    pytest.param({"closeConnection": True}, id="network-error"),
    pytest.param({"errorCode": 91, "errorLabels": ["RetryableWriteError"]}, id="shutdown-in-progress-91"),
    pytest.param({"errorCode": 189, "errorLabels": ["RetryableWriteError"]}, id="primary-stepped-down-189"),
    pytest.param({"errorCode": 10107, "errorLabels": ["RetryableWriteError"]}, id="not-writable-primary-10107"),
    # The insert is executed, then the reply reports a failure: the retry must not store it twice.
    pytest.param(
        {"writeConcernError": {"code": 91, "errmsg": "shutting down"}, "errorLabels": ["RetryableWriteError"]},
        id="executed-then-write-concern-error",
    ),
]


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS)
def test_a_transient_fault_during_an_insert_is_retried_and_stored_once(
    factory: MongoDBSessionManagerFactory,
    mongodb_client: MongoClient[dict[str, Any]],
    app_name: str,
    inserts: CommandRecorder,
    db: Any,
    fault: dict[str, Any],
) -> None:
    # One insert per message (awaited writes), so that the count shows the retry; the retry is the
    # driver's, the same for pipelined writes (whose inserts group what waits).
    agent = Agent(
        model=ScriptedModel(["first answer", "second answer"]),
        session_manager=factory.create_session_manager("faulty", pipelined_writes=False),
        callback_handler=None,
    )
    agent("first question")
    inserts.clear()

    with fail_point(mongodb_client, app_name, {"times": 1}, failCommands=["insert"], **fault):
        agent("second question")  # no error reaches the caller

    assert inserts.count("insert") == 3, "the faulted insert was not retried exactly once"  # 2 messages + 1 retry
    stored = stored_messages(db, "faulty")
    assert [document["message_id"] for document in stored] == [0, 1, 2, 3]
    assert [first_text(document) for document in stored] == [
        "first question",
        "first answer",
        "second question",
        "second answer",
    ]


def test_a_connection_closed_mid_turn_fails_the_turn_and_the_next_call_recovers(
    factory: MongoDBSessionManagerFactory, mongodb_client: MongoClient[dict[str, Any]], app_name: str, db: Any
) -> None:
    manager = factory.create_session_manager("mid-turn")
    # Pipelined (the default), the model is called before the prompt's insert is acknowledged: the
    # failed turn may use a reply, so the later ones all say the same.
    agent = Agent(model=ScriptedModel(["one"], default_text="three"), session_manager=manager, callback_handler=None)
    agent("first")

    # The connection drops on the insert and again on its retry: the turn fails with the library's typed
    # error, the driver's chained.
    with (
        fail_point(mongodb_client, app_name, {"times": 2}, failCommands=["insert"], closeConnection=True),
        pytest.raises(ServerUnavailableError) as raised,
    ):
        agent("second")
    assert isinstance(raised.value.__cause__, AutoReconnect)

    # The next calls work on fresh connections; nothing acknowledged was lost, ids stay gap-free.
    manager.update_metadata({"after": "fault"})
    agent("third")
    stored = stored_messages(db, "mid-turn")
    assert [document["message_id"] for document in stored] == [0, 1, 2, 3]
    assert [first_text(document) for document in stored] == ["first", "one", "third", "three"]
    assert manager.get_metadata()["metadata"] == {"after": "fault"}
    restored = Agent(model=ScriptedModel([]), session_manager=factory.create_session_manager("mid-turn"))
    assert [first_text({"message": message}) for message in restored.messages] == ["first", "one", "third", "three"]


@pytest.mark.parametrize("command", ["find", "findAndModify", "update"])
def test_a_transient_fault_on_reads_and_updates_is_retried(
    factory: MongoDBSessionManagerFactory, mongodb_client: MongoClient[dict[str, Any]], app_name: str, command: str
) -> None:
    manager = factory.create_session_manager("reads")
    manager.update_metadata({"k": 1})
    Agent(model=ScriptedModel(["x"]), session_manager=manager)("hello")

    with fail_point(mongodb_client, app_name, {"times": 1}, failCommands=[command], closeConnection=True):
        restored = Agent(model=ScriptedModel([]), session_manager=factory.create_session_manager("reads"))
        manager.update_metadata({"k": 2})
        assert manager.get_metadata()["metadata"] == {"k": 2}
    assert len(restored.messages) == 2


def test_a_non_retryable_server_error_reaches_the_caller_and_writes_nothing(
    factory: MongoDBSessionManagerFactory, mongodb_client: MongoClient[dict[str, Any]], app_name: str, db: Any
) -> None:
    manager = factory.create_session_manager("refused")
    manager.update_metadata({"kept": True})
    with (
        fail_point(mongodb_client, app_name, {"times": 1}, failCommands=["update"], errorCode=2),
        pytest.raises(DatabaseError) as raised,
    ):
        manager.update_metadata({"lost": True})
    assert isinstance(raised.value.__cause__, OperationFailure)
    assert not isinstance(raised.value.__cause__, ConnectionFailure)
    assert raised.value.code == 2
    assert manager.get_metadata()["metadata"] == {"kept": True}
    assert db[COLLECTION].count_documents({}) == 1
