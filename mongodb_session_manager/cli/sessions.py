"""``sessions list|show|export|delete|purge-expired``: browse, export and delete stored sessions."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import IO, Any

from .._types import Document
from ..catalog import MAX_PAGE_SIZE, SessionSummary
from ._common import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    Context,
    Failure,
    add_command,
    add_filters,
    add_group,
    clip,
    table,
    to_json,
    when,
)

_EXPORT_PAGE = 500


def register(commands: Any) -> None:
    """Add the ``sessions`` command group to ``commands`` (the top-level subparsers action)."""
    actions = add_group(commands, "sessions", "list, show, export and delete sessions")

    listing = add_command(actions, "list", _list, "list sessions (newest ids last), with filters")
    add_filters(listing)
    listing.add_argument("--limit", type=int, default=50, help=f"page size, 1 to {MAX_PAGE_SIZE} (default: 50)")
    listing.add_argument("--cursor", help="the cursor printed with the previous page")
    listing.add_argument("--all", action="store_true", help="follow the cursors and list every matching session")

    show = add_command(actions, "show", _show, "print a session's transcript: messages, tool calls, redactions")
    show.add_argument("session_id", metavar="ID")

    export = add_command(actions, "export", _export, "export a session as JSON lines (MongoDB Extended JSON)")
    export.add_argument("session_id", metavar="ID")
    export.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    export.add_argument(
        "--progress", action="store_true", help="report progress on stderr (default: when stderr is a terminal)"
    )

    delete = add_command(
        actions, "delete", _delete, "delete a session (or every session matching filters) with its messages"
    )
    delete.add_argument("session_id", metavar="ID", nargs="?", help="the session; omit it to delete by filters")
    add_filters(delete)
    delete.add_argument("--yes", action="store_true", help="confirm the deletion (required)")
    delete.set_defaults(check=check_delete_arguments)

    add_command(
        actions,
        "purge-expired",
        _purge_expired,
        "remove expired sessions (ttl_seconds) with their messages, feedback and blobs, without waiting for "
        "the TTL monitor",
    )


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    metadata = dict(args.metadata) if args.metadata else None
    return {"metadata": metadata, "active_after": args.active_after, "active_before": args.active_before}


def _list(context: Context) -> int:
    args = context.args
    filters = _filters(args)
    page = context.catalog.list_sessions(**filters, limit=args.limit, cursor=args.cursor)
    sessions = list(page.sessions)
    while args.all and page.next_cursor is not None:
        page = context.catalog.list_sessions(**filters, limit=args.limit, cursor=page.next_cursor)
        sessions.extend(page.sessions)
    if context.json:
        context.out(to_json({"sessions": [summary.to_dict() for summary in sessions], "next_cursor": page.next_cursor}))
        return EXIT_OK
    if not sessions:
        context.out("no sessions")
    else:
        # The expiry column only when some session expires (ttl_seconds), to keep the table narrow.
        expiring = any(summary.expires_at is not None for summary in sessions)
        rows = [
            [
                clip(summary.session_id),
                summary.application_name or "-",
                when(summary.last_activity_at),
                *([when(summary.expires_at)] if expiring else []),
                clip(",".join(summary.agent_ids) or "-", 30),
                clip(to_json(summary.metadata)) if summary.metadata else "-",
            ]
            for summary in sessions
        ]
        headers = ["SESSION", "APPLICATION", "LAST ACTIVITY", *(["EXPIRES"] if expiring else []), "AGENTS", "METADATA"]
        for line in table(headers, rows):
            context.out(line)
    if page.next_cursor is not None:
        context.info(f"more sessions: --cursor {page.next_cursor}")
    return EXIT_OK


def _require_session(context: Context, session_id: str) -> SessionSummary:
    summary = context.catalog.get_session(session_id)
    if summary is None:
        raise Failure(f"session {session_id!r} not found", EXIT_NOT_FOUND)
    return summary


def _describe_bytes(block: Mapping[str, Any]) -> str:
    source = block.get("source")
    data = source.get("bytes") if isinstance(source, Mapping) else None
    return f"{len(data)} bytes" if isinstance(data, (bytes, bytearray)) else "no inline bytes"


def _render_block(block: Any) -> list[str]:
    """One content block as display lines."""
    if not isinstance(block, Mapping):
        return [clip(repr(block), 200)]
    if "text" in block:
        return str(block["text"]).splitlines() or [""]
    if "toolUse" in block:
        use = block["toolUse"]
        arguments = json.dumps(use.get("input"), ensure_ascii=False, default=str)
        return [f"tool call {use.get('name')} {arguments} (id {use.get('toolUseId')})"]
    if "toolResult" in block:
        result = block["toolResult"]
        lines = [f"tool result (id {result.get('toolUseId')}, {result.get('status', 'unknown')}):"]
        for item in result.get("content") or []:
            if isinstance(item, Mapping) and "json" in item:
                lines.append("  " + json.dumps(item["json"], ensure_ascii=False, default=str))
            else:
                lines.extend("  " + line for line in _render_block(item))
        return lines
    if "image" in block:
        return [f"<image {block['image'].get('format', '?')}, {_describe_bytes(block['image'])}>"]
    if "document" in block:
        document = block["document"]
        return [f"<document {document.get('name', '?')} ({document.get('format', '?')}), {_describe_bytes(document)}>"]
    if "reasoningContent" in block:
        reasoning = block["reasoningContent"].get("reasoningText") or {}
        return [f"(reasoning) {line}" for line in str(reasoning.get("text", "")).splitlines() or [""]]
    kind = next(iter(block), "?")
    return [f"<{kind}> {clip(to_json(block[kind]), 200)}" if kind != "?" else "<empty block>"]


def _render_content(message: Any) -> list[str]:
    content = message.get("content") if isinstance(message, Mapping) else None
    lines: list[str] = []
    for block in content or []:
        lines.extend(_render_block(block))
    return lines or ["<no content>"]


def _show(context: Context) -> int:
    session_id = context.args.session_id
    summary = _require_session(context, session_id)
    agents = [(agent_id, context.repository.list_messages(session_id, agent_id)) for agent_id in summary.agent_ids]
    feedback = context.repository.get_feedbacks(session_id)
    if context.json:
        payload = {
            "session": summary.to_dict(),
            "agents": [
                {"agent_id": agent_id, "messages": [_message_record(message) for message in messages]}
                for agent_id, messages in agents
            ],
            "feedback": feedback,
        }
        context.out(to_json(payload))
        return EXIT_OK
    context.out(f"session      {summary.session_id}")
    if summary.application_name:
        context.out(f"application  {summary.application_name}")
    context.out(f"created      {summary.created_at or '-'}")
    context.out(f"last active  {when(summary.last_activity_at)}")
    if summary.metadata:
        context.out(f"metadata     {to_json(summary.metadata)}")
    for agent_id, messages in agents:
        context.out()
        context.out(f"== agent {agent_id} ({len(messages)} messages) ==")
        for message in messages:
            role = message.message.get("role", "?") if isinstance(message.message, Mapping) else "?"
            context.out(f"#{message.message_id} {role}  ({message.created_at})")
            if message.redact_message is not None:
                for line in _render_content(message.redact_message):
                    context.out(f"    [redacted] {line}")
                context.out("    original:")
                for line in _render_content(message.message):
                    context.out(f"      {line}")
            else:
                for line in _render_content(message.message):
                    context.out(f"    {line}")
    if feedback:
        context.out()
        context.out(f"== feedback ({len(feedback)}) ==")
        for item in feedback:
            created = item.get("created_at")
            fields = {key: value for key, value in item.items() if key != "created_at"}
            stamp = when(created if isinstance(created, datetime) else None)
            context.out(f"{stamp}  {to_json(fields)}")
    return EXIT_OK


def _message_record(message: Any) -> Document:
    return {
        "message_id": message.message_id,
        "message": message.message,
        "redact_message": message.redact_message,
        "created_at": message.created_at,
        "updated_at": message.updated_at,
    }


@contextlib.contextmanager
def _export_target(path: str | None) -> Iterator[IO[str]]:
    """Standard output, or FILE written through ``FILE.partial`` and renamed once complete."""
    if path is None:
        yield sys.stdout
        return
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8", newline="\n") as stream:
        try:
            yield stream
        except BaseException:
            stream.close()
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise
    os.replace(partial, path)


def _export(context: Context) -> int:
    args = context.args
    session_id = args.session_id
    document = context.catalog.read_session_document(session_id)
    if document is None:
        raise Failure(f"session {session_id!r} not found", EXIT_NOT_FOUND)
    progress = args.progress or sys.stderr.isatty()
    terminal = sys.stderr.isatty()
    exported = 0
    agent_ids = [str(agent["agent_id"]) for agent in document.get("agents") or [] if "agent_id" in agent]
    with _export_target(args.output) as stream:
        stream.write(to_json({"type": "session", "document": document}) + "\n")
        for agent_id in agent_ids:
            offset = 0
            while True:
                page = context.repository.list_messages(session_id, agent_id, limit=_EXPORT_PAGE, offset=offset)
                for message in page:
                    record = {"type": "message", "session_id": session_id, "agent_id": agent_id}
                    stream.write(to_json({**record, **_message_record(message)}) + "\n")
                offset += len(page)
                exported += len(page)
                if progress and page:
                    text = f"exporting {session_id}: {exported} messages (agent {agent_id})"
                    sys.stderr.write(f"\r{text}" if terminal else text + "\n")
                    sys.stderr.flush()
                if len(page) < _EXPORT_PAGE:
                    break
        feedback = context.repository.get_feedbacks(session_id)
        for item in feedback:
            stream.write(to_json({"type": "feedback", "session_id": session_id, "feedback": item}) + "\n")
        stream.flush()
    if progress and terminal:
        sys.stderr.write("\n")
    if progress or args.output is not None:
        target = args.output or "standard output"
        context.info(f"exported session {session_id}: {exported} messages, {len(feedback)} feedback to {target}")
    return EXIT_OK


def _delete(context: Context) -> int:
    args = context.args
    filters = _filters(args)
    if args.session_id is not None:
        if any(value is not None for value in filters.values()):
            raise Failure("give either a session ID or filters, not both", EXIT_USAGE)
        _require_session(context, args.session_id)
        context.repository.delete_session(args.session_id)
        if context.json:
            context.out(to_json({"deleted": 1, "session_id": args.session_id}))
        else:
            context.out(f"deleted session {args.session_id}")
        return EXIT_OK
    deleted = context.catalog.delete_sessions(**filters)
    if context.json:
        context.out(to_json({"deleted": deleted}))
    else:
        context.out(f"deleted {deleted} session{'' if deleted == 1 else 's'}")
    return EXIT_OK


def _purge_expired(context: Context) -> int:
    report = context.catalog.purge_expired()
    if context.json:
        context.out(to_json({"purged": report.to_dict()}))
    else:
        context.out(
            f"purged {report.sessions} expired session(s), {report.messages} message(s), "
            f"{report.feedback} feedback, {report.blobs} blob(s)"
        )
    return EXIT_OK


def check_delete_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a deletion before connecting: it needs --yes, and a session id or at least one scope."""
    if not args.yes:
        parser.error("sessions delete deletes without asking: pass --yes to confirm")
    scoped = args.application is not None or args.metadata or args.active_after or args.active_before
    if args.session_id is None and not scoped:
        parser.error("sessions delete needs a session ID, or filters (--metadata, --active-*, --application)")
