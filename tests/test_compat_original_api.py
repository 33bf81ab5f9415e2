"""The earlier sync-only library's public API (v0.9.1), name by name (original-compat.md).

Each test uses the call patterns and return shapes that library documented, against our package.
(The AWS hooks' behaviour is covered in ``test_aws_hooks*.py``; here only their top-level names.)
"""

from __future__ import annotations

import importlib
import json
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from legacy_documents import conversation_session
from pymongo import MongoClient
from strands import Agent
from strands.types.session import Session, SessionType

import mongodb_session_manager
import mongodb_session_manager.mongodb_session_factory as factory_module
from mongodb_session_manager import (
    GUARDRAIL_ACTION_BLOCKED,
    GUARDRAIL_STOP_REASONS,
    InvalidInputError,
    MongoDBSessionError,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    MongoDBSessionRepository,
    NotFoundError,
    close_global_factory,
    create_mongodb_session_manager,
    get_global_factory,
    initialize_global_factory,
)
from mongodb_session_manager.scripted_model import ScriptedModel, tool_call
from mongodb_session_manager.testing import CommandRecorder

COLLECTION = "sessions"
DATA_COMMANDS = {"find", "insert", "update", "findAndModify", "delete", "aggregate", "count", "getMore"}


@pytest.fixture
def commands() -> CommandRecorder:
    return CommandRecorder(only=DATA_COMMANDS)


@pytest.fixture
def factory(mongodb_uri: str, db_name: str, commands: CommandRecorder) -> Iterator[MongoDBSessionManagerFactory]:
    factory = MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name=COLLECTION, event_listeners=[commands]
    )
    yield factory
    factory.close()


@pytest.fixture
def legacy(mongodb_uri: str, db_name: str) -> Iterator[MongoDBSessionManager]:
    """A manager built the way the earlier library's README builds one."""
    manager = create_mongodb_session_manager(
        session_id="legacy-1",
        connection_string=mongodb_uri,
        database_name=db_name,
        collection_name=COLLECTION,
        application_name="support-bot",
    )
    yield manager
    manager.close()


# -- imports and module paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (
            "mongodb_session_manager.mongodb_session_manager",
            [
                "MongoDBSessionManager",
                "create_mongodb_session_manager",
                "GUARDRAIL_STOP_REASONS",
                "GUARDRAIL_ACTION_BLOCKED",
            ],
        ),
        ("mongodb_session_manager.mongodb_session_repository", ["MongoDBSessionRepository"]),
        ("mongodb_session_manager.mongodb_connection_pool", ["MongoDBConnectionPool"]),
        (
            "mongodb_session_manager.hooks",
            ["feedback_sns_hook", "metadata_sqs_hook", "metadata_websocket_hook", "utils_sns", "utils_sqs"],
        ),
        (
            "mongodb_session_manager.mongodb_session_factory",
            [
                "MongoDBSessionManagerFactory",
                "initialize_global_factory",
                "get_global_factory",
                "close_global_factory",
            ],
        ),
        (
            "mongodb_session_manager",
            [
                "MongoDBSessionManager",
                "MongoDBSessionRepository",
                "MongoDBConnectionPool",
                "MongoDBSessionManagerFactory",
                "GUARDRAIL_STOP_REASONS",
                "GUARDRAIL_ACTION_BLOCKED",
                "create_mongodb_session_manager",
                "initialize_global_factory",
                "get_global_factory",
                "close_global_factory",
                "__version__",
                "is_feedback_sns_hook_available",
                "is_metadata_sqs_hook_available",
                "is_metadata_websocket_hook_available",
                "create_feedback_sns_hook",
                "create_metadata_sqs_hook",
                "create_metadata_websocket_hook",
                "FeedbackSNSHook",
                "MetadataSQSHook",
                "MetadataWebSocketHook",
            ],
        ),
    ],
)
def test_the_original_module_paths_expose_the_original_names(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    missing = [name for name in names if not hasattr(imported, name)]
    assert missing == []
    # The re-exports are the package's own objects, not copies.
    for name in names:
        if module != "mongodb_session_manager.hooks" and name != "__version__":
            assert getattr(imported, name) is getattr(mongodb_session_manager, name)


def test_version_and_guardrail_constants() -> None:
    assert isinstance(mongodb_session_manager.__version__, str)
    assert mongodb_session_manager.__version__
    assert GUARDRAIL_ACTION_BLOCKED == "BLOCKED"
    assert frozenset({"guardrail_intervened", "content_filtered"}) == GUARDRAIL_STOP_REASONS
    assert isinstance(GUARDRAIL_STOP_REASONS, frozenset)


# -- create_mongodb_session_manager and the constructor -------------------------------------------


def test_create_mongodb_session_manager_creates_the_session_with_its_application_name(
    legacy: MongoDBSessionManager,
) -> None:
    # As in the earlier library, the session exists once the manager is built.
    document = legacy.session_repository.collection.find_one({"_id": "legacy-1"})
    assert document is not None
    assert document["application_name"] == "support-bot"
    assert legacy.get_application_name() == "support-bot"


def test_create_mongodb_session_manager_costs_one_round_trip_and_a_factory_manager_none(
    mongodb_uri: str, db_name: str, factory: MongoDBSessionManagerFactory, commands: CommandRecorder
) -> None:
    recorder = CommandRecorder(only=DATA_COMMANDS)
    manager = create_mongodb_session_manager("rt", mongodb_uri, db_name, COLLECTION, event_listeners=[recorder])
    try:
        assert recorder.take() == ["findAndModify"]  # the session is read or created, as the original did
    finally:
        manager.close()
    commands.take()
    factory.create_session_manager("rt")
    assert commands.take() == []


def test_create_mongodb_session_manager_with_a_borrowed_sync_client(mongodb_uri: str, db_name: str) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
    try:
        manager = create_mongodb_session_manager("borrowed", client=client, database_name=db_name)
        assert manager.get_application_name() is None
        assert manager.session_repository.client is client
        assert client[db_name]["collection_name"].find_one({"_id": "borrowed"}) is not None
        manager.close()
        assert client[db_name]["collection_name"].count_documents({}) == 1  # the borrowed client stays open
    finally:
        client.close()


def test_deprecated_camel_case_hooks_warn_and_are_used(mongodb_uri: str, db_name: str) -> None:
    seen: list[str] = []

    def hook(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        seen.append(action)
        return original_func(*kwargs.values()) if kwargs else original_func()

    def feedback(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        seen.append(action)
        return original_func(kwargs["feedback"])

    with pytest.warns(DeprecationWarning, match="Hook= is deprecated") as caught:
        manager = MongoDBSessionManager(
            "camel", mongodb_uri, db_name, COLLECTION, metadataHook=hook, feedbackHook=feedback
        )
    assert sorted(str(warning.message).split("=")[0] for warning in caught) == ["feedbackHook", "metadataHook"]
    try:
        manager.update_metadata({"a": 1})
        manager.add_feedback({"rating": "up"})
        assert seen == ["update", "add"]
    finally:
        manager.close()


@pytest.mark.parametrize(
    "kwargs",
    [{"maxPoolSise": 5}, {"metadata_hooks": print}, {"serverSelectionTimeoutMS": "soon"}],
    ids=["typo-option", "typo-argument", "bad-value"],
)
def test_unknown_keywords_are_refused_up_front(
    mongodb_uri: str, db_name: str, factory: MongoDBSessionManagerFactory, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidInputError, match=next(iter(kwargs))):
        MongoDBSessionManager("typo", mongodb_uri, db_name, **kwargs)
    with pytest.raises(InvalidInputError, match=next(iter(kwargs))):
        create_mongodb_session_manager("typo", mongodb_uri, db_name, **kwargs)
    with pytest.raises(InvalidInputError):
        factory.create_session_manager("typo", **kwargs)
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
    try:
        with pytest.raises(InvalidInputError):
            MongoDBSessionManager("typo", client=client, database_name=db_name, **kwargs)
    finally:
        client.close()


# -- session_repository -----------------------------------------------------------------------------


def test_session_repository_exposes_blocking_pymongo_objects(legacy: MongoDBSessionManager, db_name: str) -> None:
    repository = legacy.session_repository
    assert isinstance(repository, MongoDBSessionRepository)
    assert isinstance(repository.client, MongoClient)
    assert repository.database.name == db_name
    assert repository.collection.name == COLLECTION
    assert repository.metadata_fields == []
    # Direct PyMongo calls, as code written for the earlier library makes them.
    repository.collection.update_one({"_id": "legacy-1"}, {"$set": {"metadata.flag": "set-directly"}})
    assert legacy.get_metadata()["metadata"]["flag"] == "set-directly"


def test_factory_managers_have_a_session_repository_too(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("from-factory", metadata_fields=["priority"])
    repository = manager.session_repository
    assert repository.metadata_fields == ["priority"]
    assert repository.collection.find_one({"_id": "from-factory"}) is not None
    assert manager.session_repository.client is factory.create_session_manager("x").session_repository.client


# -- metadata ---------------------------------------------------------------------------------------


def test_get_metadata_returns_the_original_shape(legacy: MongoDBSessionManager) -> None:
    assert legacy.get_metadata() == {"_id": "legacy-1", "metadata": {}}
    legacy.update_metadata({"status": "active", "priority": "high"})
    assert legacy.get_metadata() == {"_id": "legacy-1", "metadata": {"status": "active", "priority": "high"}}
    # The documented reading pattern.
    assert legacy.get_metadata().get("metadata", {})["status"] == "active"
    legacy.delete_metadata(["priority"])
    assert legacy.get_metadata()["metadata"] == {"status": "active"}


@pytest.mark.anyio
async def test_get_metadata_async_returns_the_original_shape(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("async-shape")
    assert await manager.get_metadata_async() == {"_id": "async-shape", "metadata": {}}
    await manager.update_metadata_async({"k": "v"})
    assert await manager.get_metadata_async() == {"_id": "async-shape", "metadata": {"k": "v"}}


def test_metadata_and_feedback_hooks_get_the_original_keyword_arguments(
    factory: MongoDBSessionManagerFactory,
) -> None:
    calls: list[tuple[str, str, dict[str, Any]]] = []

    def metadata_hook(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        calls.append((action, session_id, dict(kwargs)))
        if action == "update":
            return original_func(kwargs["metadata"])
        if action == "delete":
            return original_func(kwargs["keys"])
        return original_func()

    def feedback_hook(original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
        calls.append((action, session_id, dict(kwargs)))
        return original_func(kwargs["feedback"])

    manager = factory.create_session_manager("hooks", metadata_hook=metadata_hook, feedback_hook=feedback_hook)
    manager.update_metadata({"a": 1})
    assert manager.get_metadata()["metadata"] == {"a": 1}
    manager.delete_metadata(["a"])
    manager.add_feedback({"rating": "down", "comment": "slow"})

    assert [(action, session_id) for action, session_id, _ in calls] == [
        ("update", "hooks"),
        ("get", "hooks"),
        ("delete", "hooks"),
        ("add", "hooks"),
    ]
    assert calls[0][2] == {"metadata": {"a": 1}}
    assert calls[1][2] == {}
    assert calls[2][2] == {"keys": ["a"]}
    assert calls[3][2]["feedback"] == {"rating": "down", "comment": "slow"}
    assert calls[3][2]["session_manager"] is manager
    feedbacks = manager.get_feedbacks()
    assert [(item["rating"], item["comment"]) for item in feedbacks] == [("down", "slow")]
    assert "created_at" in feedbacks[0]


# -- the manage_metadata tool -----------------------------------------------------------------------


def test_metadata_tool_called_directly_by_user_code(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("tool-direct")
    manage = manager.get_metadata_tool()
    assert manage.tool_name == "manage_metadata"

    result = manage(action="set", metadata={"priority": "high", "category": "support"})
    assert isinstance(result, str)
    assert manager.get_metadata()["metadata"] == {"priority": "high", "category": "support"}  # stored now

    manage(action="update", metadata=json.dumps({"status": "open"}))  # JSON text, as models send it
    assert manager.get_metadata()["metadata"]["status"] == "open"

    everything = manage(action="get")
    assert all(word in everything for word in ("priority", "high", "category", "status"))
    only = manage(action="GET", keys=["priority"])
    assert "priority" in only
    assert "category" not in only
    assert "priority" in manage(action="get", keys='["priority"]')

    manage(action="delete", keys=["category"])
    assert "category" not in manager.get_metadata()["metadata"]

    for bad in (
        manage(action="rename"),
        manage(action="set"),
        manage(action="set", metadata="{not json"),
        manage(action="delete"),
        manage(action="set", metadata={"$where": "1"}),
    ):
        assert isinstance(bad, str)
        assert bad.startswith("Error")
    assert manager.get_metadata()["metadata"] == {"priority": "high", "status": "open"}


@pytest.mark.anyio
async def test_metadata_tool_called_directly_inside_async_code(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("tool-in-async")
    result = manager.get_metadata_tool()(action="set", metadata={"from": "async"})
    assert isinstance(result, str)  # a result, not an un-awaited coroutine
    assert (await manager.get_metadata_async())["metadata"] == {"from": "async"}


@pytest.mark.anyio
async def test_an_agent_uses_the_metadata_tool(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("tool-agent")
    model = ScriptedModel(
        [
            tool_call("manage_metadata", {"action": "set", "metadata": '{"topic": "billing"}'}),
            tool_call("manage_metadata", {"action": "get", "keys": ["topic"]}),
            "Noted.",
        ]
    )
    agent = Agent(model=model, tools=[manager.get_metadata_tool()], session_manager=manager, callback_handler=None)
    await agent.invoke_async("Remember the topic.")
    results = [
        block["toolResult"] for message in agent.messages for block in message["content"] if "toolResult" in block
    ]
    assert [result["status"] for result in results] == ["success", "success"]
    assert "billing" in json.dumps(results[1]["content"])
    assert (await manager.get_metadata_async())["metadata"] == {"topic": "billing"}


# -- agent configuration ----------------------------------------------------------------------------

CONFIG_KEYS = {"agent_id", "model", "system_prompt", "prompt_metadata"}


def test_list_agents_and_get_agent_config_shapes(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("config")
    assert manager.list_agents() == []
    assert manager.get_agent_config("assistant") is None
    model = ScriptedModel(["hi"], model_id="claude-3-sonnet")
    Agent(model=model, agent_id="assistant", system_prompt="You are helpful", session_manager=manager)("hello")
    expected = {
        "agent_id": "assistant",
        "model": "claude-3-sonnet",
        "system_prompt": "You are helpful",
        "prompt_metadata": None,
    }
    assert manager.list_agents() == [expected]
    assert manager.get_agent_config("assistant") == expected


def test_update_agent_config_and_set_prompt_metadata(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("config-update")
    Agent(model=ScriptedModel(["hi"]), agent_id="a1", session_manager=manager)("hello")

    manager.update_agent_config("a1", model="claude-3-opus")
    manager.update_agent_config("a1", system_prompt="You are an expert coder")
    lineage = {
        "prompt_id": "prompt-abc",
        "prompt_name": "Customer Support V2",
        "prompt_version": "1.2.0",
        "deployment_id": "deploy-xyz",
        "deployment_name": "production",
        "temperature": 0.2,
    }
    manager.set_prompt_metadata("a1", lineage)
    assert manager.get_agent_config("a1") == {
        "agent_id": "a1",
        "model": "claude-3-opus",
        "system_prompt": "You are an expert coder",
        "prompt_metadata": lineage,
    }
    manager.update_agent_config("a1")  # nothing to change: no error, nothing written
    with pytest.raises(NotFoundError):
        manager.update_agent_config("nobody", model="x")
    with pytest.raises(InvalidInputError):
        manager.set_prompt_metadata("a1", "not a dict")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_agent_config_awaitable_twins(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("config-async")
    await manager.load_async()
    agent = Agent(model=ScriptedModel(["hi"]), agent_id="a", session_manager=manager, callback_handler=None)
    await agent.invoke_async("hello")
    await manager.update_agent_config_async("a", system_prompt="terse")
    await manager.set_prompt_metadata_async("a", {"prompt_id": "p1"})
    config = await manager.get_agent_config_async("a")
    assert config == {
        "agent_id": "a",
        "model": "scripted",
        "system_prompt": "terse",
        "prompt_metadata": {"prompt_id": "p1"},
    }
    assert await manager.list_agents_async() == [config]
    assert await manager.get_application_name_async() is None
    assert await manager.get_session_viewer_password_async()


def test_model_and_system_prompt_are_captured_only_when_they_change(
    factory: MongoDBSessionManagerFactory, commands: CommandRecorder
) -> None:
    manager = factory.create_session_manager("capture")
    agent = Agent(
        model=ScriptedModel(["one", "two", "three", "four"], model_id="model-a"),
        system_prompt="first prompt",
        session_manager=manager,
        callback_handler=None,
    )
    assert manager.get_agent_config("default")["model"] == "model-a"  # type: ignore[index]
    commands.take()

    agent("turn 1")
    assert set(commands.take()) == {"insert"}  # nothing changed: the two messages only

    agent.system_prompt = "second prompt"
    agent("turn 2")
    names = commands.take()
    assert set(names) == {"insert", "update"}
    assert names.count("update") == 1  # one write for the new prompt
    assert manager.get_agent_config("default")["system_prompt"] == "second prompt"  # type: ignore[index]
    commands.take()

    agent("turn 3")
    assert set(commands.take()) == {"insert"}

    # A later request restoring the same agent writes no configuration either.
    again = factory.create_session_manager("capture")
    restored = Agent(
        model=ScriptedModel(["five"], model_id="model-a"),
        system_prompt="second prompt",
        session_manager=again,
        callback_handler=None,
    )
    commands.take()
    restored("turn 4")
    assert set(commands.take()) == {"insert"}


# -- legacy session fields --------------------------------------------------------------------------


def test_session_viewer_password_is_generated_kept_and_never_logged(
    legacy: MongoDBSessionManager, mongodb_uri: str, db_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="mongodb_session_manager"):
        password = legacy.get_session_viewer_password()
        assert isinstance(password, str)
        assert len(password) > 20
        same = create_mongodb_session_manager("legacy-1", mongodb_uri, db_name, COLLECTION)
        other = create_mongodb_session_manager("legacy-2", mongodb_uri, db_name, COLLECTION)
        try:
            assert same.get_session_viewer_password() == password
            assert other.get_session_viewer_password() not in (None, password)
        finally:
            same.close()
            other.close()
    ours = [record.getMessage() for record in caplog.records if record.name.startswith("mongodb_session_manager")]
    assert ours  # the library did log (at DEBUG) while doing this
    assert not any(password in message for message in ours)
    assert password not in repr(legacy)


def test_get_application_name(factory: MongoDBSessionManagerFactory) -> None:
    labelled = factory.create_session_manager("app", application_name="custom-app")
    assert labelled.get_application_name() == "custom-app"  # before the session exists: the one it will get
    labelled.update_metadata({"k": 1})
    assert factory.create_session_manager("app").get_application_name() == "custom-app"
    assert factory.create_session_manager("no-app").get_application_name() is None


# -- sync_agent and redact_latest_message -----------------------------------------------------------


def test_sync_agent_records_an_agent_the_manager_did_not_initialize(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("adopt")
    outsider = Agent(model=ScriptedModel(["hi"]), agent_id="outsider", system_prompt="Be brief", callback_handler=None)
    outsider("hello")
    outsider.state.set("k", "v")
    manager.sync_agent(outsider)

    assert manager.get_agent_config("outsider") == {
        "agent_id": "outsider",
        "model": "scripted",
        "system_prompt": "Be brief",
        "prompt_metadata": None,
    }
    restored = Agent(
        model=ScriptedModel([]), agent_id="outsider", session_manager=factory.create_session_manager("adopt")
    )
    assert restored.state.get("k") == "v"
    assert restored.messages == outsider.messages


def test_sync_agent_takes_over_a_stored_agent_without_restoring_it(factory: MongoDBSessionManagerFactory) -> None:
    Agent(model=ScriptedModel(["hi"]), agent_id="shared", session_manager=factory.create_session_manager("takeover"))(
        "hello"
    )
    manager = factory.create_session_manager("takeover")
    fresh = Agent(model=ScriptedModel([]), agent_id="shared", state={"from": "fresh"}, callback_handler=None)
    manager.sync_agent(fresh)
    assert manager.get_message_count("shared") == 2  # the stored messages are kept
    restored = Agent(
        model=ScriptedModel([]), agent_id="shared", session_manager=factory.create_session_manager("takeover")
    )
    assert restored.state.get() == {"from": "fresh"}


def test_redact_latest_message_stores_the_guardrail_details(
    factory: MongoDBSessionManagerFactory, mongodb_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    db = mongodb_client[db_name]
    manager = factory.create_session_manager("guarded")
    agent = Agent(model=ScriptedModel(["sure"]), session_manager=manager, callback_handler=None)
    agent("my card is 4111")
    trace = {"inputAssessment": {"contentPolicy": {"filters": [{"type": "HATE", "confidence": "HIGH"}]}}}
    redacted = {"role": "assistant", "content": [{"text": "[redacted]"}]}
    manager.redact_latest_message(redacted, agent, stop_reason="guardrail_intervened", guardrail_trace=trace)

    stored = db[COLLECTION + ".messages"].find_one({"session_id": "guarded", "message_id": 1})
    assert stored["redact_message"] == redacted
    assert stored["redaction"]["action"] == GUARDRAIL_ACTION_BLOCKED
    assert stored["redaction"]["stop_reason"] == "guardrail_intervened"
    assert stored["redaction"]["guardrail_trace"] == trace
    restored = Agent(model=ScriptedModel([]), session_manager=factory.create_session_manager("guarded"))
    assert restored.messages[-1] == redacted


# -- repository -------------------------------------------------------------------------------------


def test_repository_constructor_attributes_and_legacy_reads(mongodb_uri: str, db_name: str) -> None:
    repository = MongoDBSessionRepository(
        connection_string=mongodb_uri,
        database_name=db_name,
        collection_name=COLLECTION,
        metadata_fields=["priority"],
        application_name="integration",
    )
    try:
        assert repository.collection.name == COLLECTION
        assert repository.database.name == db_name
        assert repository.metadata_fields == ["priority"]
        created = repository.create_session(Session(session_id="r1", session_type="chat"))  # type: ignore[arg-type]
        assert created.session_id == "r1"
        assert repository.read_session("r1").session_type == "chat"  # type: ignore[union-attr]
        repository.create_session(Session(session_id="r2", session_type=SessionType.AGENT))
        assert repository.read_session("r2").session_type is SessionType.AGENT  # type: ignore[union-attr]
        with pytest.raises(InvalidInputError):
            repository.create_session(Session(session_id="r3", session_type=3))  # type: ignore[arg-type]

        assert repository.get_metadata("r1") == {"_id": "r1", "metadata": {}}
        repository.update_metadata("r1", {"priority": "high"})
        assert repository.get_metadata("r1") == {"_id": "r1", "metadata": {"priority": "high"}}
        assert repository.get_metadata("missing") is None
        assert len(repository.get_session_viewer_password("r1") or "") > 20
        assert repository.get_session_viewer_password("missing") is None
        assert repository.get_application_name("r1") == "integration"
        assert repository.get_application_name("missing") is None
        index_keys = [index["key"] for index in repository.collection.index_information().values()]
        assert [("application_name", 1)] in index_keys
        assert [("metadata.priority", 1)] in index_keys
    finally:
        repository.close()


def test_repository_errors_are_typed(mongodb_uri: str, db_name: str) -> None:
    with pytest.raises(MongoDBSessionError):
        MongoDBSessionRepository(database_name=db_name)  # neither a connection string nor a client
    with pytest.raises(MongoDBSessionError):
        MongoDBSessionRepository(mongodb_uri, db_name, COLLECTION, maxPoolSise=3)


# -- factory, application names and the global factory ---------------------------------------------


def test_factory_application_name_default_and_override(
    factory: MongoDBSessionManagerFactory, mongodb_uri: str, db_name: str
) -> None:
    labelled = MongoDBSessionManagerFactory(
        connection_string=mongodb_uri, database_name=db_name, collection_name=COLLECTION, application_name="default-app"
    )
    try:
        assert labelled.application_name == "default-app"
        first = labelled.create_session_manager("f1")
        first.update_metadata({"k": 1})
        assert first.get_application_name() == "default-app"
        second = labelled.create_session_manager("f2", application_name="custom-app")
        second.update_metadata({"k": 2})
        assert second.get_application_name() == "custom-app"
        stored = {doc["_id"]: doc["application_name"] for doc in first.session_repository.collection.find({})}
        assert stored == {"f1": "default-app", "f2": "custom-app"}
    finally:
        labelled.close()


def test_sessions_without_an_application_name_stay_readable(factory: MongoDBSessionManagerFactory) -> None:
    plain = factory.create_session_manager("unlabelled")
    agent = Agent(model=ScriptedModel(["answer"]), state={"step": 1}, session_manager=plain, callback_handler=None)
    agent("question")
    plain.update_metadata({"owner": "nobody"})

    labelled = factory.create_session_manager("unlabelled", application_name="support-bot")
    assert labelled.get_metadata()["metadata"] == {"owner": "nobody"}
    restored = Agent(model=ScriptedModel(["more"]), session_manager=labelled, callback_handler=None)
    assert restored.messages == agent.messages
    assert restored.state.get() == {"step": 1}
    restored("follow-up")
    assert labelled.get_message_count("default") == 4
    assert labelled.get_application_name() is None  # the label is set at creation only

    # Strict isolation is opt-in.
    isolated = factory.create_session_manager("unlabelled", application_name="support-bot", isolate_application=True)
    assert isolated.get_metadata()["metadata"] == {}
    assert isolated.list_agents() == []


def test_global_factory_with_application_name(mongodb_uri: str, db_name: str) -> None:
    try:
        created = initialize_global_factory(
            connection_string=mongodb_uri, database_name=db_name, application_name="global-app"
        )
        assert get_global_factory() is created
        assert created.collection_name == "virtualagent_sessions"  # this project's default (see docs/migration.md)
        manager = get_global_factory().create_session_manager("g1")
        manager.update_metadata({"k": 1})
        assert manager.get_application_name() == "global-app"
    finally:
        close_global_factory()
    assert factory_module._global_factory is None
    with pytest.raises(RuntimeError):
        get_global_factory()


def test_everything_the_compat_layer_raises_is_a_library_error(factory: MongoDBSessionManagerFactory) -> None:
    manager = factory.create_session_manager("errors")
    failures = [
        lambda: manager.update_agent_config("ghost", model="m"),
        lambda: manager.set_prompt_metadata("ghost", []),  # type: ignore[arg-type]
        lambda: manager.update_agent_config("bad id\x00", model="m"),
        lambda: factory.create_session_manager("e", isolate_application=True),
    ]
    for failure in failures:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(MongoDBSessionError):
                failure()


def test_the_compat_reads_answer_for_a_session_stored_by_the_original(
    factory: MongoDBSessionManagerFactory, mongodb_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    legacy_session = conversation_session("stored-by-v091", application_name="support-bot")
    mongodb_client[db_name][COLLECTION].insert_one(legacy_session.build())
    manager = factory.create_session_manager("stored-by-v091")

    support = {
        "agent_id": "support",
        "model": "scripted-model",
        "system_prompt": "You are helpful.",
        "prompt_metadata": {"prompt_id": "p-1", "prompt_version": "1.2.0"},
    }
    assert manager.get_agent_config("support") == support
    assert [agent["agent_id"] for agent in manager.list_agents()] == ["support", "triage"]
    assert manager.get_metadata()["metadata"]["priority"] == "high"
    assert manager.get_session_viewer_password() == legacy_session.viewer_password
    assert manager.get_application_name() == "support-bot"

    manager.set_prompt_metadata("support", {"prompt_id": "p-2"})  # a write: the session is migrated first
    assert manager.get_agent_config("support")["prompt_metadata"] == {"prompt_id": "p-2"}  # type: ignore[index]
    assert manager.get_agent_config("support")["model"] == "scripted-model"  # type: ignore[index]


@pytest.mark.anyio
async def test_ensure_session_creates_the_session_once(
    factory: MongoDBSessionManagerFactory, commands: CommandRecorder
) -> None:
    manager = factory.create_session_manager("ensured", application_name="app")
    commands.take()
    await manager.ensure_session_async()
    assert commands.take() == ["findAndModify"]
    await manager.ensure_session_async()
    manager.ensure_session()
    assert commands.take() == []  # the manager holds the session now
    assert await manager.get_session_viewer_password_async()
    assert await manager.get_application_name_async() == "app"
