"""Type aliases shared by the package's modules."""

from __future__ import annotations

from typing import Any

#: A BSON document as PyMongo returns it, and as the library builds queries and updates.
Document = dict[str, Any]
