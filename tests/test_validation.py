"""Unit tests of the input validation (no database)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from strands.types.exceptions import SessionException

from mongodb_session_manager._validation import (
    MAX_ID_LENGTH,
    MAX_METADATA_DEPTH,
    MAX_METADATA_KEY_LENGTH,
    flatten_metadata_update,
    validate_field_names,
    validate_id,
    validate_message_id,
    validate_metadata_key,
    validate_metadata_keys,
    validate_name,
)
from mongodb_session_manager.errors import InvalidIdError, InvalidInputError, InvalidMetadataError


def nested(levels: int, leaf: Any = 1) -> Any:
    """``levels`` dicts, one inside the other, around ``leaf``."""
    value = leaf
    for _ in range(levels):
        value = {"k": value}
    return value


# -- ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "a",
        "session-123",
        "x" * MAX_ID_LENGTH,
        "😀" * MAX_ID_LENGTH,  # the limit counts characters, not bytes
        "会话 שלום e\u0301",
        "a$b",
        "a.b",
        "with space",
        "ends-with-$",
        " leading-space",
    ],
)
def test_valid_ids_are_returned_unchanged(value: str) -> None:
    assert validate_id(value, "session") is value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        (5, "must be a str"),
        (None, "must be a str"),
        (b"bytes", "must be a str"),
        ({"$ne": ""}, "must be a str"),
        (["a"], "must be a str"),
        ("a\x00b", "NUL"),
        ("\x00", "NUL"),
        ("x" * (MAX_ID_LENGTH + 1), "limit is 256"),
        ("$where", "'$'"),
        ("$", "'$'"),
        ("\ud800", "surrogate"),
    ],
)
def test_invalid_ids_are_rejected(value: object, reason: str) -> None:
    with pytest.raises(InvalidIdError, match=re.escape(reason)) as caught:
        validate_id(value, "agent")
    assert "agent id" in str(caught.value)


def test_id_errors_are_value_errors_and_session_exceptions() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        validate_id("", "session")
    with pytest.raises(SessionException):
        validate_id(None, "session")
    assert issubclass(InvalidIdError, InvalidInputError)


def test_str_subclass_ids_are_accepted() -> None:
    class Name(str):
        pass

    assert validate_id(Name("abc"), "session") == "abc"


def test_long_invalid_values_are_shortened_in_messages() -> None:
    with pytest.raises(InvalidIdError) as caught:
        validate_id("$" + "x" * 10_000, "session")
    assert len(str(caught.value)) < 200


# -- message ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, 999, 2**63 - 1])
def test_valid_message_ids(value: int) -> None:
    assert validate_message_id(value) == value


@pytest.mark.parametrize("value", [-1, 2**63, 2**64, True, False, 1.0, "1", None, [0]])
def test_invalid_message_ids(value: object) -> None:
    with pytest.raises(InvalidIdError, match="message id"):
        validate_message_id(value)


# -- metadata keys --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["a", "customer_id", "a$", "ключ", "🔑", "k" * MAX_METADATA_KEY_LENGTH, " "])
def test_valid_metadata_keys(key: str) -> None:
    assert validate_metadata_key(key) == key


@pytest.mark.parametrize(
    "key",
    ["", "$set", "$", "a.b", ".", "x\x00", 5, None, ("a",), "k" * (MAX_METADATA_KEY_LENGTH + 1)],
)
def test_invalid_metadata_keys(key: object) -> None:
    with pytest.raises(InvalidMetadataError):
        validate_metadata_key(key)


def test_metadata_errors_are_value_errors_and_session_exceptions() -> None:
    with pytest.raises(ValueError, match="must not start with"):
        validate_metadata_key("$x")
    assert issubclass(InvalidMetadataError, SessionException)


# -- metadata merges ------------------------------------------------------------------------------


def test_flat_metadata_becomes_set_paths() -> None:
    assert flatten_metadata_update({"a": 1, "b": "two", "c": None, "d": [1, 2]}) == {
        "metadata.a": 1,
        "metadata.b": "two",
        "metadata.c": None,
        "metadata.d": [1, 2],
    }


def test_nested_metadata_merges_key_by_key() -> None:
    assert flatten_metadata_update({"customer": {"tier": "gold", "address": {"city": "Köln"}}, "n": 1}) == {
        "metadata.customer.tier": "gold",
        "metadata.customer.address.city": "Köln",
        "metadata.n": 1,
    }


def test_empty_dicts_are_stored_as_values() -> None:
    assert flatten_metadata_update({"empty": {}, "deep": {"also": {}}}) == {
        "metadata.empty": {},
        "metadata.deep.also": {},
    }


def test_an_empty_update_has_no_paths() -> None:
    assert flatten_metadata_update({}) == {}


def test_prefix_is_configurable() -> None:
    assert flatten_metadata_update({"a": {"b": 1}}, prefix="extra") == {"extra.a.b": 1}


def test_flatten_does_not_alias_the_callers_empty_dicts() -> None:
    empty: dict[str, Any] = {}
    paths = flatten_metadata_update({"e": empty})
    paths["metadata.e"]["added"] = 1
    assert empty == {}


def test_lists_of_dicts_are_kept_whole_but_their_keys_checked() -> None:
    assert flatten_metadata_update({"items": [{"sku": "a"}, {"sku": "b"}]}) == {
        "metadata.items": [{"sku": "a"}, {"sku": "b"}]
    }
    with pytest.raises(InvalidMetadataError):
        flatten_metadata_update({"items": [{"sku": "a"}, {"$where": "1"}]})
    with pytest.raises(InvalidMetadataError):
        flatten_metadata_update({"items": [[{"a.b": 1}]]})
    with pytest.raises(InvalidMetadataError):
        flatten_metadata_update({"items": ({"x\x00": 1},)})


@pytest.mark.parametrize("bad_key", ["$set", "a.b", "x\x00", "", 1])
@pytest.mark.parametrize("where", ["top", "nested", "deep", "in-list"])
def test_bad_keys_are_rejected_anywhere(bad_key: object, where: str) -> None:
    metadata = {
        "top": {bad_key: 1},
        "nested": {"ok": {bad_key: 1}},
        "deep": {"ok": nested(5, {bad_key: 1})},
        "in-list": {"ok": [1, {"fine": [{bad_key: 1}]}]},
    }[where]
    with pytest.raises(InvalidMetadataError):
        flatten_metadata_update({"valid": 1, **metadata})


def test_values_are_not_mistaken_for_keys() -> None:
    # Operator-like *values* are plain data: $set writes them literally.
    assert flatten_metadata_update({"query": "$where", "path": "a.b", "nul": "x\x00"}) == {
        "metadata.query": "$where",
        "metadata.path": "a.b",
        "metadata.nul": "x\x00",
    }


@pytest.mark.parametrize("metadata", [None, "a=1", [("a", 1)], 5])
def test_metadata_must_be_a_dict(metadata: object) -> None:
    with pytest.raises(InvalidMetadataError, match="must be a dict"):
        flatten_metadata_update(metadata)


def test_metadata_depth_limit() -> None:
    assert flatten_metadata_update(nested(MAX_METADATA_DEPTH)) == {
        "metadata." + ".".join(["k"] * MAX_METADATA_DEPTH): 1
    }
    with pytest.raises(InvalidMetadataError, match="deeper"):
        flatten_metadata_update(nested(MAX_METADATA_DEPTH + 1))
    # Lists count as levels too, so a value cannot hide its depth in them.
    deep_list: Any = 1
    for _ in range(MAX_METADATA_DEPTH + 1):
        deep_list = [deep_list]
    with pytest.raises(InvalidMetadataError, match="deeper"):
        flatten_metadata_update({"k": deep_list})


def test_self_referencing_metadata_is_rejected() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = [loop]
    with pytest.raises(InvalidMetadataError):
        flatten_metadata_update({"loop": loop})


# -- key lists for delete_metadata -----------------------------------------------------------------


def test_metadata_key_lists() -> None:
    assert validate_metadata_keys(["a", "b"]) == ["a", "b"]
    assert validate_metadata_keys(("a",)) == ["a"]
    assert validate_metadata_keys(key for key in ["g"]) == ["g"]
    assert validate_metadata_keys([]) == []


@pytest.mark.parametrize("keys", ["abc", b"abc", None, 5, ["ok", "a.b"], ["$unset"], [None]])
def test_invalid_metadata_key_lists(keys: object) -> None:
    with pytest.raises(InvalidMetadataError):
        validate_metadata_keys(keys)


# -- indexed metadata field names ------------------------------------------------------------------


def test_field_names() -> None:
    assert validate_field_names(None) == []
    assert validate_field_names([]) == []
    assert validate_field_names(["customer", "priority"]) == ["customer", "priority"]
    assert validate_field_names(("a",)) == ["a"]


@pytest.mark.parametrize("fields", ["customer", b"customer", 5, ["ok", "$bad"], ["a.b"], [""], [1]])
def test_invalid_field_names(fields: object) -> None:
    with pytest.raises(InvalidMetadataError):
        validate_field_names(fields)


# -- database and collection names ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("db", "database_name"),
        ("my_db-1", "database_name"),
        ("sessions", "collection_name"),
        ("a.b", "collection_name"),
    ],
)
def test_valid_names(value: str, kind: str) -> None:
    assert validate_name(value, kind) == value


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("", "database_name"),
        (None, "database_name"),
        (5, "collection_name"),
        ("a.b", "database_name"),
        ("a/b", "database_name"),
        ("a b", "database_name"),
        ('a"b', "database_name"),
        ("a$b", "database_name"),
        ("a\\b", "database_name"),
        ("$cmd", "collection_name"),
        ("a\x00b", "collection_name"),
    ],
)
def test_invalid_names(value: object, kind: str) -> None:
    with pytest.raises(InvalidInputError, match=kind):
        validate_name(value, kind)
