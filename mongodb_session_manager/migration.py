"""Upgrading data stored by the original, sync-only manager (v0.9.x): bulk migration and verification.

Sessions the original stored (one document per session, agents keyed by id with their messages in
arrays) are read transparently and migrated in place when a manager restores them (see
``docs/migration.md``). :func:`migrate_sessions` moves all of them ahead of time, in batches and
resumably; :func:`verify_sessions` checks that every migrated session holds what its original
document held. The ``mongodb-session-manager migrate`` command runs both.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import bson

from ._legacy.layout import BACKUP_SUFFIX, LEGACY_FILTER, decode_session, is_legacy
from ._legacy.migrator import DEFAULT_LEASE_SECONDS, Checkpoint, LegacyMigrator, SessionOutcome
from ._types import Document
from .errors import InvalidInputError, MongoDBSessionError
from .repository import AsyncMongoDBSessionRepository

logger = logging.getLogger(__name__)

#: Called after each session with ``(sessions done, sessions in total, messages done)``.
Progress = Callable[[int, int, int], None]

DEFAULT_BATCH_SIZE = 100
DEFAULT_CONCURRENCY = 4


@dataclass
class MigrationReport:
    """What a migration run did (or, with ``dry_run``, would do)."""

    dry_run: bool
    sessions: int = 0
    migrated: int = 0
    already: int = 0
    agents: int = 0
    messages: int = 0
    feedback: int = 0
    bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, outcome: SessionOutcome) -> None:
        """Count one session's outcome."""
        self.sessions += 1
        if outcome.status in ("migrated", "checked"):
            self.migrated += 1
            self.agents += outcome.agents
            self.messages += outcome.messages
            self.feedback += outcome.feedback
            self.bytes += outcome.bytes
        elif outcome.status == "already":
            self.already += 1
        elif outcome.status in ("skipped", "missing"):
            self.skipped.append((outcome.session_id, outcome.reason or "deleted meanwhile"))
        self.problems.extend(problem.describe() for problem in outcome.problems)

    def to_dict(self) -> Document:
        """The report as JSON-ready values (what ``migrate --json`` prints)."""
        return {
            "dry_run": self.dry_run,
            "sessions": self.sessions,
            "migrated": self.migrated,
            "already_migrated": self.already,
            "agents": self.agents,
            "messages": self.messages,
            "feedback": self.feedback,
            "bytes": self.bytes,
            "skipped": [{"session_id": sid, "reason": reason} for sid, reason in self.skipped],
            "not_migrated_content": self.problems,
            "failed": [{"session_id": sid, "error": error} for sid, error in self.failed],
            "seconds": round(self.seconds, 3),
        }


@dataclass
class VerificationReport:
    """The result of :func:`verify_sessions`: every mismatch found, per session."""

    sessions: int = 0
    messages: int = 0
    feedback: int = 0
    mismatches: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no mismatch was found."""
        return not self.mismatches

    def to_dict(self) -> Document:
        """The result as JSON-ready values."""
        return {
            "sessions": self.sessions,
            "messages": self.messages,
            "feedback": self.feedback,
            "mismatches": [{"session_id": sid, "mismatch": what} for sid, what in self.mismatches],
        }


def _check_positive(value: int | None, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise InvalidInputError(f"{name} must be a positive int, got {value!r}")


async def count_legacy_sessions(
    repository: AsyncMongoDBSessionRepository,
    *,
    source_database: str | None = None,
    source_collection: str | None = None,
) -> int:
    """How many sessions of the source namespace are in the original layout."""
    migrator = LegacyMigrator(repository, source_database=source_database, source_collection=source_collection)
    return await repository.runtime.run(migrator.source.count_documents, LEGACY_FILTER)


async def migrate_sessions(
    repository: AsyncMongoDBSessionRepository,
    *,
    source_database: str | None = None,
    source_collection: str | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
    limit: int | None = None,
    progress: Progress | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    checkpoint: Checkpoint | None = None,
) -> MigrationReport:
    """Migrate every original-layout session of the source namespace into ``repository``'s.

    The source defaults to the repository's own namespace (migration in place). Sessions are taken
    in ``_id`` order, ``batch_size`` ids at a time, ``concurrency`` sessions at once. A run can be
    stopped at any point (or after ``limit`` sessions) and started again: migrated sessions are
    skipped, half-migrated ones are completed without duplicates.

    Args:
        dry_run: Read and decode every session and report what would move; write nothing.
        progress: Called after each session (on the client's loop thread).
        checkpoint: Fault injection for tests (see :class:`LegacyMigrator`).
    """
    _check_positive(batch_size, "batch_size")
    _check_positive(concurrency, "concurrency")
    _check_positive(limit, "limit")
    migrator = LegacyMigrator(
        repository,
        source_database=source_database,
        source_collection=source_collection,
        lease_seconds=lease_seconds,
        checkpoint=checkpoint,
        ensure_indexes=not dry_run,
    )
    report = MigrationReport(dry_run=dry_run)
    return await repository.runtime.run(
        _migrate_all, migrator, report, batch_size, concurrency, limit, progress, dry_run
    )


async def _one(migrator: LegacyMigrator, session_id: str, dry_run: bool) -> SessionOutcome:
    if not dry_run:
        return await migrator.migrate(session_id)
    document = await migrator.source.find_one({"_id": session_id})
    if document is None:
        return SessionOutcome(session_id, "missing")
    if not is_legacy(document):
        return SessionOutcome(session_id, "already")
    return SessionOutcome.of(decode_session(document), "checked")


async def _migrate_all(
    migrator: LegacyMigrator,
    report: MigrationReport,
    batch_size: int,
    concurrency: int,
    limit: int | None,
    progress: Progress | None,
    dry_run: bool,
) -> MigrationReport:
    started = time.perf_counter()
    total = await migrator.source.count_documents(LEGACY_FILTER)
    if limit is not None:
        total = min(total, limit)
    gate = asyncio.Semaphore(concurrency)
    last: Any = None

    async def run(session_id: str) -> None:
        async with gate:
            try:
                outcome = await _one(migrator, session_id, dry_run)
            except MongoDBSessionError as error:
                report.sessions += 1
                report.failed.append((session_id, f"{type(error).__name__}: {error}"))
            else:
                report.add(outcome)
            if progress is not None:
                progress(report.sessions, total, report.messages)

    while limit is None or report.sessions < limit:
        scope = LEGACY_FILTER if last is None else {**LEGACY_FILTER, "_id": {"$gt": last}}
        size = batch_size if limit is None else min(batch_size, limit - report.sessions)
        batch = await migrator.source.find(scope, sort=[("_id", 1)], limit=size, projection={"_id": 1})
        if not batch:
            break
        last = batch[-1]["_id"]
        await asyncio.gather(*(run(document["_id"]) for document in batch))
    report.seconds = time.perf_counter() - started
    logger.info(
        "migration %s: %d session(s), %d migrated, %d already, %d skipped, %d failed, %d message(s) in %.1f s",
        "dry run" if dry_run else "run",
        report.sessions,
        report.migrated,
        report.already,
        len(report.skipped),
        len(report.failed),
        report.messages,
        report.seconds,
    )
    return report


def _digest(rows: Sequence[Any]) -> str:
    return hashlib.sha256(bson.encode({"rows": list(rows)})).hexdigest()


async def verify_sessions(
    repository: AsyncMongoDBSessionRepository,
    *,
    source_database: str | None = None,
    source_collection: str | None = None,
    progress: Progress | None = None,
) -> VerificationReport:
    """Check every migrated session against its original document.

    The originals are the backups ``<collection>.legacy`` of an in-place migration, or the source
    collection of a migration to another namespace. Per session, every agent, message (id, content,
    redaction) and feedback of the original must be stored, with equal content (compared by counts
    and SHA-256 digests). What was written after the migration (new messages, feedback, metadata)
    is not a mismatch.
    """
    migrator = LegacyMigrator(repository, source_database=source_database, source_collection=source_collection)
    return await repository.runtime.run(_verify_all, migrator, progress)


async def _verify_all(migrator: LegacyMigrator, progress: Progress | None) -> VerificationReport:
    originals = migrator.backup if migrator.in_place else migrator.source
    scope: Document = {} if migrator.in_place else dict(LEGACY_FILTER)
    total = await originals.count_documents(scope)
    report = VerificationReport()
    last: Any = None
    while True:
        page = await originals.find(
            scope if last is None else {**scope, "_id": {"$gt": last}},
            sort=[("_id", 1)],
            limit=DEFAULT_BATCH_SIZE,
            projection={"_id": 1},
        )
        if not page:
            return report
        last = page[-1]["_id"]
        for entry in page:
            original = await originals.find_one({"_id": entry["_id"]})
            if original is not None:
                await _verify_one(migrator, original, report)
            if progress is not None:
                progress(report.sessions, total, report.messages)


async def _verify_one(migrator: LegacyMigrator, original: Document, report: VerificationReport) -> None:
    expected = decode_session(original)
    session_id = expected.session_id
    report.sessions += 1
    current = await migrator.sessions.find_one({"_id": session_id}, {"agents.agent_id": 1})
    if current is None:
        report.mismatches.append((session_id, "no session in the new layout"))
        return
    if is_legacy(current):
        report.mismatches.append((session_id, "not migrated yet"))
        return
    stored_agents = {record.get("agent_id") for record in current.get("agents") or ()}
    for agent in expected.agents:
        agent_id = agent.record["agent_id"]
        if agent_id not in stored_agents:
            report.mismatches.append((session_id, f"agent {agent_id!r} missing"))
            continue
        stored = {
            message.message_id: message
            for message in await migrator.repository.list_messages(session_id, agent_id, session_verified=True)
        }
        missing = [document["message_id"] for document in agent.messages if document["message_id"] not in stored]
        if missing:
            report.mismatches.append((session_id, f"agent {agent_id!r}: {len(missing)} message(s) missing"))
            continue
        report.messages += len(agent.messages)
        want = _digest([[d["message_id"], d["message"], d["redact_message"]] for d in agent.messages])
        have = _digest(
            [
                [d["message_id"], stored[d["message_id"]].message, stored[d["message_id"]].redact_message]
                for d in agent.messages
            ]
        )
        if want != have:
            report.mismatches.append((session_id, f"agent {agent_id!r}: message content differs (sha256)"))
    if expected.feedback:
        ids = [document["_id"] for document in expected.feedback]
        stored_feedback = {
            document["_id"]: document for document in await migrator.feedback.find({"_id": {"$in": ids}})
        }
        report.feedback += len(expected.feedback)
        if len(stored_feedback) != len(ids):
            report.mismatches.append((session_id, f"{len(ids) - len(stored_feedback)} feedback missing"))
        elif _digest([d["feedback"] for d in expected.feedback]) != _digest(
            [stored_feedback[i]["feedback"] for i in ids]
        ):
            report.mismatches.append((session_id, "feedback content differs (sha256)"))


__all__ = [
    "BACKUP_SUFFIX",
    "MigrationReport",
    "VerificationReport",
    "count_legacy_sessions",
    "migrate_sessions",
    "verify_sessions",
]
