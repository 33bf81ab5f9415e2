"""The blocking API and its awaitable twin cannot drift apart: same method names, same parameters
(names, kinds, defaults), except the differences listed here with their reason.

Twins: ``MongoDBSessionRepository`` / ``AsyncMongoDBSessionRepository``, ``SessionCatalog`` /
``AsyncSessionCatalog``, ``MongoDBSessionManagerFactory`` / ``AsyncMongoDBSessionManagerFactory``, and
each ``MongoDBSessionManager.x`` / ``x_async``. A new method on one side, or a parameter added to one
twin only, fails here until the other side follows (or the difference is listed below).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from mongodb_session_manager import (
    AsyncMongoDBSessionManagerFactory,
    AsyncMongoDBSessionRepository,
    AsyncSessionCatalog,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    MongoDBSessionRepository,
    SessionCatalog,
)

# Methods of the async core that the session manager uses and the blocking facade does not offer.
CORE_ONLY_METHODS = {
    AsyncMongoDBSessionRepository: {
        "annotate_message": "the manager's invocation totals and guardrail stop reason (docs/usage-and-audit.md)",
        "last_message_id": "the manager's renumbering after a collision",
        "last_message": "the manager's turn check of the stored tail (docs/concurrency.md)",
        "load_session": "the manager's one-round-trip restore",
        "redact_message": "the manager's guardrail redaction",
        "touch_if_due": "the manager's expiry bookkeeping",
        "update_agent_versioned": "the manager's optimistic concurrency",
        "update_session_summary": "the manager's guardrail summary on the session document",
    },
}
# Keyword-only parameters that exist on the awaitable side only.
ASYNC_ONLY_PARAMETERS = {
    # The manager has read the session through this repository already, which saves a read.
    "session_verified",
    # Usage fields the manager stores with the messages of a model call (docs/usage-and-audit.md).
    "fields",
    # Preloading exists so that async code restores without blocking; the blocking factory restores on use.
    "preload",
}
# Awaitable methods of the manager without a blocking twin.
ASYNC_ONLY_MANAGER_METHODS = {
    "load_async": "preloading, so that Agent(...) restores without blocking I/O in async code",
    "update_streamed_message_async": "awaited by the streaming hook on the agent's own loop",
}

PAIRS = [
    (MongoDBSessionRepository, AsyncMongoDBSessionRepository),
    (SessionCatalog, AsyncSessionCatalog),
    (MongoDBSessionManagerFactory, AsyncMongoDBSessionManagerFactory),
]


def public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    """Methods the class defines or inherits from this package's classes (not Strands'), without
    underscore names."""
    found: dict[str, Callable[..., Any]] = {}
    for owner in reversed(cls.__mro__):
        if owner.__module__.startswith("mongodb_session_manager"):
            found.update(
                {name: value for name, value in vars(owner).items() if not name.startswith("_") and callable(value)}
            )
    return found


def shape(function: Callable[..., Any], *, skip: set[str] = frozenset()) -> list[tuple[str, str, Any]]:
    """``(name, kind, default)`` of each parameter but ``self`` and those in ``skip``."""
    return [
        (parameter.name, parameter.kind.name, parameter.default)
        for parameter in inspect.signature(function).parameters.values()
        if parameter.name != "self" and parameter.name not in skip
    ]


@pytest.mark.parametrize(("blocking", "awaitable"), PAIRS, ids=[pair[0].__name__ for pair in PAIRS])
def test_twins_offer_the_same_methods_with_the_same_parameters(blocking: type, awaitable: type) -> None:
    sync_methods, async_methods = public_methods(blocking), public_methods(awaitable)
    exempt = set(CORE_ONLY_METHODS.get(awaitable, {}))
    assert sorted(set(sync_methods) - set(async_methods)) == []
    assert sorted(set(async_methods) - set(sync_methods) - exempt) == []
    assert sorted(exempt - set(async_methods)) == [], "a listed core-only method no longer exists"
    for name in sorted(set(sync_methods) & set(async_methods)):
        assert inspect.iscoroutinefunction(async_methods[name]), f"{awaitable.__name__}.{name} is not awaitable"
        assert not inspect.iscoroutinefunction(sync_methods[name]), f"{blocking.__name__}.{name} is awaitable"
        assert shape(sync_methods[name]) == shape(async_methods[name], skip=ASYNC_ONLY_PARAMETERS), name


def test_twins_take_the_same_constructor_arguments() -> None:
    for blocking, awaitable in PAIRS[1:]:
        assert shape(blocking.__init__) == shape(awaitable.__init__), blocking.__name__
    # The blocking repository forwards its keyword-only arguments to the core as **kwargs.
    core = [entry for entry in shape(AsyncMongoDBSessionRepository.__init__) if entry[1] == "POSITIONAL_OR_KEYWORD"]
    facade = [entry for entry in shape(MongoDBSessionRepository.__init__) if entry[1] == "POSITIONAL_OR_KEYWORD"]
    assert facade == core


def test_each_awaitable_manager_method_has_a_blocking_twin_with_the_same_parameters() -> None:
    methods = {name: getattr(MongoDBSessionManager, name) for name in dir(MongoDBSessionManager)}
    awaitables = {name for name in methods if name.endswith("_async") and not name.startswith("_")}
    assert sorted(set(ASYNC_ONLY_MANAGER_METHODS) - awaitables) == [], "a listed async-only method no longer exists"
    for name in sorted(awaitables - set(ASYNC_ONLY_MANAGER_METHODS)):
        twin = name.removesuffix("_async")
        assert twin in methods, f"MongoDBSessionManager.{name} has no blocking twin {twin}"
        assert inspect.iscoroutinefunction(methods[name]), name
        assert not inspect.iscoroutinefunction(methods[twin]), twin
        assert shape(methods[twin]) == shape(methods[name]), twin
