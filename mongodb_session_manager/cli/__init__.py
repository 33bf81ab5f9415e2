"""``mongodb-session-manager``: the admin command line.

Run it as ``python -m mongodb_session_manager`` (or the ``mongodb-session-manager`` console script)::

    mongodb-session-manager --uri mongodb://localhost:27017/ --database chat_db --collection sessions \\
        sessions list --metadata priority=high

Commands: ``sessions list|show|export|delete|purge-expired``, ``stats``, ``usage``, ``guardrails``,
``indexes verify|create``, ``migrate`` (sessions of the original v0.9 layout), ``dev-server``. Global
options (``--uri``, ``--database``, ``--collection``, ``--application``, ``--json``, ``--timeout-ms``) are
accepted before or after the command; the first four default to environment variables (:mod:`.environment`). Every
command goes through the public blocking API (:class:`MongoDBSessionRepository` and
:class:`SessionCatalog`), and never creates
indexes except ``indexes create`` and ``migrate`` (whose copies rely on the unique message index).

Exit codes: 0 success, 1 not found (missing session) or failed check (missing indexes), 2 usage
error (including rejected ids and filters), 3 connection, server or unexpected error. Credentials
never appear in the output: URIs are shown masked and error messages are scrubbed.

Each command group lives in its own module of this package with a ``register(commands)`` function
that adds its subcommands; :data:`COMMAND_GROUPS` lists them in help order. A new command is a new
module added there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from pymongo.errors import ConfigurationError, ConnectionFailure, PyMongoError

from .._clients import SecretScrubber, validate_connection_string
from ..catalog import SessionCatalog
from ..errors import DatabaseError, InvalidInputError, MongoDBSessionError, NotFoundError, ServerUnavailableError
from ..sync_repository import MongoDBSessionRepository
from . import dev_server, encryption, environment, guardrails, indexes, migrate, sessions, stats, usage
from ._common import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_SERVER,
    EXIT_USAGE,
    PROG,
    Context,
    Failure,
    Handler,
    add_global_options,
    clip,
    display_uri,
)

__all__ = ["EXIT_NOT_FOUND", "EXIT_OK", "EXIT_SERVER", "EXIT_USAGE", "main"]

#: The command groups, in the order ``--help`` lists them.
COMMAND_GROUPS: tuple[ModuleType, ...] = (
    sessions,
    stats,
    usage,
    guardrails,
    indexes,
    migrate,
    encryption,
    dev_server,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Inspect and administer Strands sessions stored in MongoDB."
    )
    add_global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def _server_error(error: BaseException, uri: str) -> str:
    text = str(error).split("\n", 1)[0]
    if isinstance(error, ConfigurationError):
        return f"invalid MongoDB URI or client option ({display_uri(uri)}): {text}"
    if isinstance(error, ConnectionFailure):
        text = text.split(", Timeout:", 1)[0]
        return f"cannot reach MongoDB at {display_uri(uri)}: {clip(text, 300)}"
    return f"MongoDB error: {clip(text, 300)}"


def _fail(message: str, code: int, *, as_json: bool, scrub: SecretScrubber) -> int:
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


def _run(args: argparse.Namespace, scrub: SecretScrubber) -> int:
    if not args.uri.startswith(("mongodb://", "mongodb+srv://")):
        raise Failure(
            f"invalid MongoDB URI ({display_uri(args.uri)}): it must start with mongodb:// or mongodb+srv://",
            EXIT_SERVER,
        )
    try:
        validate_connection_string(args.uri)
    except InvalidInputError as error:  # the same exit status as the driver's own URI errors
        detail = str(error).split(": ", 1)[-1]
        raise Failure(f"invalid MongoDB URI ({display_uri(args.uri)}): {detail}", EXIT_SERVER) from None
    repository = MongoDBSessionRepository(
        args.uri,
        args.database,
        args.collection,
        application_name=args.application,
        isolate_application=args.application is not None,  # --application filters
        ensure_indexes=False,
        serverSelectionTimeoutMS=args.timeout_ms,
        connectTimeoutMS=args.timeout_ms,
        minPoolSize=0,
        appname=PROG,
        encryption=encryption.options_from_file(args.encryption_config),
    )
    try:
        context = Context(args=args, repository=repository, catalog=SessionCatalog(repository), scrub=scrub)
        handler: Handler = args.handler
        return handler(context)
    finally:
        with contextlib.suppress(Exception):
            repository.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        check = getattr(args, "check", None)  # a command's own argument checks, before connecting
        if check is not None:
            check(parser, args)
    except SystemExit as exit_:
        return _exit_status(exit_.code)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is not None:  # a command that does not connect (dev-server)
        return run(args)
    scrub = SecretScrubber(args.uri)
    as_json = bool(args.json)
    if not args.uri:
        message = f"no MongoDB URI: pass --uri or set {environment.URI} (no server? run `{PROG} dev-server`)"
        return _fail(message, EXIT_USAGE, as_json=as_json, scrub=scrub)
    try:
        return _run(args, scrub)
    except Failure as failure:
        return _fail(str(failure), failure.code, as_json=as_json, scrub=scrub)
    except InvalidInputError as error:
        return _fail(str(error), EXIT_USAGE, as_json=as_json, scrub=scrub)
    except NotFoundError as error:
        return _fail(str(error), EXIT_NOT_FOUND, as_json=as_json, scrub=scrub)
    except PyMongoError as error:
        return _fail(_server_error(error, args.uri), EXIT_SERVER, as_json=as_json, scrub=scrub)
    except (ServerUnavailableError, DatabaseError) as error:
        cause = error.__cause__ if isinstance(error.__cause__, PyMongoError) else error
        return _fail(_server_error(cause, args.uri), EXIT_SERVER, as_json=as_json, scrub=scrub)
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
