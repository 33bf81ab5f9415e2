"""Upgrading sessions stored by the original manager (v0.9): bulk migration and migrate-on-restore.

* Bulk: ``migrate_sessions`` in place over sessions of 20 messages (two agents, metrics on every
  answer, a base64 image in one session of ten, feedback in one of four): sessions/s and messages/s.
* On restore: ``Agent(session_manager=...)`` of an original-layout session (it is migrated first),
  against restoring the same conversation already in the new layout.
* A session near the 16 MiB document limit (one 15.8 MB image and 200 small messages): one migration.

The original-layout documents are built here from its documented schema (see ``docs/migration.md``).
"""

from __future__ import annotations

import base64
import itertools
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from pymongo import MongoClient
from strands import Agent

from mongodb_session_manager import AsyncMongoDBSessionRepository, MongoDBSessionManagerFactory
from mongodb_session_manager.migration import migrate_sessions
from mongodb_session_manager.scripted_model import ScriptedModel

from ._common import CommandCounter, Context, Row, relate, repeat, summarize

NAME = "migrate"
GROUP = "migrate (original layout)"
COLLECTION = "sessions"
_EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _message(message_id: int, role: str, content: list[dict[str, Any]], *, metrics: bool = False) -> dict[str, Any]:
    stamp = _EPOCH + timedelta(seconds=message_id)
    document: dict[str, Any] = {
        "message": {"role": role, "content": content},
        "message_id": message_id,
        "redact_message": None,
        "created_at": stamp,
        "updated_at": stamp,
    }
    if metrics:
        document["event_loop_metrics"] = {
            "accumulated_metrics": {"latencyMs": 420},
            "accumulated_usage": {"inputTokens": 900, "outputTokens": 60, "totalTokens": 960},
        }
    return document


def _agent(agent_id: str, turns: int, picture: bytes | None) -> dict[str, Any]:
    messages = []
    for turn in range(turns):
        content: list[dict[str, Any]] = [{"text": f"question {turn} " + "lorem ipsum " * 8}]
        if picture is not None and turn == 0:
            data = {"__bytes_encoded__": True, "data": base64.b64encode(picture).decode()}
            content.append({"image": {"format": "png", "source": {"bytes": data}}})
        messages.append(_message(2 * turn, "user", content))
        messages.append(_message(2 * turn + 1, "assistant", [{"text": "answer " * 30}], metrics=True))
    agent_data = {
        "agent_id": agent_id,
        "state": {"visits": 3},
        "conversation_manager_state": {"__name__": "SlidingWindowConversationManager", "removed_message_count": 0},
        "_internal_state": {},
        "created_at": _EPOCH,
        "updated_at": _EPOCH,
        "model": "scripted",
    }
    return {"agent_data": agent_data, "messages": messages, "created_at": _EPOCH, "updated_at": _EPOCH}


def original_session(session_id: str, index: int, *, turns: int = 5) -> dict[str, Any]:
    """One session as the original stored it: two agents of ``turns`` turns each."""
    picture = b"\x89PNG" + bytes(range(256)) * 80 if index % 10 == 0 else None
    feedbacks = [{"rating": "up", "comment": "thanks", "created_at": _EPOCH}] if index % 4 == 0 else []
    return {
        "_id": session_id,
        "session_id": session_id,
        "application_name": None,
        "session_type": "AGENT",
        "session_viewer_password": "x" * 32,
        "created_at": _EPOCH,
        "updated_at": _EPOCH,
        "metadata": {"user": f"user-{index}", "priority": "high"},
        "feedbacks": feedbacks,
        "guardrail_events": [],
        "agents": {"support": _agent("support", turns, picture), "triage": _agent("triage", turns, None)},
    }


def run(ctx: Context) -> None:
    with ctx.mongodb(NAME) as (uri, database):
        _run(ctx, uri, database)


def _run(ctx: Context, uri: str, database: str) -> None:
    report = ctx.report
    sessions = 300 if ctx.quick else 2000
    with MongoClient(uri) as client:
        collection = client[database][COLLECTION]
        collection.insert_many([original_session(f"bulk-{index:05d}", index) for index in range(sessions)])
        repository = AsyncMongoDBSessionRepository(uri, database, COLLECTION)
        try:
            started = time.perf_counter()
            migrated = repository.runtime.run_blocking(migrate_sessions, repository)
            elapsed = time.perf_counter() - started
        finally:
            repository.runtime.close()
        assert migrated.migrated == sessions, migrated.to_dict()
        assert not migrated.failed, migrated.to_dict()
        notes = {"sessions": sessions, "messages": migrated.messages, "seconds": round(elapsed, 2)}
        report.add(Row(GROUP, "bulk migrate in place: sessions/s", value=sessions / elapsed, unit="/s", notes=notes))
        report.add(Row(GROUP, "bulk migrate in place: messages/s", value=migrated.messages / elapsed, unit="/s"))

        _restore(ctx, uri, database, collection)

        collection.insert_one(_large_session())
        repository = AsyncMongoDBSessionRepository(uri, database, COLLECTION)
        try:
            started = time.perf_counter()
            large = repository.runtime.run_blocking(migrate_sessions, repository)
            elapsed = time.perf_counter() - started
        finally:
            repository.runtime.close()
        assert large.migrated == 1, large.to_dict()
        report.add(
            Row(GROUP, "one session near 16 MiB (GridFS)", value=elapsed, unit="s", notes={"bytes": large.bytes})
        )


def _restore(ctx: Context, uri: str, database: str, collection: Any) -> None:
    """An Agent restoring an original-layout session (migrated on the way) vs the same session migrated."""
    report = ctx.report
    repeats = 15 if ctx.quick else 60
    commands = CommandCounter()
    factory = MongoDBSessionManagerFactory(
        uri, database_name=database, collection_name=COLLECTION, event_listeners=[commands]
    )
    ids = itertools.count()
    collection.insert_many([original_session(f"touch-{index:05d}", index + 1) for index in range(repeats + 1)])

    def restore(session_id: str) -> None:
        manager = factory.create_session_manager(session_id)
        Agent(
            agent_id="support",
            model=ScriptedModel(default_text="ok"),
            session_manager=manager,
            callback_handler=None,
        )
        manager.close()

    try:
        with commands.measure() as sent:
            # One warm-up and ``repeats`` samples: each restores (and migrates) a session of its own.
            samples = repeat(lambda: restore(f"touch-{next(ids):05d}"), repeats=repeats, warmup=1)
        on_touch = report.add(
            Row(
                GROUP,
                "Agent restore of an original session (migrates it)",
                time=summarize(samples),
                commands=sum(sent.values()) / (len(samples) + 1),
            )
        )
        with commands.measure() as sent:
            samples = repeat(lambda: restore("touch-00000"), repeats=repeats, warmup=1)
        migrated = report.add(
            Row(
                GROUP,
                "Agent restore of the same session, migrated",
                time=summarize(samples),
                commands=sum(sent.values()) / (len(samples) + 1),
            )
        )
        relate(on_touch, migrated, "restore of a migrated session")
    finally:
        factory.close()


def _large_session() -> dict[str, Any]:
    document = original_session("near-16-mib", 1, turns=100)
    image = {"image": {"format": "png", "source": {"bytes": b"\x89PNG" + bytes(15_800_000)}}}
    document["agents"]["support"]["messages"].append(_message(1000, "user", [{"text": "look"}, image]))
    return document
