"""Every use of a private Strands, PyMongo, Motor or asyncio name, in one place.

The library relies on a few names its dependencies do not promise to keep. Each is wrapped here in a
function with a fallback where one is safe, and ``tests/test_compat_private_names.py`` checks each
against the installed versions, so that an upstream release that renames one fails one named test
instead of breaking several modules in ways that are hard to trace.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strands.session.repository_session_manager import RepositorySessionManager
from strands.types.content import Message
from strands.types.session import SessionAgent

if TYPE_CHECKING:
    from strands.agent.agent import Agent
    from strands.agent.state import AgentState

# -- Strands: the sync -> async bridge -------------------------------------------------------------
# SessionManager.initialize and Agent.__call__ run coroutines on a throwaway loop in a helper thread
# (strands._async.run_async). The storage must not bind a borrowed client to that loop.

try:
    from strands._async import is_run_async_bridge as _is_run_async_bridge
    from strands._async import run_async as _run_async
except ImportError:  # pragma: no cover - a Strands without the private module: no bridge detection

    def _is_run_async_bridge() -> bool:
        return False

    _run_async = None  # type: ignore[assignment]


def in_strands_bridge() -> bool:
    """Whether the current coroutine runs on the throwaway loop of Strands' sync->async bridge."""
    return _is_run_async_bridge()


def thread_waits_in_strands_bridge(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the thread running ``loop`` is blocked in Strands' ``run_async`` (waiting for us).

    Reads the loop's thread id (an asyncio private attribute) and walks that thread's stack.
    """
    thread_id = getattr(loop, "_thread_id", None)
    target = getattr(_run_async, "__code__", None)
    if thread_id is None or target is None:
        return False
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        if frame.f_code is target:
            return True
        frame = frame.f_back
    return False


# -- Strands: storage namespacing ------------------------------------------------------------------

try:  # Marks a storage view as already namespaced, so SnapshotSessionManager does not add "session/".
    from strands.storage.storage import _NAMESPACED
except ImportError:  # pragma: no cover
    _NAMESPACED = object()


def mark_namespaced(storage: object) -> None:
    """Tell Strands that ``storage`` is a namespaced view to use as is (as its own storages do)."""
    storage._namespaced = _NAMESPACED  # type: ignore[attr-defined]


# -- Strands: agent internals read to detect changes -----------------------------------------------


def state_version(state: AgentState) -> int:
    """The change counter of an agent's state."""
    version: int = state._get_version()
    return version


def interrupt_state(agent: Agent) -> dict[str, Any]:
    """The agent's interrupt state, as Strands serializes it into a session."""
    state: dict[str, Any] = agent._interrupt_state.to_dict()
    return state


def model_state(agent: Agent) -> Any:
    """The model-specific state Strands keeps on the agent."""
    return agent._model_state


def internal_state(agent: SessionAgent) -> dict[str, Any]:
    """The ``_internal_state`` field of a stored agent record (a dataclass field with a private name)."""
    return agent._internal_state


def session_agent(**fields: Any) -> SessionAgent:
    """A ``SessionAgent``; ``internal_state`` goes to its privately named ``_internal_state`` field."""
    internal = fields.pop("internal_state", {})
    return SessionAgent(**fields, _internal_state=internal)


# -- Strands: repairing tool-use/tool-result pairs ------------------------------------------------


def repair_tool_pairs(messages: list[Message]) -> list[Message]:
    """Strands' own repair of tool-use/tool-result pairs broken by truncation.

    ``RepositorySessionManager._fix_broken_tool_use`` uses no instance state; it is called on an
    instance made without running ``__init__`` (which would need a repository and a session).
    """
    repair: Callable[[RepositorySessionManager, list[Message]], list[Message]] = (
        RepositorySessionManager._fix_broken_tool_use
    )
    return repair(RepositorySessionManager.__new__(RepositorySessionManager), messages)


# -- PyMongo and Motor: the event loop a client is bound to ----------------------------------------


def pymongo_async_client_loop(client: Any) -> asyncio.AbstractEventLoop | None:
    """The loop a ``pymongo.AsyncMongoClient`` bound itself to (at its first operation), if any."""
    loop: asyncio.AbstractEventLoop | None = getattr(client, "_loop", None)
    return loop


def motor_client_loop(client: Any) -> asyncio.AbstractEventLoop | None:
    """The loop a Motor client fixed the first time it needed one, if any."""
    loop: asyncio.AbstractEventLoop | None = getattr(client, "_io_loop", None)
    return loop
