"""Session expiry (``ttl_seconds``): stamping, touching, the read-side filter, re-creation and purging.

Real Strands agents on the real test server. Expiry is made to happen in two ways: with a real
one-second TTL (waiting until the server-side clock passes it, never asserting a duration), and by
moving a stored ``expires_at`` into the past with the inspection client, which stands in for time
passing. The TTL monitor itself is exercised in ``tests/reliability/test_expiry_monitor.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pymongo import MongoClient
from strands import Agent
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType

from mongodb_session_manager import (
    InvalidInputError,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    MongoDBSessionRepository,
    NotFoundError,
    Retention,
    SessionExpiredError,
    _message_blobs,
)
from mongodb_session_manager.catalog import SessionCatalog
from mongodb_session_manager.scripted_model import ScriptedModel
from mongodb_session_manager.testing import CommandRecorder

COLLECTION = "sessions"
MESSAGES = f"{COLLECTION}.messages"
FEEDBACK = f"{COLLECTION}.feedback"
WRITES = {"insert", "update", "findAndModify", "delete"}


def utc(value: datetime) -> datetime:
    """The inspection client returns naive UTC datetimes."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def now() -> datetime:
    return datetime.now(timezone.utc)


def wait_until(condition: Callable[[], bool], *, limit: float = 20.0) -> None:
    """Poll until ``condition()`` holds; fails after ``limit`` seconds (a bound, not a timing assert)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition still false after the bound"
        time.sleep(0.05)


@pytest.fixture
def commands() -> CommandRecorder:
    return CommandRecorder()


@pytest.fixture
def make_factory(
    mongodb_uri: str, db_name: str, commands: CommandRecorder
) -> Iterator[Callable[..., MongoDBSessionManagerFactory]]:
    factories: list[MongoDBSessionManagerFactory] = []

    def make(**kwargs: Any) -> MongoDBSessionManagerFactory:
        factory = MongoDBSessionManagerFactory(
            mongodb_uri, database_name=db_name, collection_name=COLLECTION, event_listeners=[commands], **kwargs
        )
        factories.append(factory)
        return factory

    yield make
    for factory in factories:
        factory.close()


@pytest.fixture
def catalog(mongodb_uri: str, db_name: str) -> Iterator[SessionCatalog]:
    repository = MongoDBSessionRepository(mongodb_uri, db_name, COLLECTION, ttl_seconds=3600)
    yield SessionCatalog(repository)
    repository.core.runtime.close()


def converse(manager: MongoDBSessionManager, *replies: str) -> Agent:
    agent = Agent(model=ScriptedModel(list(replies)), session_manager=manager, callback_handler=None)
    for index in range(len(replies)):
        agent(f"prompt {index}")
    return agent


def expire(db: Any, session_id: str, *, children_outlive: float = 30.0) -> None:
    """Move the session's expiry into the past, as if its time had run out without activity.

    Its children then expire a little later (by less than ``touch_after``): they were written after
    the session's last touch, so they outlive it by up to that much.
    """
    past = now() - timedelta(seconds=1)
    db[COLLECTION].update_one({"_id": session_id}, {"$set": {"expires_at": past}})
    for name in (MESSAGES, FEEDBACK):
        db[name].update_many(
            {"session_id": session_id}, {"$set": {"expires_at": past + timedelta(seconds=children_outlive)}}
        )
    blobs = f"{COLLECTION}.blobs.files"
    db[blobs].update_many(
        {"metadata.session_id": session_id},
        {"$set": {"metadata.expires_at": past + timedelta(seconds=children_outlive)}},
    )


# -- the retention settings -------------------------------------------------------------------------


def test_retention_arithmetic() -> None:
    retention = Retention.of(100, 10)
    assert retention == Retention(100, 10)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    expiry = retention.expiry(start)
    assert expiry == start + timedelta(seconds=110)
    # The touch is due touch_after seconds after the last one, not before.
    assert not retention.touch_due(expiry, start + timedelta(seconds=9))
    assert retention.touch_due(expiry, start + timedelta(seconds=10))
    assert retention.touch_due(None, start)  # stored before retention was configured
    assert retention.touch_due(expiry.replace(tzinfo=None), start + timedelta(seconds=10))  # naive = UTC
    # Leftovers of a generation that expired at `expiry` expire before expiry + touch_after; the next
    # generation's children not before expiry + ttl + touch_after. The threshold sits in between.
    threshold = retention.leftover_before(expiry)
    assert expiry + timedelta(seconds=10) < threshold < expiry + timedelta(seconds=110)


def test_default_touch_interval_is_a_tenth_of_the_ttl_within_bounds() -> None:
    assert Retention.of(None) is None
    assert Retention.of(100) == Retention(100, 10)
    assert Retention.of(5) == Retention(5, 1)
    assert Retention.of(30 * 86400) == Retention(30 * 86400, 3600)
    assert Retention.of(60, 0) == Retention(60, 0)


@pytest.mark.parametrize(
    ("ttl_seconds", "touch_after"),
    [(0, None), (-5, None), (True, None), (1.5, None), ("60", None), (10**10, None), (60, -1), (60, 2.0), (None, 5)],
)
def test_bad_retention_settings_are_rejected_before_any_io(
    ttl_seconds: Any,
    touch_after: Any,
    mongodb_uri: str,
    db_name: str,
    mongodb_client: MongoClient[dict[str, Any]],
) -> None:
    with pytest.raises(InvalidInputError):
        MongoDBSessionManager("s", mongodb_uri, db_name, ttl_seconds=ttl_seconds, touch_after=touch_after)
    with pytest.raises(InvalidInputError):
        MongoDBSessionManagerFactory(mongodb_uri, db_name, ttl_seconds=ttl_seconds, touch_after=touch_after)
    factory = MongoDBSessionManagerFactory(mongodb_uri, db_name)
    try:
        with pytest.raises(InvalidInputError):
            factory.create_session_manager("s", ttl_seconds=ttl_seconds, touch_after=touch_after)
    finally:
        factory.close()
    assert db_name not in mongodb_client.list_database_names()


# -- stamping and indexes ---------------------------------------------------------------------------


def test_sessions_messages_and_feedback_carry_one_expiry_and_ttl_indexes_remove_them(
    make_factory: Callable[..., MongoDBSessionManagerFactory], db: Any
) -> None:
    factory = make_factory(ttl_seconds=3600, touch_after=60)
    before = now()
    manager = factory.create_session_manager("s1")
    converse(manager, "Hello!")
    manager.add_feedback({"rating": 5})
    manager.update_metadata({"tier": "gold"})
    after = now()

    session = db[COLLECTION].find_one({"_id": "s1"})
    assert before + timedelta(seconds=3660) <= utc(session["expires_at"]) <= after + timedelta(seconds=3660)
    children = [*db[MESSAGES].find({"session_id": "s1"}), *db[FEEDBACK].find({"session_id": "s1"})]
    assert len(children) == 3
    for child in children:
        # Never before the session's own expiry, so no message disappears from a live session.
        assert utc(session["expires_at"]) <= utc(child["expires_at"]) <= after + timedelta(seconds=3660)

    for name in (COLLECTION, MESSAGES, FEEDBACK):
        ttl = {index["name"]: index for index in db[name].list_indexes()}["expires_at_ttl"]
        assert dict(ttl["key"]) == {"expires_at": 1}
        assert ttl["expireAfterSeconds"] == 0


def test_without_ttl_nothing_expires_and_no_ttl_index_is_made(
    make_factory: Callable[..., MongoDBSessionManagerFactory], db: Any
) -> None:
    converse(make_factory().create_session_manager("s1"), "Hello!")
    assert "expires_at" not in db[COLLECTION].find_one({"_id": "s1"})
    assert all("expires_at" not in message for message in db[MESSAGES].find())
    for name in (MESSAGES, FEEDBACK):
        assert "expires_at_ttl" not in {index["name"] for index in db[name].list_indexes()}


def test_a_manager_can_override_the_factory_retention(
    make_factory: Callable[..., MongoDBSessionManagerFactory], db: Any
) -> None:
    factory = make_factory()
    converse(factory.create_session_manager("kept"), "Hi")
    converse(factory.create_session_manager("short", ttl_seconds=60), "Hi")
    assert "expires_at" not in db[COLLECTION].find_one({"_id": "kept"})
    assert db[COLLECTION].find_one({"_id": "short"})["expires_at"] is not None


# -- touching ---------------------------------------------------------------------------------------


def test_turns_cost_no_extra_write_until_a_touch_is_due(
    make_factory: Callable[..., MongoDBSessionManagerFactory], commands: CommandRecorder
) -> None:
    manager = make_factory(ttl_seconds=3600, touch_after=600).create_session_manager("s1")
    agent = converse(manager, "One")
    commands.take()
    agent.model = ScriptedModel(["Two", "Three"])
    agent("again")
    agent("and again")
    writes = [name for name in commands.take() if name in WRITES]
    assert set(writes) == {"insert"}  # no touch: only the inserts (4 awaited, fewer when grouped)
    assert len(writes) <= 4


def test_a_due_touch_extends_the_session_and_everything_stored_with_it(
    make_factory: Callable[..., MongoDBSessionManagerFactory], db: Any, commands: CommandRecorder
) -> None:
    factory = make_factory(ttl_seconds=3600, touch_after=600)
    converse(factory.create_session_manager("s1"), "One")
    factory.create_session_manager("s1").add_feedback({"rating": 1})
    # Time passes: the last touch was touch_after ago.
    due = now() + timedelta(seconds=3600)
    db[COLLECTION].update_one({"_id": "s1"}, {"$set": {"expires_at": due}})
    for name in (MESSAGES, FEEDBACK):
        db[name].update_many({"session_id": "s1"}, {"$set": {"expires_at": due}})
    commands.take()

    before = now()
    agent = converse(factory.create_session_manager("s1"), "Two")
    assert len(agent.messages) == 4
    expiry = utc(db[COLLECTION].find_one({"_id": "s1"})["expires_at"])
    assert expiry >= before + timedelta(seconds=4200)
    for name in (MESSAGES, FEEDBACK):
        assert all(utc(child["expires_at"]) >= expiry for child in db[name].find({"session_id": "s1"}))
    touches = [
        command for command in commands.commands if command.get("update") == COLLECTION and "$max" in str(command)
    ]
    assert len(touches) == 1  # the restore touched; the turn after it did not


def test_with_touch_after_zero_every_write_touches(
    make_factory: Callable[..., MongoDBSessionManagerFactory], commands: CommandRecorder
) -> None:
    agent = converse(make_factory(ttl_seconds=3600, touch_after=0).create_session_manager("s1"), "One")
    commands.take()
    agent.model = ScriptedModel(["Two"])
    agent("again")
    names = [command for command in commands.commands if command.get("update") == COLLECTION]
    inserts = [command for command in commands.commands if "insert" in command]
    assert inserts
    assert len(names) >= len(inserts)  # one touch before each insert


# -- expiry as readers see it ---------------------------------------------------------------------


def test_an_expired_session_is_invisible_before_the_ttl_monitor_runs(
    make_factory: Callable[..., MongoDBSessionManagerFactory], db: Any, catalog: SessionCatalog, mongodb_uri: str
) -> None:
    factory = make_factory(ttl_seconds=3600)
    manager = factory.create_session_manager("s1")
    old = converse(manager, "Remember 42.")
    manager.update_metadata({"tier": "gold"})
    manager.add_feedback({"rating": 5})
    created_at = db[COLLECTION].find_one({"_id": "s1"})["created_at"]
    assert catalog.count_sessions() == 1

    expire(db, "s1")  # its children outlive it a little: the read side must hide them all the same

    assert catalog.get_session("s1") is None
    assert catalog.count_sessions() == 0
    assert catalog.list_sessions().sessions == []
    repository = catalog.core.repository
    assert catalog.core.runtime.run_blocking(repository.read_session, "s1") is None
    assert catalog.core.runtime.run_blocking(repository.list_messages, "s1", old.agent_id) == []
    assert catalog.core.runtime.run_blocking(repository.get_feedbacks, "s1") == []
    reader = factory.create_session_manager("s1")
    assert reader.get_metadata()["metadata"] == {}
    assert reader.get_message_count(old.agent_id) == 0
    assert reader.list_agents() == []

    # The next conversation under that id starts afresh, and nothing of the old one survives.
    fresh = converse(factory.create_session_manager("s1"), "Hello, stranger.")
    assert [message["content"][0]["text"] for message in fresh.messages] == ["prompt 0", "Hello, stranger."]
    stored = db[COLLECTION].find_one({"_id": "s1"})
    assert stored["created_at"] != created_at
    assert stored["metadata"] == {}
    assert [message["message"]["content"][0]["text"] for message in db[MESSAGES].find().sort("message_id")] == [
        "prompt 0",
        "Hello, stranger.",
    ]
    assert db[FEEDBACK].count_documents({}) == 0


def test_a_short_ttl_expires_the_session_and_a_stale_manager_writes_nothing(
    make_factory: Callable[..., MongoDBSessionManagerFactory], catalog: SessionCatalog, commands: CommandRecorder
) -> None:
    def inserted_texts() -> list[str]:
        # Read from the commands sent, not from the collection: the TTL monitor may empty it any time now.
        return [
            document["message"]["content"][0]["text"]
            for command in commands.commands
            if command.get("insert") == MESSAGES
            for document in command.get("documents", ())
        ]

    factory = make_factory(ttl_seconds=1, touch_after=0)
    stale = converse(factory.create_session_manager("s1"), "Hi")
    assert catalog.get_session("s1") is not None
    wait_until(lambda: catalog.get_session("s1") is None)

    stale.model = ScriptedModel(["Too late"])
    with pytest.raises(SessionExpiredError):
        stale("anyone there?")
    assert inserted_texts() == ["prompt 0", "Hi"]

    # A new manager starts a new generation; the stale one cannot write into it either.
    fresh = converse(factory.create_session_manager("s1"), "Welcome back")
    assert len(fresh.messages) == 2
    with pytest.raises(SessionExpiredError):
        stale("still there?")
    assert inserted_texts() == ["prompt 0", "Hi", "prompt 0", "Welcome back"]


def test_re_creation_after_the_monitor_removed_the_session_drops_only_its_leftovers(
    make_factory: Callable[..., MongoDBSessionManagerFactory], db: Any
) -> None:
    factory = make_factory(ttl_seconds=3600, touch_after=60)
    converse(factory.create_session_manager("s1"), "Old news")
    # The TTL monitor removed the session; its messages expire up to touch_after later, so they remain.
    db[COLLECTION].delete_one({"_id": "s1"})
    db[MESSAGES].update_many({}, {"$set": {"expires_at": now() + timedelta(seconds=30)}})
    # A message another writer stored for the new generation must survive the clean-up.
    db[MESSAGES].insert_one(
        {
            "session_id": "s1",
            "agent_id": "other",
            "message_id": 0,
            "message": {"role": "user", "content": [{"text": "new generation"}]},
            "expires_at": now() + timedelta(seconds=3700),
        }
    )

    fresh = converse(factory.create_session_manager("s1"), "Fresh start")
    assert len(fresh.messages) == 2
    texts = sorted(message["message"]["content"][0]["text"] for message in db[MESSAGES].find())
    assert texts == ["Fresh start", "new generation", "prompt 0"]


def test_touching_a_re_created_session_raises_and_writes_nothing(mongodb_uri: str, db_name: str, db: Any) -> None:
    repository = MongoDBSessionRepository(mongodb_uri, db_name, COLLECTION, ttl_seconds=3600)
    core = repository.core
    try:
        document, created = core.runtime.run_blocking(core.load_session, "s1")
        assert created
        before = db[COLLECTION].find_one({"_id": "s1"})
        with pytest.raises(SessionExpiredError):
            core.runtime.run_blocking(core.touch_session, "s1", generation="an older generation")
        assert db[COLLECTION].find_one({"_id": "s1"}) == before
        expiry = repository.touch_session("s1", generation=document["created_at"])  # the blocking facade
        assert utc(db[COLLECTION].find_one({"_id": "s1"})["expires_at"]) == expiry.replace(
            microsecond=expiry.microsecond // 1000 * 1000
        )
    finally:
        core.runtime.close()
    with MongoDBSessionRepository(mongodb_uri, db_name, COLLECTION) as without_ttl, pytest.raises(InvalidInputError):
        without_ttl.touch_session("s1")


# -- purging and user-managed indexes ---------------------------------------------------------------


def test_purge_expired_removes_expired_sessions_with_children_and_blobs(
    make_factory: Callable[..., MongoDBSessionManagerFactory],
    db: Any,
    catalog: SessionCatalog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_message_blobs, "LARGE_MESSAGE_BYTES", 200)  # every message goes through GridFS
    # No TTL index: the server's TTL monitor would race the purge for the expired documents.
    factory = make_factory(ttl_seconds=3600, ensure_indexes=False)
    for session_id in ("live", "gone"):
        manager = factory.create_session_manager(session_id)
        converse(manager, "x" * 300)
        manager.add_feedback({"rating": 3})
    assert db[f"{COLLECTION}.blobs.files"].count_documents({}) == 4
    expire(db, "gone")
    # An orphan left by an earlier generation, already past its own expiry.
    db[MESSAGES].insert_one({"session_id": "older", "agent_id": "a", "message_id": 0, "expires_at": now()})

    report = catalog.purge_expired()

    assert report.to_dict() == {"sessions": 1, "messages": 3, "feedback": 1, "blobs": 2}
    assert [document["_id"] for document in db[COLLECTION].find()] == ["live"]
    assert {message["session_id"] for message in db[MESSAGES].find()} == {"live"}
    assert {feedback["session_id"] for feedback in db[FEEDBACK].find()} == {"live"}
    files = list(db[f"{COLLECTION}.blobs.files"].find())
    assert {file["metadata"]["session_id"] for file in files} == {"live"}
    assert db[f"{COLLECTION}.blobs.chunks"].count_documents({"files_id": {"$nin": [f["_id"] for f in files]}}) == 0
    assert catalog.purge_expired().to_dict() == {"sessions": 0, "messages": 0, "feedback": 0, "blobs": 0}


def test_user_managed_indexes_still_expire_on_reads_and_can_be_verified_and_created(
    make_factory: Callable[..., MongoDBSessionManagerFactory],
    db: Any,
    commands: CommandRecorder,
    catalog: SessionCatalog,
) -> None:
    factory = make_factory(ttl_seconds=3600, ensure_indexes=False)
    converse(factory.create_session_manager("s1"), "Hi")
    assert "createIndexes" not in commands.names
    assert db[COLLECTION].find_one({"_id": "s1"})["expires_at"] is not None
    expire(db, "s1")
    assert factory.create_session_manager("s1").list_agents() == []

    missing = [status for status in catalog.verify_indexes(ttl=True) if status.missing]
    assert {(status.collection, status.name) for status in missing} >= {
        (COLLECTION, "expires_at_ttl"),
        (MESSAGES, "expires_at_ttl"),
        (FEEDBACK, "expires_at_ttl"),
    }
    report = catalog.create_indexes(ttl=True)
    ttl_indexes = [status for status in report if status.name == "expires_at_ttl"]
    assert len(ttl_indexes) == 3
    assert all(status.present and status.expire_after_seconds == 0 for status in ttl_indexes)
    assert not [status for status in catalog.verify_indexes() if status.missing]


# -- the plain repository ---------------------------------------------------------------------------


def test_writes_through_the_plain_repository_touch_the_session_when_due(
    mongodb_uri: str, db_name: str, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MongoDBSessionRepository(mongodb_uri, db_name, COLLECTION, ttl_seconds=3600, touch_after=600) as repository:
        repository.create_session(Session("s1", SessionType.AGENT))
        repository.create_agent("s1", SessionAgent("a", {}, {}))
        first = SessionMessage({"role": "user", "content": [{"text": "hi"}]}, 0)
        repository.create_message("s1", "a", first)
        stored = utc(db[COLLECTION].find_one({"_id": "s1"})["expires_at"])

        # Not due yet: the session's expiry stays, the new message expires no earlier than it.
        repository.create_message("s1", "a", SessionMessage({"role": "assistant", "content": [{"text": "yo"}]}, 1))
        assert utc(db[COLLECTION].find_one({"_id": "s1"})["expires_at"]) == stored

        # Due (the last touch was touch_after ago): the next write pushes everything back first.
        due = now() + timedelta(seconds=3600)
        db[COLLECTION].update_one({"_id": "s1"}, {"$set": {"expires_at": due}})
        db[MESSAGES].update_many({}, {"$set": {"expires_at": due}})
        before = now()
        repository.add_feedback("s1", {"rating": 2})
        pushed = utc(db[COLLECTION].find_one({"_id": "s1"})["expires_at"])
        assert pushed >= before + timedelta(seconds=4200)
        assert all(utc(message["expires_at"]) >= pushed for message in db[MESSAGES].find())

        # A message rewritten large enough for GridFS: its blob expires with it.
        monkeypatch.setattr(_message_blobs, "LARGE_MESSAGE_BYTES", 200)
        first.message = {"role": "user", "content": [{"text": "x" * 300}]}
        repository.update_message("s1", "a", first)
        [blob] = db[f"{COLLECTION}.blobs.files"].find()
        assert utc(blob["metadata"]["expires_at"]) >= pushed

        # Once expired, the plain repository neither reads nor writes the session's messages.
        expire(db, "s1")
        assert repository.list_messages("s1", "a") == []
        assert repository.read_message("s1", "a", 0) is None
        with pytest.raises(NotFoundError):
            repository.create_message("s1", "a", SessionMessage({"role": "user", "content": [{"text": "late"}]}, 2))


def test_feedback_for_an_expired_session_starts_a_new_one(mongodb_uri: str, db_name: str, db: Any) -> None:
    with MongoDBSessionRepository(mongodb_uri, db_name, COLLECTION, ttl_seconds=3600) as repository:
        repository.add_feedback("s1", {"rating": 1})
        first = db[COLLECTION].find_one({"_id": "s1"})
        assert first["expires_at"] is not None  # created, with an expiry, to anchor the feedback
        expire(db, "s1")
        repository.add_feedback("s1", {"rating": 5})
        assert db[COLLECTION].find_one({"_id": "s1"})["created_at"] != first["created_at"]
        assert [item["rating"] for item in repository.get_feedbacks("s1")] == [5]
        assert db[FEEDBACK].count_documents({}) == 1


@pytest.mark.parametrize("kind", ["owned", "pymongo-sync", "motor"])
def test_expiry_works_the_same_with_every_client_kind(kind: str, mongodb_uri: str, db_name: str, db: Any) -> None:
    from motor.motor_asyncio import AsyncIOMotorClient

    client: Any = {"owned": None, "pymongo-sync": MongoClient, "motor": AsyncIOMotorClient}[kind]
    client = None if client is None else client(mongodb_uri)
    connection = {"connection_string": mongodb_uri} if client is None else {"client": client}
    try:
        with MongoDBSessionManagerFactory(
            database_name=db_name, collection_name=COLLECTION, ttl_seconds=3600, touch_after=0, **connection
        ) as factory:
            stale = converse(factory.create_session_manager("s1"), "Hi")
            session = db[COLLECTION].find_one({"_id": "s1"})
            # touch_after=0: the second insert touched first, extending the first message with the session.
            assert all(utc(message["expires_at"]) >= utc(session["expires_at"]) for message in db[MESSAGES].find())
            expire(db, "s1")
            fresh = converse(factory.create_session_manager("s1"), "Hello again")
            assert [message["content"][0]["text"] for message in fresh.messages] == ["prompt 0", "Hello again"]
            assert db[MESSAGES].count_documents({}) == 2  # the expired generation's messages are gone
            stale.model = ScriptedModel(["Too late"])
            with pytest.raises(SessionExpiredError):
                stale("anyone there?")
    finally:
        if client is not None:
            client.close()
