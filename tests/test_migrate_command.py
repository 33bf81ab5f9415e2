"""``mongodb-session-manager migrate``: bulk migration of original-layout sessions, resumable and verified."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from legacy_documents import conversation_session, large_session, original_restore, text
from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import MongoDBSessionManagerFactory
from mongodb_session_manager._legacy.layout import BACKUP_SUFFIX
from mongodb_session_manager.cli import main
from mongodb_session_manager.migration import migrate_sessions
from mongodb_session_manager.repository import AsyncMongoDBSessionRepository
from mongodb_session_manager.scripted_model import ScriptedModel

COLLECTION = "sessions"


@pytest.fixture
def db(mongodb_client: MongoClient[dict[str, Any]], db_name: str) -> Any:
    return mongodb_client[db_name]


@pytest.fixture
def factory(mongodb_uri: str, db_name: str) -> Iterator[MongoDBSessionManagerFactory]:
    factory = MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION)
    yield factory
    factory.close()


def snapshot(db: Any) -> dict[str, list[dict[str, Any]]]:
    return {name: list(db[name].find().sort("_id", 1)) for name in sorted(db.list_collection_names())}


def cli(mongodb_uri: str, db_name: str, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--uri", mongodb_uri, "--database", db_name, "--collection", COLLECTION, "migrate", *args])
    return code, capsys.readouterr().out


def seed(db: Any, count: int, collection: str = COLLECTION) -> list[dict[str, Any]]:
    documents = [conversation_session(f"s{index:03d}").build() for index in range(count)]
    db[collection].insert_many(documents)
    return list(db[collection].find().sort("_id", 1))


def restored(factory: MongoDBSessionManagerFactory, session_id: str, agent_id: str) -> list[Any]:
    agent = Agent(
        agent_id=agent_id,
        model=ScriptedModel(["ok"]),
        session_manager=factory.create_session_manager(session_id),
        callback_handler=None,
    )
    return agent.messages


def test_dry_run_reports_and_writes_nothing(
    mongodb_uri: str, db_name: str, db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db, 3)
    before = snapshot(db)
    code, out = cli(mongodb_uri, db_name, "--dry-run", "--json", capsys=capsys)
    assert code == 0
    report = json.loads(out)["migration"]
    assert report["dry_run"] is True
    assert (report["sessions"], report["migrated"], report["agents"]) == (3, 3, 6)
    assert (report["messages"], report["feedback"]) == (3 * 14, 3 * 3)
    assert len(report["not_migrated_content"]) == 3  # the unreadable message of each session
    assert snapshot(db) == before  # every collection, every document: nothing written or created


def test_migrate_then_verify_then_a_second_run_is_a_no_op(
    mongodb_uri: str, db_name: str, db: Any, factory: MongoDBSessionManagerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    originals = seed(db, 5)
    code, out = cli(mongodb_uri, db_name, "--verify", "--batch-size", "2", "--no-progress", capsys=capsys)
    assert code == 0, out
    assert "sessions   5: 5 migrated, 0 already migrated, 0 skipped, 0 failed" in out
    assert "verify     5 sessions, 70 messages, 15 feedback compared: OK" in out
    assert "undecodable message" in out
    for original in originals:
        assert restored(factory, original["_id"], "support") == original_restore(original, "support")
        assert restored(factory, original["_id"], "triage") == original_restore(original, "triage")
    after = snapshot(db)
    code, out = cli(mongodb_uri, db_name, "--json", capsys=capsys)
    assert code == 0
    assert json.loads(out)["migration"]["sessions"] == 0
    assert snapshot(db) == after


def test_an_interrupted_run_resumes_without_duplicates(
    mongodb_uri: str, db_name: str, db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db, 7)
    code, out = cli(mongodb_uri, db_name, "--limit", "3", "--json", capsys=capsys)
    assert code == 0
    assert json.loads(out)["migration"]["migrated"] == 3
    assert db[COLLECTION].count_documents({"agents": {"$type": "array"}}) == 3

    # A crash in the middle of a session: its document stays original (claimed), some messages copied.
    repository = AsyncMongoDBSessionRepository(mongodb_uri, db_name, COLLECTION)

    class Crash(Exception):
        pass

    async def crash(point: str, session_id: str) -> None:
        if point == "agent-copied":
            raise Crash

    with pytest.raises(Crash):
        repository.runtime.run_blocking(migrate_sessions, repository, checkpoint=crash, concurrency=1)
    repository.runtime.close()

    # The crashed run is known dead: its claim may be taken over at once.
    code, out = cli(mongodb_uri, db_name, "--verify", "--json", "--lease-seconds", "0", capsys=capsys)
    payload = json.loads(out)
    assert code == 0, payload
    assert payload["migration"]["migrated"] == 4
    assert payload["verification"]["mismatches"] == []
    assert db[COLLECTION + ".messages"].count_documents({}) == 7 * 14
    assert db[COLLECTION + ".feedback"].count_documents({}) == 7 * 3
    assert db[COLLECTION + BACKUP_SUFFIX].count_documents({}) == 7


def test_verify_exits_non_zero_on_a_mismatch(
    mongodb_uri: str, db_name: str, db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db, 2)
    assert cli(mongodb_uri, db_name, capsys=capsys)[0] == 0
    db[COLLECTION + ".messages"].update_one(
        {"session_id": "s001", "agent_id": "triage", "message_id": 3},
        {"$set": {"message.content": [text("tampered")]}},
    )
    db[COLLECTION + ".feedback"].delete_one({"session_id": "s000"})
    code, out = cli(mongodb_uri, db_name, "--verify", capsys=capsys)
    assert code == 1
    assert "verify     2 sessions, 28 messages, 6 feedback compared: 2 MISMATCH(ES)" in out
    assert "'s001': agent 'triage': message content differs (sha256)" in out
    assert "'s000': 1 feedback missing" in out


def test_two_concurrent_migrators_do_not_duplicate(mongodb_uri: str, db_name: str, db: Any) -> None:
    seed(db, 12)
    repositories = [AsyncMongoDBSessionRepository(mongodb_uri, db_name, COLLECTION) for _ in range(2)]
    reports: list[Any] = []
    barrier = threading.Barrier(2)

    def worker(repository: AsyncMongoDBSessionRepository) -> None:
        barrier.wait()
        reports.append(repository.runtime.run_blocking(migrate_sessions, repository, batch_size=3))

    threads = [threading.Thread(target=worker, args=(repository,)) for repository in repositories]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        for repository in repositories:
            repository.runtime.close()
    assert sum(report.migrated for report in reports) + sum(report.already for report in reports) >= 12
    assert all(not report.failed for report in reports)
    assert db[COLLECTION].count_documents({"agents": {"$type": "array"}}) == 12
    assert db[COLLECTION + ".messages"].count_documents({}) == 12 * 14
    assert db[COLLECTION + ".feedback"].count_documents({}) == 12 * 3


def test_to_a_target_namespace_the_source_stays_untouched(
    mongodb_uri: str, db_name: str, db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    originals = seed(db, 3)
    code, out = cli(mongodb_uri, db_name, "--target-collection", "sessions_v2", "--verify", "--json", capsys=capsys)
    payload = json.loads(out)
    assert code == 0, payload
    assert payload["migration"]["migrated"] == 3
    assert payload["verification"]["sessions"] == 3
    assert list(db[COLLECTION].find().sort("_id", 1)) == originals
    assert db["sessions_v2.messages"].count_documents({}) == 3 * 14
    target = MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name="sessions_v2")
    try:
        assert restored(target, "s001", "support") == original_restore(originals[1], "support")
    finally:
        target.close()
    code, out = cli(mongodb_uri, db_name, "--target-collection", "sessions_v2", "--json", capsys=capsys)
    assert json.loads(out)["migration"]["already_migrated"] == 3


def test_a_session_near_16_mib_migrates_through_gridfs(
    mongodb_uri: str, db_name: str, db: Any, factory: MongoDBSessionManagerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    db[COLLECTION].insert_one(large_session("big").build())
    original = db[COLLECTION].find_one({"_id": "big"})
    started = time.perf_counter()
    code, out = cli(mongodb_uri, db_name, "--verify", "--no-progress", capsys=capsys)
    elapsed = time.perf_counter() - started
    assert code == 0, out
    assert "verify     1 sessions, 202 messages, 0 feedback compared: OK" in out
    print(f"near-16 MiB session migrated and verified in {elapsed:.2f} s")
    assert db[COLLECTION + ".blobs.files"].count_documents({"metadata.session_id": "big"}) == 1
    assert restored(factory, "big", "default") == original_restore(original, "default")


def test_plain_progress_lines_when_not_a_terminal(
    mongodb_uri: str, db_name: str, db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(db, 2)
    code = main(["--uri", mongodb_uri, "--database", db_name, "--collection", COLLECTION, "migrate"])
    captured = capsys.readouterr()
    assert code == 0
    assert "migrate: 2/2 sessions (100%)" in captured.err
    assert "sessions/s, ETA" in captured.err
