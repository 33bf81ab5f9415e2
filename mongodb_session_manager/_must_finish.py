"""Work that must finish even when the caller that started it is cancelled.

A session manager keeps bookkeeping next to what it stores (the id of the latest message, the
stored agent's version). A write cancelled halfway (the insert sent, the bookkeeping not updated)
would leave the next write of the same manager out of step with the stored conversation. So a
manager's writes run as their own task: a cancelled caller stops waiting and gets its
``CancelledError`` at once, while the write completes or fails for its own reasons. A failure nobody
is left to receive is logged (ERROR), never dropped silently.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Strong references to writes whose callers were cancelled: the loop keeps only weak ones.
_orphans: set[asyncio.Task[Any]] = set()

# The tasks started by finish(). What such a task awaits directly is already out of reach of the
# caller's cancellation, so a nested must-finish call in the same task runs in place instead of
# starting one more task. (Only the task itself: tasks it spawns can be cancelled on their own.)
_protected_tasks: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()


async def finish(coroutine: Coroutine[Any, Any, T], what: str) -> T:
    """Await ``coroutine`` as its own task, which a cancellation of this caller does not cancel."""
    if asyncio.current_task() in _protected_tasks:
        return await coroutine
    task = asyncio.get_running_loop().create_task(coroutine)
    _protected_tasks.add(task)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            _orphans.add(task)
            task.add_done_callback(functools.partial(_report, what))
        raise


def _report(what: str, task: asyncio.Task[Any]) -> None:
    _orphans.discard(task)
    if task.cancelled():
        logger.error("%s was cancelled by its event loop shutting down, after its caller was cancelled", what)
    elif task.exception() is not None:
        logger.error("%s failed after its caller was cancelled", what, exc_info=task.exception())
    else:
        logger.debug("%s completed after its caller was cancelled", what)


def must_finish(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate a coroutine method so that it runs to completion even if its caller is cancelled."""
    what = method.__qualname__

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return await finish(method(*args, **kwargs), what)

    return wrapper
