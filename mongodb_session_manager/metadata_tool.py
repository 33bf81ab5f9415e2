"""The ``manage_metadata`` tool: lets an agent (or plain code) manage its session's metadata.

The tool function is a plain ``def``: Strands runs it in a worker thread during a turn, so it never
blocks the agent's event loop, and user code may call it directly and get the result string back
(the earlier library's documented pattern). Every operation goes through the manager's public
metadata methods, so metadata hooks see it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from strands import tool
from strands.types.tools import AgentTool

from .errors import MongoDBSessionError

if TYPE_CHECKING:
    from .session_manager import MongoDBSessionManager

TOOL_NAME = "manage_metadata"

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "description": "'get', 'set', 'update' or 'delete'"},
        "metadata": {"type": "object", "description": "Keys and values to set ('set'/'update')"},
        "keys": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Keys to read ('get', optional) or remove ('delete')",
        },
    },
    "required": ["action"],
}


class _BadArgument(ValueError):
    """An argument the tool cannot use; reported to the caller as an error string."""


def _from_json(value: Any, name: str) -> Any:
    """Models sometimes send objects and arrays as JSON text: decode those."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        if name == "keys":
            return [value]  # a bare key name
        raise _BadArgument(f"{name} must be a JSON object, got text that is not JSON") from None


def _as_metadata(value: Any) -> dict[str, Any]:
    value = _from_json(value, "metadata")
    if not isinstance(value, dict) or not value:
        raise _BadArgument("'set'/'update' needs a non-empty metadata object")
    return value


def _as_keys(value: Any, *, required: bool) -> list[str] | None:
    value = _from_json(value, "keys")
    if value is None or value == []:
        if required:
            raise _BadArgument("'delete' needs a non-empty list of keys")
        return None
    if not isinstance(value, list) or not all(isinstance(key, str) for key in value):
        raise _BadArgument("keys must be a list of strings")
    return value


def _dump(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def metadata_tool(manager: MongoDBSessionManager) -> AgentTool:
    """Build the ``manage_metadata`` tool bound to ``manager``'s session."""

    @tool(name=TOOL_NAME, inputSchema=_SCHEMA)
    def manage_metadata(action: str, metadata: Any = None, keys: Any = None) -> str:
        """Read, set/update or delete metadata of the current conversation session.

        Args:
            action: "get" reads metadata (all of it, or only `keys`); "set" or "update" merges
                `metadata` in; "delete" removes `keys`.
            metadata: Keys and values to store (for "set"/"update"); a JSON object or its text.
            keys: Keys to read (for "get", optional) or to remove (for "delete").

        Returns:
            A sentence describing the result, with values as JSON.
        """
        verb = action.lower().strip() if isinstance(action, str) else action
        try:
            if verb == "get":
                wanted = _as_keys(keys, required=False)
                stored = manager.get_metadata().get("metadata") or {}
                if wanted is None:
                    return f"Session metadata: {_dump(stored)}" if stored else "No metadata stored for this session"
                found = {key: stored[key] for key in wanted if key in stored}
                return f"Session metadata: {_dump(found)}" if found else f"No metadata stored for keys {wanted}"
            if verb in ("set", "update"):
                values = _as_metadata(metadata)
                manager.update_metadata(values)
                return f"Updated metadata keys: {list(values)}"
            if verb == "delete":
                removed = _as_keys(keys, required=True)
                manager.delete_metadata(removed or [])
                return f"Deleted metadata keys: {removed}"
        except (_BadArgument, MongoDBSessionError) as error:
            return f"Error: {error}"
        return f"Error: unknown action {action!r}; use 'get', 'set', 'update' or 'delete'"

    return manage_metadata
