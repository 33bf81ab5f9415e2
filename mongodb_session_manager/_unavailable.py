"""The one place where driver errors become typed: connection failures :class:`ServerUnavailableError`,
every other driver error that reaches a caller :class:`DatabaseError`.

:class:`~mongodb_session_manager._runtime.ClientRuntime` runs every coroutine of the core and
translates there (at the outermost call only: the core's own handlers still see driver errors), so
no driver error reaches a caller untyped.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import ConnectionFailure, PyMongoError, ServerSelectionTimeoutError

from .errors import DatabaseError, ServerUnavailableError

# The driver's message may describe the whole topology; one line of it is enough for a person.
_MAX_DETAIL = 300


def server_unavailable(error: ConnectionFailure, client: Any) -> ServerUnavailableError:
    """The typed error for a driver connection failure of ``client`` (raise it ``from error``)."""
    hosts = ", ".join(known_hosts(client)) or "the configured hosts"
    detail = str(error).split("\n", 1)[0].split(", Timeout:", 1)[0]
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 3] + "..."
    what = "no server was selectable in time" if isinstance(error, ServerSelectionTimeoutError) else "connection failed"
    return ServerUnavailableError(f"cannot reach MongoDB at {hosts} ({what}): {detail}")


def known_hosts(client: Any) -> list[str]:
    """``host:port`` of every server the client knows (seeds or discovered); never credentials."""
    delegate = getattr(client, "delegate", client)  # Motor wraps a PyMongo client
    try:
        addresses = list(delegate.topology_description.server_descriptions())
    except Exception:
        return []
    return sorted(f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}" for host, port in addresses)


def database_error(error: PyMongoError) -> DatabaseError:
    """The typed error for any other driver error reaching a caller (raise it ``from error``)."""
    detail = str(error).split("\n", 1)[0]
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 3] + "..."
    typed = DatabaseError(f"MongoDB failed the command ({type(error).__name__}): {detail}")
    code = getattr(error, "code", None)
    typed.code = code if isinstance(code, int) else None
    return typed
