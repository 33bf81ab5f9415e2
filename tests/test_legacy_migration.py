"""Sessions stored by the original manager (v0.9.1): read through, migrated on restore, safely.

Original-layout documents are built from its documented schema (``legacy_documents``) and inserted
with a plain PyMongo client; real Strands agents (scripted model) restore them through our manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from legacy_documents import (
    at,
    conversation_session,
    metrics,
    original_restore,
    text,
)
from pymongo import MongoClient
from pymongo.errors import WriteError
from strands import Agent

from mongodb_session_manager import MongoDBSessionManagerFactory, MongoDBSessionRepository, SessionCatalog
from mongodb_session_manager._legacy.layout import BACKUP_SUFFIX, CLAIM_FIELD, decode_session
from mongodb_session_manager._legacy.migrator import LegacyMigrator
from mongodb_session_manager.cli import main
from mongodb_session_manager.errors import LegacySessionConflictError, MongoDBSessionError
from mongodb_session_manager.scripted_model import ScriptedModel

COLLECTION = "sessions"


class Interrupted(Exception):
    """Stands for a crash of the migrating process."""


@pytest.fixture
def db(mongodb_client: MongoClient[dict[str, Any]], db_name: str) -> Any:
    return mongodb_client[db_name]


@pytest.fixture
def factory(mongodb_uri: str, db_name: str) -> Iterator[MongoDBSessionManagerFactory]:
    factory = MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION)
    yield factory
    factory.close()


def snapshot(db: Any) -> dict[str, list[dict[str, Any]]]:
    """Every document of every collection of the test database (empty collections, such as those
    index creation makes, left out)."""
    collections = {name: list(db[name].find().sort("_id", 1)) for name in sorted(db.list_collection_names())}
    return {name: documents for name, documents in collections.items() if documents}


def restore(factory: MongoDBSessionManagerFactory, session_id: str, agent_id: str, *replies: str) -> Agent:
    return Agent(
        agent_id=agent_id,
        model=ScriptedModel(list(replies) or ["ok"]),
        session_manager=factory.create_session_manager(session_id),
        callback_handler=None,
    )


# -- decoding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["base64", "binary"])
def test_every_field_of_the_original_has_a_home(how: str) -> None:
    session = conversation_session("s1", how=how, application_name="support-bot")
    session.session_type = "customer_support"  # the original accepted any label
    original = session.build()
    decoded = decode_session(original)

    assert decoded.fields["application_name"] == "support-bot"
    assert decoded.fields["session_type"] == "customer_support"
    assert decoded.fields["session_viewer_password"] == original["session_viewer_password"]
    assert decoded.fields["metadata"] == original["metadata"]
    assert decoded.fields["created_at"] == at(0).isoformat()
    assert decoded.fields["legacy"]["guardrail_events"] == original["guardrail_events"]
    support, triage = decoded.agents
    assert support.record["model"] == "scripted-model"
    assert support.record["prompt_metadata"] == {"prompt_id": "p-1", "prompt_version": "1.2.0"}
    assert support.record["state"] == {"visits": 3, "language": "eu"}
    assert [m["message_id"] for m in support.messages] == [0, 1, 2, 3, 4, 5, 8, 9]
    picture = support.messages[0]["message"]["content"][1]["image"]["source"]["bytes"]
    assert isinstance(picture, bytes)
    assert picture.startswith(b"\x89PNG")
    assert support.messages[1]["legacy"]["event_loop_metrics"]["accumulated_usage"]["inputTokens"] == 1200
    assert support.messages[6]["redact_message"] == {"role": "user", "content": [text("[blocked]")]}
    assert support.messages[6]["redaction"]["action"] == "BLOCKED"
    assert support.messages[6]["redaction"]["stop_reason"] == "guardrail_intervened"
    assert support.messages[6]["redaction"]["policies_triggered"] == {"contentPolicy": ["INSULTS/HIGH"]}
    assert "inputAssessment" in support.messages[6]["redaction"]["guardrail_trace"]
    assert decoded.fields["guardrails"] == {"count": 1, "last_at": at(500), "policies": ["contentPolicy"]}
    assert support.messages[1]["created_at"] == original["agents"]["support"]["messages"][1]["created_at"].isoformat()
    assert len(triage.messages) == 6
    assert [f["feedback"]["rating"] for f in decoded.feedback] == ["up", "down", None]
    assert decoded.feedback[0]["created_at"] == at(950)
    # The message the original could not read either is reported, not dropped silently.
    assert [(p.agent_id, p.position) for p in decoded.problems] == [("support", 8)]
    assert "undecodable" in decoded.problems[0].reason


def test_bad_base64_and_conflicting_duplicates_are_reported() -> None:
    session = conversation_session("s1")
    support = session.agents["support"]
    support.raw(
        {
            "message_id": 50,
            "message": {
                "role": "user",
                "content": [{"image": {"source": {"bytes": {"__bytes_encoded__": True, "data": "%%"}}}}],
            },
        }
    )
    support.message("user", text("first"), message_id=60)
    support.message("user", text("second, same id"), message_id=60)
    decoded = decode_session(session.build())
    reasons = [problem.describe() for problem in decoded.problems]
    assert any("messages[9]" in reason and "base64" in reason for reason in reasons)
    assert any("second message with id 60" in reason for reason in reasons)
    assert [m["message"]["content"] for m in decoded.agents[0].messages if m["message_id"] == 60] == [[text("first")]]


# -- migrate on touch ------------------------------------------------------------------------------


def test_restore_reads_the_original_session_and_migrates_it(
    factory: MongoDBSessionManagerFactory, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    original = conversation_session("conv").build()
    db[COLLECTION].insert_one(original)
    stored = db[COLLECTION].find_one({"_id": "conv"})

    with caplog.at_level("WARNING", logger="mongodb_session_manager._legacy.gate"):
        support = restore(factory, "conv", "support", "Hello again.")
    # The message the original could not read either is reported, not dropped silently.
    assert "not migrated (kept in " in caplog.text
    assert "messages[8]: undecodable message" in caplog.text
    triage = restore(factory, "conv", "triage")

    assert support.messages == original_restore(stored, "support")
    assert triage.messages == original_restore(stored, "triage")
    assert support.state.get("visits") == 3
    migrated = db[COLLECTION].find_one({"_id": "conv"})
    assert [record["agent_id"] for record in migrated["agents"]] == ["support", "triage"]
    assert not {"feedbacks", "guardrail_events", "session_id", CLAIM_FIELD} & set(migrated)
    assert migrated["legacy"]["guardrail_events"][0]["message_id"] == 8
    assert db[COLLECTION + ".messages"].count_documents({"session_id": "conv"}) == 8 + 6
    assert db[COLLECTION + ".feedback"].count_documents({"session_id": "conv"}) == 3
    backup = db[COLLECTION + BACKUP_SUFFIX].find_one({"_id": "conv"})
    assert backup == stored

    # The conversation continues after the highest stored id (the original left gaps).
    support("And now?")
    ids = [d["message_id"] for d in db[COLLECTION + ".messages"].find({"agent_id": "support"}).sort("message_id", 1)]
    assert ids == [0, 1, 2, 3, 4, 5, 8, 9, 10, 11]
    manager = factory.create_session_manager("conv")
    assert [f["rating"] for f in manager.get_feedbacks()] == ["up", "down", None]
    # The migrated guardrail intervention counts in the audit report like a new one.
    report = SessionCatalog(manager.session_repository).guardrail_interventions(session_id="conv")
    assert report.total == 1
    metadata = manager.get_metadata()
    metadata = metadata.get("metadata", metadata)  # the original's shape nests it
    assert metadata["user"] == {"plan": "pro", "id": 7}
    again = restore(factory, "conv", "support")
    assert again.messages == [*original_restore(stored, "support"), *support.messages[-2:]]


def test_a_read_decodes_the_original_and_writes_nothing(factory: MongoDBSessionManagerFactory, db: Any) -> None:
    db[COLLECTION].insert_one(conversation_session("conv").build())
    before = snapshot(db)
    manager = factory.create_session_manager("conv")
    listed = manager.list_agents()
    assert [agent if isinstance(agent, str) else agent["agent_id"] for agent in listed] == ["support", "triage"]
    assert snapshot(db) == before


def test_two_processes_restoring_the_same_original_session_migrate_it_once(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    original = conversation_session("conv").build()
    db[COLLECTION].insert_one(original)
    stored = db[COLLECTION].find_one({"_id": "conv"})
    factories = [
        MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) for _ in range(4)
    ]
    barrier = threading.Barrier(len(factories))
    results: list[Any] = [None] * len(factories)

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results[index] = restore(factories[index], "conv", "support").messages
        except BaseException as error:  # reported below
            results[index] = error

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(len(factories))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for factory in factories:
            factory.close()
    assert all(result == original_restore(stored, "support") for result in results), results
    assert db[COLLECTION + ".messages"].count_documents({}) == 14
    assert db[COLLECTION + ".feedback"].count_documents({}) == 3


def test_a_crash_mid_migration_leaves_the_session_readable_and_the_next_touch_completes_it(
    factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    db[COLLECTION].insert_one(conversation_session("conv").build())
    stored = db[COLLECTION].find_one({"_id": "conv"})
    repository = factory.create_session_manager("conv").repository

    async def crash_after_first_agent(point: str, session_id: str) -> None:
        if point == "agent-copied":
            raise Interrupted

    migrator = LegacyMigrator(repository, checkpoint=crash_after_first_agent)
    with pytest.raises(Interrupted):
        repository.runtime.run_blocking(migrator.migrate, "conv")
    half = db[COLLECTION].find_one({"_id": "conv"})
    assert CLAIM_FIELD in half
    assert isinstance(half["agents"], dict)
    assert db[COLLECTION + ".messages"].count_documents({"agent_id": "support"}) == 8
    assert factory.create_session_manager("conv").list_agents()  # still readable

    # The claim of the crashed process goes stale; the next migrator takes it over and finishes.
    finisher = LegacyMigrator(repository, lease_seconds=0.0)
    outcome = repository.runtime.run_blocking(finisher.migrate, "conv")
    assert outcome.status == "migrated"
    assert db[COLLECTION + ".messages"].count_documents({}) == 14
    assert restore(factory, "conv", "support").messages == original_restore(stored, "support")


def test_a_restore_waits_for_a_migration_in_progress_elsewhere(factory: MongoDBSessionManagerFactory, db: Any) -> None:
    db[COLLECTION].insert_one(conversation_session("conv").build())
    stored = db[COLLECTION].find_one({"_id": "conv"})
    repository = factory.create_session_manager("conv").repository
    claimed = threading.Event()
    release = threading.Event()

    async def pause(point: str, session_id: str) -> None:
        if point == "copied":
            claimed.set()
            await asyncio.to_thread(release.wait, 30)

    slow = LegacyMigrator(repository, checkpoint=pause)
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(repository.runtime.run_blocking(slow.migrate, "conv")))
    try:
        thread.start()
        assert claimed.wait(30)
        restored: list[Any] = []
        restorer = threading.Thread(target=lambda: restored.append(restore(factory, "conv", "triage").messages))
        restorer.start()
        restorer.join(0.5)
        assert restorer.is_alive()  # waiting for the other migrator's commit, not migrating twice
        release.set()
        restorer.join(30)
        thread.join(30)
    finally:
        release.set()
    assert result[0].status == "migrated"
    assert restored == [original_restore(stored, "triage")]
    assert db[COLLECTION + ".messages"].count_documents({}) == 14


# -- an original-version process still writing (rolling deploy) ----------------------------------


def original_append(db: Any, session_id: str, agent_id: str, message_id: int, words: str) -> None:
    """What the original's create_message does: push onto the agent's array and bump updated_at."""
    stamp = at(2000 + message_id)
    db[COLLECTION].update_one(
        {"_id": session_id},
        {
            "$push": {
                f"agents.{agent_id}.messages": {
                    "message": {"role": "user", "content": [text(words)]},
                    "message_id": message_id,
                    "redact_message": None,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            },
            "$set": {f"agents.{agent_id}.updated_at": stamp, "updated_at": stamp},
        },
    )


def test_an_original_process_writing_during_the_migration_is_picked_up(
    factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    db[COLLECTION].insert_one(conversation_session("conv").build())
    repository = factory.create_session_manager("conv").repository
    writes = iter(range(2))

    async def old_process_writes(point: str, session_id: str) -> None:
        if point == "copied" and next(writes, None) is not None:
            await asyncio.to_thread(original_append, db, "conv", "triage", 6, "late question")
            await asyncio.to_thread(
                db[COLLECTION].update_one,
                {"_id": "conv"},
                {"$set": {"agents.triage.messages.5.event_loop_metrics": metrics(1, 2, 3)}},
            )

    outcome = repository.runtime.run_blocking(LegacyMigrator(repository, checkpoint=old_process_writes).migrate, "conv")
    assert outcome.status == "migrated"
    late = db[COLLECTION + ".messages"].find_one({"agent_id": "triage", "message_id": 6})
    assert late["message"]["content"] == [text("late question")]
    annotated = db[COLLECTION + ".messages"].find_one({"agent_id": "triage", "message_id": 5})
    assert annotated["legacy"]["event_loop_metrics"] == metrics(1, 2, 3)
    assert db[COLLECTION + ".messages"].count_documents({}) == 15


def test_an_original_process_that_never_stops_writing_gets_a_typed_error(
    factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    db[COLLECTION].insert_one(conversation_session("conv").build())
    repository = factory.create_session_manager("conv").repository
    ids = iter(range(100, 200))

    async def old_process_writes(point: str, session_id: str) -> None:
        if point == "copied":
            await asyncio.to_thread(original_append, db, "conv", "triage", next(ids), "again")

    migrator = LegacyMigrator(repository, checkpoint=old_process_writes)
    with pytest.raises(LegacySessionConflictError) as caught:
        repository.runtime.run_blocking(migrator.migrate, "conv")
    assert isinstance(caught.value, MongoDBSessionError)
    left = db[COLLECTION].find_one({"_id": "conv"})
    assert isinstance(left["agents"], dict)  # still in the original layout...
    assert CLAIM_FIELD not in left  # ...and the claim released
    assert len(left["agents"]["triage"]["messages"]) == 6 + 5


def test_an_original_process_writing_a_migrated_session_is_refused_by_the_server(
    factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    db[COLLECTION].insert_one(conversation_session("conv").build())
    restore(factory, "conv", "support")
    before = db[COLLECTION].find_one({"_id": "conv"})
    with pytest.raises(WriteError):
        original_append(db, "conv", "support", 10, "from an old process")
    assert db[COLLECTION].find_one({"_id": "conv"}) == before


def test_an_original_process_adding_feedback_to_a_migrated_session_is_adopted(
    factory: MongoDBSessionManagerFactory, db: Any
) -> None:
    db[COLLECTION].insert_one(conversation_session("conv").build())
    restore(factory, "conv", "support")
    # What the original's add_feedback does, on the migrated document.
    db[COLLECTION].update_one(
        {"_id": "conv"},
        {
            "$push": {"feedbacks": {"rating": "up", "comment": "late", "created_at": at(3000)}},
            "$set": {"updated_at": at(3000)},
        },
    )
    manager = factory.create_session_manager("conv")
    restore(factory, "conv", "triage")
    assert [f["comment"] for f in manager.get_feedbacks()] == ["Very helpful", "Too slow", "just testing", "late"]
    adopted = db[COLLECTION].find_one({"_id": "conv"})
    assert "feedbacks" not in adopted
    assert adopted["updated_at"] == at(3000).isoformat()


def test_strands_repository_session_manager_over_our_repository_restores_and_migrates(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    from strands.session.repository_session_manager import RepositorySessionManager

    from mongodb_session_manager import MongoDBSessionRepository

    db[COLLECTION].insert_one(conversation_session("conv").build())
    stored = db[COLLECTION].find_one({"_id": "conv"})
    repository = MongoDBSessionRepository(mongodb_uri, db_name, COLLECTION)
    try:
        agent = Agent(
            agent_id="triage",
            model=ScriptedModel(["fine"]),
            session_manager=RepositorySessionManager(session_id="conv", session_repository=repository),
            callback_handler=None,
        )
        assert agent.messages == original_restore(stored, "triage")
        assert isinstance(db[COLLECTION].find_one({"_id": "conv"})["agents"], list)
        agent("one more")
        assert repository.list_messages("conv", "triage")[-1].message["content"] == [text("fine")]
    finally:
        repository.close()


def test_with_expiring_sessions_the_copies_expire_with_their_session(mongodb_uri: str, db_name: str, db: Any) -> None:
    db[COLLECTION].insert_one(conversation_session("conv").build())
    factory = MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name=COLLECTION, ttl_seconds=3600
    )
    try:
        restore(factory, "conv", "support")
    finally:
        factory.close()
    expiry = db[COLLECTION].find_one({"_id": "conv"})["expires_at"]
    for name in (".messages", ".feedback"):
        stamps = {document.get("expires_at") for document in db[COLLECTION + name].find({"session_id": "conv"})}
        assert stamps == {expiry}, name


def test_the_repository_lists_messages_of_an_original_session_without_writing(
    mongodb_uri: str, db_name: str, db: Any
) -> None:
    from mongodb_session_manager import MongoDBSessionRepository

    db[COLLECTION].insert_one(conversation_session("conv").build())
    stored = db[COLLECTION].find_one({"_id": "conv"})
    before = snapshot(db)
    repository = MongoDBSessionRepository(mongodb_uri, db_name, COLLECTION)
    try:
        messages = repository.list_messages("conv", "support")
        assert [message.message_id for message in messages] == [0, 1, 2, 3, 4, 5, 8, 9]
        assert [message.to_message() for message in messages] == original_restore(stored, "support")
        assert [message.message_id for message in repository.list_messages("conv", "triage", 2, 3)] == [3, 4]
        assert repository.list_messages("conv", "nobody") == []
    finally:
        repository.close()
    assert snapshot(db) == before


def test_the_original_apis_answer_from_a_migrated_session(factory: MongoDBSessionManagerFactory, db: Any) -> None:
    original = conversation_session("conv", application_name="support-bot").build()
    db[COLLECTION].insert_one(original)
    manager = factory.create_session_manager("conv")
    outcome = manager.repository.runtime.run_blocking(LegacyMigrator(manager.repository).migrate, "conv")
    assert outcome.status == "migrated"
    assert manager.get_agent_config("support") == {
        "agent_id": "support",
        "model": "scripted-model",
        "system_prompt": "You are helpful.",
        "prompt_metadata": {"prompt_id": "p-1", "prompt_version": "1.2.0"},
    }
    assert [agent["agent_id"] for agent in manager.list_agents()] == ["support", "triage"]
    assert manager.get_application_name() == "support-bot"
    assert manager.get_session_viewer_password() == original["session_viewer_password"]
    assert manager.get_message_count("triage") == 6


def test_a_restore_cancelled_mid_migration_does_not_stop_the_migration(
    mongodb_uri: str, db_name: str, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mongodb_session_manager._legacy import gate
    from mongodb_session_manager.repository import AsyncMongoDBSessionRepository

    db[COLLECTION].insert_one(conversation_session("conv").build())
    reached, release = threading.Event(), threading.Event()

    class PausedMigrator(LegacyMigrator):
        def __init__(self, repository: Any, **options: Any) -> None:
            async def pause(point: str, session_id: str) -> None:
                if point == "copied":
                    reached.set()
                    await asyncio.to_thread(release.wait, 30)

            super().__init__(repository, checkpoint=pause, **options)

    monkeypatch.setattr(gate, "LegacyMigrator", PausedMigrator)
    repository = AsyncMongoDBSessionRepository(mongodb_uri, db_name, COLLECTION)

    async def cancelled_restore() -> None:
        restore = asyncio.ensure_future(repository.load_session("conv"))
        assert await asyncio.to_thread(reached.wait, 30)
        restore.cancel()
        with pytest.raises(asyncio.CancelledError):
            await restore
        release.set()

    try:
        asyncio.run(cancelled_restore())
        deadline = threading.Event()
        for _ in range(300):  # the migration goes on in the client's loop; wait for its commit
            if isinstance(db[COLLECTION].find_one({"_id": "conv"})["agents"], list):
                break
            deadline.wait(0.1)
    finally:
        release.set()
        repository.runtime.close()
    migrated = db[COLLECTION].find_one({"_id": "conv"})
    assert isinstance(migrated["agents"], list)
    assert CLAIM_FIELD not in migrated
    assert db[COLLECTION + ".messages"].count_documents({}) == 14


# -- reads before the migration ---------------------------------------------------------------------


SCOPE = ["--uri"]
SHOW = ["--json", "sessions", "show", "conv"]


def every_read(mongodb_uri: str, db_name: str, **client_options: Any) -> dict[str, Any]:
    """What each public read answers about session ``conv``, through fresh blocking objects (so the sync
    twins of the async core are the ones exercised)."""
    repository = MongoDBSessionRepository(mongodb_uri, db_name, COLLECTION, **client_options)
    factory = MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name=COLLECTION, **client_options
    )
    core = repository.core
    try:
        manager = factory.create_session_manager("conv")
        catalog = SessionCatalog(repository)
        document = catalog.read_session_document("conv")
        assert document is not None
        document["legacy"].pop("migrated_at")  # the one field that says when it was (or would be) migrated
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):
            code = main([*SCOPE, mongodb_uri, "--database", db_name, "--collection", COLLECTION, *SHOW])
        return {
            "read_message": {
                (agent, number): repository.read_message("conv", agent, number)
                for agent, number in [("support", 0), ("support", 6), ("support", 8), ("triage", 5), ("nobody", 0)]
            },
            "count_messages": {agent: repository.count_messages("conv", agent) for agent in ("support", "triage", "x")},
            "list_messages": repository.list_messages("conv", "support", 3, 2),
            "last_message": core.runtime.run_blocking(core.last_message, "conv", "support"),
            "last_message_id": core.runtime.run_blocking(core.last_message_id, "conv", "triage"),
            "get_feedbacks": repository.get_feedbacks("conv"),
            "read_session": repository.read_session("conv"),
            "manager.get_feedbacks": manager.get_feedbacks(),
            "manager.get_message_count": manager.get_message_count("support"),
            "catalog.get_session": catalog.get_session("conv"),
            "catalog.list_sessions": catalog.list_sessions().sessions,
            "catalog.read_session_document": document,
            "sessions show": (code, json.loads(shown.getvalue())),
        }
    finally:
        factory.close()
        repository.close()


@pytest.mark.parametrize(("migrated_by", "tz_aware"), [("a restore", False), ("the migrator", True)])
def test_every_read_of_an_original_session_answers_as_once_it_is_migrated(
    factory: MongoDBSessionManagerFactory, mongodb_uri: str, db_name: str, db: Any, migrated_by: str, tz_aware: bool
) -> None:
    db[COLLECTION].insert_one(conversation_session("conv").build())
    unmigrated = snapshot(db)

    before = every_read(mongodb_uri, db_name, tz_aware=tz_aware)  # dates come back as the client decodes them
    assert snapshot(db) == unmigrated  # reads never write
    assert [message.message_id for message in before["list_messages"]] == [2, 3, 4]
    assert before["read_message"][("support", 8)].redact_message == {"role": "user", "content": [text("[blocked]")]}
    assert before["read_message"][("support", 6)] is None  # an id the original skipped
    assert before["count_messages"] == {"support": 8, "triage": 6, "x": 0}
    assert before["last_message"][0].message_id == 9
    assert before["last_message_id"] == 5
    assert [item["rating"] for item in before["get_feedbacks"]] == ["up", "down", None]
    assert {item["created_at"].tzinfo is not None for item in before["get_feedbacks"]} == {tz_aware}
    assert before["manager.get_feedbacks"] == before["get_feedbacks"]
    assert before["manager.get_message_count"] == 8
    assert before["catalog.get_session"].agent_ids == ["support", "triage"]
    assert before["catalog.get_session"].guardrails["count"] == 1
    assert before["catalog.list_sessions"] == [before["catalog.get_session"]]
    assert isinstance(before["read_session"].created_at, str)
    code, shown = before["sessions show"]
    assert code == 0
    assert [len(agent["messages"]) for agent in shown["agents"]] == [8, 6]
    assert len(shown["feedback"]) == 3

    if migrated_by == "a restore":
        restore(factory, "conv", "support")
    else:
        with MongoDBSessionRepository(mongodb_uri, db_name, COLLECTION) as repository:
            outcome = repository.core.runtime.run_blocking(LegacyMigrator(repository.core).migrate, "conv")
        assert outcome.status == "migrated"
    assert db[COLLECTION].find_one({"_id": "conv"})["agents"][0]["agent_id"] == "support"  # migrated

    assert every_read(mongodb_uri, db_name, tz_aware=tz_aware) == before


def test_the_fallback_to_the_original_document_costs_one_read_and_only_when_nothing_was_found(
    mongodb_uri: str, db_name: str, factory: MongoDBSessionManagerFactory
) -> None:
    from mongodb_session_manager.testing import CommandRecorder

    restore(factory, "ours", "support", "Hi!")("Hello")  # sessions in our layout: one with messages and
    factory.create_session_manager("ours").add_feedback({"rating": "up"})  # feedback, one with neither
    factory.create_session_manager("quiet").update_metadata({"topic": "none"})
    commands = CommandRecorder(only={"find", "aggregate", "count", "getMore"})
    with MongoDBSessionRepository(mongodb_uri, db_name, COLLECTION, event_listeners=[commands]) as repository:
        reads = {
            "read_message": (lambda session, agent: repository.read_message(session, agent, 0), "find", ".messages"),
            "count_messages": (repository.count_messages, "aggregate", ".messages"),
            "list_messages": (repository.list_messages, "find", ".messages"),
            "get_feedbacks": (lambda session, agent: repository.get_feedbacks(session), "find", ".feedback"),
        }
        for name, (read, command, children) in reads.items():
            first = (command, COLLECTION + children)
            assert read("ours", "support"), name
            assert commands.targets == [first], name  # found: no read of the session document
            commands.clear()
            # Nothing in our layout (an agent without messages, a session without feedback, a session
            # that does not exist): one more read, of the session document, which finds no original
            # document, and the answer is the one it was.
            for session, agent in [("ours", "nobody"), ("quiet", "support"), ("missing", "support")]:
                if name == "get_feedbacks" and session == "ours":
                    continue
                assert not read(session, agent), (name, session)
                assert commands.targets == [first, ("find", COLLECTION)], (name, session)
                commands.clear()
        catalog = SessionCatalog(repository)
        assert [summary.session_id for summary in catalog.list_sessions().sessions] == ["ours", "quiet"]
        assert (catalog.get_session("ours") or pytest.fail("no summary")).agent_ids == ["support"]
        assert commands.targets == [("find", COLLECTION)] * 2  # no second read without original documents
        commands.clear()
        repository.collection.insert_many([conversation_session(name).build() for name in ("old", "older")])
        listed = {summary.session_id: summary.agent_ids for summary in catalog.list_sessions().sessions}
        both = ["support", "triage"]
        assert listed == {"old": both, "older": both, "ours": ["support"], "quiet": []}
        assert commands.targets == [("find", COLLECTION)] * 2  # the page, then its original documents at once
