"""Background delivery of notifications: off the caller's thread and event loop, in order per session.

All hooks share one small thread pool (created on first use, replaced in a forked child). Each hook
has an :class:`Outbox` that keeps its notifications per session in a queue drained by one pool
thread at a time, so a session's notifications are sent in the order of its writes while other
sessions' go out in parallel. The pool's threads are joined at interpreter exit after finishing
their queued work, so a script that ends without closing its hooks still delivers what is pending.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

Job = Callable[[], None]

#: Pool threads shared by all hooks of the process.
MAX_WORKERS = 4
#: Jobs a thread runs for one session before it lets other sessions' work in.
_FAIRNESS_BATCH = 16

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_outboxes: weakref.WeakSet[Outbox] = weakref.WeakSet()


def _schedule(function: Callable[[], None]) -> None:
    """Run ``function`` on the shared pool. Raises ``RuntimeError`` once the interpreter is exiting."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="mongodb-session-manager-aws")
        pool = _pool
    pool.submit(function)


def _forget_pool_in_child() -> None:
    # The parent's threads do not exist in a forked child: start a fresh pool there on first use, and
    # leave the parent's pending notifications to the parent.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()
    for outbox in list(_outboxes):
        outbox.start_empty()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


@dataclass
class _SessionQueue:
    jobs: deque[tuple[str, Job]] = field(default_factory=deque)
    #: Queued jobs plus the one running.
    pending: int = 0


class Outbox:
    """One hook's notifications waiting to be sent.

    ``name`` labels log lines; at most ``max_pending`` notifications wait at once (more are dropped
    and logged at WARNING rather than letting memory grow while AWS is unreachable).
    """

    def __init__(self, name: str, max_pending: int) -> None:
        self.name = name
        self.max_pending = max_pending
        self._closed = False
        self._abandoned = False
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self.start_empty()
        _outboxes.add(self)

    def start_empty(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._sessions: dict[str, _SessionQueue] = {}
        self._pending = 0

    @property
    def pending(self) -> int:
        """Notifications accepted and not yet sent (or failed)."""
        with self._changed:
            return self._pending

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, session_id: str, description: str, job: Job) -> bool:
        """Queue ``job`` behind the session's earlier ones. Never blocks; False when it was dropped."""
        with self._changed:
            if self._closed or self._pending >= self.max_pending:
                self.dropped += 1
                reason = "the hook is closed" if self._closed else f"{self.max_pending} notifications already wait"
                logger.warning("%s: %s for session %r dropped: %s", self.name, description, session_id, reason)
                return False
            self._pending += 1
            queue = self._sessions.get(session_id)
            start = queue is None
            if queue is None:
                queue = self._sessions[session_id] = _SessionQueue()
            queue.jobs.append((description, job))
            queue.pending += 1
        if start:
            try:
                _schedule(functools.partial(self._drain, session_id))
            except RuntimeError:  # the interpreter is exiting: nothing can run this any more
                with self._changed:
                    self._sessions.pop(session_id, None)
                    self._pending -= 1
                    self.dropped += 1
                    self._changed.notify_all()
                logger.warning(
                    "%s: %s for session %r dropped: the interpreter is exiting", self.name, description, session_id
                )
                return False
        return True

    def _drain(self, session_id: str) -> None:
        ran = 0
        while True:
            with self._changed:
                queue = self._sessions[session_id]
                if not queue.jobs or self._abandoned:
                    self._forget(session_id, queue)
                    return
                description, job = queue.jobs.popleft()
            self._run(session_id, description, job)
            with self._changed:
                queue.pending -= 1
                self._pending -= 1
                self._changed.notify_all()
            ran += 1
            if ran % _FAIRNESS_BATCH == 0:
                try:
                    _schedule(functools.partial(self._drain, session_id))
                    return
                except RuntimeError:  # exiting: keep draining on this thread
                    pass

    def _forget(self, session_id: str, queue: _SessionQueue) -> None:
        """Called with the lock held when a session's queue is empty, or abandoned by :meth:`close`."""
        abandoned = len(queue.jobs)
        self._pending -= abandoned
        del self._sessions[session_id]
        self._changed.notify_all()
        if abandoned:
            logger.debug("%s: %d notification(s) for session %r abandoned at close", self.name, abandoned, session_id)

    def _run(self, session_id: str, description: str, job: Job) -> None:
        try:
            job()
        except Exception as error:
            with self._changed:
                self.failed += 1
            logger.warning(
                "%s: %s for session %r failed (%s: %s)",
                self.name,
                description,
                session_id,
                type(error).__name__,
                error,
            )
            logger.debug("%s: failure details", self.name, exc_info=True)
        else:
            with self._changed:
                self.delivered += 1

    def flush(self, timeout: float | None = None, session_id: str | None = None) -> int:
        """Wait until the notifications accepted so far (of ``session_id`` only, if given) are sent or
        failed, at most ``timeout`` seconds. Returns how many are still waiting."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                if session_id is None:
                    waiting = self._pending
                else:
                    queue = self._sessions.get(session_id)
                    waiting = 0 if queue is None else queue.pending
                if waiting == 0:
                    return 0
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return waiting
                self._changed.wait(remaining)

    def close(self, timeout: float | None) -> int:
        """Refuse new notifications, wait up to ``timeout`` seconds for the pending ones, then give
        up on those not started (logged at WARNING). Returns how many were not sent. Idempotent."""
        with self._changed:
            self._closed = True
        left = self.flush(timeout)
        if left:
            with self._changed:
                self._abandoned = True
            logger.warning("%s: closed with %d notification(s) not sent after %ss", self.name, left, timeout)
        return left
