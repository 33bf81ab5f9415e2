"""The ``metadata_hook`` / ``feedback_hook`` contract.

A hook is called as ``hook(original_func, action, session_id, **kwargs)`` and decides whether and
how to call ``original_func``; its return value is the operation's result. A plain function hook
gets a blocking ``original_func`` and runs in a worker thread when the awaitable API is used, so it
never blocks an event loop; an ``async def`` hook gets an awaitable ``original_func``.
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
    if _is_async_callable(hook):
        result = hook(original, action, session_id, **kwargs)
    else:
        result = await anyio.to_thread.run_sync(
            functools.partial(hook, blocking_original, action, session_id, **kwargs)
        )
    if inspect.isawaitable(result):
        result = await result
    return result


def _is_async_callable(function: Any) -> bool:
    while isinstance(function, functools.partial):
        function = function.func
    if inspect.isfunction(function) or inspect.ismethod(function):
        return inspect.iscoroutinefunction(function)
    # A callable object: look at its class' __call__.
    return inspect.iscoroutinefunction(type(function).__call__)
