"""Shared benchmark plumbing: timing statistics, command and connection counters, the report.

Times are collected as lists of seconds per operation and summarized by :func:`summarize`
(median, p95). Round trips are counted with :class:`CommandCounter` (a PyMongo
``CommandListener``); new connections with :class:`ConnectionCounter` (a
``ConnectionPoolListener``). A benchmark adds :class:`Row` values and :class:`Target` verdicts
to the :class:`Report`, which prints the table and writes the JSON file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import secrets
import statistics
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from pymongo import AsyncMongoClient, MongoClient, monitoring

from mongodb_session_manager.testing import LocalMongoServer

T = TypeVar("T")

# -- statistics -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """Summary of timing samples, in seconds per operation."""

    n: int
    median: float
    p95: float
    mean: float
    min: float
    max: float


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank on the sorted values)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


def summarize(samples: list[float]) -> Stats:
    if not samples:
        return Stats(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    return Stats(
        n=len(samples),
        median=statistics.median(samples),
        p95=percentile(samples, 0.95),
        mean=statistics.fmean(samples),
        min=min(samples),
        max=max(samples),
    )


def repeat(
    operation: Callable[[], object],
    *,
    repeats: int,
    warmup: int = 1,
    inner: int = 1,
    budget: float | None = None,
    min_repeats: int = 3,
) -> list[float]:
    """Time ``operation``: ``repeats`` samples of ``inner`` calls each (seconds per call).

    Stops early once ``budget`` seconds have passed and at least ``min_repeats`` samples exist.
    """
    for _ in range(warmup):
        operation()
    samples: list[float] = []
    started = time.monotonic()
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            operation()
        samples.append((time.perf_counter() - t0) / inner)
        if budget is not None and len(samples) >= min_repeats and time.monotonic() - started > budget:
            break
    return samples


async def arepeat(
    operation: Callable[[], Awaitable[object]],
    *,
    repeats: int,
    warmup: int = 1,
    inner: int = 1,
    budget: float | None = None,
    min_repeats: int = 3,
) -> list[float]:
    """:func:`repeat` for a coroutine function, awaited on the running loop."""
    for _ in range(warmup):
        await operation()
    samples: list[float] = []
    started = time.monotonic()
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            await operation()
        samples.append((time.perf_counter() - t0) / inner)
        if budget is not None and len(samples) >= min_repeats and time.monotonic() - started > budget:
            break
    return samples


@dataclass
class Case:
    """One operation measured by :func:`interleave`; ``commands`` counts its round trips if given."""

    name: str
    operation: Callable[[], Any]
    commands: CommandCounter | None = None
    samples: list[float] = field(default_factory=list)
    sent: Counter[str] = field(default_factory=Counter)

    def commands_per_op(self) -> float | None:
        return None if self.commands is None else per_op(sum(self.sent.values()), len(self.samples))

    def commands_by_name(self) -> dict[str, float]:
        return {name: round(count / len(self.samples), 2) for name, count in sorted(self.sent.items()) if self.samples}


def interleave(cases: list[Case], *, repeats: int, warmup: int = 1, budget: float | None = None) -> None:
    """Time the cases round-robin (one call of each per round), so that load from elsewhere on the
    machine hits every case alike. Stops after ``repeats`` rounds or once ``budget`` seconds have
    passed (after at least 3 rounds)."""
    for _ in range(warmup):
        for case in cases:
            case.operation()
    started = time.monotonic()
    for round_number in range(repeats):
        for case in cases:
            before = case.commands.snapshot() if case.commands is not None else None
            t0 = time.perf_counter()
            case.operation()
            case.samples.append(time.perf_counter() - t0)
            if before is not None and case.commands is not None:
                after = case.commands.snapshot()
                after.subtract(before)
                case.sent.update({name: count for name, count in after.items() if count})
        if budget is not None and round_number >= 2 and time.monotonic() - started > budget:
            break


async def ainterleave(cases: list[Case], *, repeats: int, warmup: int = 1, budget: float | None = None) -> None:
    """:func:`interleave` for coroutine functions, awaited on the running loop."""
    for _ in range(warmup):
        for case in cases:
            await case.operation()
    started = time.monotonic()
    for round_number in range(repeats):
        for case in cases:
            before = case.commands.snapshot() if case.commands is not None else None
            t0 = time.perf_counter()
            await case.operation()
            case.samples.append(time.perf_counter() - t0)
            if before is not None and case.commands is not None:
                after = case.commands.snapshot()
                after.subtract(before)
                case.sent.update({name: count for name, count in after.items() if count})
        if budget is not None and round_number >= 2 and time.monotonic() - started > budget:
            break


# -- counters ---------------------------------------------------------------------------------------


class CommandCounter(monitoring.CommandListener):
    """Counts every command a client sends (each one is a round trip), by name.

    Server monitoring (``hello`` heartbeats) and connection handshakes are not published to command
    listeners, so they are not counted.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_name: Counter[str] = Counter()
        #: Failed commands by error type (network errors, timeouts, server errors).
        self.failures: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        with self._lock:
            self.by_name[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        failure: Any = event.failure
        # PyMongo reports a network error as {"errtype": ..., "errmsg": ...}, a server error as its reply.
        kind = (
            str(failure.get("errtype") or failure.get("codeName") or "error") if isinstance(failure, dict) else "error"
        )
        with self._lock:
            self.failures[f"{event.command_name}:{kind}"] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_name.values())

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.by_name)

    @contextlib.contextmanager
    def measure(self) -> Iterator[Counter[str]]:
        """``with counter.measure() as delta:`` -- ``delta`` holds the commands sent inside the block."""
        before = self.snapshot()
        delta: Counter[str] = Counter()
        try:
            yield delta
        finally:
            after = self.snapshot()
            after.subtract(before)
            delta.update({name: count for name, count in after.items() if count})


class ConnectionCounter(monitoring.ConnectionPoolListener):
    """Counts connections opened and closed by the clients it listens to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.created = 0
        self.closed = 0
        self.checkout_failures = 0
        self.pool_clears = 0

    def _bump(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def connection_created(self, event: monitoring.ConnectionCreatedEvent) -> None:
        self._bump("created")

    def connection_closed(self, event: monitoring.ConnectionClosedEvent) -> None:
        self._bump("closed")

    def pool_created(self, event: monitoring.PoolCreatedEvent) -> None:
        pass

    def pool_ready(self, event: monitoring.PoolReadyEvent) -> None:
        pass

    def pool_cleared(self, event: monitoring.PoolClearedEvent) -> None:
        self._bump("pool_clears")

    def pool_closed(self, event: monitoring.PoolClosedEvent) -> None:
        pass

    def connection_ready(self, event: monitoring.ConnectionReadyEvent) -> None:
        pass

    def connection_check_out_started(self, event: monitoring.ConnectionCheckOutStartedEvent) -> None:
        pass

    def connection_check_out_failed(self, event: monitoring.ConnectionCheckOutFailedEvent) -> None:
        if event.reason != "poolClosed":
            self._bump("checkout_failures")

    def connection_checked_out(self, event: monitoring.ConnectionCheckedOutEvent) -> None:
        pass

    def connection_checked_in(self, event: monitoring.ConnectionCheckedInEvent) -> None:
        pass


def per_op(count: float, operations: int) -> float:
    return count / operations if operations else math.nan


# -- process figures --------------------------------------------------------------------------------


def proc_status_kib(pid: int | str, field_name: str) -> int:
    """A ``kB`` field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``, ...)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise KeyError(field_name)


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of process ``pid`` (this process when None), children excluded."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of stat(5)); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets process ``pid`` has open."""
    inodes: set[str] = set()
    fd_dir = f"/proc/{pid}/fd"
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(fd_dir):
            with contextlib.suppress(OSError):
                target = os.readlink(f"{fd_dir}/{name}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


_TCP_ESTABLISHED = "01"


def open_connections_to(pid: int, remote_port: int) -> int:
    """How many established TCP connections process ``pid`` has to ``remote_port`` (from /proc/net/tcp)."""
    inodes = socket_inodes(pid)
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table, encoding="ascii") as lines:
            next(lines, None)
            for line in lines:
                parts = line.split()
                if len(parts) < 10 or parts[3] != _TCP_ESTABLISHED or parts[9] not in inodes:
                    continue
                if int(parts[2].rsplit(":", 1)[1], 16) == remote_port:
                    count += 1
    return count


# -- the report -------------------------------------------------------------------------------------


@dataclass
class Row:
    """One measured figure. ``time`` is seconds per operation; otherwise ``value`` in ``unit``."""

    group: str
    case: str
    time: Stats | None = None
    value: float | None = None
    unit: str = ""
    commands: float | None = None
    ratio: float | None = None
    baseline: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def relate(row: Row, baseline: Row, label: str) -> float | None:
    """Set ``row.ratio`` to its median time over the baseline's (same run); returns the ratio."""
    if row.time is None or baseline.time is None or not baseline.time.median > 0:
        return None
    row.ratio = row.time.median / baseline.time.median
    row.baseline = label
    return row.ratio


@dataclass
class Target:
    """A budget from the issue, and whether this run met it (None: not measured)."""

    name: str
    requirement: str
    measured: str
    holds: bool | None


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def target(self, name: str, requirement: str, measured: str, holds: bool | None) -> None:
        self.targets.append(Target(name, requirement, measured, holds))

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "rows": [_jsonable(asdict(row)) for row in self.rows],
            "targets": [asdict(target) for target in self.targets],
            "errors": self.errors,
        }

    def write_json(self, path: str) -> None:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(path, "w", encoding="utf-8") as out:
            json.dump(self.to_json(), out, indent=2, sort_keys=False)
            out.write("\n")

    def render(self, markdown: bool = False) -> str:
        header = ["group", "case", "median", "p95", "n", "ratio", "cmds/op", "notes"]
        lines = [[row.group, row.case, *_figures(row)] for row in self.rows]
        table = _format_table(header, lines, markdown)
        target_lines = [
            [target.name, target.requirement, target.measured, _verdict(target.holds)] for target in self.targets
        ]
        targets = _format_table(["target", "requirement", "measured", "verdict"], target_lines, markdown)
        parts = [table, "", targets]
        for name, error in self.errors.items():
            parts.append(f"\nbenchmark {name!r} failed: {error}")
        return "\n".join(parts)


def _verdict(holds: bool | None) -> str:
    return "n/a" if holds is None else ("HOLDS" if holds else "FAILS")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def format_number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value)}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _figures(row: Row) -> list[str]:
    if row.time is not None:
        median, p95, n = format_seconds(row.time.median), format_seconds(row.time.p95), str(row.time.n)
    else:
        median, p95, n = f"{format_number(row.value)} {row.unit}".strip(), "-", "-"
    ratio = "-"
    if row.ratio is not None and math.isfinite(row.ratio):
        ratio = f"{row.ratio:.3g}x" + (f" of {row.baseline}" if row.baseline else "")
    commands = "-" if row.commands is None else format_number(row.commands)
    notes = ", ".join(f"{key}={_note(value)}" for key, value in row.notes.items())
    return [median, p95, n, ratio, commands, notes]


def _note(value: Any) -> str:
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, dict):
        return "{" + " ".join(f"{key}:{item}" for key, item in value.items()) + "}"
    return str(value)


def _format_table(header: list[str], lines: list[list[str]], markdown: bool) -> str:
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max([len(header[i])] + [len(line[i]) for line in lines]) for i in range(len(header))]

    # The last column (notes / verdict) is not padded.
    def fmt(cells: list[str]) -> str:
        return "  ".join(cell.ljust(widths[i]) if i < len(cells) - 1 else cell for i, cell in enumerate(cells))

    out = [fmt(header), "  ".join("-" * width for width in widths)]
    out += [fmt(line) for line in lines]
    return "\n".join(out)


# -- the run context --------------------------------------------------------------------------------


@dataclass
class Context:
    """What a benchmark gets: where MongoDB is, the mode, and the report to fill."""

    quick: bool
    report: Report
    external_uri: str | None = None
    #: Round-trip counts only (CI): a couple of repeats per case, no figure worth reading.
    smoke: bool = False
    servers: list[LocalMongoServer] = field(default_factory=list)
    #: pid of the local server behind a URI (none for MONGODB_URI), for CPU accounting.
    server_pids: dict[str, int] = field(default_factory=dict)

    @contextlib.contextmanager
    def mongodb(self, label: str) -> Iterator[tuple[str, str]]:
        """``(uri, database_name)`` for one benchmark (or one variant of it).

        Without ``MONGODB_URI`` a fresh local server (fresh data directory) is started for it and
        stopped afterwards; with ``MONGODB_URI`` a fresh database is used and dropped afterwards.
        """
        database = f"bench_{label}_{secrets.token_hex(3)}"
        if self.external_uri is not None:
            try:
                yield self.external_uri, database
            finally:
                with contextlib.suppress(Exception), MongoClient(self.external_uri) as client:
                    client.drop_database(database)
            return
        server = LocalMongoServer()
        self.servers.append(server)
        uri = ""
        try:
            uri = server.start()
            if server.pid is not None:
                self.server_pids[uri] = server.pid
            yield uri, database
        finally:
            self.server_pids.pop(uri, None)
            server.stop()
            self.servers.remove(server)

    def repeats(self, quick: int, full: int) -> int:
        """How many repeats: ``quick`` or ``full``, or 2 in a smoke run."""
        return 2 if self.smoke else quick if self.quick else full

    def cpu(self, uri: str) -> float | None:
        """CPU seconds used so far by the local server behind ``uri`` (None for MONGODB_URI)."""
        pid = self.server_pids.get(uri)
        return None if pid is None else cpu_seconds(pid)

    def stop_all(self) -> None:
        for server in list(self.servers):
            with contextlib.suppress(Exception):
                server.stop()
        self.servers.clear()


class AsyncClientThread:
    """A raw ``AsyncMongoClient`` on an event loop in its own thread; :meth:`run` blocks the calling
    thread until a coroutine run on that loop is done. The least any sync API over an async driver
    pays: the driver, plus a hop to its loop and back (a floor for the library's sync API)."""

    def __init__(self, uri: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="async-client-floor", daemon=True)
        self._thread.start()
        self.client: AsyncMongoClient[Any] = self.run(_connect(uri))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def close(self) -> None:
        self.run(self.client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


async def _connect(uri: str) -> AsyncMongoClient[Any]:
    return AsyncMongoClient(uri)


def run_async(coroutine: Awaitable[Any]) -> Any:
    """``asyncio.run`` for a coroutine."""

    async def main() -> Any:
        return await coroutine

    return asyncio.run(main())


def loadavg() -> list[float]:
    with contextlib.suppress(OSError):
        return [round(value, 2) for value in os.getloadavg()]
    return []
