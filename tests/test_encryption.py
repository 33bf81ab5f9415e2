"""Client-side field level encryption: nothing sensitive stored in clear, exact restore, erasure on delete.

Every test runs against the real test server with PyMongo's explicit encryption (libmongocrypt from
``pymongocrypt``) and a local master key; the key vault lives in the test's own database.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import bson
import pytest
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.encryption import ClientEncryption
from pymongo.errors import EncryptionError as DriverEncryptionError
from strands import Agent, tool
from strands.types.exceptions import StorageError
from strands.types.session import Session, SessionMessage, SessionType

from mongodb_session_manager import (
    AsyncMongoDBSessionRepository,
    EncryptionOptions,
    EncryptionRequiredError,
    InvalidInputError,
    MasterKeyError,
    MongoDBSessionManagerFactory,
    MongoDBSessionRepository,
    MongoDBStorage,
    SessionCatalog,
    SessionErasedError,
)
from mongodb_session_manager.cli import main as cli_main
from mongodb_session_manager.scripted_model import ScriptedModel, redact, tool_call
from mongodb_session_manager.testing import CommandRecorder

SECRET_USER = "my card is 4111-1111-1111-1111 SECRET-USER"
SECRET_TOOL = "SECRET-TOOL-RESULT"
SECRET_ANSWER = "SECRET-ANSWER"
SECRET_STATE = "SECRET-STATE"
SECRET_FEEDBACK = "SECRET-FEEDBACK"
SECRET_METADATA = "SECRET-METADATA"
MARKERS = (b"4111-1111", b"SECRET-")


@tool
def lookup(order_id: str) -> str:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    return f"order {order_id}: {SECRET_TOOL}"


@pytest.fixture
def master_key() -> bytes:
    return os.urandom(96)


@pytest.fixture
def options(db_name: str, master_key: bytes) -> EncryptionOptions:
    return EncryptionOptions(
        kms_providers={"local": {"key": master_key}},
        key_vault_namespace=f"{db_name}.__keyVault",
        metadata_fields=["card"],
    )


@pytest.fixture
def encrypted_factory(
    mongodb_uri: str, db_name: str, options: EncryptionOptions
) -> Iterator[MongoDBSessionManagerFactory]:
    with MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name="sessions", encryption=options
    ) as factory:
        yield factory


def plaintext_hits(client: MongoClient[dict[str, Any]], db_name: str) -> list[str]:
    """Every collection of the test's database (GridFS chunks and the key vault included) whose raw
    BSON contains one of the secret markers."""
    hits = []
    database = client[db_name]
    for name in database.list_collection_names():
        for document in database[name].find():
            raw = bson.encode(document)
            hits += [f"{name}: {marker!r}" for marker in MARKERS if marker in raw]
    return hits


def stored_count(client: MongoClient[dict[str, Any]], db_name: str) -> int:
    return sum(client[db_name][name].count_documents({}) for name in client[db_name].list_collection_names())


def run_conversation(factory: MongoDBSessionManagerFactory, session_id: str) -> Agent:
    manager = factory.create_session_manager(session_id)
    agent = Agent(
        model=ScriptedModel([tool_call("lookup", {"order_id": "42"}), SECRET_ANSWER, "second answer"]),
        tools=[lookup],
        session_manager=manager,
        callback_handler=None,
        agent_id="support",
    )
    agent.state.set("note", SECRET_STATE)
    agent(SECRET_USER)
    agent("and one more question")
    manager.add_feedback({"rating": "down", "comment": SECRET_FEEDBACK})
    manager.update_metadata({"card": {"last4": SECRET_METADATA}, "priority": "high"})
    return agent


def test_nothing_sensitive_is_stored_in_clear_and_restore_is_exact(
    encrypted_factory: MongoDBSessionManagerFactory,
    mongodb_uri: str,
    mongodb_client: MongoClient[dict[str, Any]],
    db_name: str,
    options: EncryptionOptions,
) -> None:
    agent = run_conversation(encrypted_factory, "alice")

    assert plaintext_hits(mongodb_client, db_name) == []
    stored = mongodb_client[db_name]["sessions.messages"].find_one({"session_id": "alice", "message_id": 0})
    assert stored is not None
    assert isinstance(stored["message"], bson.Binary)
    assert stored["message"].subtype == 6
    # What listing, retention and analytics need stays in clear.
    session = mongodb_client[db_name]["sessions"].find_one({"_id": "alice"})
    assert session is not None
    assert session["metadata"]["priority"] == "high"
    assert session["agents"][0]["agent_id"] == "support"
    feedback = mongodb_client[db_name]["sessions.feedback"].find_one({"session_id": "alice"})
    assert feedback is not None
    assert feedback["feedback"]["rating"] == "down"

    # A fresh process (new factory, same options) restores the exact conversation and state.
    with MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name="sessions", encryption=options
    ) as fresh:
        manager = fresh.create_session_manager("alice")
        restored = Agent(
            model=ScriptedModel(["unused"]),
            tools=[lookup],
            session_manager=manager,
            callback_handler=None,
            agent_id="support",
        )
        assert restored.messages == agent.messages
        assert restored.state.get("note") == SECRET_STATE
        assert manager.get_feedbacks()[0]["comment"] == SECRET_FEEDBACK
        metadata = manager.get_metadata()["metadata"]
        assert metadata["card"] == {"last4": SECRET_METADATA}
        assert metadata["priority"] == "high"


def test_redactions_are_encrypted_and_the_audit_summary_stays_queryable(
    encrypted_factory: MongoDBSessionManagerFactory, mongodb_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    trace = {
        "inputAssessment": {
            "gr-1": {"sensitiveInformationPolicy": {"piiEntities": [{"type": "EMAIL", "match": "SECRET-PII"}]}}
        }
    }
    model = ScriptedModel([redact("[SECRET-REPLACEMENT]", "I cannot help.", guardrail_trace=trace)])
    agent = Agent(model=model, session_manager=encrypted_factory.create_session_manager("g"), callback_handler=None)
    agent("my email is SECRET-EMAIL@example.com")
    assert plaintext_hits(mongodb_client, db_name) == []
    stored = mongodb_client[db_name]["sessions.messages"].find_one({"session_id": "g", "message_id": 0})
    assert stored is not None
    assert stored["redaction"]["action"] == "BLOCKED"  # the audit record stays queryable
    assert stored["redact_message"].subtype == 6
    # A guardrail trace (it quotes what was matched) is encrypted however it is stored.
    repository = encrypted_factory.create_session_manager("g").repository
    repository.runtime.run_blocking(
        repository.annotate_message, "g", "default", 0, {"redaction.guardrail_trace": {"match": "SECRET-TRACE"}}
    )
    assert plaintext_hits(mongodb_client, db_name) == []
    restored = Agent(model=ScriptedModel([]), session_manager=encrypted_factory.create_session_manager("g"))
    assert restored.messages == agent.messages
    assert restored.messages[0]["content"][0]["text"] == "[SECRET-REPLACEMENT]"


def test_large_message_blob_is_encrypted(
    mongodb_uri: str, db_name: str, options: EncryptionOptions, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    text = "SECRET-BLOB " + "x" * (16 * 1024 * 1024)
    with MongoDBSessionRepository(
        mongodb_uri, database_name=db_name, collection_name="sessions", encryption=options
    ) as repository:
        repository.create_session(Session(session_id="big", session_type=SessionType.AGENT))
        repository.create_message("big", "a", SessionMessage({"role": "user", "content": [{"text": text}]}, 0))
        assert mongodb_client[db_name]["sessions.blobs.chunks"].count_documents({}) > 0
        assert plaintext_hits(mongodb_client, db_name) == []
        assert repository.read_message("big", "a", 0).message["content"][0]["text"] == text  # type: ignore[union-attr]


def test_deleting_a_session_erases_its_data_key_so_backups_are_unreadable(
    encrypted_factory: MongoDBSessionManagerFactory,
    mongodb_uri: str,
    mongodb_client: MongoClient[dict[str, Any]],
    db_name: str,
    options: EncryptionOptions,
    master_key: bytes,
) -> None:
    run_conversation(encrypted_factory, "bob")
    encrypted_factory.create_session_manager("bob").update_metadata({"who": "bob"})
    run_conversation(encrypted_factory, "carol")
    messages = mongodb_client[db_name]["sessions.messages"]
    backup = list(messages.find({"session_id": "bob"}))
    backup_session = mongodb_client[db_name]["sessions"].find_one({"_id": "bob"})
    keys = mongodb_client[db_name]["__keyVault"]
    assert keys.count_documents({}) == 2

    SessionCatalog(encrypted_factory.create_session_manager("x").repository).delete_sessions(metadata={"who": "bob"})
    assert keys.count_documents({}) == 1
    assert messages.count_documents({"session_id": "bob"}) == 0

    # A backup of the erased session: no key in the vault can decrypt any of it.
    with ClientEncryption(
        {"local": {"key": master_key}},
        options.key_vault_namespace,
        mongodb_client,
        CodecOptions(uuid_representation=UuidRepresentation.STANDARD),
    ) as client_encryption:
        for document in backup:
            with pytest.raises(DriverEncryptionError):
                client_encryption.decrypt(document["message"])
    # Restored from that backup, the library says the session was erased.
    messages.insert_many(backup)
    assert backup_session is not None
    mongodb_client[db_name]["sessions"].insert_one(backup_session)
    with MongoDBSessionRepository(
        mongodb_uri, database_name=db_name, collection_name="sessions", encryption=options
    ) as repository:
        with pytest.raises(SessionErasedError, match="erased"):
            repository.list_messages("bob", "support")
        # The other session is untouched.
        assert len(repository.list_messages("carol", "support")) == len(backup)


def test_wrong_master_key_is_a_typed_error(
    encrypted_factory: MongoDBSessionManagerFactory, mongodb_uri: str, db_name: str, options: EncryptionOptions
) -> None:
    run_conversation(encrypted_factory, "dave")
    wrong = EncryptionOptions(
        kms_providers={"local": {"key": os.urandom(96)}}, key_vault_namespace=options.key_vault_namespace
    )
    with (
        MongoDBSessionRepository(
            mongodb_uri, database_name=db_name, collection_name="sessions", encryption=wrong
        ) as repository,
        pytest.raises(MasterKeyError, match="master key"),
    ):
        repository.list_messages("dave", "support")


def test_plain_repository_refuses_encrypted_sessions_and_encrypted_one_reads_plain_sessions(
    encrypted_factory: MongoDBSessionManagerFactory, factory: MongoDBSessionManagerFactory, db_name: str
) -> None:
    # `factory` is a plain factory on the same namespace.
    run_conversation(encrypted_factory, "enc")
    with pytest.raises(EncryptionRequiredError, match="encryption="):
        Agent(model=ScriptedModel([]), session_manager=factory.create_session_manager("enc"), agent_id="support")
    with pytest.raises(EncryptionRequiredError):
        factory.create_session_manager("enc").get_feedbacks()

    # A session stored before encryption was turned on stays readable; what is written now is encrypted.
    plain = Agent(model=ScriptedModel(["plain answer"]), session_manager=factory.create_session_manager("old"))
    plain("plain question")
    reopened = Agent(
        model=ScriptedModel(["new answer"]), session_manager=encrypted_factory.create_session_manager("old")
    )
    assert reopened.messages == plain.messages
    reopened("new question")
    again = Agent(model=ScriptedModel([]), session_manager=encrypted_factory.create_session_manager("old"))
    assert [message["content"][0]["text"] for message in again.messages] == [
        "plain question",
        "plain answer",
        "new question",
        "new answer",
    ]


def test_per_tenant_key_scope(
    mongodb_uri: str, db_name: str, master_key: bytes, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    tenant = EncryptionOptions(
        kms_providers={"local": {"key": master_key}},
        key_vault_namespace=f"{db_name}.__keyVault",
        key_scope=lambda session_id: "tenant:" + session_id.split("/", 1)[0],
    )
    with MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name="sessions", encryption=tenant
    ) as factory:
        for session_id in ("acme/1", "acme/2", "globex/1"):
            Agent(model=ScriptedModel(["fine"]), session_manager=factory.create_session_manager(session_id))(
                "SECRET-question"
            )
        keys = mongodb_client[db_name]["__keyVault"]
        assert sorted(name for key in keys.find() for name in key["keyAltNames"]) == ["tenant:acme", "tenant:globex"]
        assert plaintext_hits(mongodb_client, db_name) == []
        # Deleting one session keeps its tenant's key: the tenant's other sessions stay readable.
        repository = factory.create_session_manager("acme/1").repository
        repository.runtime.run_blocking(repository.delete_session, "acme/1")
        assert keys.count_documents({}) == 2
        restored = Agent(model=ScriptedModel([]), session_manager=factory.create_session_manager("acme/2"))
        assert restored.messages[0]["content"][0]["text"] == "SECRET-question"


def test_turn_costs_no_extra_round_trip(mongodb_uri: str, db_name: str, options: EncryptionOptions) -> None:
    """A turn sends the same commands with and without encryption; creating a session costs the data
    key's creation, a cold restore at most one key-vault read."""

    def measure(encryption: EncryptionOptions | None, session_id: str) -> tuple[list[str], list[str], list[str]]:
        recorder = CommandRecorder(only={"find", "insert", "update", "findAndModify", "delete", "getMore"})
        with MongoDBSessionManagerFactory(
            mongodb_uri,
            database_name=db_name,
            collection_name="sessions",
            encryption=encryption,
            event_listeners=[recorder],
        ) as factory:
            Agent(model=ScriptedModel([]), session_manager=factory.create_session_manager("warm-" + session_id))
            recorder.clear()
            agent = Agent(
                model=ScriptedModel(["one", "two"]), session_manager=factory.create_session_manager(session_id)
            )
            created = recorder.take()
            agent("first")
            agent("second")
            recorder.take()
        with MongoDBSessionManagerFactory(
            mongodb_uri,
            database_name=db_name,
            collection_name="sessions",
            encryption=encryption,
            event_listeners=[recorder],
        ) as cold:
            # Awaited writes, one insert per message: the count is exact (pipelined writes group them).
            agent = Agent(
                model=ScriptedModel(["three"]),
                session_manager=cold.create_session_manager(session_id, pipelined_writes=False),
            )
            restored = recorder.take()
            agent("third")
            turn = recorder.take()
        return created, restored, turn

    plain = measure(None, "plain")
    encrypted = measure(options, "encrypted")
    assert encrypted[2] == plain[2] == ["insert", "insert"]  # a turn: one insert per message, nothing else
    assert sorted(encrypted[0]) == sorted([*plain[0], "insert", "find"])  # the data key: created, then fetched
    assert sorted(encrypted[1]) == sorted([*plain[1], "find"])  # a cold restore fetches the key once


def test_options_are_validated_and_hide_credentials(master_key: bytes) -> None:
    options = EncryptionOptions(kms_providers={"local": {"key": master_key}})
    assert master_key.hex() not in repr(options)
    assert str(master_key) not in repr(options)
    assert "local" in repr(options)
    with pytest.raises(InvalidInputError, match="kms_providers"):
        EncryptionOptions(kms_providers={})
    with pytest.raises(InvalidInputError, match="unknown KMS provider"):
        EncryptionOptions(kms_providers={"vault": {}})
    with pytest.raises(InvalidInputError, match="master_key for 'aws' needs region, key"):
        EncryptionOptions(kms_providers={"aws": {"accessKeyId": "a", "secretAccessKey": "b"}})
    with pytest.raises(InvalidInputError, match="which one"):
        EncryptionOptions(kms_providers={"local": {"key": master_key}, "aws": {}})
    with pytest.raises(InvalidInputError, match="key_scope"):
        EncryptionOptions(kms_providers={"local": {"key": master_key}}, key_scope="tenant")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="encryption must be an EncryptionOptions"):
        AsyncMongoDBSessionRepository("mongodb://localhost:1", encryption={"local": {}})  # type: ignore[arg-type]


def test_missing_pymongocrypt_gives_an_install_hint() -> None:
    code = (
        "import sys; sys.modules['pymongocrypt'] = None\n"
        "from mongodb_session_manager import EncryptionOptions, EncryptionNotInstalledError\n"
        "try:\n"
        "    EncryptionOptions(kms_providers={'local': {'key': b'0' * 96}})\n"
        "except EncryptionNotInstalledError as error:\n"
        "    print(error)\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'mongodb-session-manager[encryption]'" in output


def test_purge_and_the_ttl_path_erase_data_keys(
    mongodb_uri: str, db_name: str, options: EncryptionOptions, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    with MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name="sessions", encryption=options, ttl_seconds=3600
    ) as factory:
        for session_id in ("expired", "ttl-removed", "alive"):
            Agent(model=ScriptedModel(["fine"]), session_manager=factory.create_session_manager(session_id))("SECRET")
        keys = mongodb_client[db_name]["__keyVault"]
        sessions = mongodb_client[db_name]["sessions"]
        assert keys.count_documents({}) == 3
        # "expired" is past its expiry; the TTL monitor already removed "ttl-removed" (it cannot remove the key).
        past = datetime.now(timezone.utc) - timedelta(days=1)
        sessions.update_one({"_id": "expired"}, {"$set": {"expires_at": past}})
        sessions.delete_one({"_id": "ttl-removed"})
        report = SessionCatalog(factory.create_session_manager("alive").repository).purge_expired()
        assert report.sessions == 1
        assert [name for key in keys.find() for name in key["keyAltNames"]] == [f"session:{db_name}.sessions/alive"]
        restored = Agent(model=ScriptedModel([]), session_manager=factory.create_session_manager("alive"))
        assert restored.messages[0]["content"][0]["text"] == "SECRET"


def test_rewrap_rotates_the_master_key(
    mongodb_uri: str, db_name: str, master_key: bytes, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    vault = f"{db_name}.__keyVault"
    new_key = os.urandom(96)
    both = EncryptionOptions(
        kms_providers={"local": {"key": master_key}, "local:v2": {"key": new_key}},
        kms_provider="local",
        key_vault_namespace=vault,
    )
    with MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name="sessions", encryption=both
    ) as factory:
        agent = Agent(model=ScriptedModel(["one", "two"]), session_manager=factory.create_session_manager("r1"))
        agent("SECRET-first")
        Agent(model=ScriptedModel(["x"]), session_manager=factory.create_session_manager("r2"))("SECRET-second")
    with MongoDBSessionRepository(
        mongodb_uri, database_name=db_name, collection_name="sessions", encryption=both
    ) as repository:
        assert repository.rewrap_data_keys("local:v2") == 2
    providers = {key["masterKey"]["provider"] for key in mongodb_client[db_name]["__keyVault"].find()}
    assert providers == {"local:v2"}
    # Only the new master key is needed now; the stored data was not rewritten.
    rotated = EncryptionOptions(kms_providers={"local:v2": {"key": new_key}}, key_vault_namespace=vault)
    with MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name="sessions", encryption=rotated
    ) as factory:
        restored = Agent(model=ScriptedModel(["three"]), session_manager=factory.create_session_manager("r1"))
        assert restored.messages == agent.messages
        restored("SECRET-third")
    assert plaintext_hits(mongodb_client, db_name) == []
    with (
        MongoDBSessionRepository(mongodb_uri, database_name=db_name, collection_name="sessions") as plain,
        pytest.raises(InvalidInputError, match="encryption="),
    ):
        plain.rewrap_data_keys()


def test_cli_reads_deletes_and_rewraps_encrypted_sessions(
    mongodb_uri: str,
    db_name: str,
    master_key: bytes,
    mongodb_client: MongoClient[dict[str, Any]],
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    vault = f"{db_name}.__keyVault"
    new_key = os.urandom(96)
    config = {
        "kms_providers": {
            "local": {"key": base64.b64encode(master_key).decode()},
            "local:v2": {"key": base64.b64encode(new_key).decode()},
        },
        "kms_provider": "local",
        "key_vault_namespace": vault,
    }
    config_file = tmp_path / "encryption.json"
    config_file.write_text(json.dumps(config))
    options = EncryptionOptions.from_config(config)
    with MongoDBSessionManagerFactory(
        mongodb_uri, database_name=db_name, collection_name="sessions", encryption=options
    ) as factory:
        for session_id in ("keep", "drop", "orphan"):
            Agent(model=ScriptedModel(["ok"]), session_manager=factory.create_session_manager(session_id))("SECRET")
    mongodb_client[db_name]["sessions"].delete_one({"_id": "orphan"})  # as the TTL monitor would
    common = ["--uri", mongodb_uri, "--database", db_name, "--collection", "sessions"]
    keys = mongodb_client[db_name]["__keyVault"]

    assert cli_main([*common, "--encryption-config", str(config_file), "sessions", "delete", "drop", "--yes"]) == 0
    assert cli_main([*common, "--encryption-config", str(config_file), "encryption", "erase-orphans"]) == 0
    assert sorted(name for key in keys.find() for name in key["keyAltNames"]) == [f"session:{db_name}.sessions/keep"]
    assert (
        cli_main(
            [*common, "--encryption-config", str(config_file), "encryption", "rewrap", "--to-provider", "local:v2"]
        )
        == 0
    )
    assert "re-wrapped 1 data key(s)" in capsys.readouterr().out
    assert {key["masterKey"]["provider"] for key in keys.find()} == {"local:v2"}
    assert cli_main([*common, "--encryption-config", str(config_file), "sessions", "export", "keep"]) == 0
    exported = capsys.readouterr().out
    assert "SECRET" in exported
    assert "removed_message_count" in exported  # the session document's agent state, decrypted
    assert cli_main([*common, "--encryption-config", str(config_file), "--json", "sessions", "show", "keep"]) == 0
    capsys.readouterr()
    assert cli_main([*common, "sessions", "show", "keep"]) != 0
    assert "encryption=" in capsys.readouterr().err
    # Without the configuration the command says what it needs.
    assert cli_main([*common, "encryption", "rewrap"]) == 2
    assert "--encryption-config" in capsys.readouterr().err


@pytest.mark.anyio
async def test_storage_values_are_encrypted_inline_and_in_gridfs(
    mongodb_uri: str, db_name: str, options: EncryptionOptions, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    small, large = b"SECRET-SMALL dark mode", b"SECRET-LARGE " + os.urandom(9 * 1024 * 1024) + b" tail"
    async with MongoDBStorage(
        mongodb_uri, database_name=db_name, collection_name="store", gridfs_threshold=1024, encryption=options
    ) as storage:
        await storage.write("prefs/theme.md", small)
        await storage.write("blobs/big.bin", large)
        assert mongodb_client[db_name]["store.gridfs.chunks"].count_documents({}) > 0
        assert plaintext_hits(mongodb_client, db_name) == []
        assert await storage.read("prefs/theme.md") == small
        assert await storage.read("blobs/big.bin") == large
        assert [result.key for result in await storage.search("dark")] == ["prefs/theme.md"]
    async with MongoDBStorage(mongodb_uri, database_name=db_name, collection_name="store") as plain:
        for key in ("prefs/theme.md", "blobs/big.bin"):
            with pytest.raises(StorageError) as raised:
                await plain.read(key)
            assert isinstance(raised.value.__cause__, EncryptionRequiredError)


def test_a_borrowed_sync_client_encrypts_in_worker_threads(
    mongodb_uri: str, db_name: str, options: EncryptionOptions, mongodb_client: MongoClient[dict[str, Any]]
) -> None:
    with MongoDBSessionManagerFactory(
        client=mongodb_client, database_name=db_name, collection_name="sessions", encryption=options
    ) as factory:
        agent = Agent(model=ScriptedModel(["SECRET-answer"]), session_manager=factory.create_session_manager("sync"))
        agent("SECRET-question")
        assert plaintext_hits(mongodb_client, db_name) == []
        restored = Agent(model=ScriptedModel([]), session_manager=factory.create_session_manager("sync"))
        assert restored.messages == agent.messages
