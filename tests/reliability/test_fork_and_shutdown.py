"""Fork and shutdown safety, in subprocesses.

* A factory (blocking or awaitable) used before ``os.fork()`` works in the child, which rebuilds its
  own client and loop thread; the parent's keeps working.
* Interpreter exit with open managers, an unclosed factory, a standalone manager and the pool's
  default client exits at once with status 0 and prints nothing on stderr, also when the server
  went away before the exit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from reliability_support import COLLECTION, SCRIPTS, stop_process
from support import with_options

from mongodb_session_manager.testing import LocalMongoServer

# Generous bounds: a hang would take 30 s (a server selection) or forever.
EXIT_BOUND = 45.0


def run_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=90, check=False
    )
    elapsed = time.monotonic() - started
    assert elapsed < EXIT_BOUND, f"{name} took {elapsed:.1f} s"
    return completed


@pytest.mark.skipif(sys.platform == "win32", reason="os.fork is POSIX only")
def test_a_factory_used_before_fork_works_in_the_child_and_the_parent(
    mongodb_uri: str, db_name: str, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    completed = run_script("fork_child.py", mongodb_uri, db_name, COLLECTION)

    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report == {
        "child_exit": 0,
        "parent_messages": 6,  # parent turn, child's turn on the same session, parent again
        "parent_async_messages": 4,
        "early_metadata": {"written_by": "child"},
    }
    messages = mongodb_client[db_name][COLLECTION + ".messages"]
    assert messages.count_documents({"session_id": "child"}) == 2
    assert messages.count_documents({"session_id": "child-async"}) == 2
    ids = [document["message_id"] for document in messages.find({"session_id": "parent"}).sort("message_id", 1)]
    assert ids == list(range(6))


def test_interpreter_exit_with_everything_left_open_is_quiet_and_quick(mongodb_uri: str, db_name: str) -> None:
    completed = run_script("exit_without_close.py", mongodb_uri, db_name)

    assert completed.returncode == 0
    assert completed.stderr == ""
    assert "exiting without closing" in completed.stdout


@pytest.fixture
def server() -> Iterator[LocalMongoServer]:
    with LocalMongoServer() as server:
        yield server


@pytest.mark.requires_local_server
def test_interpreter_exit_after_the_server_went_away_is_quiet_and_quick(server: LocalMongoServer) -> None:
    uri = with_options(server.uri, "serverMonitoringMode=poll")
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "exit_without_close.py"), uri, "exit_down", "--wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready", process.communicate(timeout=30)[1]
        stop_process(server)
        out, err = process.communicate("exit\n", timeout=EXIT_BOUND)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert time.monotonic() - started < EXIT_BOUND
    assert process.returncode == 0
    assert err == ""
    assert "exiting without closing" in out
    assert "Exception ignored" not in out
