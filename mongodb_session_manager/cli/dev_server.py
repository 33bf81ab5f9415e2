"""``dev-server``: a local MongoDB-compatible server for development.

Runs :class:`~mongodb_session_manager.testing.LocalMongoServer` (SecantusDB, from the ``testserver``
extra) on a fixed loopback port until Ctrl-C or SIGTERM, printing the URI to use. The server is a
separate process in its own session, so a Ctrl-C in the terminal reaches only this command, which
then stops the server and waits for it: nothing is left running.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any, TextIO

from ..testing import LocalMongoServer, find_server_executable
from ._common import EXIT_OK, EXIT_SERVER, EXIT_USAGE

__all__ = ["DEFAULT_PORT", "register", "run_dev_server"]

DEFAULT_PORT = 27017
HOST = "127.0.0.1"

MISSING_EXTRA = (
    "dev-server runs the local test server SecantusDB, which is not installed.\n"
    "Install the `testserver` extra:\n"
    "    pip install 'mongodb-session-manager[testserver]'   # or, in a clone: pip install -e '.[testserver]'\n"
    "or use any MongoDB you have: export MONGODB_URI=mongodb://HOST:PORT/"
)
_POLL_SECONDS = 0.5


def register(commands: Any) -> None:
    """Add ``dev-server`` to ``commands`` (the top-level subparsers action). It does not connect to
    MongoDB, so it sets ``run`` (called with the arguments) instead of a ``handler``."""
    help_text = "run a local MongoDB-compatible test server (the testserver extra) until Ctrl-C"
    parser: argparse.ArgumentParser = commands.add_parser("dev-server", help=help_text, description=help_text)
    parser.set_defaults(run=lambda args: run_dev_server(args.port, args.data))
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port to listen on, on {HOST} (default: {DEFAULT_PORT}, MongoDB's own)",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="keep the data in DIR (created if missing) across runs; default: a temporary directory, deleted on exit",
    )


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"a port is between 1 and 65535, got {value}")
    return value


class _StopRequested(Exception):
    """Raised in the main thread by the SIGTERM/SIGHUP handler."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _StopRequested(signal.Signals(signum).name)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the server like Ctrl-C (SIGINT raises KeyboardInterrupt already).

    A signal the command was started with ignored (SIGHUP under ``nohup``) stays ignored.
    """
    handled = [signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    previous = {
        signum: signal.signal(signum, _raise_stop) for signum in handled if signal.getsignal(signum) != signal.SIG_IGN
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """While the server stops, a second Ctrl-C or SIGTERM must not interrupt the clean-up."""
    handled = [signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in handled}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _port_in_use(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def run_dev_server(port: int = DEFAULT_PORT, data: str | None = None, *, out: TextIO | None = None) -> int:
    """Run the server until Ctrl-C, SIGTERM or SIGHUP; return the exit code (0 after a clean stop).

    Only call it from the main thread (it installs signal handlers).
    """
    out = out if out is not None else sys.stdout
    err = sys.stderr
    try:
        find_server_executable()
    except RuntimeError:
        err.write(f"dev-server: {MISSING_EXTRA}\n")
        return EXIT_USAGE
    if _port_in_use(port):
        err.write(
            f"dev-server: port {port} on {HOST} is already in use (another MongoDB or dev-server?).\n"
            f"Pick another one with --port, or use that server: export MONGODB_URI=mongodb://{HOST}:{port}/\n"
        )
        return EXIT_SERVER
    server = LocalMongoServer(port=port, data_dir=data)
    code = EXIT_OK
    with _stop_on_signals():
        try:
            server.start()
            _announce(server, data, out)
            while server.is_running:
                time.sleep(_POLL_SECONDS)
            err.write(f"dev-server: the server exited unexpectedly. Last lines of its log:\n{server.log_tail()}\n")
            code = EXIT_SERVER
        except (KeyboardInterrupt, _StopRequested):
            out.write("\nstopping the server ...\n")
            out.flush()
        except RuntimeError as error:  # the server failed to start: the message quotes its log
            err.write(f"dev-server: {error}\n")
            code = EXIT_SERVER
        finally:
            with _signals_ignored():
                server.stop()
    if code == EXIT_OK:
        out.write("server stopped" + (f"; the data stays in {data}\n" if data else "; its data is deleted\n"))
        out.flush()
    return code


def _announce(server: LocalMongoServer, data: str | None, out: TextIO) -> None:
    kept = "kept across runs" if data else "temporary: deleted when the server stops"
    lines = [
        f"SecantusDB (a MongoDB wire-protocol test server) is listening on {HOST}:{server.port}",
        f"data: {server.data_path} ({kept})",
        f"URI:  {server.uri}",
        "",
        "In another terminal, point the examples, the CLI and your app at it:",
        f"    export MONGODB_URI={server.uri}",
        "",
        "Press Ctrl-C to stop it.",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()
