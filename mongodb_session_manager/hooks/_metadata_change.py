"""The metadata change both metadata hooks send: which fields, and the JSON message."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

#: The ``event`` of every metadata notification.
METADATA_EVENT = "metadata_update"


def operation_arguments(action: str, kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """What the manager's metadata operation takes: the metadata to update, the keys to delete."""
    if action == "update" and "metadata" in kwargs:
        return (kwargs["metadata"],)
    if action == "delete" and "keys" in kwargs:
        return (kwargs["keys"],)
    return ()


def change_of(action: str, kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The change an operation made: the updated keys and values, or the deleted keys mapped to
    None; None for a read."""
    if action == "update" and "metadata" in kwargs:
        return dict(kwargs["metadata"])
    if action == "delete" and "keys" in kwargs:
        return dict.fromkeys(kwargs["keys"])
    return None


def selected_fields(change: Mapping[str, Any], fields: Sequence[str], *, exclude: str | None = None) -> dict[str, Any]:
    """The part of ``change`` to send: the configured ``fields`` present in it, or everything (but
    ``exclude``) when no fields are configured. A deleted field is sent as null."""
    if fields:
        return {name: change[name] for name in fields if name in change}
    return {name: value for name, value in change.items() if name != exclude}


def encode(message: Mapping[str, Any]) -> str:
    """JSON text of a notification; values JSON cannot hold (dates, ObjectIds) are sent as strings."""
    return json.dumps(message, default=str)
