"""A Strands tool that lets an agent manage its own session's metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strands import tool
from strands.types.tools import AgentTool

from .errors import MongoDBSessionError

if TYPE_CHECKING:
    from .session_manager import MongoDBSessionManager


def metadata_tool(manager: MongoDBSessionManager) -> AgentTool:
    """Build the ``manage_session_metadata`` tool bound to ``manager``'s session."""

    @tool(name="manage_session_metadata")
    async def manage_session_metadata(
        action: str, metadata: dict[str, Any] | None = None, keys: list[str] | None = None
    ) -> dict[str, Any]:
        """Read, update or delete metadata of the current conversation session.

        Args:
            action: "get" to read all metadata, "update" to merge `metadata` in, "delete" to remove `keys`.
            metadata: The keys and values to set (only for "update").
            keys: The metadata keys to remove (only for "delete").
        """
        try:
            if action == "get":
                return {"status": "success", "metadata": await manager.get_metadata_async()}
            if action == "update":
                if not metadata:
                    return {"status": "error", "message": "'update' needs a non-empty 'metadata' object"}
                await manager.update_metadata_async(metadata)
                return {"status": "success", "updated": sorted(metadata)}
            if action == "delete":
                if not keys:
                    return {"status": "error", "message": "'delete' needs a non-empty 'keys' list"}
                await manager.delete_metadata_async(keys)
                return {"status": "success", "deleted": list(keys)}
        except MongoDBSessionError as error:
            return {"status": "error", "message": str(error)}
        return {"status": "error", "message": f"unknown action {action!r}; use 'get', 'update' or 'delete'"}

    return manage_session_metadata
