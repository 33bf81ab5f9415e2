"""``mongodb-session-manager``: the admin command line.

Run it as ``python -m mongodb_session_manager`` (or the ``mongodb-session-manager`` console script)::

    mongodb-session-manager --uri mongodb://localhost:27017/ --database chat_db --collection sessions \\
        sessions list --metadata priority=high

Commands: ``sessions list|show|export|delete|purge-expired``, ``stats``, ``indexes verify|create``. Global options
(``--uri``/``MONGODB_URI``, ``--database``, ``--collection``, ``--application``, ``--json``,
``--timeout-ms``) are accepted before or after the command. Every command goes through the public
blocking API (:class:`MongoDBSessionRepository` and :class:`SessionCatalog`), and never creates
indexes except ``indexes create``.

Exit codes: 0 success, 1 not found (missing session) or failed check (missing indexes), 2 usage
error (including rejected ids and filters), 3 connection, server or unexpected error. Credentials
never appear in the output: URIs are shown masked and error messages are scrubbed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any
from urllib.parse import unquote

from bson import json_util
from pymongo.errors import ConfigurationError, ConnectionFailure, PyMongoError

from ._clients import DEFAULT_COLLECTION, DEFAULT_DATABASE, mask_uri
from .catalog import MAX_PAGE_SIZE, IndexStatus, SessionCatalog, SessionSummary
from .errors import InvalidInputError, MongoDBSessionError, NotFoundError
from .sync_repository import MongoDBSessionRepository

__all__ = ["EXIT_NOT_FOUND", "EXIT_OK", "EXIT_SERVER", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_SERVER = 3

PROG = "mongodb-session-manager"
DEFAULT_TIMEOUT_MS = 3000
_EXPORT_PAGE = 500
_CELL_WIDTH = 60

_JSON = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED, tz_aware=True, tzinfo=timezone.utc)
_SECRET_OPTION = re.compile(r"(?i)([?&](?:[^=&]*password[^=&]*|authmechanismproperties)=)([^&]*)")

Document = dict[str, Any]


class _Failure(Exception):
    """A failure reported to the user as ``error: <message>`` with an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# -- credentials ----------------------------------------------------------------------------------


def _userinfo(uri: str) -> tuple[str, str, str | None, str] | None:
    """``(scheme, user, password, rest)`` of ``scheme://user:password@rest``, tolerating unescaped
    characters in the password (the last ``@`` before the options ends the user information)."""
    scheme, separator, rest = uri.partition("://")
    if not separator:
        return None
    end = rest.split("?", 1)[0].rfind("@")
    if end < 0:
        return None
    user, colon, password = rest[:end].partition(":")
    return scheme, user, password if colon else None, rest[end + 1 :]


def display_uri(uri: str) -> str:
    """The URI with its password and any password-like option value replaced by ``***``."""
    masked = mask_uri(uri)
    parts = _userinfo(masked)
    if parts is not None and parts[2] not in (None, "***"):  # a URI mask_uri does not recognise
        scheme, user, _, rest = parts
        masked = f"{scheme}://{user}:***@{rest}"
    return _SECRET_OPTION.sub(lambda match: match.group(1) + "***", masked)


class _Scrubber:
    """Removes every form of the URI's secrets from a message."""

    def __init__(self, uri: str | None) -> None:
        self._replacements: list[tuple[str, str]] = []
        if not uri:
            return
        self._replacements.append((uri, display_uri(uri)))
        secrets: set[str] = set()
        parts = _userinfo(uri)
        if parts is not None and parts[2]:
            secrets.add(parts[2])
        secrets.update(option.group(2) for option in _SECRET_OPTION.finditer(uri) if option.group(2))
        for secret in sorted(secrets | {unquote(secret) for secret in secrets}, key=len, reverse=True):
            if secret:
                self._replacements.append((secret, "***"))

    def __call__(self, text: str) -> str:
        for secret, replacement in self._replacements:
            text = text.replace(secret, replacement)
        return text


# -- argument parsing -----------------------------------------------------------------------------


def _iso_datetime(text: str) -> datetime:
    value = text.strip()
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or date-time: {text!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _metadata_pair(text: str) -> tuple[str, Any]:
    key, separator, raw = text.partition("=")
    if not separator or not key or key == ":":
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE or KEY:=JSON, got {text!r}")
    if not key.endswith(":"):
        return key, raw
    try:
        value = json.loads(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the value of {key[:-1]!r} is not JSON: {raw!r}") from None
    if isinstance(value, (dict, list)):
        raise argparse.ArgumentTypeError(f"the value of {key[:-1]!r} must be a JSON scalar, got {raw!r}")
    return key[:-1], value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The global options; on subcommands they default to "not given" so they never override."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--uri",
        default=default(os.environ.get("MONGODB_URI")),
        help="MongoDB connection string (default: $MONGODB_URI)",
    )
    group.add_argument("--database", default=default(DEFAULT_DATABASE), help=f"database (default: {DEFAULT_DATABASE})")
    group.add_argument(
        "--collection", default=default(DEFAULT_COLLECTION), help=f"sessions collection (default: {DEFAULT_COLLECTION})"
    )
    group.add_argument(
        "--application", default=default(None), help="only sessions of this application (as the managers scope it)"
    )
    group.add_argument("--json", action="store_true", default=default(False), help="machine-readable JSON output")
    group.add_argument(
        "--timeout-ms",
        type=_positive_int,
        default=default(DEFAULT_TIMEOUT_MS),
        help=f"server selection and connect timeout (default: {DEFAULT_TIMEOUT_MS})",
    )


def _add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument(
        "--metadata",
        action="append",
        type=_metadata_pair,
        default=[],
        metavar="KEY=VALUE",
        help="metadata key equals the string VALUE; KEY:=JSON compares with a JSON scalar (repeatable)",
    )
    group.add_argument("--active-after", type=_iso_datetime, help="last active at or after this ISO date/time")
    group.add_argument("--active-before", type=_iso_datetime, help="last active before this ISO date/time")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Inspect and administer Strands sessions stored in MongoDB."
    )
    _add_global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(group: Any, name: str, handler: Callable[[_Context], int], help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(name, help=help_text, description=help_text)
        _add_global_options(sub, top=False)
        sub.set_defaults(handler=handler)
        return sub

    sessions = commands.add_parser("sessions", help="list, show, export and delete sessions")
    _add_global_options(sessions, top=False)
    actions = sessions.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = command(actions, "list", _list, "list sessions (newest ids last), with filters")
    _add_filters(listing)
    listing.add_argument("--limit", type=int, default=50, help=f"page size, 1 to {MAX_PAGE_SIZE} (default: 50)")
    listing.add_argument("--cursor", help="the cursor printed with the previous page")
    listing.add_argument("--all", action="store_true", help="follow the cursors and list every matching session")

    show = command(actions, "show", _show, "print a session's transcript: messages, tool calls, redactions")
    show.add_argument("session_id", metavar="ID")

    export = command(actions, "export", _export, "export a session as JSON lines (MongoDB Extended JSON)")
    export.add_argument("session_id", metavar="ID")
    export.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    export.add_argument(
        "--progress", action="store_true", help="report progress on stderr (default: when stderr is a terminal)"
    )

    delete = command(
        actions, "delete", _delete, "delete a session (or every session matching filters) with its messages"
    )
    delete.add_argument("session_id", metavar="ID", nargs="?", help="the session; omit it to delete by filters")
    _add_filters(delete)
    delete.add_argument("--yes", action="store_true", help="confirm the deletion (required)")

    command(
        actions,
        "purge-expired",
        _purge_expired,
        "remove expired sessions (ttl_seconds) with their messages, feedback and blobs, without waiting for "
        "the TTL monitor",
    )

    command(commands, "stats", _stats, "counts, collection sizes and server health")

    indexes = commands.add_parser("indexes", help="verify or create the library's indexes")
    _add_global_options(indexes, top=False)
    index_actions = indexes.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, handler, help_text in (
        ("verify", _verify_indexes, "compare expected and existing indexes; exit 1 if any is missing"),
        ("create", _create_indexes, "create the missing indexes"),
    ):
        sub = command(index_actions, name, handler, help_text)
        sub.add_argument(
            "--metadata-field",
            action="append",
            default=[],
            metavar="FIELD",
            help="a metadata key the managers index (metadata_fields; repeatable)",
        )
        sub.add_argument(
            "--ttl", action="store_true", help="include the TTL indexes of expiring sessions (ttl_seconds)"
        )
    return parser


# -- output ---------------------------------------------------------------------------------------


def _to_json(value: Any) -> str:
    return json_util.dumps(value, json_options=_JSON, ensure_ascii=False)


def _clip(text: str, width: int = _CELL_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain left-aligned columns separated by two spaces."""
    widths = [max([len(header), *(len(row[index]) for row in rows)]) for index, header in enumerate(headers)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [list(headers), *rows]
    ]


def _when(value: datetime | None) -> str:
    """An ISO date-time to the second; a naive value (PyMongo's default) is UTC."""
    if value is None:
        return "-"
    return (value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)).isoformat(timespec="seconds")


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"  # pragma: no cover - unreachable


@dataclass
class _Context:
    args: argparse.Namespace
    repository: MongoDBSessionRepository
    catalog: SessionCatalog
    scrub: _Scrubber

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    def out(self, text: str = "") -> None:
        sys.stdout.write(text + "\n")

    def info(self, text: str) -> None:
        sys.stderr.write(self.scrub(text) + "\n")


# -- sessions -------------------------------------------------------------------------------------


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    metadata = dict(args.metadata) if args.metadata else None
    return {"metadata": metadata, "active_after": args.active_after, "active_before": args.active_before}


def _list(context: _Context) -> int:
    args = context.args
    filters = _filters(args)
    page = context.catalog.list_sessions(**filters, limit=args.limit, cursor=args.cursor)
    sessions = list(page.sessions)
    while args.all and page.next_cursor is not None:
        page = context.catalog.list_sessions(**filters, limit=args.limit, cursor=page.next_cursor)
        sessions.extend(page.sessions)
    if context.json:
        context.out(
            _to_json({"sessions": [summary.to_dict() for summary in sessions], "next_cursor": page.next_cursor})
        )
        return EXIT_OK
    if not sessions:
        context.out("no sessions")
    else:
        # The expiry column only when some session expires (ttl_seconds), to keep the table narrow.
        expiring = any(summary.expires_at is not None for summary in sessions)
        rows = [
            [
                _clip(summary.session_id),
                summary.application_name or "-",
                _when(summary.last_activity_at),
                *([_when(summary.expires_at)] if expiring else []),
                _clip(",".join(summary.agent_ids) or "-", 30),
                _clip(_to_json(summary.metadata)) if summary.metadata else "-",
            ]
            for summary in sessions
        ]
        headers = ["SESSION", "APPLICATION", "LAST ACTIVITY", *(["EXPIRES"] if expiring else []), "AGENTS", "METADATA"]
        for line in _table(headers, rows):
            context.out(line)
    if page.next_cursor is not None:
        context.info(f"more sessions: --cursor {page.next_cursor}")
    return EXIT_OK


def _require_session(context: _Context, session_id: str) -> SessionSummary:
    summary = context.catalog.get_session(session_id)
    if summary is None:
        raise _Failure(f"session {session_id!r} not found", EXIT_NOT_FOUND)
    return summary


def _describe_bytes(block: Mapping[str, Any]) -> str:
    source = block.get("source")
    data = source.get("bytes") if isinstance(source, Mapping) else None
    return f"{len(data)} bytes" if isinstance(data, (bytes, bytearray)) else "no inline bytes"


def _render_block(block: Any) -> list[str]:
    """One content block as display lines."""
    if not isinstance(block, Mapping):
        return [_clip(repr(block), 200)]
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
    return [f"<{kind}> {_clip(_to_json(block[kind]), 200)}" if kind != "?" else "<empty block>"]


def _render_content(message: Any) -> list[str]:
    content = message.get("content") if isinstance(message, Mapping) else None
    lines: list[str] = []
    for block in content or []:
        lines.extend(_render_block(block))
    return lines or ["<no content>"]


def _show(context: _Context) -> int:
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
        context.out(_to_json(payload))
        return EXIT_OK
    context.out(f"session      {summary.session_id}")
    if summary.application_name:
        context.out(f"application  {summary.application_name}")
    context.out(f"created      {summary.created_at or '-'}")
    context.out(f"last active  {_when(summary.last_activity_at)}")
    if summary.metadata:
        context.out(f"metadata     {_to_json(summary.metadata)}")
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
            when = _when(created if isinstance(created, datetime) else None)
            context.out(f"{when}  {_to_json(fields)}")
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


def _export(context: _Context) -> int:
    args = context.args
    session_id = args.session_id
    document = context.catalog.read_session_document(session_id)
    if document is None:
        raise _Failure(f"session {session_id!r} not found", EXIT_NOT_FOUND)
    progress = args.progress or sys.stderr.isatty()
    terminal = sys.stderr.isatty()
    exported = 0
    agent_ids = [str(agent["agent_id"]) for agent in document.get("agents") or [] if "agent_id" in agent]
    with _export_target(args.output) as stream:
        stream.write(_to_json({"type": "session", "document": document}) + "\n")
        for agent_id in agent_ids:
            offset = 0
            while True:
                page = context.repository.list_messages(session_id, agent_id, limit=_EXPORT_PAGE, offset=offset)
                for message in page:
                    record = {"type": "message", "session_id": session_id, "agent_id": agent_id}
                    stream.write(_to_json({**record, **_message_record(message)}) + "\n")
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
            stream.write(_to_json({"type": "feedback", "session_id": session_id, "feedback": item}) + "\n")
        stream.flush()
    if progress and terminal:
        sys.stderr.write("\n")
    if progress or args.output is not None:
        target = args.output or "standard output"
        context.info(f"exported session {session_id}: {exported} messages, {len(feedback)} feedback to {target}")
    return EXIT_OK


def _delete(context: _Context) -> int:
    args = context.args
    filters = _filters(args)
    if args.session_id is not None:
        if any(value is not None for value in filters.values()):
            raise _Failure("give either a session ID or filters, not both", EXIT_USAGE)
        _require_session(context, args.session_id)
        context.repository.delete_session(args.session_id)
        if context.json:
            context.out(_to_json({"deleted": 1, "session_id": args.session_id}))
        else:
            context.out(f"deleted session {args.session_id}")
        return EXIT_OK
    deleted = context.catalog.delete_sessions(**filters)
    if context.json:
        context.out(_to_json({"deleted": deleted}))
    else:
        context.out(f"deleted {deleted} session{'' if deleted == 1 else 's'}")
    return EXIT_OK


def _purge_expired(context: _Context) -> int:
    report = context.catalog.purge_expired()
    if context.json:
        context.out(_to_json({"purged": report.to_dict()}))
    else:
        context.out(
            f"purged {report.sessions} expired session(s), {report.messages} message(s), "
            f"{report.feedback} feedback, {report.blobs} blob(s)"
        )
    return EXIT_OK


def _check_delete_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a deletion before connecting: it needs --yes, and a session id or at least one scope."""
    if not args.yes:
        parser.error("sessions delete deletes without asking: pass --yes to confirm")
    scoped = args.application is not None or args.metadata or args.active_after or args.active_before
    if args.session_id is None and not scoped:
        parser.error("sessions delete needs a session ID, or filters (--metadata, --active-*, --application)")


# -- stats and indexes ----------------------------------------------------------------------------


def _stats(context: _Context) -> int:
    args = context.args
    server = context.catalog.server_status()
    collections = context.catalog.collection_stats()
    sessions = context.catalog.count_sessions()
    if context.json:
        payload = {
            "uri": display_uri(args.uri),
            "database": args.database,
            "collection": args.collection,
            "application": args.application,
            "status": "ok",
            "server": server,
            "sessions": sessions,
            "collections": [stats.to_dict() for stats in collections],
        }
        context.out(context.scrub(_to_json(payload)))
        return EXIT_OK
    pool = server.get("pool") or {}
    pool_text = ", ".join(f"{key}={value}" for key, value in pool.items()) or "-"
    lines = [
        ("uri", display_uri(args.uri)),
        ("namespace", f"{args.database}.{args.collection}"),
        ("application", args.application or "(all)"),
        ("server", f"ok, MongoDB {server['server_version']}, ping {server['ping_ms']:.1f} ms"),
        ("pool", f"{server['client']}, {pool_text}"),
        ("sessions", str(sessions)),
    ]
    for name, value in lines:
        context.out(context.scrub(f"{name:<12} {value}"))
    context.out()
    rows = [
        [
            stats.name,
            str(stats.count),
            _size(stats.size_bytes),
            _size(stats.storage_bytes),
            _size(stats.index_bytes),
        ]
        for stats in collections
    ]
    for line in _table(["COLLECTION", "DOCUMENTS", "DATA", "STORAGE", "INDEXES"], rows):
        context.out(line)
    return EXIT_OK


def _index_report(context: _Context, report: list[IndexStatus]) -> int:
    missing = [status for status in report if status.missing]
    if context.json:
        context.out(_to_json({"indexes": [status.to_dict() for status in report], "missing": len(missing)}))
    else:
        rows = [
            [
                status.collection,
                status.name,
                ", ".join(f"{key}: {direction}" for key, direction in status.keys),
                "yes" if status.unique else "no",
                "-" if status.expire_after_seconds is None else f"{status.expire_after_seconds}s",
                "missing" if status.missing else ("ok" if status.expected else "extra"),
            ]
            for status in report
        ]
        for line in _table(["COLLECTION", "INDEX", "KEYS", "UNIQUE", "TTL", "STATUS"], rows):
            context.out(line)
    if missing:
        context.info(f"{len(missing)} expected index(es) missing; create them with `{PROG} indexes create`")
        return EXIT_NOT_FOUND
    return EXIT_OK


def _verify_indexes(context: _Context) -> int:
    args = context.args
    return _index_report(context, context.catalog.verify_indexes(args.metadata_field, ttl=args.ttl))


def _create_indexes(context: _Context) -> int:
    args = context.args
    return _index_report(context, context.catalog.create_indexes(args.metadata_field, ttl=args.ttl))


# -- entry point ----------------------------------------------------------------------------------


def _server_error(error: BaseException, uri: str) -> str:
    text = str(error).split("\n", 1)[0]
    if isinstance(error, ConfigurationError):
        return f"invalid MongoDB URI or client option ({display_uri(uri)}): {text}"
    if isinstance(error, ConnectionFailure):
        text = text.split(", Timeout:", 1)[0]
        return f"cannot reach MongoDB at {display_uri(uri)}: {_clip(text, 300)}"
    return f"MongoDB error: {_clip(text, 300)}"


def _fail(message: str, code: int, *, as_json: bool, scrub: _Scrubber) -> int:
    message = scrub(message)
    if as_json:
        sys.stderr.write(json.dumps({"error": message, "exit_code": code}) + "\n")
    else:
        sys.stderr.write(f"{PROG}: error: {message}\n")
    return code


def _exit_status(code: object) -> int:
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_USAGE


def _run(args: argparse.Namespace, scrub: _Scrubber) -> int:
    if not args.uri.startswith(("mongodb://", "mongodb+srv://")):
        raise _Failure(
            f"invalid MongoDB URI ({display_uri(args.uri)}): it must start with mongodb:// or mongodb+srv://",
            EXIT_SERVER,
        )
    repository = MongoDBSessionRepository(
        args.uri,
        args.database,
        args.collection,
        application_name=args.application,
        ensure_indexes=False,
        serverSelectionTimeoutMS=args.timeout_ms,
        connectTimeoutMS=args.timeout_ms,
        minPoolSize=0,
        appname=PROG,
    )
    try:
        context = _Context(args=args, repository=repository, catalog=SessionCatalog(repository), scrub=scrub)
        handler: Callable[[_Context], int] = args.handler
        return handler(context)
    finally:
        with contextlib.suppress(Exception):
            repository.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "handler", None) is _delete:
            _check_delete_arguments(parser, args)
    except SystemExit as exit_:
        return _exit_status(exit_.code)
    scrub = _Scrubber(args.uri)
    as_json = bool(args.json)
    if not args.uri:
        return _fail("no MongoDB URI: pass --uri or set MONGODB_URI", EXIT_USAGE, as_json=as_json, scrub=scrub)
    try:
        return _run(args, scrub)
    except _Failure as failure:
        return _fail(str(failure), failure.code, as_json=as_json, scrub=scrub)
    except InvalidInputError as error:
        return _fail(str(error), EXIT_USAGE, as_json=as_json, scrub=scrub)
    except NotFoundError as error:
        return _fail(str(error), EXIT_NOT_FOUND, as_json=as_json, scrub=scrub)
    except PyMongoError as error:
        return _fail(_server_error(error, args.uri), EXIT_SERVER, as_json=as_json, scrub=scrub)
    except BrokenPipeError:  # pragma: no cover - e.g. `... sessions list | head`
        _silence_stdout()
        return EXIT_OK
    except (MongoDBSessionError, OSError) as error:
        return _fail(f"{type(error).__name__}: {error}", EXIT_SERVER, as_json=as_json, scrub=scrub)
    except ValueError as error:  # PyMongo parses the URI when the client is created, on first use
        message = f"invalid MongoDB URI or client option ({display_uri(args.uri)}): {error}"
        return _fail(message, EXIT_SERVER, as_json=as_json, scrub=scrub)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, as_json=as_json, scrub=scrub)
    except Exception as error:
        return _fail(f"unexpected {type(error).__name__}: {error}", EXIT_SERVER, as_json=as_json, scrub=scrub)


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
