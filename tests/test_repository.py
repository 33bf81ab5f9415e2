"""AsyncMongoDBSessionRepository against a real MongoDB wire-protocol server.

Every test that takes ``repo`` runs three times: with a client the repository creates and owns
(from a connection string), with a borrowed Motor client and with a borrowed sync PyMongo client.
Stored documents are inspected with a separate plain ``pymongo.MongoClient``.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database
from strands.types.exceptions import SessionException
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager._indexes import MESSAGE_INDEX_NAME
from mongodb_session_manager.errors import (
    AlreadyExistsError,
    ClosedError,
    DuplicateMessageError,
    InvalidIdError,
    InvalidInputError,
    InvalidMetadataError,
    NotFoundError,
    UnstorableValueError,
)
from mongodb_session_manager.repository import AsyncMongoDBSessionRepository
from mongodb_session_manager.testing import CommandRecorder

pytestmark = pytest.mark.anyio

COLLECTION = "sessions"
MESSAGES = COLLECTION + ".messages"
FEEDBACK = COLLECTION + ".feedback"

Raw = Database[dict[str, Any]]


# -- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture(params=["owned", "motor", "sync"])
def client_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def borrowed_client(client_kind: str, mongodb_uri: str) -> AsyncIterator[Any]:
    """The client lent to the repository (None when the repository creates its own)."""
    if client_kind == "owned":
        yield None
    elif client_kind == "motor":
        motor_client: Any = AsyncIOMotorClient(mongodb_uri)
        try:
            yield motor_client
        finally:
            motor_client.close()
    else:
        sync_client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
        try:
            yield sync_client
        finally:
            sync_client.close()


@pytest.fixture
async def repo(borrowed_client: Any, mongodb_uri: str, db_name: str) -> AsyncIterator[AsyncMongoDBSessionRepository]:
    if borrowed_client is None:
        repository = AsyncMongoDBSessionRepository(
            connection_string=mongodb_uri, database_name=db_name, collection_name=COLLECTION
        )
    else:
        repository = AsyncMongoDBSessionRepository(
            client=borrowed_client, database_name=db_name, collection_name=COLLECTION
        )
    try:
        yield repository
    finally:
        await repository.close()


@pytest.fixture
def raw(mongodb_client: MongoClient[dict[str, Any]], db_name: str) -> Raw:
    """The test database through a plain sync PyMongo client, independent of the repository."""
    return mongodb_client[db_name]


@pytest.fixture
async def recorded(mongodb_uri: str) -> AsyncIterator[tuple[AsyncMongoClient[dict[str, Any]], CommandRecorder]]:
    """A borrowed ``AsyncMongoClient`` whose commands are recorded."""
    recorder = CommandRecorder()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri, event_listeners=[recorder])
    try:
        yield client, recorder
    finally:
        await client.close()


def snapshot(raw: Raw) -> dict[str, list[dict[str, Any]]]:
    """Every document of the database, per collection, in a stable order."""
    return {name: list(raw[name].find({}, sort=[("_id", 1)])) for name in sorted(raw.list_collection_names())}


def text_message(text: str, message_id: int, role: str = "user") -> SessionMessage:
    return SessionMessage(message={"role": role, "content": [{"text": text}]}, message_id=message_id)  # type: ignore[typeddict-item]


def assert_identical(actual: Any, expected: Any, path: str = "$") -> None:
    """``==`` plus same types and key order all the way down (``True == 1`` and ``1 == 1.0`` are not enough).

    Integers beyond 32 bits come back as ``bson.Int64``, an ``int`` subclass, which is accepted.
    """
    if type(expected) is int:
        assert isinstance(actual, int), f"{path}: {type(actual).__name__} is not an int"
        assert not isinstance(actual, bool), f"{path}: int came back as bool"
    else:
        assert type(actual) is type(expected), f"{path}: {type(actual).__name__} != {type(expected).__name__}"
    if isinstance(expected, dict):
        assert list(actual) == list(expected), f"{path}: keys {list(actual)} != {list(expected)}"
        for key in expected:
            assert_identical(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for index, (left, right) in enumerate(zip(actual, expected, strict=True)):
            assert_identical(left, right, f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def find_stage(plan: Any, stage: str, index_name: str) -> bool:
    """Whether a plan (any nesting of dicts and lists) has ``stage`` over the index ``index_name``."""
    if isinstance(plan, dict):
        if plan.get("stage") == stage and plan.get("indexName") == index_name:
            return True
        return any(find_stage(value, stage, index_name) for value in plan.values())
    if isinstance(plan, list):
        return any(find_stage(item, stage, index_name) for item in plan)
    return False


async def outcomes(calls: dict[str, Callable[[], Awaitable[Any]]]) -> dict[str, str]:
    """Await each call; the name of the exception it raised ("returned" if none), with its message."""
    results = {}
    for name, call in calls.items():
        try:
            await call()
        except Exception as error:
            results[name] = (
                type(error).__name__ if isinstance(error, (InvalidIdError, UnstorableValueError)) else repr(error)
            )
        else:
            results[name] = "returned"
    return results


class StubOrchestrator:
    """The two members of ``MultiAgentBase`` the repository uses."""

    def __init__(self, id: str, state: dict[str, Any]) -> None:
        self.id = id
        self.state = state

    def serialize_state(self) -> dict[str, Any]:
        return copy.deepcopy(self.state)


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": [1, 2.5, None, True, "bottom"]}
    for level in range(depth - 1):
        value = {f"level{level}": value, "siblings": [level, {"n": level}]}
    return value


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return max((depth_of(item) for item in value), default=0)
    return 0


PNG = b"\x89PNG\x00\xff"
PDF = bytes(range(256))

UNICODE = (
    "emoji 😀👍🏽 👨\u200d👩\u200d👧 🏳️\u200d🌈 | RTL مرحبا بالعالم שלום עולם \u202eoverride\u202c | "
    "CJK 你好\uff0c世界 日本語テキスト 한국어 | combining e\u0301 a\u0308 n\u0303 \u0915\u094d\u0937 | "
    "astral \U0001d11e\U00010348 | bom \ufeff | nul a\x00b"
)

MESSAGE_CASES: dict[str, SessionMessage] = {
    "text": text_message("hello", 0),
    "redacted": SessionMessage(
        message={"role": "user", "content": [{"text": "my card is 4111 1111 1111 1111"}]},
        message_id=1,
        redact_message={"role": "user", "content": [{"text": "[REDACTED]"}]},
        created_at="2024-01-02T03:04:05.123456+00:00",
        updated_at="2024-01-02T03:04:06+00:00",
    ),
    "image_and_document_bytes": SessionMessage(
        message={
            "role": "user",
            "content": [
                {"text": "look"},
                {"image": {"format": "png", "source": {"bytes": PNG}}},
                {"document": {"format": "pdf", "name": "x", "source": {"bytes": PDF}}},
            ],
        },
        message_id=2,
    ),
    "unicode": SessionMessage(
        message={
            "role": "assistant",
            "content": [
                {"text": UNICODE},
                {
                    "toolUse": {
                        "toolUseId": "tooluse_ü😀",
                        "name": "translate",
                        "input": {"clé": "valeur", "键": "值", "🔑": "🗝", "עברית": ["\u0627", "\u0628"]},
                    }
                },
            ],
        },
        message_id=3,
    ),
    "deeply_nested_tool_input": SessionMessage(
        message={
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "t1", "name": "deep", "input": nested(50)}}],
        },
        message_id=4,
    ),
    "scalars_and_empties": SessionMessage(
        message={
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "t1",
                        "status": "success",
                        "content": [
                            {
                                "json": {
                                    "floats": [0.1, -0.0, 1.0, 1e-308, 1.7976931348623157e308, float("inf")],
                                    "ints": [0, -1, 2**31, 2**63 - 1, -(2**63)],
                                    "none": None,
                                    "true": True,
                                    "false": False,
                                    "empty_list": [],
                                    "empty_dict": {},
                                    "empty_string": "",
                                    "list_of_empties": [[], {}, [[]], {"a": {}}],
                                }
                            }
                        ],
                    }
                }
            ],
        },
        message_id=5,
    ),
    "operator_like_keys": SessionMessage(
        message={
            "role": "assistant",
            "content": [
                {
                    "toolUse": {
                        "toolUseId": "t2",
                        "name": "schema",
                        "input": {"$schema": "http://json-schema.org/draft-07/schema#", "a.b": {"$ref": "#/x"}},
                    }
                }
            ],
        },
        message_id=6,
    ),
}


# -- lifecycle ------------------------------------------------------------------------------------


async def test_close_closes_only_an_owned_client(
    repo: AsyncMongoDBSessionRepository, borrowed_client: Any, client_kind: str, db_name: str
) -> None:
    await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))

    await repo.close()
    await repo.close()  # idempotent

    with pytest.raises(ClosedError):
        await repo.read_session("s")
    if client_kind == "motor":
        assert (await borrowed_client[db_name].command("ping"))["ok"] == 1
        assert await borrowed_client[db_name][COLLECTION].count_documents({}) == 1
    elif client_kind == "sync":
        assert borrowed_client[db_name].command("ping")["ok"] == 1
        assert borrowed_client[db_name][COLLECTION].count_documents({}) == 1


# -- round trips ----------------------------------------------------------------------------------


async def test_session_round_trip(repo: AsyncMongoDBSessionRepository) -> None:
    sessions = [
        Session(session_id="s", session_type=SessionType.AGENT),
        Session(
            session_id="会话-😀-שלום",
            session_type=SessionType.AGENT,
            created_at="2023-05-06T07:08:09.000001+00:00",
            updated_at="2023-05-06T07:08:10+00:00",
        ),
        Session(session_id="x" * 256, session_type=SessionType.AGENT),  # the longest id accepted
    ]
    for session in sessions:
        assert await repo.create_session(session) is session

    for session in sessions:
        read = await repo.read_session(session.session_id)
        assert read == session
        assert read is not None
        assert read.session_type is SessionType.AGENT


async def test_agent_round_trip_and_update(repo: AsyncMongoDBSessionRepository) -> None:
    await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    agent = SessionAgent(
        agent_id="agent-ü",
        state={"counter": 3, "nested": {"a": [1, {"b": None}], "flag": False}, "blob": b"\x00\x01\xff"},
        conversation_manager_state={"__name__": "SlidingWindowConversationManager", "removed_message_count": 3},
        _internal_state={
            "interrupt_state": {"interrupts": {}, "context": {}, "activated": False},
            "model_state": {"k": [1, 2]},
        },
        created_at="2024-01-01T00:00:00+00:00",
        updated_at="2024-01-01T00:00:01+00:00",
    )
    original = copy.deepcopy(agent)
    other = SessionAgent(agent_id="other", state={}, conversation_manager_state={})

    await repo.create_agent("s", agent)
    await repo.create_agent("s", other)

    assert agent == original  # the caller's object is left alone
    read = await repo.read_agent("s", "agent-ü")
    assert read == original
    assert read is not None
    assert_identical(read.state, original.state)
    assert_identical(read._internal_state, original._internal_state)
    assert await repo.read_agent("s", "other") == other

    changed = SessionAgent(
        agent_id="agent-ü",
        state={"counter": 4},
        conversation_manager_state={"__name__": "SlidingWindowConversationManager", "removed_message_count": 7},
        _internal_state={"model_state": {}},
        created_at="2099-01-01T00:00:00+00:00",  # ignored: created_at is kept
        updated_at="2024-01-01T00:00:01+00:00",
    )
    await repo.update_agent("s", changed)

    read = await repo.read_agent("s", "agent-ü")
    assert read is not None
    assert read.state == {"counter": 4}
    assert read.conversation_manager_state == changed.conversation_manager_state
    assert read._internal_state == {"model_state": {}}
    assert read.created_at == original.created_at
    assert datetime.fromisoformat(read.updated_at) > datetime.fromisoformat(original.updated_at)
    assert await repo.read_agent("s", "other") == other  # the sibling record is untouched


@pytest.mark.parametrize("case", MESSAGE_CASES)
async def test_message_round_trip(repo: AsyncMongoDBSessionRepository, case: str) -> None:
    message = MESSAGE_CASES[case]
    original = copy.deepcopy(message)

    await repo.create_message("s", "a", message)

    assert message == original  # nothing (such as an _id) was added to the caller's data
    read = await repo.read_message("s", "a", message.message_id)
    assert read == original
    assert read is not None
    assert_identical(read.message, original.message)
    assert_identical(read.redact_message, original.redact_message)
    assert await repo.list_messages("s", "a") == [original]


async def test_all_messages_round_trip_through_create_messages(repo: AsyncMongoDBSessionRepository) -> None:
    messages = sorted(MESSAGE_CASES.values(), key=lambda message: message.message_id)
    await repo.create_messages("s", "a", copy.deepcopy(messages))

    assert await repo.list_messages("s", "a") == messages
    assert await repo.count_messages("s", "a") == len(messages)


async def test_message_update_replaces_content_and_keeps_created_at(repo: AsyncMongoDBSessionRepository) -> None:
    first = text_message("draft", 0)
    first.created_at = first.updated_at = "2024-01-01T00:00:00+00:00"
    await repo.create_message("s", "a", first)
    untouched = text_message("next", 1)
    await repo.create_message("s", "a", untouched)

    replacement = copy.deepcopy(MESSAGE_CASES["image_and_document_bytes"])
    replacement.message_id = 0
    replacement.redact_message = {"role": "user", "content": [{"text": "[REDACTED]"}]}
    await repo.update_message("s", "a", replacement)

    read = await repo.read_message("s", "a", 0)
    assert read is not None
    assert read.message == replacement.message
    assert read.redact_message == replacement.redact_message
    assert read.created_at == "2024-01-01T00:00:00+00:00"
    assert datetime.fromisoformat(read.updated_at) > datetime.fromisoformat(first.updated_at)
    assert await repo.read_message("s", "a", 1) == untouched
    assert [m.message_id for m in await repo.list_messages("s", "a")] == [0, 1]


async def test_bytes_are_stored_as_bson_binary(repo: AsyncMongoDBSessionRepository, raw: Raw) -> None:
    await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    await repo.create_message("s", "a", MESSAGE_CASES["image_and_document_bytes"])
    await repo.create_agent("s", SessionAgent(agent_id="a", state={"blob": PNG}, conversation_manager_state={}))

    document = raw[MESSAGES].find_one({"session_id": "s", "agent_id": "a", "message_id": 2})
    assert document is not None
    image = document["message"]["content"][1]["image"]["source"]["bytes"]
    pdf = document["message"]["content"][2]["document"]["source"]["bytes"]
    assert isinstance(image, bytes)
    assert image == PNG
    assert isinstance(pdf, bytes)
    assert pdf == PDF
    # Queryable as binary, which a base64 string would not be.
    assert raw[MESSAGES].count_documents({"message.content.image.source.bytes": PNG}) == 1

    session = raw[COLLECTION].find_one({"_id": "s"})
    assert session is not None
    blob = session["agents"][0]["state"]["blob"]
    assert isinstance(blob, bytes)
    assert blob == PNG


async def test_message_nesting_is_stored_as_is(repo: AsyncMongoDBSessionRepository, raw: Raw) -> None:
    await repo.create_message("s", "a", MESSAGE_CASES["deeply_nested_tool_input"])

    document = raw[MESSAGES].find_one({"message_id": 4}, {"_id": 0})
    assert document is not None
    tool_input = document["message"]["content"][0]["toolUse"]["input"]
    assert depth_of(tool_input) == 50
    assert tool_input == nested(50)


# -- multi-agent ----------------------------------------------------------------------------------


async def test_multi_agent_create_read_update(repo: AsyncMongoDBSessionRepository) -> None:
    await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    graph = StubOrchestrator("graph-1", {"status": "executing", "completed_nodes": ["a"], "results": {"a": {"x": 1}}})
    swarm = StubOrchestrator("swarm-1", {"status": "pending", "node_history": []})

    await repo.create_multi_agent("s", graph)
    await repo.create_multi_agent("s", swarm)

    assert await repo.read_multi_agent("s", "graph-1") == graph.state
    assert await repo.read_multi_agent("s", "swarm-1") == swarm.state
    assert await repo.read_multi_agent("s", "missing") is None
    assert await repo.read_multi_agent("missing", "graph-1") is None

    graph.state = {"status": "completed", "completed_nodes": ["a", "b"], "results": {}, "blob": b"\x00"}
    await repo.update_multi_agent("s", graph)

    assert await repo.read_multi_agent("s", "graph-1") == graph.state
    assert await repo.read_multi_agent("s", "swarm-1") == swarm.state

    with pytest.raises(AlreadyExistsError):
        await repo.create_multi_agent("s", StubOrchestrator("graph-1", {"status": "overwritten?"}))
    assert await repo.read_multi_agent("s", "graph-1") == graph.state
    with pytest.raises(NotFoundError):
        await repo.create_multi_agent("missing", graph)
    with pytest.raises(SessionException):
        await repo.update_multi_agent("s", StubOrchestrator("never-created", {}))
    with pytest.raises(SessionException):
        await repo.update_multi_agent("missing", graph)


# -- listing --------------------------------------------------------------------------------------


async def test_list_messages_slices(repo: AsyncMongoDBSessionRepository) -> None:
    messages = [text_message(f"message {i}", i) for i in range(1000)]
    # Inserted out of order: the listing must sort by message id, not by insertion.
    await repo.create_messages("s", "a", messages[500:] + messages[:500])
    await repo.create_message("s", "other-agent", text_message("elsewhere", 0))
    await repo.create_message("other-session", "a", text_message("elsewhere", 0))

    assert await repo.list_messages("s", "a") == messages
    assert await repo.list_messages("s", "a", limit=None, offset=0) == messages
    assert await repo.list_messages("s", "a", limit=20, offset=990) == messages[990:]
    assert await repo.list_messages("s", "a", limit=10, offset=100) == messages[100:110]
    assert await repo.list_messages("s", "a", offset=999) == messages[999:]
    assert await repo.list_messages("s", "a", offset=1000) == []
    assert await repo.list_messages("s", "a", limit=0) == []
    assert await repo.list_messages("s", "a", limit=1) == messages[:1]
    assert await repo.list_messages("s", "missing") == []
    assert await repo.count_messages("s", "a") == 1000

    for bad in ({"limit": -1}, {"limit": True}, {"limit": "5"}, {"offset": -1}, {"offset": None}, {"offset": 1.0}):
        with pytest.raises(InvalidInputError):
            await repo.list_messages("s", "a", **bad)


async def test_list_messages_uses_the_index_in_one_round_trip(
    recorded: tuple[AsyncMongoClient[dict[str, Any]], CommandRecorder], raw: Raw, db_name: str
) -> None:
    client, recorder = recorded
    repo = AsyncMongoDBSessionRepository(client=client, database_name=db_name, collection_name=COLLECTION)
    messages = [text_message(f"message {i}", i) for i in range(1000)]
    await repo.create_messages("s", "a", messages)

    recorder.clear()
    assert await repo.list_messages("s", "a") == messages
    assert recorder.count("find", MESSAGES) == 1
    assert recorder.count("getMore") == 0
    assert len(recorder.commands) == 1

    recorder.clear()
    assert await repo.list_messages("s", "a", limit=20, offset=990) == messages[990:]
    assert recorder.targets == [("find", MESSAGES)]

    plan = (
        raw[MESSAGES]
        .find({"session_id": "s", "agent_id": "a"}, {"_id": 0})
        .sort([("session_id", 1), ("agent_id", 1), ("message_id", 1)])
        .explain()
    )
    assert find_stage(plan["queryPlanner"]["winningPlan"], "IXSCAN", MESSAGE_INDEX_NAME), plan
    await repo.close()


# -- missing and existing records -----------------------------------------------------------------


async def test_reading_missing_records_returns_none(repo: AsyncMongoDBSessionRepository) -> None:
    assert await repo.read_session("missing") is None
    assert await repo.read_agent("missing", "a") is None
    assert await repo.read_message("missing", "a", 0) is None
    assert await repo.read_multi_agent("missing", "m") is None
    assert await repo.list_messages("missing", "a") == []

    await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    await repo.create_message("s", "a", text_message("hi", 0))
    assert await repo.read_agent("s", "a") is None  # a message does not create an agent
    assert await repo.read_message("s", "a", 1) is None
    assert await repo.read_message("s", "b", 0) is None
    assert await repo.read_multi_agent("s", "m") is None


async def test_updating_missing_records_raises(repo: AsyncMongoDBSessionRepository, raw: Raw) -> None:
    agent = SessionAgent(agent_id="a", state={}, conversation_manager_state={})
    with pytest.raises(SessionException):
        await repo.update_agent("missing", agent)
    await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    before = snapshot(raw)

    with pytest.raises(NotFoundError):
        await repo.update_agent("s", agent)
    with pytest.raises(SessionException):
        await repo.update_message("s", "a", text_message("ghost", 0))
    with pytest.raises(SessionException):
        await repo.update_multi_agent("s", StubOrchestrator("m", {}))
    with pytest.raises(NotFoundError):
        await repo.create_agent("missing", agent)

    assert snapshot(raw) == before
    assert issubclass(NotFoundError, SessionException)


async def test_duplicate_message_is_rejected_and_the_stored_one_kept(repo: AsyncMongoDBSessionRepository) -> None:
    stored = text_message("original", 0)
    await repo.create_message("s", "a", stored)

    with pytest.raises(DuplicateMessageError) as caught:
        await repo.create_message("s", "a", text_message("impostor", 0))

    assert isinstance(caught.value, AlreadyExistsError)
    assert isinstance(caught.value, SessionException)
    assert await repo.read_message("s", "a", 0) == stored
    # The same id under another agent or session is a different message.
    await repo.create_message("s", "b", text_message("b's first", 0))
    await repo.create_message("t", "a", text_message("t's first", 0))
    assert await repo.list_messages("s", "a") == [stored]


async def test_create_messages_stops_at_the_first_duplicate(repo: AsyncMongoDBSessionRepository) -> None:
    await repo.create_message("s", "a", text_message("zero", 0))

    with pytest.raises(DuplicateMessageError):
        await repo.create_messages(
            "s", "a", [text_message("one", 1), text_message("zero again", 0), text_message("two", 2)]
        )

    assert [m.message["content"][0]["text"] for m in await repo.list_messages("s", "a")] == ["zero", "one"]


async def test_create_session_twice_raises_and_keeps_the_first(repo: AsyncMongoDBSessionRepository) -> None:
    first = Session(session_id="s", session_type=SessionType.AGENT, created_at="2024-01-01T00:00:00+00:00")
    await repo.create_session(first)

    with pytest.raises(AlreadyExistsError):
        await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))

    assert await repo.read_session("s") == first


async def test_create_agent_twice_raises_and_keeps_the_first(repo: AsyncMongoDBSessionRepository, raw: Raw) -> None:
    await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    first = SessionAgent(agent_id="a", state={"version": 1}, conversation_manager_state={"n": 1})
    await repo.create_agent("s", first)

    with pytest.raises(AlreadyExistsError):
        await repo.create_agent("s", SessionAgent(agent_id="a", state={"version": 2}, conversation_manager_state={}))

    assert await repo.read_agent("s", "a") == first
    session = raw[COLLECTION].find_one({"_id": "s"})
    assert session is not None
    assert len(session["agents"]) == 1


async def test_concurrent_create_agent_stores_one_record(repo: AsyncMongoDBSessionRepository, raw: Raw) -> None:
    await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    agents = [SessionAgent(agent_id="a", state={"n": n}, conversation_manager_state={}) for n in range(10)]

    results = await asyncio.gather(*(repo.create_agent("s", agent) for agent in agents), return_exceptions=True)

    assert sum(result is None for result in results) == 1
    assert all(isinstance(result, AlreadyExistsError) for result in results if result is not None)
    session = raw[COLLECTION].find_one({"_id": "s"})
    assert session is not None
    assert len(session["agents"]) == 1


async def test_delete_session_removes_everything_of_that_session_only(
    repo: AsyncMongoDBSessionRepository, raw: Raw
) -> None:
    for session_id in ("doomed", "kept"):
        await repo.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
        await repo.create_agent(session_id, SessionAgent(agent_id="a", state={}, conversation_manager_state={}))
        await repo.create_messages(session_id, "a", [text_message("one", 0), text_message("two", 1)])
        await repo.update_metadata(session_id, {"owner": session_id})
        await repo.add_feedback(session_id, {"rating": "up"})
    kept_before = {
        name: [d for d in docs if "kept" in (d.get("_id"), d.get("session_id"))] for name, docs in snapshot(raw).items()
    }

    await repo.delete_session("doomed")

    assert await repo.read_session("doomed") is None
    assert await repo.read_agent("doomed", "a") is None
    assert await repo.list_messages("doomed", "a") == []
    assert await repo.get_feedbacks("doomed") == []
    assert raw[COLLECTION].count_documents({"_id": "doomed"}) == 0
    assert raw[MESSAGES].count_documents({"session_id": "doomed"}) == 0
    assert raw[FEEDBACK].count_documents({"session_id": "doomed"}) == 0
    assert snapshot(raw) == kept_before

    await repo.delete_session("doomed")  # repeating is harmless
    await repo.delete_session("never-existed")
    assert snapshot(raw) == kept_before

    # The id can be reused and starts empty.
    await repo.create_session(Session(session_id="doomed", session_type=SessionType.AGENT))
    assert await repo.list_messages("doomed", "a") == []


# -- invalid ids ----------------------------------------------------------------------------------

BAD_IDS = [
    pytest.param("", id="empty"),
    pytest.param(5, id="int"),
    pytest.param(None, id="none"),
    pytest.param({"$ne": ""}, id="operator"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("x" * 257, id="257-chars"),
    pytest.param("$where", id="leading-dollar"),
    pytest.param("\ud800", id="lone-surrogate"),
]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_invalid_ids_are_rejected_before_any_write(
    repo: AsyncMongoDBSessionRepository, raw: Raw, bad: Any
) -> None:
    await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    await repo.create_agent("s", SessionAgent(agent_id="a", state={}, conversation_manager_state={}))
    await repo.create_message("s", "a", text_message("hi", 0))
    await repo.create_multi_agent("s", StubOrchestrator("m", {}))
    await repo.add_feedback("s", {"rating": "up"})
    before = snapshot(raw)

    agent = SessionAgent(agent_id="a", state={}, conversation_manager_state={})
    bad_agent = SessionAgent(agent_id=bad, state={}, conversation_manager_state={})
    message = text_message("hi", 1)
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "create_session": lambda: repo.create_session(Session(session_id=bad, session_type=SessionType.AGENT)),
        "read_session": lambda: repo.read_session(bad),
        "load_session": lambda: repo.load_session(bad),
        "delete_session": lambda: repo.delete_session(bad),
        "create_agent(session)": lambda: repo.create_agent(bad, agent),
        "create_agent(agent)": lambda: repo.create_agent("s", bad_agent),
        "read_agent(session)": lambda: repo.read_agent(bad, "a"),
        "read_agent(agent)": lambda: repo.read_agent("s", bad),
        "update_agent(session)": lambda: repo.update_agent(bad, agent),
        "update_agent(agent)": lambda: repo.update_agent("s", bad_agent),
        "create_message(session)": lambda: repo.create_message(bad, "a", message),
        "create_message(agent)": lambda: repo.create_message("s", bad, message),
        "create_messages(agent)": lambda: repo.create_messages("s", bad, [message]),
        "read_message(session)": lambda: repo.read_message(bad, "a", 0),
        "read_message(agent)": lambda: repo.read_message("s", bad, 0),
        "update_message(agent)": lambda: repo.update_message("s", bad, text_message("x", 0)),
        "list_messages(session)": lambda: repo.list_messages(bad, "a"),
        "list_messages(agent)": lambda: repo.list_messages("s", bad),
        "count_messages(agent)": lambda: repo.count_messages("s", bad),
        "create_multi_agent(session)": lambda: repo.create_multi_agent(bad, StubOrchestrator("m2", {})),
        "create_multi_agent(id)": lambda: repo.create_multi_agent("s", StubOrchestrator(bad, {})),
        "read_multi_agent(id)": lambda: repo.read_multi_agent("s", bad),
        "update_multi_agent(id)": lambda: repo.update_multi_agent("s", StubOrchestrator(bad, {})),
        "update_metadata": lambda: repo.update_metadata(bad, {"k": "v"}),
        "get_metadata": lambda: repo.get_metadata(bad),
        "delete_metadata": lambda: repo.delete_metadata(bad, ["k"]),
        "add_feedback": lambda: repo.add_feedback(bad, {"rating": "down"}),
        "get_feedbacks": lambda: repo.get_feedbacks(bad),
    }
    wrong = {name: outcome for name, outcome in (await outcomes(calls)).items() if outcome != "InvalidIdError"}
    assert wrong == {}
    assert issubclass(InvalidIdError, ValueError)
    assert issubclass(InvalidIdError, SessionException)
    assert snapshot(raw) == before


@pytest.mark.parametrize("bad", [-1, 2**63, True, 1.0, "1", None])
async def test_invalid_message_ids_are_rejected(repo: AsyncMongoDBSessionRepository, raw: Raw, bad: Any) -> None:
    await repo.create_message("s", "a", text_message("hi", 0))
    before = snapshot(raw)

    with pytest.raises(InvalidIdError):
        await repo.create_message("s", "a", SessionMessage(message={"role": "user", "content": []}, message_id=bad))
    with pytest.raises(InvalidIdError):
        await repo.create_messages("s", "a", [text_message("ok", 1), text_message("bad", bad)])
    with pytest.raises(InvalidIdError):
        await repo.read_message("s", "a", bad)
    with pytest.raises(InvalidIdError):
        await repo.update_message("s", "a", text_message("bad", bad))

    assert snapshot(raw) == before


# -- indexes --------------------------------------------------------------------------------------


async def test_indexes_exist_after_first_use(repo: AsyncMongoDBSessionRepository, raw: Raw) -> None:
    await repo.create_message("s", "a", text_message("hi", 0))

    indexes = raw[MESSAGES].index_information()
    assert indexes[MESSAGE_INDEX_NAME]["key"] == [("session_id", 1), ("agent_id", 1), ("message_id", 1)]
    assert indexes[MESSAGE_INDEX_NAME]["unique"] is True
    assert [key for key, _ in raw[FEEDBACK].index_information()["session_created_at"]["key"]] == [
        "session_id",
        "created_at",
    ]


async def test_metadata_fields_are_indexed(mongodb_uri: str, db_name: str, raw: Raw) -> None:
    async with AsyncMongoDBSessionRepository(
        connection_string=mongodb_uri,
        database_name=db_name,
        collection_name=COLLECTION,
        metadata_fields=["customer", "priority"],
    ) as repo:
        await repo.update_metadata("s", {"customer": "acme"})

    indexes = raw[COLLECTION].index_information()
    assert indexes["metadata_customer"]["key"] == [("metadata.customer", 1)]
    assert indexes["metadata_priority"]["key"] == [("metadata.priority", 1)]


async def test_concurrent_first_calls_create_indexes_once(
    recorded: tuple[AsyncMongoClient[dict[str, Any]], CommandRecorder], raw: Raw, db_name: str
) -> None:
    client, recorder = recorded
    repos = [
        AsyncMongoDBSessionRepository(client=client, database_name=db_name, collection_name=COLLECTION)
        for _ in range(20)
    ]

    await asyncio.gather(
        *(repo.create_message(f"s{n}", "a", text_message(f"hi {n}", 0)) for n, repo in enumerate(repos))
    )

    assert recorder.count("createIndexes", MESSAGES) == 1
    assert recorder.count("createIndexes", FEEDBACK) == 1
    assert recorder.count("insert", MESSAGES) == 20
    assert raw[MESSAGES].count_documents({}) == 20
    assert MESSAGE_INDEX_NAME in raw[MESSAGES].index_information()

    # Later repositories on the same client do not ask again.
    later = AsyncMongoDBSessionRepository(client=client, database_name=db_name, collection_name=COLLECTION)
    await later.create_message("s-later", "a", text_message("hi", 0))
    assert recorder.count("createIndexes") == 2
    for repo in [*repos, later]:
        await repo.close()


async def test_ensure_indexes_false_sends_no_create_indexes(
    recorded: tuple[AsyncMongoClient[dict[str, Any]], CommandRecorder], raw: Raw, db_name: str
) -> None:
    client, recorder = recorded
    repo = AsyncMongoDBSessionRepository(
        client=client,
        database_name=db_name,
        collection_name=COLLECTION,
        metadata_fields=["customer"],
        ensure_indexes=False,
    )

    await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    await repo.load_session("t")
    await repo.create_message("s", "a", text_message("hi", 0))
    await repo.create_messages("s", "a", [text_message("a", 1), text_message("b", 2)])
    await repo.update_metadata("s", {"customer": "acme"})
    await repo.add_feedback("s", {"rating": "up"})
    await repo.close()

    assert recorder.count("createIndexes") == 0
    assert list(raw[MESSAGES].index_information()) == ["_id_"]
    assert list(raw[COLLECTION].index_information()) == ["_id_"]


# -- metadata and feedback ------------------------------------------------------------------------


async def test_metadata_nested_merge_and_delete(repo: AsyncMongoDBSessionRepository) -> None:
    await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    assert (await repo.get_metadata("s"))["metadata"] == {}

    await repo.update_metadata("s", {"customer": {"name": "Acme", "tier": "gold"}, "tags": ["a", "b"], "score": 1.5})
    await repo.update_metadata("s", {"customer": {"tier": "platinum", "address": {"city": "Köln"}}, "empty": {}})

    assert (await repo.get_metadata("s"))["metadata"] == {
        "customer": {"name": "Acme", "tier": "platinum", "address": {"city": "Köln"}},
        "tags": ["a", "b"],
        "score": 1.5,
        "empty": {},
    }

    await repo.delete_metadata("s", ["tags", "not-there"])
    assert (await repo.get_metadata("s"))["metadata"] == {
        "customer": {"name": "Acme", "tier": "platinum", "address": {"city": "Köln"}},
        "score": 1.5,
        "empty": {},
    }
    # Metadata does not leak into the Strands session type.
    assert await repo.read_session("s") is not None
    assert await repo.get_metadata("missing") is None


async def test_update_metadata_creates_a_missing_session(repo: AsyncMongoDBSessionRepository) -> None:
    await repo.update_metadata("new", {"k": "v"})

    session = await repo.read_session("new")
    assert session is not None
    assert session.session_type is SessionType.AGENT
    assert (await repo.get_metadata("new"))["metadata"] == {"k": "v"}


@pytest.mark.parametrize("bad_key", ["$set", "a.b", "x\x00", ""])
async def test_invalid_metadata_keys_write_nothing(repo: AsyncMongoDBSessionRepository, raw: Raw, bad_key: str) -> None:
    await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    await repo.update_metadata("s", {"keep": {"me": 1}})
    before = snapshot(raw)

    for metadata in (
        {bad_key: 1},
        {"fine": 1, bad_key: 2},
        {"keep": {"me": 2, bad_key: 3}},
        {"list": [{"ok": 1}, {bad_key: 1}]},
    ):
        with pytest.raises(InvalidMetadataError):
            await repo.update_metadata("s", metadata)
        with pytest.raises(InvalidMetadataError):
            await repo.update_metadata("absent", metadata)
    with pytest.raises(InvalidMetadataError):
        await repo.delete_metadata("s", [bad_key])
    with pytest.raises(InvalidMetadataError):
        await repo.add_feedback("s", {"nested": {bad_key: 1}})

    assert snapshot(raw) == before
    assert (await repo.get_metadata("s"))["metadata"] == {"keep": {"me": 1}}


async def test_feedback_oldest_first(repo: AsyncMongoDBSessionRepository, raw: Raw) -> None:
    await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    for n in range(5):
        await repo.add_feedback("s", {"rating": "up" if n % 2 else "down", "n": n, "detail": {"comment": f"#{n}"}})
    await repo.add_feedback("other", {"rating": "up", "n": 99})

    feedbacks = await repo.get_feedbacks("s")

    assert [feedback["n"] for feedback in feedbacks] == [0, 1, 2, 3, 4]
    assert feedbacks[0] == {
        "rating": "down",
        "n": 0,
        "detail": {"comment": "#0"},
        "created_at": feedbacks[0]["created_at"],
    }
    stamps = [feedback["created_at"] for feedback in feedbacks]
    assert all(isinstance(stamp, datetime) for stamp in stamps)
    assert stamps == sorted(stamps)
    assert await repo.get_feedbacks("missing") == []
    assert raw[FEEDBACK].count_documents({"session_id": "s"}) == 5

    with pytest.raises(InvalidInputError):
        await repo.add_feedback("s", ["not", "a", "dict"])  # type: ignore[arg-type]
    assert raw[FEEDBACK].count_documents({}) == 6


# -- unstorable values ----------------------------------------------------------------------------

UNSTORABLE = [
    pytest.param(2**64 + 1, id="int-over-2**64"),
    pytest.param(2**63, id="int-over-int64"),
    pytest.param(object(), id="object"),
    pytest.param({1, 2}, id="set"),
    pytest.param("\udc80", id="lone-surrogate"),
    pytest.param({5: "int key"}, id="int-key"),
]


@pytest.mark.parametrize("value", UNSTORABLE)
async def test_unstorable_values_raise_and_write_nothing(
    repo: AsyncMongoDBSessionRepository, raw: Raw, value: Any
) -> None:
    await repo.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    await repo.create_agent("s", SessionAgent(agent_id="a", state={"v": 1}, conversation_manager_state={}))
    await repo.create_message("s", "a", text_message("stored", 0))
    before = snapshot(raw)
    poisoned = SessionMessage(
        message={"role": "assistant", "content": [{"toolUse": {"toolUseId": "t", "name": "n", "input": {"x": value}}}]},
        message_id=1,
    )

    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "create_message": lambda: repo.create_message("s", "a", poisoned),
        "create_messages": lambda: repo.create_messages("s", "a", [text_message("fine", 1), poisoned]),
        "update_message": lambda: repo.update_message("s", "a", SessionMessage(message=poisoned.message, message_id=0)),
        "create_agent": lambda: repo.create_agent(
            "s", SessionAgent(agent_id="b", state={"x": value}, conversation_manager_state={})
        ),
        "update_agent": lambda: repo.update_agent(
            "s", SessionAgent(agent_id="a", state={"x": value}, conversation_manager_state={})
        ),
        "create_multi_agent": lambda: repo.create_multi_agent("s", StubOrchestrator("m", {"x": value})),
    }
    if isinstance(value, dict):
        # Metadata and feedback keys are validated before encoding: a non-str key is invalid metadata.
        with pytest.raises(InvalidMetadataError):
            await repo.update_metadata("s", {"x": value})
        with pytest.raises(InvalidMetadataError):
            await repo.add_feedback("s", {"x": value})
    else:
        calls["update_metadata"] = lambda: repo.update_metadata("s", {"x": value})
        calls["add_feedback"] = lambda: repo.add_feedback("s", {"x": value})
    wrong = {name: outcome for name, outcome in (await outcomes(calls)).items() if outcome != "UnstorableValueError"}
    assert wrong == {}
    assert issubclass(UnstorableValueError, SessionException)
    assert snapshot(raw) == before


async def test_oversized_message_round_trips_through_gridfs(repo: AsyncMongoDBSessionRepository, raw: Raw) -> None:
    await repo.create_message("s", "a", text_message("stored", 0))
    payload = bytes(range(256)) * (17 * 4096)  # 17 MiB: more than one BSON document holds
    huge = SessionMessage(
        message={
            "role": "user",
            "content": [{"document": {"format": "pdf", "name": "big", "source": {"bytes": payload}}}],
        },
        message_id=1,
    )

    await repo.create_message("s", "a", huge)

    assert await repo.read_message("s", "a", 1) == huge
    listed = await repo.list_messages("s", "a")
    assert [message.message_id for message in listed] == [0, 1]
    assert listed[1] == huge
    stored = raw[COLLECTION + ".messages"].find_one({"session_id": "s", "message_id": 1})
    assert stored is not None
    assert stored["message"] is None
    assert stored["message_blob"] is not None

    await repo.delete_session("s")
    assert raw[COLLECTION + ".blobs.files"].count_documents({}) == 0
    assert raw[COLLECTION + ".blobs.chunks"].count_documents({}) == 0


# -- application scoping --------------------------------------------------------------------------


async def test_application_name_scopes_sessions(
    recorded: tuple[AsyncMongoClient[dict[str, Any]], CommandRecorder], raw: Raw, db_name: str
) -> None:
    client, _ = recorded
    scope: dict[str, Any] = {"client": client, "database_name": db_name, "collection_name": COLLECTION}
    mine = AsyncMongoDBSessionRepository(**scope, application_name="mine", isolate_application=True)
    theirs = AsyncMongoDBSessionRepository(**scope, application_name="theirs", isolate_application=True)
    await mine.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    await mine.create_message("s", "a", text_message("hi", 0))

    assert await theirs.read_session("s") is None
    with pytest.raises(AlreadyExistsError):
        await theirs.create_session(Session(session_id="s", session_type=SessionType.AGENT))
    await theirs.delete_session("s")  # not theirs: a no-op

    assert await mine.read_session("s") is not None
    assert raw[MESSAGES].count_documents({"session_id": "s"}) == 1
    assert raw[COLLECTION].find_one({"_id": "s"})["application_name"] == "mine"  # type: ignore[index]
    await mine.close()
    await theirs.close()
