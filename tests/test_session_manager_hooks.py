"""``metadata_hook`` and ``feedback_hook``: called as ``hook(original_func, action, session_id, **kwargs)``."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from mongodb_session_manager import MongoDBSessionManager, MongoDBSessionManagerFactory

Call = tuple[str, str, dict[str, Any]]


def forwarding_hook(calls: list[Call], *, by_keyword: bool = False) -> Any:
    """A sync hook, written as the earlier library documented it: it forwards to ``original_func``."""

    def hook(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        calls.append((action, session_id, kwargs))
        if by_keyword:
            return original_func(**kwargs)
        if action == "update":
            return original_func(kwargs["metadata"])
        if action == "delete":
            return original_func(kwargs["keys"])
        if action == "add":
            return original_func(kwargs["feedback"])
        return original_func()

    return hook


def async_forwarding_hook(calls: list[Call]) -> Any:
    async def hook(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        calls.append((action, session_id, kwargs))
        result = original_func(**kwargs)
        assert inspect.isawaitable(result), "an async hook gets an awaitable original_func"
        return await result

    return hook


def exercise_sync(factory: MongoDBSessionManagerFactory, hook: Any) -> list[Call]:
    manager = factory.create_session_manager("hooked", metadata_hook=hook, feedback_hook=hook)
    manager.update_metadata({"priority": "high", "team": {"name": "core"}})
    assert manager.get_metadata()["metadata"] == {"priority": "high", "team": {"name": "core"}}
    manager.delete_metadata(["priority"])
    manager.add_feedback({"rating": 5})
    return []


async def exercise_async(factory: MongoDBSessionManagerFactory, hook: Any) -> None:
    manager = factory.create_session_manager("hooked", metadata_hook=hook, feedback_hook=hook)
    await manager.update_metadata_async({"priority": "high", "team": {"name": "core"}})
    assert (await manager.get_metadata_async())["metadata"] == {"priority": "high", "team": {"name": "core"}}
    await manager.delete_metadata_async(["priority"])
    await manager.add_feedback_async({"rating": 5})


class _TheManager:
    """Equal to the ``MongoDBSessionManager`` of session "hooked" (the feedback hook gets ``session_manager=``)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MongoDBSessionManager) and other.session_id == "hooked"


EXPECTED_CALLS: list[Call] = [
    ("update", "hooked", {"metadata": {"priority": "high", "team": {"name": "core"}}}),
    ("get", "hooked", {}),
    ("delete", "hooked", {"keys": ["priority"]}),
    ("add", "hooked", {"session_manager": _TheManager(), "feedback": {"rating": 5}}),
]


def assert_effects(factory: MongoDBSessionManagerFactory) -> None:
    """What the forwarded operations stored, read by a manager without hooks."""
    plain = factory.create_session_manager("hooked")
    assert plain.get_metadata()["metadata"] == {"team": {"name": "core"}}
    assert [feedback["rating"] for feedback in plain.get_feedbacks()] == [5]


@pytest.mark.parametrize("by_keyword", [False, True], ids=["positional", "keyword"])
def test_sync_hook_through_the_sync_api(factory: MongoDBSessionManagerFactory, by_keyword: bool) -> None:
    calls: list[Call] = []
    exercise_sync(factory, forwarding_hook(calls, by_keyword=by_keyword))
    assert calls == EXPECTED_CALLS
    assert_effects(factory)


@pytest.mark.anyio
@pytest.mark.parametrize("by_keyword", [False, True], ids=["positional", "keyword"])
async def test_sync_hook_through_the_async_api(factory: MongoDBSessionManagerFactory, by_keyword: bool) -> None:
    calls: list[Call] = []
    await exercise_async(factory, forwarding_hook(calls, by_keyword=by_keyword))
    assert calls == EXPECTED_CALLS
    assert_effects(factory)


@pytest.mark.anyio
async def test_async_hook_through_the_async_api(factory: MongoDBSessionManagerFactory) -> None:
    calls: list[Call] = []
    await exercise_async(factory, async_forwarding_hook(calls))
    assert calls == EXPECTED_CALLS
    assert_effects(factory)


def test_async_hook_through_the_sync_api(factory: MongoDBSessionManagerFactory) -> None:
    calls: list[Call] = []
    exercise_sync(factory, async_forwarding_hook(calls))
    assert calls == EXPECTED_CALLS
    assert_effects(factory)


def test_hook_that_skips_original_func_prevents_the_write(factory: MongoDBSessionManagerFactory) -> None:
    calls: list[Call] = []

    def veto(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        calls.append((action, session_id, kwargs))
        return {"vetoed": True} if action == "get" else None

    manager = factory.create_session_manager("vetoed", metadata_hook=veto, feedback_hook=veto)
    manager.update_metadata({"secret": "x"})
    manager.add_feedback({"rating": 1})
    assert manager.get_metadata() == {"vetoed": True}  # the hook's return value is the result
    assert [call[0] for call in calls] == ["update", "add", "get"]

    plain = factory.create_session_manager("vetoed")
    assert plain.get_metadata()["metadata"] == {}
    assert plain.get_feedbacks() == []


@pytest.mark.anyio
async def test_async_hook_that_skips_original_func_prevents_the_write(factory: MongoDBSessionManagerFactory) -> None:
    async def veto(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        return None

    manager = factory.create_session_manager("vetoed-async", metadata_hook=veto, feedback_hook=veto)
    await manager.update_metadata_async({"secret": "x"})
    await manager.add_feedback_async({"rating": 1})
    manager.update_metadata({"secret": "y"})

    plain = factory.create_session_manager("vetoed-async")
    assert (await plain.get_metadata_async())["metadata"] == {}
    assert await plain.get_feedbacks_async() == []


def test_hook_can_rewrite_the_arguments(factory: MongoDBSessionManagerFactory) -> None:
    def stamp(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        if action == "update":
            return original_func({**kwargs["metadata"], "audited_by": "hook"})
        if action == "get":
            return {**original_func(), "seen_by_hook": True}
        return original_func(kwargs["keys"])

    manager = factory.create_session_manager("stamped", metadata_hook=stamp)
    manager.update_metadata({"priority": "low"})
    assert manager.get_metadata() == {
        "_id": "stamped",
        "metadata": {"priority": "low", "audited_by": "hook"},
        "seen_by_hook": True,
    }
    stored = factory.create_session_manager("stamped").get_metadata()["metadata"]
    assert stored == {"priority": "low", "audited_by": "hook"}
