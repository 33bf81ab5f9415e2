"""What the AWS hooks share: the hook contract, background delivery, ``flush`` and ``close``."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import anyio.to_thread

from .._runtime import running_loop
from ..errors import WrongLoopError
from ._aws import require_boto3
from ._delivery import Job, Outbox

logger = logging.getLogger(__name__)

#: Seconds ``close()`` waits for pending notifications by default.
DEFAULT_CLOSE_TIMEOUT = 30.0
#: Notifications a hook keeps waiting at most (more are dropped and logged at WARNING).
DEFAULT_MAX_PENDING = 10_000


def utc_timestamp() -> str:
    return datetime.now(timezone.utc).isoformat()


class NotificationHook:
    """A ``metadata_hook`` / ``feedback_hook`` that runs the operation, then sends a notification.

    The operation (``original_func``) runs first and its result is returned unchanged; only when it
    succeeded is a notification queued. Sending happens on a background thread, in order per session:
    the caller's thread and event loop never wait for AWS, and a failed send is logged at WARNING and
    never fails the operation. :meth:`flush` waits for pending notifications; :meth:`close` (or
    :meth:`close_async`) also stops accepting new ones and reports what could not be sent.
    """

    #: Called by the session manager with the awaitable ``original_func`` on its event loop.
    handles_awaitable_original = True

    def __init__(self, what: str) -> None:
        require_boto3(what)
        self._outbox = Outbox(type(self).__name__, DEFAULT_MAX_PENDING)

    # -- the hook contract ------------------------------------------------------------------------

    def __call__(self, original_func: Callable[..., Any], action: str, session_id: str, **kwargs: Any) -> Any:
        """Run ``original_func`` for ``action``, then queue the notification; returns its result.

        With an awaitable ``original_func`` (the session manager's ``*_async`` path) this returns an
        awaitable that does the same once awaited.
        """
        result = original_func(*self._arguments(action, kwargs))
        if inspect.isawaitable(result):
            return self._finish(result, original_func, action, session_id, kwargs)
        self._notify(original_func, action, session_id, kwargs)
        return result

    async def _finish(
        self,
        pending: Awaitable[Any],
        original_func: Callable[..., Any],
        action: str,
        session_id: str,
        kwargs: Mapping[str, Any],
    ) -> Any:
        result = await pending
        self._notify(original_func, action, session_id, kwargs)
        return result

    def _notify(
        self, original_func: Callable[..., Any], action: str, session_id: str, kwargs: Mapping[str, Any]
    ) -> None:
        """Queue the notification of an operation that succeeded; never raises (the write stands)."""
        try:
            notification = self._notification(original_func, action, session_id, kwargs)
        except Exception as error:
            logger.warning(
                "%s: no notification for %s of session %r (%s: %s)",
                type(self).__name__,
                action,
                session_id,
                type(error).__name__,
                error,
            )
            return
        if notification is not None:
            self._outbox.submit(session_id, *notification)

    def _arguments(self, action: str, kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
        """What ``original_func`` takes for ``action``."""
        raise NotImplementedError

    def _notification(
        self, original_func: Callable[..., Any], action: str, session_id: str, kwargs: Mapping[str, Any]
    ) -> tuple[str, Job] | None:
        """``(description, job)`` sending the notification of a succeeded operation, or None. Runs on
        the caller's thread right after the operation, so it snapshots what the job sends."""
        raise NotImplementedError

    def _queue(self, session_id: str, notification: tuple[str, Job] | None) -> None:
        if notification is not None:
            self._outbox.submit(session_id, *notification)

    # -- delivery control -------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Notifications queued and not yet sent or failed."""
        return self._outbox.pending

    @property
    def stats(self) -> dict[str, int]:
        """Counters since creation: ``delivered``, ``failed``, ``dropped`` and ``pending``."""
        outbox = self._outbox
        return {
            "delivered": outbox.delivered,
            "failed": outbox.failed,
            "dropped": outbox.dropped,
            "pending": outbox.pending,
        }

    def flush(self, timeout: float | None = None, session_id: str | None = None) -> int:
        """Block until pending notifications (only ``session_id``'s, if given) are sent or failed, at
        most ``timeout`` seconds. Returns how many still wait. In async code use :meth:`flush_async`."""
        _refuse_on_event_loop("flush")
        return self._outbox.flush(timeout, session_id)

    async def flush_async(self, timeout: float | None = None, session_id: str | None = None) -> int:  # noqa: ASYNC109
        """Awaitable :meth:`flush`; the event loop keeps running meanwhile."""
        return await anyio.to_thread.run_sync(self._outbox.flush, timeout, session_id)

    def close(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> int:
        """Stop accepting notifications and wait up to ``timeout`` seconds for the pending ones.

        Returns how many could not be sent (also logged at WARNING). Operations through a closed hook
        still run; their notifications are dropped and logged. Idempotent. In async code use
        :meth:`close_async`.
        """
        _refuse_on_event_loop("close")
        return self._outbox.close(timeout)

    async def close_async(self, timeout: float | None = DEFAULT_CLOSE_TIMEOUT) -> int:  # noqa: ASYNC109
        """Awaitable :meth:`close`; the event loop keeps running meanwhile."""
        return await anyio.to_thread.run_sync(self._outbox.close, timeout)

    def __enter__(self) -> NotificationHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _refuse_on_event_loop(method: str) -> None:
    # Deliveries may need the session manager's event loop (e.g. to read the stored connection id):
    # blocking a loop thread while waiting for them could wait for itself.
    if running_loop() is not None:
        raise WrongLoopError(f"{method}() blocks; on a running event loop, await {method}_async() instead")


def flush_session(hooks: tuple[Any, ...], session_id: str, timeout: float = DEFAULT_CLOSE_TIMEOUT) -> None:
    """Wait for ``session_id``'s pending notifications in those of ``hooks`` that are notification
    hooks (what a standalone session manager does on ``close()``). Does not wait on an event loop
    thread: there the notifications are still delivered in the background."""
    if running_loop() is not None:
        return
    for hook in hooks:
        if isinstance(hook, NotificationHook):
            _report_left(hook, session_id, hook.flush(timeout, session_id))


async def flush_session_async(
    hooks: tuple[Any, ...],
    session_id: str,
    timeout: float = DEFAULT_CLOSE_TIMEOUT,  # noqa: ASYNC109
) -> None:
    """Awaitable :func:`flush_session`, without blocking the event loop."""
    for hook in hooks:
        if isinstance(hook, NotificationHook):
            _report_left(hook, session_id, await hook.flush_async(timeout, session_id))


def _report_left(hook: NotificationHook, session_id: str, left: int) -> None:
    if left:
        logger.warning(
            "%s: %d notification(s) of session %r still pending at close; they are sent in the background",
            type(hook).__name__,
            left,
            session_id,
        )


def manager_of(original_func: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """The session manager behind an operation: the ``session_manager=`` keyword the manager passes
    to feedback hooks, else the object ``original_func`` is a bound method of (or None)."""
    manager = kwargs.get("session_manager")
    if manager is None:
        manager = getattr(original_func, "__self__", None)
    return manager
