"""Helpers of the reliability tests (stored-data snapshots, server control); the helpers of every test
module (fail points, URI options) are in tests/support.py."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from mongodb_session_manager.testing import LocalMongoServer

COLLECTION = "sessions"
MESSAGES = COLLECTION + ".messages"
SCRIPTS = Path(__file__).parent / "scripts"

Client = MongoClient[dict[str, Any]]


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
