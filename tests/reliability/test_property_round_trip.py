"""Property-based round trips (Hypothesis): what is written is what is read back, exactly.

Random Strands messages (unicode text without lone surrogates, nested tool-input JSON, tool results,
images and documents with raw bytes) go through the repository and through a restored ``Agent``;
random metadata goes through the session manager. Bounded: 50 examples each, no deadline.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import COLLECTION
from strands import Agent
from strands.agent.conversation_manager import NullConversationManager
from strands.types.session import SessionMessage

from mongodb_session_manager import MongoDBSessionManagerFactory, MongoDBSessionRepository
from mongodb_session_manager.scripted_model import ScriptedModel

SETTINGS = settings(
    max_examples=50,
    database=None,  # no example database written into the working tree
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Text: any Unicode scalar value (lone surrogates cannot be encoded as UTF-8, so they are excluded).
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
# Keys inside message content may be anything a model produces, including "$ref" and dotted names;
# only NUL cannot appear in a BSON key.
content_key = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
json_scalar = (
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.floats(allow_nan=False) | text
)
json_value = st.recursive(
    json_scalar,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(content_key, children, max_size=4),
    max_leaves=20,
)
raw_bytes = st.binary(max_size=256)

text_block = st.builds(lambda value: {"text": value}, text)
tool_use_block = st.builds(
    lambda tool_id, name, tool_input: {"toolUse": {"toolUseId": tool_id, "name": name, "input": tool_input}},
    text,
    text,
    st.dictionaries(content_key, json_value, max_size=5),
)
tool_result_block = st.builds(
    lambda tool_id, status, parts: {"toolResult": {"toolUseId": tool_id, "status": status, "content": parts}},
    text,
    st.sampled_from(["success", "error"]),
    st.lists(st.builds(lambda value: {"text": value}, text) | st.builds(lambda value: {"json": value}, json_value)),
)
image_block = st.builds(
    lambda image_format, data: {"image": {"format": image_format, "source": {"bytes": data}}},
    st.sampled_from(["png", "jpeg", "gif", "webp"]),
    raw_bytes,
)
document_block = st.builds(
    lambda name, data: {"document": {"format": "pdf", "name": name, "source": {"bytes": data}}}, text, raw_bytes
)
message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant"]),
        "content": st.lists(
            text_block | tool_use_block | tool_result_block | image_block | document_block, min_size=1, max_size=4
        ),
    }
)

# Metadata keys: what the library accepts (no leading "$", no ".", no NUL, not empty).
metadata_key = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00."), min_size=1, max_size=16
).filter(lambda key: not key.startswith("$"))
metadata_scalar = json_scalar | raw_bytes
metadata_value = st.recursive(
    metadata_scalar,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(metadata_key, children, max_size=3),
    max_leaves=12,
)
metadata = st.dictionaries(metadata_key, metadata_value, min_size=1, max_size=6)


# Module-scoped fixtures: Hypothesis runs every example inside one test call.


@pytest.fixture(scope="module")
def database(mongodb_client: Any) -> Iterator[str]:
    name = f"t_property_{uuid.uuid4().hex[:8]}"
    yield name
    mongodb_client.drop_database(name)


@pytest.fixture(scope="module")
def repository(mongodb_uri: str, database: str) -> Iterator[MongoDBSessionRepository]:
    repository = MongoDBSessionRepository(mongodb_uri, database_name=database, collection_name=COLLECTION)
    yield repository
    repository.core.runtime.close()


@pytest.fixture(scope="module")
def factory(mongodb_uri: str, database: str) -> Iterator[MongoDBSessionManagerFactory]:
    factory = MongoDBSessionManagerFactory(mongodb_uri, database_name=database, collection_name=COLLECTION)
    yield factory
    factory.close()


@SETTINGS
@given(messages=st.lists(message, min_size=1, max_size=5))
def test_random_messages_round_trip_through_the_repository(
    repository: MongoDBSessionRepository, messages: list[dict[str, Any]]
) -> None:
    session_id = uuid.uuid4().hex
    written = [SessionMessage(message=value, message_id=index) for index, value in enumerate(messages)]
    for item in written:
        repository.create_message(session_id, "agent", item)

    assert repository.list_messages(session_id, "agent") == written
    assert repository.read_message(session_id, "agent", len(written) - 1) == written[-1]
    assert [item.to_message() for item in repository.list_messages(session_id, "agent")] == messages


@SETTINGS
@given(messages=st.lists(message, min_size=1, max_size=5))
def test_random_messages_round_trip_through_an_agent_session(
    factory: MongoDBSessionManagerFactory, messages: list[dict[str, Any]]
) -> None:
    # Tool uses without their results would be repaired by Strands on restore: keep only complete data.
    plain = [
        {"role": value["role"], "content": [block for block in value["content"] if not _is_tool_block(block)]}
        for value in messages
    ]
    plain = [value for value in plain if value["content"]]
    if not plain:
        return
    session_id = uuid.uuid4().hex
    Agent(
        model=ScriptedModel([]),
        messages=plain,
        session_manager=factory.create_session_manager(session_id),
        conversation_manager=NullConversationManager(),
        callback_handler=None,
    )
    restored = Agent(
        model=ScriptedModel([]),
        session_manager=factory.create_session_manager(session_id),
        conversation_manager=NullConversationManager(),
        callback_handler=None,
    )
    assert restored.messages == plain


def _is_tool_block(block: dict[str, Any]) -> bool:
    return "toolUse" in block or "toolResult" in block


@SETTINGS
@given(values=metadata)
def test_random_metadata_round_trips_through_the_session_manager(
    factory: MongoDBSessionManagerFactory, values: dict[str, Any]
) -> None:
    manager = factory.create_session_manager(uuid.uuid4().hex)
    manager.update_metadata(values)
    assert manager.get_metadata()["metadata"] == values
    # A second update merges: the keys it does not name are kept.
    manager.update_metadata({"added-later": True})
    assert manager.get_metadata()["metadata"] == {**values, "added-later": True}
