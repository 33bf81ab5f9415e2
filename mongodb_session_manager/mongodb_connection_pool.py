"""The earlier library's module path for the connection pool (re-exports)."""

from .connection_pool import MongoDBConnectionPool

__all__ = ["MongoDBConnectionPool"]
