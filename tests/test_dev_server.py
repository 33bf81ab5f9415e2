"""``mongodb-session-manager dev-server``: start, serve, stop on Ctrl-C or SIGTERM, leave nothing.

The command runs as a subprocess in a session of its own, as in a terminal; Ctrl-C is a SIGINT to
its process group. After it exits, no server process may be left (looked up in ``/proc`` by the
server's storage path) and its port must be closed.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mongodb_session_manager import MongoDBSessionRepository
from mongodb_session_manager.cli import main

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds processes through /proc")

# The command starts with SIGINT at its default action, as a terminal starts it: a test run started
# in the background (`&` in a non-interactive shell) ignores SIGINT, and an ignored signal stays
# ignored across exec, so Ctrl-C would never reach the command.
AS_FROM_A_TERMINAL = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)
COMMAND = [sys.executable, "-c", AS_FROM_A_TERMINAL, "-m", "mongodb_session_manager", "dev-server"]
STARTUP_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def server_processes(storage: Path) -> list[int]:
    """Pids of the processes whose command line names ``storage`` (the server's --storage-path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if os.fsencode(str(storage)) in arguments and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


class DevServer:
    """The command as a subprocess in its own session, with its output read line by line."""

    def __init__(self, *arguments: str) -> None:
        self.process = subprocess.Popen(
            [*COMMAND, *arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.storage: Path | None = None
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.put(line.rstrip("\n"))

    def line_starting(self, prefix: str) -> str:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.output.append(line)
            if line.strip().startswith(prefix):
                return line.strip()
        stderr = self.process.stderr.read() if self.process.poll() is not None and self.process.stderr else ""
        raise AssertionError(f"no line starting with {prefix!r} in {self.output!r}; stderr: {stderr}")

    def stop(self, signum: signal.Signals) -> tuple[int, str]:
        """Send ``signum`` (SIGINT to the process group, as Ctrl-C does) and wait for the exit."""
        if signum == signal.SIGINT:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        code = self.process.wait(timeout=30)
        # The reader thread owns stdout: it ends at end of file, once it queued the last line.
        self._reader.join(timeout=30)
        assert not self._reader.is_alive(), "the command's output did not end after it exited"
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return code, "\n".join(self.output)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def started() -> Iterator[list[DevServer]]:
    """The commands a test started; any still running, and any server they left, is killed after it."""
    servers: list[DevServer] = []
    yield servers
    for server in servers:
        server.kill()
        for pid in server_processes(server.storage) if server.storage is not None else []:
            os.kill(pid, signal.SIGKILL)


def start(started: list[DevServer], *arguments: str) -> tuple[DevServer, str, Path]:
    """Start the command; return it, the URI from its ``export`` line and the server's storage path."""
    server = DevServer(*arguments)
    started.append(server)
    data_line = server.line_starting("data: ")
    export = server.line_starting("export MONGODB_URI=")
    storage = Path(data_line.removeprefix("data: ").rsplit(" (", 1)[0])
    server.storage = storage
    return server, export.removeprefix("export MONGODB_URI="), storage


def test_ctrl_c_stops_the_server_and_deletes_its_temporary_data(started: list[DevServer]) -> None:
    port = free_port()
    server, uri, storage = start(started, "--port", str(port))
    assert uri == f"mongodb://127.0.0.1:{port}/"
    assert len(server_processes(storage)) == 1
    with MongoDBSessionRepository(uri, "dev_server_test", "sessions", serverSelectionTimeoutMS=5000) as repository:
        repository.update_metadata("s-1", {"topic": "ctrl-c"})
        assert repository.get_metadata("s-1") is not None

    code, output = server.stop(signal.SIGINT)

    assert code == 0, output
    assert "server stopped; its data is deleted" in output
    assert server_processes(storage) == []
    assert not accepts_connections(port)
    assert not storage.exists()


def test_sigterm_stops_the_server_and_data_dir_keeps_the_data(started: list[DevServer], tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    server, uri, storage = start(started, "--port", str(port), "--data", str(data))
    assert storage == data.resolve()
    with MongoDBSessionRepository(uri, "dev_server_test", "sessions", serverSelectionTimeoutMS=5000) as repository:
        repository.update_metadata("kept", {"run": 1})

    code, output = server.stop(signal.SIGTERM)

    assert code == 0, output
    assert f"the data stays in {data}" in output
    assert server_processes(storage) == []
    assert not accepts_connections(port)

    server, uri, _ = start(started, "--port", str(port), "--data", str(data))
    with MongoDBSessionRepository(uri, "dev_server_test", "sessions", serverSelectionTimeoutMS=5000) as repository:
        stored = repository.get_metadata("kept")
    code, output = server.stop(signal.SIGINT)
    assert code == 0, output
    assert stored is not None
    assert "run" in str(stored)
    assert server_processes(storage) == []


def test_a_port_in_use_is_reported() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        completed = subprocess.run(
            [*COMMAND, "--port", str(port)], capture_output=True, text=True, timeout=60, check=False
        )
    assert completed.returncode == 3
    assert f"port {port} on 127.0.0.1 is already in use" in completed.stderr
    assert "--port" in completed.stderr


def test_without_the_testserver_extra_it_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No server executable on PATH nor next to the interpreter: as in an install without the extra.
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))

    assert main(["dev-server", "--port", str(free_port())]) == 2

    message = capsys.readouterr().err
    assert "SecantusDB, which is not installed" in message
    assert "pip install 'mongodb-session-manager[testserver]'" in message
    assert "MONGODB_URI" in message


def test_help_lists_port_and_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev-server", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--port PORT" in out
    assert "--data DIR" in out
    assert "27017" in out
