"""Helpers shared by the test modules (fixtures are in conftest.py): the ``add`` tool, fail points,
URI options. Import as ``from support import ...`` (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure
from strands import tool

from mongodb_session_manager.testing import CommandRecorder

__all__ = ["COLLECTION", "CommandRecorder", "add", "fail_point", "in_ci", "unique_app", "with_options"]

#: The sessions collection of the shared ``factory`` fixture.
COLLECTION = "sessions"


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: First addend.
        b: Second addend.
    """
    return a + b


def in_ci() -> bool:
    """Whether the tests run in continuous integration (``CI`` set to a true value, as CI services do)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unique_app(prefix: str) -> str:
    """An ``appName`` no other test uses, to scope a fail point to one client."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def with_options(uri: str, options: str) -> str:
    """``uri`` with ``options`` (``a=1&b=2``) appended to its query string."""
    if "?" in uri:
        return f"{uri}&{options}"
    return f"{uri}{'' if uri.endswith('/') else '/'}?{options}"


@contextlib.contextmanager
def fail_point(admin: MongoClient[dict[str, Any]], app_name: str, mode: Any, **data: Any) -> Iterator[None]:
    """Arm the ``failCommand`` fail point for the client named ``app_name``; always turned off after.

    A server without test commands (a ``MONGODB_URI`` deployment) cannot run the test: it is skipped
    on a developer's machine, and FAILS in CI, so that what the fail point checks never goes unchecked.
    """
    try:
        admin.admin.command({"configureFailPoint": "failCommand", "mode": mode, "data": {**data, "appName": app_name}})
    except OperationFailure as error:
        message = f"the server does not allow fail points (start it with test commands enabled): {error}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield
    finally:
        admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
