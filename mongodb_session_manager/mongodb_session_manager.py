"""The earlier library's module path for the session manager (re-exports)."""

from .guardrails import GUARDRAIL_ACTION_BLOCKED, GUARDRAIL_STOP_REASONS
from .session_manager import MongoDBSessionManager, create_mongodb_session_manager

__all__ = [
    "GUARDRAIL_ACTION_BLOCKED",
    "GUARDRAIL_STOP_REASONS",
    "MongoDBSessionManager",
    "create_mongodb_session_manager",
]
