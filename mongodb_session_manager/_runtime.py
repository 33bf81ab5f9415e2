"""Where coroutines run: event-loop threads and the home loop of a client.

An async MongoDB client is bound to one event loop (its *home loop*). :class:`ClientRuntime`
runs the core's coroutines there, whoever calls:

* ``await runtime.run(fn, ...)`` (awaiting) from the home loop awaits natively; from any other loop
  it hops to the home loop and awaits the result without blocking the caller's loop. Methods of
  objects with a ``runtime`` get this with the :func:`on_home_loop` decorator.
* ``runtime.post(callback, ...)`` (non-blocking) calls a plain function on the home loop without
  waiting for it: one thread wake-up, no reply (the pipelined write queue's message events).
* ``runtime.run_blocking(fn, ...)`` (blocking) from plain threads (or from inside *another* running
  loop) blocks the calling thread only. From the home loop's own thread it raises
  :class:`WrongLoopError`, since blocking there would deadlock. ``runtime.blocking(fn)`` makes a
  blocking function of a coroutine function.

These are the only ways the package reaches the home loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, cast

import pymongo
from pymongo.errors import ConnectionFailure, PyMongoError

from . import _compat
from ._driver import ClientPort
from ._unavailable import database_error, server_unavailable
from .errors import ClosedError, WrongLoopError

logger = logging.getLogger(__name__)

# How many runtime calls this context is inside: driver errors are translated for the outermost only,
# so that the core's own handlers (a duplicate key, a missing collection) still see the driver's.
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("mongodb_session_manager_runtime_depth", default=0)

P = ParamSpec("P")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

# How long closing an owned client may wait for a server: PyMongo's close() first ends the client's
# server sessions (best effort, errors ignored), which waits up to serverSelectionTimeoutMS (30 s by
# default) for a server when none is reachable. Shutting down while MongoDB is down must not hang.
CLOSE_SERVER_WAIT = 2.0
# How long closing waits for writes still queued (pipelined writes of an invocation whose caller was
# cancelled) before the client goes: they are what the agent held, so they get a fair chance to land.
CLOSE_WRITES_WAIT = 10.0


class LoopThread:
    """A daemon thread running an asyncio event loop until :meth:`stop`."""

    def __init__(self, name: str = "mongodb-session-manager") -> None:
        self._name = name
        self._pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self._cancel_remaining_tasks()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    def _cancel_remaining_tasks(self) -> None:
        """Cancel what still runs on the loop and let it unwind, so that no task is destroyed pending.

        An owned client is closed before its loop stops; what can remain is the background work of a
        borrowed async client that bound itself to this loop when first used from sync code.
        """
        tasks = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                logger.debug("task %r failed while its loop was stopping: %r", task.get_name(), task.exception())

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def is_alive(self) -> bool:
        """False once stopped, and in a child process after ``fork()`` (threads do not survive it)."""
        return self._pid == os.getpid() and self._thread.is_alive() and not self.loop.is_closed()

    def submit(self, coroutine: Awaitable[T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(_as_coroutine(coroutine), self.loop)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and join the thread; safe to call twice and from a forked child."""
        if self._pid != os.getpid() or not self._thread.is_alive():
            return
        if threading.current_thread() is self._thread:
            raise WrongLoopError("a LoopThread cannot stop itself; call close from another thread or await it")
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _close_bounded(port: ClientPort) -> None:
    """Close an owned client, waiting at most :data:`CLOSE_SERVER_WAIT` seconds for a server (or the
    client's own server selection timeout, if shorter: a ``pymongo.timeout`` replaces it)."""
    configured = getattr(getattr(port.client, "options", None), "server_selection_timeout", None)
    wait = min(CLOSE_SERVER_WAIT, configured) if isinstance(configured, (int, float)) else CLOSE_SERVER_WAIT
    with pymongo.timeout(wait):
        await port.close()


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The loop running in the current thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class ClientRuntime:
    """A client port together with the loop its coroutines must run on.

    ``owns_client``: the client was created here (from a connection string) and lives on a private
    :class:`LoopThread`; :meth:`close` closes it on that loop and stops the thread. After
    ``os.fork()`` such a runtime rebuilds its thread and client on first use.

    A borrowed client keeps its own home loop (the loop it is bound to); a borrowed client that is not
    bound yet and is first used from sync code is bound to a private :class:`LoopThread`.
    """

    def __init__(
        self,
        port_factory: Callable[[], ClientPort] | None = None,
        *,
        port: ClientPort | None = None,
        name: str = "mongodb-session-manager",
    ) -> None:
        if (port_factory is None) == (port is None):
            raise TypeError("pass exactly one of port_factory (owned client) or port (borrowed client)")
        self._port_factory = port_factory
        self._port = port
        self._name = name
        self._lock = threading.Lock()
        self._loop_thread: LoopThread | None = None
        self._pid = os.getpid()
        self._closed = False
        # Tasks on the home loop that closing waits for (see keep_until_closed).
        self._writes: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        # While closing waits for them: the home loop, where calls are still served (only work that is
        # already there runs on it; every other caller is refused once closing began).
        self._finishing_on: asyncio.AbstractEventLoop | None = None

    @property
    def owns_client(self) -> bool:
        return self._port_factory is not None

    @property
    def kind(self) -> str:
        """The driver behind the client ("pymongo-async", "motor" or "pymongo-sync")."""
        return self._port.kind if self._port is not None else "pymongo-async"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def port(self) -> ClientPort:
        """The client port, created (again, after a fork) on first use when the client is owned."""
        self._check_open()
        with self._lock:
            self._after_fork_reset()
            if self._port is None:
                assert self._port_factory is not None
                self._port = self._port_factory()
            return self._port

    def _check_open(self) -> None:
        if self._closed and not self._finishing_here():
            raise ClosedError(f"{self._name} is closed")

    def _finishing_here(self) -> bool:
        """Whether this call is work on the home loop that closing waits for (or work it started)."""
        return self._finishing_on is not None and running_loop() is self._finishing_on

    def _after_fork_reset(self) -> None:
        if self._pid == os.getpid():
            return
        # The parent's loop thread does not exist here and its client's sockets are shared with the
        # parent: start over with a new loop and (if owned) a new client. The old ones are abandoned.
        logger.debug("fork detected; rebuilding the event loop thread and client")
        self._pid = os.getpid()
        self._loop_thread = None
        if self._port_factory is not None:
            self._port = None

    def _home_loop(self, *, start_thread: bool) -> asyncio.AbstractEventLoop | None:
        """The loop to run on; None lets the caller's loop run it (sync or not-yet-bound clients)."""
        port = self.port
        with self._lock:
            if self._port_factory is None:
                bound = port.home_loop()
                if bound is not None and not bound.is_closed():
                    return bound
                if not start_thread:
                    return None
            if self._loop_thread is None or not self._loop_thread.is_alive():
                self._loop_thread = LoopThread(self._name)
            return self._loop_thread.loop

    def is_home_loop(self, loop: asyncio.AbstractEventLoop | None) -> bool:
        """Whether ``loop`` is the loop the client is bound to (False for None)."""
        return loop is not None and loop is self.port.home_loop()

    def _loop_for(self, current: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop | None:
        """The loop a call made from ``current`` runs on (None: ``current`` itself)."""
        if self._closed and current is self._finishing_on:
            return None  # closing: the loop thread is detached, the writes it waits for run right here
        start_thread = self.owns_client
        if not self.owns_client and self.port.loop_bound and _compat.in_strands_bridge():
            bound = self.port.home_loop()
            if bound is None or bound.is_closed():
                start_thread = True
            elif bound is not current and _compat.thread_waits_in_strands_bridge(bound):
                raise WrongLoopError(
                    "a Strands sync call (Agent(...) restoring its session, or agent(...)) blocks the event loop "
                    "the borrowed MongoDB client is bound to, so this call cannot run there. Use a client created "
                    "from a connection string (e.g. MongoDBStorage.from_factory on a factory created from one), or "
                    "call Strands' async APIs (await agent.invoke_async(...)) and construct the Agent off the loop "
                    "(await asyncio.to_thread(Agent, ...))"
                )
        return self._home_loop(start_thread=start_thread)

    def keep_until_closed(self, task: asyncio.Task[Any]) -> None:
        """Have :meth:`close` / :meth:`aclose` wait for ``task`` (a write started on the home loop,
        such as a write queue's sender) before the client closes, for at most
        :data:`CLOSE_WRITES_WAIT` seconds."""
        self._writes.add(task)

    async def _finish_writes(self) -> None:
        """On the home loop: wait for the tasks given to :meth:`keep_until_closed` (and any they start)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_WRITES_WAIT
        while pending := [task for task in self._writes if not task.done() and task.get_loop() is loop]:
            remaining = deadline - loop.time()
            if remaining <= 0:
                logger.error(
                    "%d write(s) were still in flight when the MongoDB client closed after %g s; what they "
                    "carried may not be stored",
                    len(pending),
                    CLOSE_WRITES_WAIT,
                )
                return
            await asyncio.wait(pending, timeout=remaining)

    async def _close_after_writes(self, port: ClientPort | None) -> None:
        self._finishing_on = asyncio.get_running_loop()
        try:
            await self._finish_writes()
        finally:
            self._finishing_on = None
        if port is not None:
            await _close_bounded(port)

    def post(self, callback: Callable[..., object], *args: Any) -> None:
        """Call ``callback(*args)`` on the loop :meth:`run` would use, WITHOUT waiting for it.

        Called from a coroutine. On the home loop itself (or when the client has none) the callback
        runs at once; from another loop it is posted to the home loop (one thread wake-up, no reply).
        Callbacks posted from one thread run in the order posted, and before any later :meth:`run`
        from that thread. The callback runs in a fresh context, outside any runtime call, so the
        driver errors of work it starts are translated as for an outermost call.
        """
        current = asyncio.get_running_loop()
        home = self._loop_for(current)
        if home is None or home is current:
            contextvars.Context().run(callback, *args)
            return
        if not home.is_running():
            raise ClosedError("the event loop the MongoDB client is bound to is not running")
        home.call_soon_threadsafe(callback, *args, context=contextvars.Context())

    async def run(self, function: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """AWAIT ``function(*args, **kwargs)`` on the home loop, without blocking the caller's loop.

        Inside Strands' sync->async bridge (a throwaway loop in a helper thread), a borrowed client
        that is not bound yet is bound to a lasting private loop thread instead of the throwaway loop.

        Raises:
            WrongLoopError: the client's loop is blocked in Strands' bridge waiting for this very call.
        """
        current = asyncio.get_running_loop()
        home = self._loop_for(current)
        outermost = _depth.get() == 0
        token = _depth.set(_depth.get() + 1)
        try:
            if home is None or home is current:
                return await function(*args, **kwargs)
            if not home.is_running():
                raise ClosedError("the event loop the MongoDB client is bound to is not running")
            return await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(_as_coroutine(function(*args, **kwargs)), home)
            )
        except ConnectionFailure as error:
            raise server_unavailable(error, self._port.client if self._port is not None else None) from error
        except PyMongoError as error:
            if outermost:
                raise database_error(error) from error
            raise
        finally:
            _depth.reset(token)

    def run_blocking(self, function: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``function(*args, **kwargs)`` on the home loop and BLOCK this thread until it is done."""
        home = self._home_loop(start_thread=True)
        assert home is not None
        if running_loop() is home:
            raise WrongLoopError(
                f"{_name(function).removesuffix('_async')}() would block the event loop that serves this MongoDB "
                f"client (it runs in this thread); await the async API instead: {_awaitable_hint(function)}"
            )
        if not home.is_running():
            raise ClosedError("the MongoDB client's event loop is not running any more")
        outermost = _depth.get() == 0
        token = _depth.set(_depth.get() + 1)
        try:
            future = asyncio.run_coroutine_threadsafe(_as_coroutine(function(*args, **kwargs)), home)
            return future.result()
        except ConnectionFailure as error:
            raise server_unavailable(error, self._port.client if self._port is not None else None) from error
        except PyMongoError as error:
            if outermost:
                raise database_error(error) from error
            raise
        finally:
            _depth.reset(token)

    def blocking(self, function: Callable[P, Awaitable[T]]) -> Callable[P, T]:
        """A blocking version of ``function``: each call runs it with :meth:`run_blocking`."""

        @functools.wraps(function)
        def blocking(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.run_blocking(function, *args, **kwargs)

        return blocking

    def _detach(self) -> tuple[ClientPort | None, LoopThread | None] | None:
        """Mark the runtime closed and take what must be shut down: the owned client (None for a
        borrowed one) and the private loop thread. None if it was closed already."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            self._after_fork_reset()
            port, loop_thread = self._port, self._loop_thread
            self._loop_thread = None
        return (port if self._port_factory is not None else None), loop_thread

    async def aclose(self) -> None:
        """Close the owned client on its home loop and stop the private loop thread; writes given to
        :meth:`keep_until_closed` are waited for first."""
        detached = self._detach()
        if detached is None:
            return
        port, loop_thread = detached
        if loop_thread is not None and loop_thread.is_alive():
            await asyncio.wrap_future(loop_thread.submit(self._close_after_writes(port)))
        elif port is not None:
            await self._close_after_writes(port)
        if loop_thread is not None:
            await asyncio.to_thread(loop_thread.stop)

    def close(self) -> None:
        """Blocking :meth:`aclose`; callable from any thread except the home loop's."""
        loop_thread = self._loop_thread
        if loop_thread is not None and threading.current_thread() is loop_thread.thread:
            raise WrongLoopError("close() was called on the client's own loop thread; await aclose() instead")
        detached = self._detach()
        if detached is None:
            return
        port, loop_thread = detached
        if loop_thread is not None and loop_thread.is_alive():
            # Straight to the loop thread: no temporary event loop just to wait (it cost milliseconds).
            loop_thread.submit(self._close_after_writes(port)).result()
        elif port is not None:
            _run_to_completion(self._close_after_writes(port))
        if loop_thread is not None:
            loop_thread.stop()


def _run_to_completion(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine on a temporary loop, in a helper thread when this thread already runs a loop."""
    if running_loop() is None:
        asyncio.run(coroutine)
        return
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def on_home_loop(method: F) -> F:
    """Run a coroutine method on the home loop of its object's ``runtime``, whatever loop awaits it."""

    @functools.wraps(method)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        runtime: ClientRuntime = self.runtime
        return await runtime.run(method, self, *args, **kwargs)

    return cast(F, wrapper)


def _name(function: Callable[..., Any]) -> str:
    return str(getattr(function, "__name__", "this call"))


def _awaitable_hint(function: Callable[..., Any]) -> str:
    """The awaitable alternative of a blocking call, for :class:`WrongLoopError` messages."""
    name = _name(function)
    if name.endswith("_async"):  # a session manager's awaitable twin
        return f"`await manager.{name}(...)`"
    owner = type(getattr(function, "__self__", None)).__name__
    if owner.startswith("Async") and not name.startswith("_"):  # e.g. AsyncMongoDBSessionRepository's methods
        return f"`await {owner}.{name}(...)`"
    return "the session manager's `*_async` methods, AsyncMongoDBSessionManagerFactory or AsyncMongoDBSessionRepository"
