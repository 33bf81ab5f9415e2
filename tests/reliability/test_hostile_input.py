"""Hostile and bad input at every public entry point: a typed error, nothing written, session readable.

Entry points: the factories (sync and async), the session manager (blocking and ``*_async``
methods, and ``Agent(...)`` through it) and the repositories (async core and blocking facade).
Inputs: bad ids and metadata keys (DESIGN.md section 5), query-operator injection (``{"$ne": ""}``
as an id, a key or a value), values BSON cannot hold (sets, objects, functions, huge ints, lone
surrogates, an object whose ``__repr__`` raises), wrong types and huge strings (a 10 MB id).
"""

from __future__ import annotations

import decimal
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from reliability_support import COLLECTION, snapshot
from strands import Agent
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import (
    AsyncMongoDBSessionManagerFactory,
    AsyncMongoDBSessionRepository,
    InvalidIdError,
    InvalidInputError,
    InvalidMetadataError,
    MongoDBSessionError,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    MongoDBSessionRepository,
    UnstorableValueError,
)
from mongodb_session_manager.scripted_model import ScriptedModel

HUGE = "h" * (10 * 1024 * 1024)


class HostileRepr:
    """An object whose ``__repr__`` raises (error messages must not depend on it)."""

    def __repr__(self) -> str:
        raise RuntimeError("repr refused")


def _cyclic() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        value = {"k": value}
    return value


BAD_IDS = [
    pytest.param("", id="empty"),
    pytest.param(None, id="none"),
    pytest.param(5, id="int"),
    pytest.param(1.5, id="float"),
    pytest.param(True, id="bool"),
    pytest.param(b"bytes", id="bytes"),
    pytest.param(["a"], id="list"),
    pytest.param({"$ne": ""}, id="operator-ne"),
    pytest.param({"$gt": ""}, id="operator-gt"),
    pytest.param({"$regex": ".*"}, id="operator-regex"),
    pytest.param("$where", id="leading-dollar"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("\ud800", id="lone-surrogate"),
    pytest.param("x" * 257, id="257-chars"),
    pytest.param(HUGE, id="10-MB"),
    pytest.param(HostileRepr(), id="hostile-repr"),
]

BAD_METADATA = [
    pytest.param({"$set": {"x": 1}}, InvalidMetadataError, id="operator-key"),
    pytest.param({"$where": "sleep(1000)"}, InvalidMetadataError, id="where-key"),
    pytest.param({"a.b": 1}, InvalidMetadataError, id="dotted-key"),
    pytest.param({"": 1}, InvalidMetadataError, id="empty-key"),
    pytest.param({"a\x00": 1}, InvalidMetadataError, id="nul-key"),
    pytest.param({5: 1}, InvalidMetadataError, id="int-key"),
    pytest.param({("t",): 1}, InvalidMetadataError, id="tuple-key"),
    pytest.param({"k" * 257: 1}, InvalidMetadataError, id="257-char-key"),
    pytest.param({HUGE: 1}, InvalidMetadataError, id="10-MB-key"),
    pytest.param({"user": {"$ne": ""}}, InvalidMetadataError, id="operator-in-value"),
    pytest.param({"user": {"name": {"$gt": ""}}}, InvalidMetadataError, id="nested-operator-in-value"),
    pytest.param({"list": [{"$where": "1"}]}, InvalidMetadataError, id="operator-in-list"),
    pytest.param({"list": [[{"a.b": 1}]]}, InvalidMetadataError, id="dotted-key-in-nested-list"),
    pytest.param(_deep(40), InvalidMetadataError, id="40-levels-deep"),
    pytest.param(_cyclic(), InvalidMetadataError, id="cyclic"),
    pytest.param("not a dict", InvalidMetadataError, id="str"),
    pytest.param(["a", "b"], InvalidMetadataError, id="list"),
    pytest.param(None, InvalidMetadataError, id="none"),
    pytest.param({"v": {1, 2}}, UnstorableValueError, id="set-value"),
    pytest.param({"v": object()}, UnstorableValueError, id="object-value"),
    pytest.param({"v": lambda: None}, UnstorableValueError, id="function-value"),
    pytest.param({"v": 2**64}, UnstorableValueError, id="int-overflow"),
    pytest.param({"v": decimal.Decimal("1.5")}, UnstorableValueError, id="decimal-value"),
    pytest.param({"v": complex(1, 2)}, UnstorableValueError, id="complex-value"),
    pytest.param({"v": "\udc80"}, UnstorableValueError, id="lone-surrogate-value"),
    pytest.param({"v": HostileRepr()}, UnstorableValueError, id="hostile-repr-value"),
    pytest.param({"ok": 1, "v": {1}}, UnstorableValueError, id="good-and-bad-values"),
]

BAD_DELETE_KEYS = [
    pytest.param("kept", id="str-not-list"),
    pytest.param(None, id="none"),
    pytest.param(["$where"], id="operator"),
    pytest.param(["a.b"], id="dotted"),
    pytest.param([{"$ne": ""}], id="dict-key"),
    pytest.param(["kept", ""], id="good-and-empty"),
]

BAD_FEEDBACK = [
    pytest.param("great", InvalidInputError, id="str"),
    pytest.param(None, InvalidInputError, id="none"),
    pytest.param(["up"], InvalidInputError, id="list"),
    pytest.param({"$set": {"rating": 1}}, InvalidMetadataError, id="operator-key"),
    pytest.param({"rating": {"$gt": 0}}, InvalidMetadataError, id="operator-in-value"),
    pytest.param({"a.b": 1}, InvalidMetadataError, id="dotted-key"),
    pytest.param({"tags": {"x", "y"}}, UnstorableValueError, id="set-value"),
    pytest.param({"f": print}, UnstorableValueError, id="function-value"),
    pytest.param({"v": HostileRepr()}, UnstorableValueError, id="hostile-repr-value"),
]


@pytest.fixture
def seeded(factory: MongoDBSessionManagerFactory, db: Any) -> MongoDBSessionManager:
    """A session with an agent conversation, metadata and feedback, to check nothing changes."""
    manager = factory.create_session_manager("victim")
    agent = Agent(
        model=ScriptedModel(["stored answer"]), state={"s": 1}, session_manager=manager, callback_handler=None
    )
    agent("stored question")
    manager.update_metadata({"kept": "yes", "nested": {"a": 1}})
    manager.add_feedback({"rating": "up"})
    return manager


def assert_still_readable(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("victim")
    assert manager.get_metadata()["metadata"] == {"kept": "yes", "nested": {"a": 1}}
    assert [feedback["rating"] for feedback in manager.get_feedbacks()] == ["up"]
    restored = Agent(model=ScriptedModel([]), session_manager=manager)
    assert [message["role"] for message in restored.messages] == ["user", "assistant"]
    assert restored.state.get() == {"s": 1}


def check_error(error: BaseException, expected: type[Exception]) -> None:
    assert isinstance(error, expected), f"{type(error).__name__}: {error}"
    assert isinstance(error, MongoDBSessionError)
    assert len(str(error)) < 2000, "the error message copies the bad value"


def rejects(call: Callable[[], Any], expected: type[Exception]) -> None:
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the type is checked precisely below
        call()
    check_error(raised.value, expected)


async def rejects_async(call: Callable[[], Awaitable[Any]], expected: type[Exception]) -> None:
    with pytest.raises(Exception) as raised:  # noqa: PT011
        await call()
    check_error(raised.value, expected)


# -- ids --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_are_rejected_at_every_sync_entry_point(
    factory: MongoDBSessionManagerFactory, seeded: MongoDBSessionManager, db: Any, mongodb_uri: str, bad: Any
) -> None:
    before = snapshot(db)
    agent = Agent(model=ScriptedModel(["x"]), callback_handler=None)
    agent.agent_id = bad  # Strands itself refuses some of these at construction; the manager must too
    calls: dict[str, Callable[[], Any]] = {
        "factory.create_session_manager": lambda: factory.create_session_manager(bad),
        "factory application_name": lambda: factory.create_session_manager("victim", application_name=bad),
        "MongoDBSessionManager()": lambda: MongoDBSessionManager(bad, connection_string=mongodb_uri),
        "get_message_count": lambda: seeded.get_message_count(bad),
        "get_agent_config": lambda: seeded.get_agent_config(bad),
        "initialize": lambda: factory.create_session_manager("victim").initialize(agent),
        "append_message": lambda: seeded.append_message({"role": "user", "content": [{"text": "x"}]}, agent),
    }
    if bad is None:
        del calls["factory application_name"]  # None is the default: no application scope
    for name, call in calls.items():
        with pytest.raises(Exception) as raised:  # noqa: PT011
            call()
        assert isinstance(raised.value, InvalidIdError), f"{name}: {type(raised.value).__name__}: {raised.value}"
        assert len(str(raised.value)) < 2000
    if isinstance(bad, str) and bad not in ("", "a\x00b") and "\ud800" not in bad:
        # Strands accepts these agent ids; the manager refuses them when the agent initializes.
        rejects(lambda: Agent(model=ScriptedModel([]), agent_id=bad, session_manager=seeded), InvalidIdError)
    assert snapshot(db) == before
    assert_still_readable(factory)


@pytest.mark.anyio
@pytest.mark.parametrize("bad", BAD_IDS)
async def test_bad_ids_are_rejected_at_every_async_entry_point(
    mongodb_uri: str, db_name: str, db: Any, bad: Any
) -> None:
    async with AsyncMongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as f:
        manager = await f.create_session_manager("victim", preload=True)
        await manager.update_metadata_async({"kept": "yes"})
        before = snapshot(db)
        agent = Agent(model=ScriptedModel([]), callback_handler=None)
        agent.agent_id = bad
        await rejects_async(lambda: f.create_session_manager(bad), InvalidIdError)
        await rejects_async(lambda: f.create_session_manager(bad, preload=True), InvalidIdError)
        await rejects_async(lambda: manager.get_message_count_async(bad), InvalidIdError)
        await rejects_async(lambda: manager.get_agent_config_async(bad), InvalidIdError)
        await rejects_async(lambda: manager.initialize_async(agent), InvalidIdError)
        assert snapshot(db) == before
        assert (await manager.get_metadata_async())["metadata"] == {"kept": "yes"}


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_are_rejected_by_the_blocking_repository(mongodb_uri: str, db_name: str, db: Any, bad: Any) -> None:
    repository = MongoDBSessionRepository(mongodb_uri, database_name=db_name, collection_name=COLLECTION)
    try:
        repository.create_session(Session(session_id="victim", session_type=SessionType.AGENT))
        repository.create_agent("victim", SessionAgent(agent_id="a", state={}, conversation_manager_state={}))
        message = SessionMessage(message={"role": "user", "content": [{"text": "hi"}]}, message_id=0)
        repository.create_message("victim", "a", message)
        before = snapshot(db)
        bad_agent = SessionAgent(agent_id=bad, state={}, conversation_manager_state={})
        calls: dict[str, Callable[[], Any]] = {
            "create_session": lambda: repository.create_session(
                Session(session_id=bad, session_type=SessionType.AGENT)
            ),
            "read_session": lambda: repository.read_session(bad),
            "delete_session": lambda: repository.delete_session(bad),
            "create_agent": lambda: repository.create_agent("victim", bad_agent),
            "read_agent": lambda: repository.read_agent("victim", bad),
            "update_agent": lambda: repository.update_agent("victim", bad_agent),
            "create_message": lambda: repository.create_message(bad, "a", message),
            "read_message": lambda: repository.read_message("victim", bad, 0),
            "update_message": lambda: repository.update_message(bad, "a", message),
            "list_messages": lambda: repository.list_messages("victim", bad),
        }
        for name, call in calls.items():
            with pytest.raises(Exception) as raised:  # noqa: PT011
                call()
            assert isinstance(raised.value, InvalidIdError), f"{name}: {type(raised.value).__name__}"
        assert snapshot(db) == before
        assert repository.read_message("victim", "a", 0) == message
    finally:
        repository.core.runtime.close()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "bad",
    [-1, 2**63, True, 1.0, "0", None, {"$gte": 0}, [0]],
    ids=["negative", "2**63", "bool", "float", "str", "none", "operator", "list"],
)
async def test_bad_message_ids_and_paging_are_rejected_by_the_async_repository(
    mongodb_uri: str, db_name: str, db: Any, bad: Any
) -> None:
    async with AsyncMongoDBSessionRepository(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as repo:
        await repo.create_message("s", "a", SessionMessage(message={"role": "user", "content": []}, message_id=0))
        before = snapshot(db)
        bad_message = SessionMessage(message={"role": "user", "content": []}, message_id=bad)
        await rejects_async(lambda: repo.create_message("s", "a", bad_message), InvalidIdError)
        await rejects_async(lambda: repo.read_message("s", "a", bad), InvalidIdError)
        await rejects_async(lambda: repo.update_message("s", "a", bad_message), InvalidIdError)
        await rejects_async(lambda: repo.redact_message("s", "a", bad, {"role": "user", "content": []}), InvalidIdError)
        if bad is not None:  # limit=None means "no limit"
            await rejects_async(lambda: repo.list_messages("s", "a", limit=bad), InvalidInputError)
        await rejects_async(lambda: repo.list_messages("s", "a", offset=bad), InvalidInputError)
        assert snapshot(db) == before


# -- metadata and feedback --------------------------------------------------------------------------


@pytest.mark.parametrize(("metadata", "expected"), BAD_METADATA)
def test_bad_metadata_is_rejected_and_nothing_is_written(
    factory: MongoDBSessionManagerFactory,
    seeded: MongoDBSessionManager,
    db: Any,
    metadata: Any,
    expected: type[Exception],
) -> None:
    before = snapshot(db)
    rejects(lambda: seeded.update_metadata(metadata), expected)
    # A new session is not created by a rejected update either.
    rejects(lambda: factory.create_session_manager("fresh").update_metadata(metadata), expected)
    assert snapshot(db) == before
    assert_still_readable(factory)


@pytest.mark.anyio
@pytest.mark.parametrize(("metadata", "expected"), BAD_METADATA)
async def test_bad_metadata_is_rejected_by_the_async_api(
    mongodb_uri: str, db_name: str, db: Any, metadata: Any, expected: type[Exception]
) -> None:
    async with AsyncMongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as f:
        manager = await f.create_session_manager("victim")
        await manager.update_metadata_async({"kept": "yes"})
        before = snapshot(db)
        await rejects_async(lambda: manager.update_metadata_async(metadata), expected)
        repository = manager.repository
        await rejects_async(lambda: repository.update_metadata("victim", metadata), expected)
        assert snapshot(db) == before
        assert (await manager.get_metadata_async())["metadata"] == {"kept": "yes"}


@pytest.mark.parametrize("keys", BAD_DELETE_KEYS)
def test_bad_metadata_delete_keys_are_rejected(
    factory: MongoDBSessionManagerFactory, seeded: MongoDBSessionManager, db: Any, keys: Any
) -> None:
    before = snapshot(db)
    rejects(lambda: seeded.delete_metadata(keys), InvalidMetadataError)
    assert snapshot(db) == before
    assert_still_readable(factory)


@pytest.mark.parametrize(("feedback", "expected"), BAD_FEEDBACK)
def test_bad_feedback_is_rejected_and_nothing_is_written(
    factory: MongoDBSessionManagerFactory,
    seeded: MongoDBSessionManager,
    db: Any,
    feedback: Any,
    expected: type[Exception],
) -> None:
    before = snapshot(db)
    rejects(lambda: seeded.add_feedback(feedback), expected)
    scoped = factory.create_session_manager("victim-app", application_name="app")
    rejects(lambda: scoped.add_feedback(feedback), expected)  # does not create the session either
    assert snapshot(db) == before
    assert_still_readable(factory)


def test_unstorable_message_content_is_rejected_and_the_turn_writes_nothing(
    factory: MongoDBSessionManagerFactory, seeded: MongoDBSessionManager, db: Any
) -> None:
    before = snapshot(db)
    agent = Agent(model=ScriptedModel([]), session_manager=factory.create_session_manager("victim"))
    for content in ({"text": "fine", "extra": {1, 2}}, {"text": "fine", "extra": HostileRepr()}):
        message: Any = {"role": "user", "content": [content]}
        rejects(lambda message=message: seeded.append_message(message, agent), UnstorableValueError)
    assert snapshot(db) == before
    assert_still_readable(factory)


# -- factories --------------------------------------------------------------------------------------


BAD_FACTORY_ARGUMENTS = [
    pytest.param({"connection_string": "localhost:27017"}, InvalidInputError, id="not-a-uri"),
    pytest.param({"connection_string": {"$ne": ""}}, InvalidInputError, id="operator-uri"),
    pytest.param({"connection_string": None}, InvalidInputError, id="no-uri-no-client"),
    pytest.param({"database_name": ""}, InvalidInputError, id="empty-db"),
    pytest.param({"database_name": "a.b"}, InvalidInputError, id="dotted-db"),
    pytest.param({"database_name": "a/b"}, InvalidInputError, id="slash-db"),
    pytest.param({"database_name": "$db"}, InvalidInputError, id="dollar-db"),
    pytest.param({"database_name": {"$ne": ""}}, InvalidInputError, id="operator-db"),
    pytest.param({"database_name": 5}, InvalidInputError, id="int-db"),
    pytest.param({"collection_name": ""}, InvalidInputError, id="empty-collection"),
    pytest.param({"collection_name": "$cmd"}, InvalidInputError, id="dollar-collection"),
    pytest.param({"collection_name": "a\x00b"}, InvalidInputError, id="nul-collection"),
    pytest.param({"collection_name": ["sessions"]}, InvalidInputError, id="list-collection"),
    pytest.param({"metadata_fields": "priority"}, InvalidMetadataError, id="str-fields"),
    pytest.param({"metadata_fields": ["$where"]}, InvalidMetadataError, id="operator-field"),
    pytest.param({"metadata_fields": ["a.b"]}, InvalidMetadataError, id="dotted-field"),
    pytest.param({"metadata_fields": [5]}, InvalidMetadataError, id="int-field"),
]


@pytest.mark.parametrize(("arguments", "expected"), BAD_FACTORY_ARGUMENTS)
def test_bad_factory_arguments_are_rejected(
    mongodb_uri: str, db_name: str, db: Any, arguments: dict[str, Any], expected: type[Exception]
) -> None:
    options = {"connection_string": mongodb_uri, "database_name": db_name, "collection_name": COLLECTION, **arguments}
    rejects(lambda: MongoDBSessionManagerFactory(**options), expected)
    rejects(lambda: AsyncMongoDBSessionManagerFactory(**options), expected)
    if "connection_string" not in arguments:
        with MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as f:
            overrides = {key: value for key, value in arguments.items() if key in ("database_name", "collection_name")}
            if overrides:
                rejects(lambda: f.create_session_manager("s", **overrides), expected)
            if "metadata_fields" in arguments:
                rejects(lambda: f.create_session_manager("s", metadata_fields=arguments["metadata_fields"]), expected)
    assert db.list_collection_names() == []
