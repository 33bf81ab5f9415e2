"""The ``metadata_hook`` / ``feedback_hook`` contract.

A hook is called as ``hook(original_func, action, session_id, **kwargs)`` and decides whether and
how to call ``original_func``; its return value is the operation's result. A plain function hook
gets a blocking ``original_func`` and runs in a worker thread when the awaitable API is used, so it
never blocks an event loop; an ``async def`` hook gets an awaitable ``original_func``.

A hook object whose ``handles_awaitable_original`` attribute is true (the AWS hooks of this
package) is called on the event loop with the awaitable ``original_func`` and may return either a
plain result or an awaitable; called by plain code with a blocking ``original_func`` it works as a
plain function hook.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread

Hook = Callable[..., Any]


async def call_with_hook(
    hook: Hook | None,
    action: str,
    session_id: str,
    original: Callable[..., Awaitable[Any]],
    blocking_original: Callable[..., Any],
    *args: Any,
    **kwargs: Any,
) -> Any:
    """Run ``original(*args)`` through ``hook`` if there is one.

    ``kwargs`` are the named arguments the hook receives (e.g. ``metadata=...``); ``args`` are what
    ``original`` takes when there is no hook.
    """
    if hook is None:
        return await original(*args)
    if _takes_awaitable_original(hook):
        result = hook(original, action, session_id, **kwargs)
    else:
        result = await anyio.to_thread.run_sync(
            functools.partial(hook, blocking_original, action, session_id, **kwargs)
        )
    if inspect.isawaitable(result):
        result = await result
    return result


def _takes_awaitable_original(hook: Any) -> bool:
    if getattr(hook, "handles_awaitable_original", False) is True:
        return True
    while isinstance(hook, functools.partial):
        hook = hook.func
    if inspect.isfunction(hook) or inspect.ismethod(hook):
        return inspect.iscoroutinefunction(hook)
    # A callable object: look at its class' __call__.
    return inspect.iscoroutinefunction(type(hook).__call__)
