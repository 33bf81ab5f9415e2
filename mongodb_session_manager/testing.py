"""A throwaway local MongoDB-compatible server for tests, benchmarks and demos.

:class:`LocalMongoServer` runs the SecantusDB server (``secantusd-py``, a MongoDB wire-protocol
server installed by the ``testserver`` extra) as a **separate process** on a free loopback port,
with its own temporary data directory::

    from mongodb_session_manager.testing import LocalMongoServer

    with LocalMongoServer() as server:
        client = MongoClient(server.uri)
        ...

:func:`server_uri_from_env_or_start` prefers an existing deployment named by the ``MONGODB_URI``
environment variable and only starts a local server when it is unset.

The server is never imported, only executed. This module imports nothing beyond the standard
library and PyMongo.

Implementation notes
--------------------
* The server's stdout and stderr go to a log file (``server.log``) in a private run directory,
  so the process can never block on a full pipe; startup errors quote the tail of that log.
* The server is started with ``--config`` pointing at an empty configuration file in that run
  directory (and with the run directory as its working directory), so it never picks up a stray
  ``secantusd.toml`` from the caller's working directory or home directory.
* Stopping sends SIGTERM, then opens a throwaway connection to the port: the server's accept loop
  only notices the shutdown request when a connection arrives, and would otherwise wait about two
  seconds. If the port still accepts connections a second after the signal, the signal was not
  acted on (a rare race) and is sent again. After ``timeout`` seconds the process is killed.
* Every running server is also stopped by an :mod:`atexit` hook, so a forgotten server does not
  outlive the Python process that started it (except on SIGKILL of that process).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeAlias, TypeVar
from urllib.parse import quote_plus

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from ._command_recorder import CommandRecorder

__all__ = [
    "DEFAULT_USER_ROLES",
    "SERVER_EXECUTABLE",
    "CommandRecorder",
    "LocalMongoServer",
    "find_server_executable",
    "running_servers",
    "server_uri_from_env_or_start",
]

#: Name of the console script installed by the ``testserver`` extra.
SERVER_EXECUTABLE = "secantusd-py"

#: Roles given by :meth:`LocalMongoServer.create_user` when none are passed: ``root`` on ``admin``.
DEFAULT_USER_ROLES: tuple[Mapping[str, str], ...] = ({"role": "root", "db": "admin"},)

_HOST = "127.0.0.1"
_LISTENING_RE = re.compile(rb"listening on [^\s:]+:(\d+)")
_ADDRESS_IN_USE_RE = re.compile(rb"address already in use", re.IGNORECASE)
_LOG_NAME = "server.log"
_CONFIG_NAME = "secantusd.toml"
_DUPLICATE_USER_CODE = 51003

_T = TypeVar("_T", bound="LocalMongoServer")
_Role: TypeAlias = "str | Mapping[str, str]"

_registry_lock = threading.Lock()
_running: set[LocalMongoServer] = set()
_atexit_registered = False


def find_server_executable(executable: str | None = None) -> str:
    """Return the path of the ``secantusd-py`` executable.

    Looks at ``executable`` (if given), then on ``PATH``, then next to the running Python
    interpreter (the ``bin``/``Scripts`` directory of the current virtual environment).

    Raises:
        RuntimeError: if the executable cannot be found.
    """
    if executable is not None:
        found = shutil.which(executable)
        if found is None:
            raise RuntimeError(f"test server executable {executable!r} not found or not executable")
        return found
    found = shutil.which(SERVER_EXECUTABLE)
    if found is not None:
        return found
    bin_dir = Path(sys.executable).parent
    for name in (SERVER_EXECUTABLE, SERVER_EXECUTABLE + ".exe"):
        candidate = bin_dir / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RuntimeError(
        f"The local test server executable {SERVER_EXECUTABLE!r} was not found on PATH or in {bin_dir}. "
        "Install the test-server extra: pip install -e '.[testserver]' "
        "(or set MONGODB_URI to use an existing MongoDB deployment)."
    )


def running_servers() -> list[LocalMongoServer]:
    """The :class:`LocalMongoServer` instances of this process whose server process is running."""
    with _registry_lock:
        return [server for server in _running if server.is_running]


def _stop_all_running() -> None:
    with _registry_lock:
        servers = list(_running)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop()


def _register(server: LocalMongoServer) -> None:
    global _atexit_registered
    with _registry_lock:
        if not _atexit_registered:
            atexit.register(_stop_all_running)
            _atexit_registered = True
        _running.add(server)


def _unregister(server: LocalMongoServer) -> None:
    with _registry_lock:
        _running.discard(server)


class LocalMongoServer:
    """A local SecantusDB server process on a free loopback port, for tests.

    Args:
        enable_test_commands: pass ``--enable-test-commands`` (enables ``configureFailPoint``).
        auth: require SCRAM authentication (``--auth``). Users given in ``users`` (or added with
            :meth:`create_user` before :meth:`start`) are provisioned first, by starting the server
            once without authentication.
        sync_on_commit: pass ``--sync-on-commit`` (fsync the journal on every commit).
        data_dir: storage directory to use. It is created if missing and never deleted. By default
            a temporary directory is used and removed by :meth:`stop`.
        executable: path or name of the server executable (see :func:`find_server_executable`).
        startup_timeout: seconds to wait for the server to listen and answer ``ping``.
        users: ``{username: password}`` to create on the ``admin`` database with the ``root`` role
            when the server starts.
        extra_args: further command-line arguments for the server.
        port: the TCP port to listen on (on ``127.0.0.1``). By default a free port is chosen. A port
            already in use makes :meth:`start` raise ``RuntimeError``.
        tls_cert_file, tls_key_file: serve TLS only (``--tls-cert-file``/``--tls-key-file``, PEM).
        tls_ca_file: the PEM CA that signed ``tls_cert_file``; :attr:`uri`,
            :meth:`uri_with_credentials` and this class's own clients trust it (``tls=true&tlsCAFile=``).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. :meth:`restart` stops the
    process and starts it again on the same port with the same data.
    """

    def __init__(
        self,
        *,
        enable_test_commands: bool = False,
        auth: bool = False,
        sync_on_commit: bool = False,
        data_dir: str | None = None,
        executable: str | None = None,
        startup_timeout: float = 20.0,
        users: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        port: int | None = None,
        tls_cert_file: str | None = None,
        tls_key_file: str | None = None,
        tls_ca_file: str | None = None,
    ) -> None:
        if (tls_cert_file is None) != (tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        self.tls_cert_file = tls_cert_file
        self.tls_key_file = tls_key_file
        self.tls_ca_file = tls_ca_file
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be between 1 and 65535, got {port}")
        self.requested_port = port
        self.enable_test_commands = enable_test_commands
        self.auth = auth
        self.sync_on_commit = sync_on_commit
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self._executable = executable
        self._data_dir = data_dir
        self._pending_users: dict[str, tuple[str, tuple[_Role, ...]]] = {
            name: (password, DEFAULT_USER_ROLES) for name, password in (users or {}).items()
        }
        self._passwords: dict[str, str] = dict(users or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._run_dir: Path | None = None
        self._log_path: Path | None = None
        self._storage_path: Path | None = None

    # -- properties -------------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def port(self) -> int:
        """The TCP port (kept across :meth:`restart`). Raises ``RuntimeError`` when not started or stopped."""
        if self._port is None:
            raise RuntimeError("the server has not been started")
        return self._port

    @property
    def uri(self) -> str:
        """``mongodb://127.0.0.1:PORT/``, without credentials (see :meth:`uri_with_credentials`)."""
        return f"mongodb://{_HOST}:{self.port}/{self._tls_query('?')}"

    @property
    def pid(self) -> int | None:
        """The server process id, or ``None`` when it is not running."""
        return self._proc.pid if self.is_running and self._proc is not None else None

    @property
    def data_path(self) -> Path | None:
        """The server's storage directory (``None`` before :meth:`start`)."""
        return self._storage_path

    @property
    def log_path(self) -> Path | None:
        """The file receiving the server's output (``None`` before :meth:`start`)."""
        return self._log_path

    def uri_with_credentials(self, username: str, password: str | None = None, *, auth_source: str = "admin") -> str:
        """A URI that authenticates as ``username``.

        ``password`` defaults to the one given in ``users`` or to :meth:`create_user`.
        """
        if password is None:
            try:
                password = self._passwords[username]
            except KeyError:
                raise KeyError(f"no password known for user {username!r}; pass it explicitly") from None
        return (
            f"mongodb://{quote_plus(username)}:{quote_plus(password)}@{_HOST}:{self.port}/"
            f"?authSource={quote_plus(auth_source)}{self._tls_query('&')}"
        )

    def _tls_query(self, separator: str) -> str:
        if self.tls_cert_file is None:
            return ""
        query = f"{separator}tls=true"
        if self.tls_ca_file is not None:
            query += f"&tlsCAFile={quote_plus(self.tls_ca_file)}"
        return query

    def log_tail(self, max_lines: int = 40) -> str:
        """The last ``max_lines`` lines of the server log (empty if there is none)."""
        if self._log_path is None:
            return ""
        try:
            data = self._log_path.read_bytes()
        except OSError:
            return ""
        lines = data.decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-max_lines:])

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> str:
        """Start the server (no-op if it is running) and return :attr:`uri`.

        Blocks until the server listens and answers ``ping``. Pending users are provisioned first.

        Raises:
            RuntimeError: if the executable is missing, or the server fails to start in time (the
                message includes the tail of the server log).
        """
        if self.is_running:
            return self.uri
        executable = find_server_executable(self._executable)
        if self._run_dir is None:
            self._prepare_dirs()
        try:
            if self._pending_users:
                self._provision_pending_users(executable)
            else:
                self._spawn(executable, auth=self.auth, port=self._port or self.requested_port or 0)
        except BaseException:
            self.stop()
            raise
        return self.uri

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and delete the temporary directories it created. Idempotent.

        A ``data_dir`` passed by the caller is kept. After :meth:`stop`, :meth:`start` starts a
        fresh server (with a new temporary data directory and a new port).
        """
        try:
            self._terminate(timeout)
        finally:
            _unregister(self)
            run_dir, self._run_dir = self._run_dir, None
            self._log_path = None
            self._storage_path = None
            self._port = None
            if run_dir is not None:
                shutil.rmtree(run_dir, ignore_errors=True)

    def restart(self, timeout: float = 10.0) -> str:
        """Stop the server process and start it again on the same port with the same data.

        Returns :attr:`uri` (unchanged). If the server was never started, this is :meth:`start`.
        """
        if self._run_dir is None or self._port is None:
            return self.start()
        self._terminate(timeout)
        executable = find_server_executable(self._executable)
        try:
            self._spawn(executable, auth=self.auth, port=self._port)
        except BaseException:
            self.stop()
            raise
        return self.uri

    def create_user(
        self,
        username: str,
        password: str,
        roles: Sequence[_Role] = DEFAULT_USER_ROLES,
    ) -> None:
        """Create (or update) a user on the ``admin`` database.

        Before :meth:`start` the user is only recorded and is created when the server starts. On a
        running server without authentication the user is created directly. On a running server
        with ``auth=True`` the server is restarted without authentication on the same port, the
        user is created, and the server is restarted with authentication again.
        """
        self._passwords[username] = password
        if not self.is_running:
            self._pending_users[username] = (password, tuple(roles))
            return
        if not self.auth:
            self._create_users({username: (password, tuple(roles))})
            return
        self._pending_users[username] = (password, tuple(roles))
        self._terminate(10.0)
        try:
            self._provision_pending_users(find_server_executable(self._executable))
        except BaseException:
            self.stop()
            raise

    def __enter__(self: _T) -> _T:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}, port={self._port}" if self.is_running else "stopped"
        return f"<{type(self).__name__} {state}>"

    # -- internals --------------------------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        run_dir = Path(tempfile.mkdtemp(prefix="secantusd-"))
        # An empty configuration file, passed with --config, disables the server's auto-discovery
        # of secantusd.toml in the working and home directories.
        (run_dir / _CONFIG_NAME).write_text("# generated by mongodb_session_manager.testing\n", encoding="utf-8")
        storage = run_dir / "data" if self._data_dir is None else Path(self._data_dir).resolve()
        storage.mkdir(parents=True, exist_ok=True)
        self._run_dir = run_dir
        self._log_path = run_dir / _LOG_NAME
        self._storage_path = storage

    def _command(self, executable: str, *, auth: bool, port: int) -> list[str]:
        assert self._run_dir is not None
        assert self._storage_path is not None
        args = [
            executable,
            "--config",
            str(self._run_dir / _CONFIG_NAME),
            "--host",
            _HOST,
            "--port",
            str(port),
            "--storage-path",
            str(self._storage_path),
        ]
        if self.enable_test_commands:
            args.append("--enable-test-commands")
        if auth:
            args.append("--auth")
        if self.sync_on_commit:
            args.append("--sync-on-commit")
        if self.tls_cert_file is not None and self.tls_key_file is not None:
            args += ["--tls-cert-file", self.tls_cert_file, "--tls-key-file", self.tls_key_file]
        args.extend(self.extra_args)
        return args

    def _spawn(self, executable: str, *, auth: bool, port: int) -> None:
        """Start the process and wait until it listens and answers ping."""
        assert self._run_dir is not None
        assert self._log_path is not None
        with self._log_path.open("ab") as log:
            log.write(f"--- starting {SERVER_EXECUTABLE} (port {port or 'auto'}, auth={auth})\n".encode())
            log.flush()
            offset = log.tell()
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            self._proc = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
                self._command(executable, auth=auth, port=port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._run_dir,
                env=env,
                # Keep Ctrl-C in a terminal away from the server: its owner stops it cleanly.
                start_new_session=os.name == "posix",
            )
        _register(self)
        deadline = time.monotonic() + self.startup_timeout
        self._port = self._wait_for_listening(offset, deadline)
        self._wait_for_ping(deadline)

    def _startup_error(self, reason: str) -> RuntimeError:
        tail = self.log_tail()
        return RuntimeError(f"{SERVER_EXECUTABLE} {reason}. Last lines of its log ({self._log_path}):\n{tail}")

    def _wait_for_listening(self, offset: int, deadline: float) -> int:
        assert self._proc is not None
        assert self._log_path is not None
        while True:
            with self._log_path.open("rb") as log:
                log.seek(offset)
                output = log.read()
            match = _LISTENING_RE.search(output)
            if match is not None:
                return int(match.group(1))
            returncode = self._proc.poll()
            if returncode is not None:
                reason = f"exited with status {returncode} before listening"
                if _ADDRESS_IN_USE_RE.search(output):
                    reason += f" (port {self._port or self.requested_port} is in use by another process)"
                raise self._startup_error(reason)
            if time.monotonic() >= deadline:
                raise self._startup_error(f"did not report listening within {self.startup_timeout:g} s")
            time.sleep(0.02)

    def _wait_for_ping(self, deadline: float) -> None:
        last_error: Exception | None = None
        while True:
            remaining = deadline - time.monotonic()
            if self._proc is None or self._proc.poll() is not None:
                raise self._startup_error("exited while waiting for it to answer ping")
            if remaining <= 0:
                raise self._startup_error(f"did not answer ping within {self.startup_timeout:g} s ({last_error})")
            timeout_ms = max(100, int(min(remaining, 2.0) * 1000))
            client: MongoClient[dict[str, Any]] = MongoClient(
                self.uri,
                directConnection=True,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
            )
            try:
                client.admin.command("ping")
                return
            except OperationFailure as exc:
                if exc.code == 13:  # Unauthorized: it answers, it just wants credentials.
                    return
                last_error = exc
            except PyMongoError as exc:
                last_error = exc
            finally:
                client.close()
            time.sleep(0.05)

    def _provision_pending_users(self, executable: str) -> None:
        """Start without auth, create the pending users, and (for auth mode) restart with auth."""
        self._spawn(executable, auth=False, port=self._port or self.requested_port or 0)
        self._create_users(self._pending_users)
        self._pending_users.clear()
        if self.auth:
            self._terminate(10.0)
            self._spawn(executable, auth=True, port=self.port)

    def _create_users(self, users: Mapping[str, tuple[str, tuple[_Role, ...]]]) -> None:
        client: MongoClient[dict[str, Any]] = MongoClient(
            self.uri, directConnection=True, serverSelectionTimeoutMS=5000
        )
        try:
            for username, (password, roles) in users.items():
                role_docs = [dict(role) if isinstance(role, Mapping) else role for role in roles]
                try:
                    client.admin.command("createUser", username, pwd=password, roles=role_docs)
                except OperationFailure as exc:
                    if exc.code != _DUPLICATE_USER_CODE:
                        raise
                    client.admin.command("updateUser", username, pwd=password, roles=role_docs)
        finally:
            client.close()

    def _listener_alive(self) -> bool:
        """Whether the port accepts a connection (the connection is closed at once)."""
        if self._port is None:
            return False
        try:
            with socket.create_connection((_HOST, self._port), timeout=0.2):
                return True
        except OSError:
            return False

    def _terminate(self, timeout: float) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``timeout``); keep all files."""
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + timeout
                signalled_at = time.monotonic()
                resends = 0
                while True:
                    try:
                        proc.wait(timeout=0.05)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    now = time.monotonic()
                    if now >= deadline:
                        proc.kill()
                        proc.wait()
                        break
                    elapsed = now - signalled_at
                    # The server closes its listening socket as soon as it handles the signal; a
                    # connection wakes its accept loop (else it idles ~2 s). A port still accepting
                    # a second after the signal means the signal went unhandled: send it again.
                    if elapsed >= 0.1 and self._listener_alive() and elapsed >= 1.0 and resends < 3:
                        proc.send_signal(signal.SIGTERM)
                        resends += 1
                        signalled_at = now
        finally:
            if proc.poll() is None:  # interrupted (e.g. KeyboardInterrupt) while waiting
                with contextlib.suppress(OSError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5.0)
            self._proc = None


def server_uri_from_env_or_start(
    *,
    env_var: str = "MONGODB_URI",
    enable_test_commands: bool = False,
    auth: bool = False,
    sync_on_commit: bool = False,
    data_dir: str | None = None,
    executable: str | None = None,
    startup_timeout: float = 20.0,
) -> tuple[str, LocalMongoServer | None]:
    """Return ``(uri, None)`` if the ``env_var`` environment variable is set and non-empty, else
    start a :class:`LocalMongoServer` and return ``(server.uri, server)``.

    The caller owns the returned server and must :meth:`~LocalMongoServer.stop` it (an
    :mod:`atexit` hook stops it at interpreter exit otherwise).
    """
    uri = os.environ.get(env_var, "").strip()
    if uri:
        return uri, None
    server = LocalMongoServer(
        enable_test_commands=enable_test_commands,
        auth=auth,
        sync_on_commit=sync_on_commit,
        data_dir=data_dir,
        executable=executable,
        startup_timeout=startup_timeout,
    )
    return server.start(), server
