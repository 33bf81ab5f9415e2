"""The one place where the driver's connection failures become :class:`ServerUnavailableError`.

:class:`~mongodb_session_manager._runtime.ClientRuntime` runs every coroutine of the core and
translates there, so no driver connection error reaches a caller untyped.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

from .errors import ServerUnavailableError

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
