"""The earlier library's module path for the blocking repository (re-exports)."""

from .sync_repository import MongoDBSessionRepository

__all__ = ["MongoDBSessionRepository"]
