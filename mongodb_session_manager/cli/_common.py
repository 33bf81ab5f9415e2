"""What every command shares: exit codes, the context a handler receives, argument types, output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bson import json_util

from .._clients import DEFAULT_COLLECTION_NAME, DEFAULT_DATABASE_NAME, SecretScrubber, mask_uri
from ..catalog import SessionCatalog
from ..sync_repository import MongoDBSessionRepository
from . import environment

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_SERVER = 3

PROG = "mongodb-session-manager"
DEFAULT_TIMEOUT_MS = 3000
_CELL_WIDTH = 60

_JSON = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED, tz_aware=True, tzinfo=timezone.utc)

#: How commands show a connection string: password and secret options masked.
display_uri = mask_uri


class Failure(Exception):
    """A failure reported to the user as ``error: <message>`` with an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Context:
    """What a command handler gets: the parsed arguments, the blocking API on the chosen namespace,
    and the scrubber that keeps credentials out of anything it prints to stderr."""

    args: argparse.Namespace
    repository: MongoDBSessionRepository
    catalog: SessionCatalog
    scrub: SecretScrubber

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    def out(self, text: str = "") -> None:
        sys.stdout.write(text + "\n")

    def info(self, text: str) -> None:
        sys.stderr.write(self.scrub(text) + "\n")


Handler = Callable[[Context], int]


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


# Argument types for the command modules.
metadata_pair = _metadata_pair
positive_int = _positive_int


def add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The global options; on subcommands they default to "not given" so they never override."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("connection and output")
    database = environment.setting(environment.DATABASE, DEFAULT_DATABASE_NAME)
    collection = environment.setting(environment.COLLECTION, DEFAULT_COLLECTION_NAME)
    group.add_argument(
        "--uri",
        default=default(environment.setting(environment.URI)),
        help=f"MongoDB connection string (default: ${environment.URI})",
    )
    group.add_argument(
        "--database", default=default(database), help=f"database (default: {database}; ${environment.DATABASE})"
    )
    group.add_argument(
        "--collection",
        default=default(collection),
        help=f"sessions collection (default: {collection}; ${environment.COLLECTION})",
    )
    group.add_argument(
        "--application",
        default=default(environment.setting(environment.APPLICATION)),
        help=f"only sessions of this application, as the managers scope it (default: ${environment.APPLICATION})",
    )
    group.add_argument(
        "--encryption-config",
        metavar="FILE",
        default=default(environment.setting(environment.ENCRYPTION_CONFIG)),
        help="JSON file of the encryption options (KMS providers, key vault) of encrypted sessions: needed to "
        f"read them, to erase their data keys on delete, and to rewrap (default: ${environment.ENCRYPTION_CONFIG})",
    )
    group.add_argument("--json", action="store_true", default=default(False), help="machine-readable JSON output")
    group.add_argument(
        "--timeout-ms",
        type=_positive_int,
        default=default(DEFAULT_TIMEOUT_MS),
        help=f"server selection and connect timeout (default: {DEFAULT_TIMEOUT_MS})",
    )


def add_filters(parser: argparse.ArgumentParser) -> None:
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


def add_command(group: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
    """A subcommand of ``group`` (a subparsers action) run by ``handler``, accepting the global options."""
    sub: argparse.ArgumentParser = group.add_parser(name, help=help_text, description=help_text)
    add_global_options(sub, top=False)
    sub.set_defaults(handler=handler)
    return sub


def add_group(commands: Any, name: str, help_text: str) -> Any:
    """A command group (``sessions``, ``indexes``...) of ``commands``; returns its subparsers action."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
    add_global_options(parser, top=False)
    return parser.add_subparsers(dest="action", metavar="ACTION", required=True)


# -- output ---------------------------------------------------------------------------------------


def to_json(value: Any) -> str:
    return json_util.dumps(value, json_options=_JSON, ensure_ascii=False)


def clip(text: str, width: int = _CELL_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain left-aligned columns separated by two spaces."""
    widths = [max([len(header), *(len(row[index]) for row in rows)]) for index, header in enumerate(headers)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [list(headers), *rows]
    ]


def when(value: datetime | None) -> str:
    """An ISO date-time to the second; a naive value (PyMongo's default) is UTC."""
    if value is None:
        return "-"
    return (value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)).isoformat(timespec="seconds")


def size(value: int | None) -> str:
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"  # pragma: no cover - unreachable
