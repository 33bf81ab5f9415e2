"""Helpers shared by the reliability tests (fail points, stored-data snapshots, server control)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from mongodb_session_manager.testing import LocalMongoServer

COLLECTION = "sessions"
MESSAGES = COLLECTION + ".messages"
SCRIPTS = Path(__file__).parent / "scripts"

Client = MongoClient[dict[str, Any]]


def unique_app(prefix: str) -> str:
    """An ``appName`` no other test uses, to scope a fail point to one client."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def with_options(uri: str, options: str) -> str:
    return uri + ("&" if "?" in uri else "?") + options


@contextlib.contextmanager
def fail_point(admin: Client, app_name: str, mode: Any, **data: Any) -> Iterator[None]:
    """Arm the ``failCommand`` fail point for the client named ``app_name``; always turned off after."""
    try:
        admin.admin.command({"configureFailPoint": "failCommand", "mode": mode, "data": {**data, "appName": app_name}})
    except OperationFailure as error:  # a server started without test commands (MONGODB_URI)
        pytest.skip(f"the server does not allow fail points: {error}")
    try:
        yield
    finally:
        admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


def stored_messages(db: Any, session_id: str, agent_id: str = "default") -> list[dict[str, Any]]:
    """The stored message documents of one agent, in id order."""
    return list(db[MESSAGES].find({"session_id": session_id, "agent_id": agent_id}, {"_id": 0}).sort("message_id", 1))


def first_text(document: Mapping[str, Any]) -> str | None:
    """The first text block of a stored message document."""
    for block in document["message"]["content"]:
        if "text" in block:
            return str(block["text"])
    return None


def snapshot(db: Any) -> dict[str, list[dict[str, Any]]]:
    """Every document of every collection of the database, to prove that a call wrote nothing.

    Empty collections are left out: creating the indexes on first use is not writing data.
    """
    documents = {
        name: sorted((dict(document) for document in db[name].find()), key=repr)
        for name in sorted(db.list_collection_names())
    }
    return {name: stored for name, stored in documents.items() if stored}


def stop_process(server: LocalMongoServer, *, kill: bool = False, timeout: float = 10.0) -> None:
    """Stop the server process by its PID but keep its port and data directory (``server.restart()``
    starts it again). SIGTERM is a clean shutdown; ``kill=True`` sends SIGKILL (``kill -9``)."""
    pid = server.pid
    assert pid is not None, "the server is not running"
    sig = signal.SIGKILL if kill else signal.SIGTERM
    os.kill(pid, sig)
    started = signalled = time.monotonic()
    while server.is_running:
        # The server's accept loop notices a shutdown request when a connection arrives; a signal that
        # arrives at an unlucky moment is not acted on at all (as LocalMongoServer.stop knows): resend it.
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=0.2):
            pass
        now = time.monotonic()
        if now - started > timeout:
            os.kill(pid, signal.SIGKILL)
        elif now - signalled > 1.0:
            os.kill(pid, sig)
            signalled = now
        time.sleep(0.05)
