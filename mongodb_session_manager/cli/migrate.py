"""``migrate``: move sessions stored by the original manager (v0.9) into this library's layout."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .._legacy.migrator import DEFAULT_LEASE_SECONDS
from ..migration import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    MigrationReport,
    VerificationReport,
    migrate_sessions,
    verify_sessions,
)
from ..repository import AsyncMongoDBSessionRepository
from ._common import EXIT_NOT_FOUND, EXIT_OK, Context, add_command, size, to_json

# How many not-migrated items the text report lists (``--json`` lists them all).
_LISTED = 20
# Without a terminal, a progress line at most this often.
_PLAIN_INTERVAL_SECONDS = 5.0


def register(commands: Any) -> None:
    """Add the ``migrate`` command to ``commands`` (the top-level subparsers action)."""
    parser = add_command(
        commands,
        "migrate",
        _migrate,
        "move sessions stored by the original manager (v0.9) into this library's layout",
    )
    parser.add_argument("--dry-run", action="store_true", help="report what would move; write nothing")
    parser.add_argument(
        "--verify", action="store_true", help="afterwards, compare every migrated session with its original"
    )
    parser.add_argument("--batch-size", type=_positive, default=DEFAULT_BATCH_SIZE, help="session ids read per query")
    parser.add_argument("--concurrency", type=_positive, default=DEFAULT_CONCURRENCY, help="sessions migrated at once")
    parser.add_argument("--limit", type=_positive, help="stop after this many sessions (run again to continue)")
    parser.add_argument("--target-database", help="write the new layout to this database (default: migrate in place)")
    parser.add_argument(
        "--target-collection", help="write the new layout to this collection (default: migrate in place)"
    )
    parser.add_argument(
        "--lease-seconds",
        type=_seconds,
        default=DEFAULT_LEASE_SECONDS,
        help=f"take over a session whose migration was claimed longer ago than this (an interrupted run); "
        f"default {DEFAULT_LEASE_SECONDS:g}",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"must be between 0 and 86400, got {value}")
    return value


class _Progress:
    """A progress bar with rate and ETA on a terminal (``rich``, the ``[cli]`` extra), plain lines otherwise."""

    def __init__(self, label: str, *, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self.started = time.perf_counter()
        self.last_line = self.started
        self.bar: Any = None
        self.task: Any = None
        if enabled and sys.stderr.isatty():
            try:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                )
            except ImportError:
                return
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.1f} sessions/s, {task.fields[messages]} messages"),
                TimeRemainingColumn(),
                transient=True,
            )
            self.task = self.bar.add_task(label, total=None, rate=0.0, messages=0)
            self.bar.start()

    def __call__(self, done: int, total: int, messages: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        rate = done / max(now - self.started, 1e-9)
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total, rate=rate, messages=messages)
            return
        if now - self.last_line >= _PLAIN_INTERVAL_SECONDS or done == total:
            self.last_line = now
            eta = (total - done) / rate if rate > 0 else 0.0
            percent = 100 * done // total if total else 100
            sys.stderr.write(
                f"{self.label}: {done}/{total} sessions ({percent}%), {messages} messages, "
                f"{rate:.1f} sessions/s, ETA {eta:.0f} s\n"
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _target(context: Context) -> AsyncMongoDBSessionRepository:
    args = context.args
    core = context.repository.core
    database = args.target_database or args.database
    collection = args.target_collection or args.collection
    if (database, collection) == (args.database, args.collection):
        return core
    # Shares the command's client; closing it leaves the client open.
    return AsyncMongoDBSessionRepository(
        database_name=database, collection_name=collection, ensure_indexes=False, runtime=core.runtime
    )


def _migrate(context: Context) -> int:
    args = context.args
    target = _target(context)
    in_place = target is context.repository.core
    source = {} if in_place else {"source_database": args.database, "source_collection": args.collection}
    runtime = target.runtime
    progress = _Progress("migrate", enabled=not (args.no_progress or context.json))
    try:
        report = runtime.run_blocking(
            migrate_sessions,
            target,
            dry_run=args.dry_run,
            batch_size=args.batch_size,
            concurrency=args.concurrency,
            limit=args.limit,
            lease_seconds=args.lease_seconds,
            progress=progress,
            **source,
        )
    finally:
        progress.close()
    verification: VerificationReport | None = None
    if args.verify and not args.dry_run:
        checking = _Progress("verify", enabled=not (args.no_progress or context.json))
        try:
            verification = runtime.run_blocking(verify_sessions, target, progress=checking, **source)
        finally:
            checking.close()
    where = f"{args.database}.{args.collection}"
    destination = where if in_place else f"{target.database_name}.{target.collection_name}"
    if context.json:
        payload: dict[str, Any] = {"source": where, "target": destination, "migration": report.to_dict()}
        if verification is not None:
            payload["verification"] = verification.to_dict()
        context.out(context.scrub(to_json(payload)))
    else:
        for line in _report_lines(report, where, destination, in_place):
            context.out(context.scrub(line))
        if verification is not None:
            for line in _verification_lines(verification):
                context.out(context.scrub(line))
    failed = bool(report.failed) or (verification is not None and not verification.ok)
    return EXIT_NOT_FOUND if failed else EXIT_OK


def _report_lines(report: MigrationReport, where: str, destination: str, in_place: bool) -> list[str]:
    mode = "in place" if in_place else f"to {destination}"
    heading = f"migrate {where} {mode}" + (" (dry run: nothing was written)" if report.dry_run else "")
    moved = "would migrate" if report.dry_run else "migrated"
    rate = report.sessions / report.seconds if report.seconds > 0 else 0.0
    message_rate = report.messages / report.seconds if report.seconds > 0 else 0.0
    lines = [
        heading,
        f"{'sessions':<10} {report.sessions}: {report.migrated} {moved}, {report.already} already migrated, "
        f"{len(report.skipped)} skipped, {len(report.failed)} failed",
        f"{'agents':<10} {report.agents}",
        f"{'messages':<10} {report.messages}",
        f"{'feedback':<10} {report.feedback}",
        f"{'bytes':<10} {size(report.bytes)} of original documents",
        f"{'time':<10} {report.seconds:.1f} s ({rate:.1f} sessions/s, {message_rate:.0f} messages/s)",
    ]
    if report.problems:
        backup = f"{where}.legacy" if in_place else where
        lines.append(f"not migrated ({len(report.problems)}; the original documents keep them, in {backup}):")
        lines.extend(f"  {problem}" for problem in report.problems[:_LISTED])
        if len(report.problems) > _LISTED:
            lines.append(f"  ... and {len(report.problems) - _LISTED} more (--json lists them all)")
    if report.skipped:
        lines.append("skipped:")
        lines.extend(f"  {session_id!r}: {reason}" for session_id, reason in report.skipped)
    if report.failed:
        lines.append("failed (run again to retry):")
        lines.extend(f"  {session_id!r}: {error}" for session_id, error in report.failed)
    return lines


def _verification_lines(report: VerificationReport) -> list[str]:
    summary = (
        f"verify     {report.sessions} sessions, {report.messages} messages, {report.feedback} feedback compared: "
    )
    if report.ok:
        return [summary + "OK"]
    lines = [summary + f"{len(report.mismatches)} MISMATCH(ES)"]
    lines.extend(f"  {session_id!r}: {what}" for session_id, what in report.mismatches)
    return lines
