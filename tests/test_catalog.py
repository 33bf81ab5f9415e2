"""AsyncSessionCatalog and SessionCatalog against a real MongoDB wire-protocol server.

Sessions are created through the repository; ``last_activity_at`` is set with a plain PyMongo
client where a test needs fixed activity times. Stored documents are inspected with that client.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from strands.types.content import Message
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import InvalidInputError, InvalidMetadataError, MongoDBSessionRepository
from mongodb_session_manager.catalog import (
    MAX_PAGE_SIZE,
    AsyncSessionCatalog,
    IndexStatus,
    SessionCatalog,
    SessionPage,
    SessionSummary,
)
from mongodb_session_manager.repository import AsyncMongoDBSessionRepository

pytestmark = pytest.mark.anyio

COLLECTION = "sessions"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class FindRecorder(monitoring.CommandListener):
    """The ``find`` commands and replies a client sends and receives on the sessions collection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.commands: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []
        self._finds: set[int] = set()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == COLLECTION:
            with self._lock:
                self.commands.append(dict(event.command))
                self._finds.add(event.request_id)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        with self._lock:
            if event.request_id in self._finds:
                self.replies.append(dict(event.reply))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def recorder() -> FindRecorder:
    return FindRecorder()


@pytest.fixture
async def repo(mongodb_uri: str, db_name: str, recorder: FindRecorder) -> AsyncIterator[AsyncMongoDBSessionRepository]:
    repository = AsyncMongoDBSessionRepository(
        connection_string=mongodb_uri,
        database_name=db_name,
        collection_name=COLLECTION,
        metadata_fields=["tier"],
        event_listeners=[recorder],
    )
    try:
        yield repository
    finally:
        await repository.close()


@pytest.fixture
def raw(mongodb_client: MongoClient[dict[str, Any]], db_name: str) -> Any:
    return mongodb_client[db_name]


async def make_session(
    repository: AsyncMongoDBSessionRepository, session_id: str, metadata: dict[str, Any] | None = None
) -> None:
    await repository.create_session(Session(session_id=session_id, session_type=SessionType.AGENT))
    if metadata:
        await repository.update_metadata(session_id, metadata)


async def all_ids(catalog: AsyncSessionCatalog, **filters: Any) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = await catalog.list_sessions(**filters, limit=3, cursor=cursor)
        ids.extend(summary.session_id for summary in page.sessions)
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


# -- filters --------------------------------------------------------------------------------------


async def test_filters_by_application_metadata_and_activity(
    repo: AsyncMongoDBSessionRepository, mongodb_uri: str, db_name: str, raw: Any
) -> None:
    scoped = {
        name: AsyncMongoDBSessionRepository(
            connection_string=mongodb_uri,
            database_name=db_name,
            collection_name=COLLECTION,
            application_name=name,
            isolate_application=True,
        )
        for name in ("bot-a", "bot-b")
    }
    try:
        await make_session(scoped["bot-a"], "a1", {"tier": "free", "region": "eu"})
        await make_session(scoped["bot-a"], "a2", {"tier": "pro", "region": "eu", "seats": 3})
        await make_session(scoped["bot-b"], "b1", {"tier": "free", "region": "us", "vip": True})
        await make_session(repo, "n1", {"tier": "free"})
        await make_session(repo, "n2")
        for day, session_id in enumerate(["a1", "a2", "b1", "n1", "n2"]):
            raw[COLLECTION].update_one({"_id": session_id}, {"$set": {"last_activity_at": T0 + timedelta(days=day)}})

        catalog = AsyncSessionCatalog(repo)
        assert await all_ids(catalog) == ["a1", "a2", "b1", "n1", "n2"]
        assert await all_ids(catalog, application_name="bot-a") == ["a1", "a2"]
        assert await all_ids(catalog, metadata={"tier": "free"}) == ["a1", "b1", "n1"]
        assert await all_ids(catalog, metadata={"tier": "free", "region": "eu"}) == ["a1"]
        assert await all_ids(catalog, application_name="bot-b", metadata={"tier": "free"}) == ["b1"]
        assert await all_ids(catalog, metadata={"seats": 3}) == ["a2"]
        assert await all_ids(catalog, metadata={"vip": True}) == ["b1"]
        assert await all_ids(catalog, metadata={"seats": "3"}) == []  # typed equality: "3" is not 3
        assert await all_ids(catalog, metadata={"tier": "$where"}) == []  # a plain string, not an operator
        # active_after is inclusive, active_before exclusive; naive datetimes are UTC.
        assert await all_ids(catalog, active_after=T0 + timedelta(days=1), active_before=T0 + timedelta(days=3)) == [
            "a2",
            "b1",
        ]
        assert await all_ids(catalog, active_before=datetime(2026, 1, 2)) == ["a1"]
        assert await all_ids(catalog, active_after=T0 + timedelta(days=4)) == ["n2"]
        assert await all_ids(
            catalog, application_name="bot-a", metadata={"region": "eu"}, active_after=T0 + timedelta(days=1)
        ) == ["a2"]

        assert await catalog.count_sessions() == 5
        assert await catalog.count_sessions(metadata={"tier": "free"}) == 3
        assert await catalog.count_sessions(application_name="bot-b") == 1
        assert await catalog.count_sessions(active_before=T0) == 0

        # A catalog on an application-scoped repository sees that application only.
        catalog_a = AsyncSessionCatalog(scoped["bot-a"])
        assert await all_ids(catalog_a) == ["a1", "a2"]
        assert await all_ids(catalog_a, application_name="bot-b") == []
        assert await catalog_a.count_sessions(metadata={"tier": "free"}) == 1
        assert await catalog_a.get_session("b1") is None

        summary = await catalog.get_session("a2")
        assert summary == SessionSummary(
            session_id="a2",
            application_name="bot-a",
            created_at=summary.created_at if summary else None,
            updated_at=summary.updated_at if summary else None,
            last_activity_at=T0 + timedelta(days=1),
            metadata={"tier": "pro", "region": "eu", "seats": 3},
            agent_ids=[],
        )
        assert summary is not None
        assert summary.to_dict()["last_activity_at"] == "2026-01-02T00:00:00+00:00"
        assert await catalog.get_session("missing") is None

        # The metadata filter is served by the metadata_fields index, which the repository created.
        statuses = await catalog.verify_indexes()
        assert IndexStatus(COLLECTION, "metadata_tier", [("metadata.tier", 1)], False, True, True) in statuses
        assert not [status for status in statuses if status.missing]
    finally:
        for repository in scoped.values():
            await repository.close()


async def test_listing_projects_summaries_and_never_reads_agent_state(
    repo: AsyncMongoDBSessionRepository, recorder: FindRecorder
) -> None:
    await make_session(repo, "with-agents", {"tier": "pro"})
    for agent_id in ("planner", "writer"):
        agent = SessionAgent(agent_id=agent_id, state={"secret_state": "x" * 10_000}, conversation_manager_state={})
        await repo.create_agent("with-agents", agent)
    catalog = AsyncSessionCatalog(repo)
    recorder.commands.clear()
    recorder.replies.clear()

    page = await catalog.list_sessions(metadata={"tier": "pro"})

    assert page == SessionPage(sessions=[page.sessions[0]], next_cursor=None)
    assert page.sessions[0].agent_ids == ["planner", "writer"]
    assert page.sessions[0].metadata == {"tier": "pro"}
    [command] = recorder.commands
    assert "agents.agent_id" in command["projection"]
    assert "agents" not in command["projection"]
    [reply] = recorder.replies
    assert "secret_state" not in repr(reply)
    # The full document is still available on request.
    document = await catalog.read_session_document("with-agents")
    assert document is not None
    assert document["agents"][0]["state"] == {"secret_state": "x" * 10_000}
    assert await catalog.read_session_document("missing") is None


# -- pagination -----------------------------------------------------------------------------------


async def test_pagination_sees_every_existing_session_once_under_concurrent_inserts(
    repo: AsyncMongoDBSessionRepository,
) -> None:
    existing = {f"s-{secrets.token_hex(4)}" for _ in range(40)}
    await asyncio.gather(*(make_session(repo, session_id, {"tier": "free"}) for session_id in existing))
    catalog = AsyncSessionCatalog(repo)

    seen: list[str] = []
    inserted: set[str] = set()
    cursor: str | None = None
    pages = 0
    while True:
        page = await catalog.list_sessions(metadata={"tier": "free"}, limit=7, cursor=cursor)
        pages += 1
        seen.extend(summary.session_id for summary in page.sessions)
        # Between page fetches, others create sessions sorting anywhere: before and after the cursor.
        fresh = {f"s-{secrets.token_hex(4)}" for _ in range(4)} | {f"a-{pages}", f"z-{pages}"}
        await asyncio.gather(*(make_session(repo, session_id, {"tier": "free"}) for session_id in fresh))
        inserted |= fresh
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        assert isinstance(cursor, str)
        assert cursor.isascii()
        assert "/" not in cursor
        assert "+" not in cursor

    counts = Counter(seen)
    assert all(counts[session_id] == 1 for session_id in existing), "a pre-existing session was skipped or repeated"
    assert max(counts.values()) == 1, "no session is listed twice"
    assert set(seen) <= existing | inserted
    assert seen == sorted(seen)
    assert pages >= 6


async def test_exact_page_boundary_has_no_empty_last_page(repo: AsyncMongoDBSessionRepository) -> None:
    for session_id in ("p1", "p2", "p3", "p4"):
        await make_session(repo, session_id)
    catalog = AsyncSessionCatalog(repo)
    first = await catalog.list_sessions(limit=2)
    second = await catalog.list_sessions(limit=2, cursor=first.next_cursor)
    assert [s.session_id for s in first.sessions] == ["p1", "p2"]
    assert first.next_cursor is not None
    assert [s.session_id for s in second.sessions] == ["p3", "p4"]
    assert second.next_cursor is None
    whole = await catalog.list_sessions(limit=MAX_PAGE_SIZE)
    assert len(whole.sessions) == 4
    assert whole.next_cursor is None


# -- deletion -------------------------------------------------------------------------------------


async def test_delete_by_filter_removes_sessions_with_their_messages_and_feedback(
    repo: AsyncMongoDBSessionRepository, raw: Any
) -> None:
    for index in range(12):
        session_id = f"d{index:02}"
        await make_session(repo, session_id, {"tier": "free" if index % 3 else "pro"})
        await repo.create_agent(session_id, SessionAgent(agent_id="default", state={}, conversation_manager_state={}))
        for message_id in range(2):
            message: Message = {"role": "user", "content": [{"text": f"{session_id} {message_id}"}]}
            await repo.create_message(session_id, "default", SessionMessage(message=message, message_id=message_id))
        await repo.add_feedback(session_id, {"rating": "up"})
    catalog = AsyncSessionCatalog(repo)
    doomed = {f"d{index:02}" for index in range(12) if index % 3}
    assert await catalog.count_sessions(metadata={"tier": "free"}) == len(doomed) == 8

    assert await catalog.delete_sessions(metadata={"tier": "free"}) == 8

    assert {document["_id"] for document in raw[COLLECTION].find()} == {"d00", "d03", "d06", "d09"}
    assert raw[COLLECTION + ".messages"].count_documents({"session_id": {"$in": sorted(doomed)}}) == 0
    assert raw[COLLECTION + ".feedback"].count_documents({"session_id": {"$in": sorted(doomed)}}) == 0
    assert raw[COLLECTION + ".messages"].count_documents({}) == 8
    assert raw[COLLECTION + ".feedback"].count_documents({}) == 4
    assert await catalog.delete_sessions(metadata={"tier": "free"}) == 0
    assert await catalog.count_sessions() == 4


async def test_delete_without_filters_is_scoped_to_the_repository_application(
    repo: AsyncMongoDBSessionRepository, mongodb_uri: str, db_name: str, raw: Any
) -> None:
    scoped = AsyncMongoDBSessionRepository(
        connection_string=mongodb_uri,
        database_name=db_name,
        collection_name=COLLECTION,
        application_name="bot",
        isolate_application=True,
    )
    try:
        for session_id in ("x1", "x2", "x3"):
            await make_session(scoped, session_id)
        await make_session(repo, "other")
        assert await AsyncSessionCatalog(scoped).delete_sessions() == 3
        assert [document["_id"] for document in raw[COLLECTION].find()] == ["other"]
    finally:
        await scoped.close()


# -- validation -----------------------------------------------------------------------------------

BAD_FILTERS: list[Any] = [
    pytest.param({"metadata": {"$where": "1"}}, id="operator-key"),
    pytest.param({"metadata": {"a.b": 1}}, id="dotted-key"),
    pytest.param({"metadata": {"": 1}}, id="empty-key"),
    pytest.param({"metadata": {"tier": {"$ne": "x"}}}, id="operator-value"),
    pytest.param({"metadata": {"tier": {"plan": "pro"}}}, id="dict-value"),
    pytest.param({"metadata": {"tier": ["pro"]}}, id="list-value"),
    pytest.param({"metadata": {"tier": b"pro"}}, id="bytes-value"),
    pytest.param({"metadata": "tier=pro"}, id="not-a-mapping"),
    pytest.param({"application_name": "$app"}, id="operator-application"),
    pytest.param({"application_name": 3}, id="int-application"),
    pytest.param({"active_after": "2026-01-01"}, id="string-date"),
    pytest.param({"active_before": 1767225600}, id="int-date"),
]

BAD_PAGES: list[Any] = [
    pytest.param({"limit": 0}, id="limit-0"),
    pytest.param({"limit": MAX_PAGE_SIZE + 1}, id="limit-too-big"),
    pytest.param({"limit": True}, id="limit-bool"),
    pytest.param({"limit": "10"}, id="limit-str"),
    pytest.param({"cursor": "garbage"}, id="cursor-garbage"),
    pytest.param({"cursor": "c1."}, id="cursor-empty"),
    pytest.param({"cursor": "c1.!!!!"}, id="cursor-bad-alphabet"),
    pytest.param({"cursor": "c1.JHdoZXJl"}, id="cursor-operator-id"),  # "$where"
    pytest.param({"cursor": "c1.cDF="}, id="cursor-padding"),
    pytest.param({"cursor": "c1.cDG"}, id="cursor-not-canonical"),
    pytest.param({"cursor": "c1.__8"}, id="cursor-not-utf8"),
    pytest.param({"cursor": "c1." + "A" * 3000}, id="cursor-too-long"),
    pytest.param({"cursor": 12}, id="cursor-int"),
]


@pytest.mark.parametrize("arguments", BAD_FILTERS + BAD_PAGES)
async def test_invalid_listing_arguments_are_rejected(
    repo: AsyncMongoDBSessionRepository, recorder: FindRecorder, arguments: dict[str, Any]
) -> None:
    await make_session(repo, "p1", {"tier": "pro"})
    recorder.commands.clear()
    with pytest.raises(InvalidInputError):
        await AsyncSessionCatalog(repo).list_sessions(**arguments)
    assert recorder.commands == []


@pytest.mark.parametrize("arguments", BAD_FILTERS)
async def test_invalid_filters_delete_and_count_nothing(
    repo: AsyncMongoDBSessionRepository, raw: Any, arguments: dict[str, Any]
) -> None:
    await make_session(repo, "p1", {"tier": "pro"})
    catalog = AsyncSessionCatalog(repo)
    with pytest.raises(InvalidInputError):
        await catalog.delete_sessions(**arguments)
    with pytest.raises(InvalidInputError):
        await catalog.count_sessions(**arguments)
    assert raw[COLLECTION].count_documents({}) == 1


async def test_metadata_filter_errors_are_metadata_errors(repo: AsyncMongoDBSessionRepository) -> None:
    with pytest.raises(InvalidMetadataError, match="must not start with"):
        await AsyncSessionCatalog(repo).count_sessions(metadata={"$gt": ""})
    with pytest.raises(TypeError):
        AsyncSessionCatalog(object())  # type: ignore[arg-type]


# -- the blocking facade --------------------------------------------------------------------------


def test_blocking_facade(mongodb_uri: str, db_name: str, raw: Any) -> None:
    with MongoDBSessionRepository(mongodb_uri, db_name, COLLECTION, metadata_fields=["tier"]) as repository:
        for index in range(5):
            repository.create_session(Session(session_id=f"f{index}", session_type=SessionType.AGENT))
        raw[COLLECTION].update_many({"_id": {"$in": ["f0", "f1"]}}, {"$set": {"metadata": {"tier": "pro"}}})
        catalog = SessionCatalog(repository)
        assert "SessionCatalog(" in repr(catalog)

        page = catalog.list_sessions(limit=3)
        assert [summary.session_id for summary in page.sessions] == ["f0", "f1", "f2"]
        rest = catalog.list_sessions(limit=3, cursor=page.next_cursor)
        assert [summary.session_id for summary in rest.sessions] == ["f3", "f4"]
        assert rest.next_cursor is None
        assert catalog.count_sessions(metadata={"tier": "pro"}) == 2
        summary = catalog.get_session("f0")
        assert summary is not None
        assert summary.last_activity_at is not None
        assert summary.last_activity_at.tzinfo is timezone.utc
        document = catalog.read_session_document("f0")
        assert document is not None
        assert document["_id"] == "f0"

        stats = {stats.name: stats for stats in catalog.collection_stats()}
        assert stats[COLLECTION].count == 5
        assert stats[COLLECTION + ".messages"].count == 0
        assert stats[COLLECTION].to_dict()["name"] == COLLECTION
        status = catalog.server_status()
        assert status["ping_ms"] >= 0
        assert status["server_version"]

        # Indexes are created on the first write; a catalog with more metadata fields sees them missing.
        assert not [index for index in catalog.verify_indexes() if index.missing]
        missing = [index.name for index in catalog.verify_indexes(["region"]) if index.missing]
        assert missing == ["metadata_region"]
        created = catalog.create_indexes(["region"])
        assert not [index for index in created if index.missing]
        assert any(index.name == "metadata_region" and index.present for index in created)
        # Indexes the library does not expect are reported as extra.
        extra = [index for index in catalog.verify_indexes() if not index.expected]
        assert [index.to_dict()["keys"] for index in extra] == [[["metadata.region", 1]]]

        assert catalog.delete_sessions(metadata={"tier": "pro"}) == 2
        assert catalog.count_sessions() == 3


async def test_sync_borrowed_client(mongodb_uri: str, db_name: str) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
    try:
        repository = AsyncMongoDBSessionRepository(client=client, database_name=db_name, collection_name=COLLECTION)
        for session_id in ("c1", "c2", "c3"):
            await make_session(repository, session_id, {"tier": "free"})
        catalog = AsyncSessionCatalog(repository)
        assert await all_ids(catalog, metadata={"tier": "free"}) == ["c1", "c2", "c3"]
        assert await catalog.delete_sessions() == 3
        assert await catalog.count_sessions() == 0
    finally:
        client.close()
