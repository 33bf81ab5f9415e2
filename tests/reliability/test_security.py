"""Security: authentication, TLS options, credentials never shown, no code execution from stored data,
and sessions of one ``application_name`` invisible through another's manager.

The authentication and TLS tests start their own servers (never the shared one).
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError
from reliability_support import COLLECTION, snapshot
from strands import Agent
from strands.types.session import SessionMessage

import mongodb_session_manager
from mongodb_session_manager import (
    AlreadyExistsError,
    AsyncMongoDBSessionManagerFactory,
    DatabaseError,
    InvalidInputError,
    MongoDBConnectionPool,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
    NotFoundError,
    ServerUnavailableError,
)
from mongodb_session_manager._clients import mask_uri
from mongodb_session_manager.scripted_model import ScriptedModel
from mongodb_session_manager.testing import LocalMongoServer, find_server_executable

# Failed handshakes (wrong password, refused TLS) leave sockets to the garbage collector.
pytestmark = pytest.mark.usefixtures("collect_abandoned_sockets")

PASSWORD = "S3cret-Pa55-w0rd!"
WRONG = "Wr0ng-Pa55-w0rd!"


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret leaked into: {text[:300]}"


# -- authentication -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server() -> Iterator[LocalMongoServer]:
    with LocalMongoServer(auth=True, users={"app": PASSWORD}) as server:
        yield server


@pytest.mark.requires_local_server
def test_an_authenticated_factory_works_and_never_shows_its_password(
    auth_server: LocalMongoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    uri = auth_server.uri_with_credentials("app")
    with MongoDBSessionManagerFactory(uri, database_name="secure", collection_name=COLLECTION) as factory:
        manager = factory.create_session_manager("s")
        Agent(model=ScriptedModel(["hi"]), session_manager=manager, callback_handler=None)("hello")
        manager.update_metadata({"k": 1})
        stats = factory.get_connection_stats()
        assert stats["status"] == "connected"
        assert stats["connection_string"].startswith("mongodb://app:***@")
        shown = [str(stats), repr(factory), repr(manager), repr(manager.repository), str(manager.get_metadata())]
        assert_no_secret("\n".join(shown), PASSWORD)
    client = MongoDBConnectionPool.initialize(uri)
    try:
        assert client is not None
        assert_no_secret(str(MongoDBConnectionPool.get_pool_stats()) + repr(client), PASSWORD)
        assert MongoDBConnectionPool.health_check()
    finally:
        MongoDBConnectionPool.close()
    assert_no_secret(caplog.text, PASSWORD)


WRONG_CREDENTIALS = [
    pytest.param("uri", 18, id="wrong-password-in-uri"),
    pytest.param("kwargs", 18, id="wrong-password-as-keyword"),
    pytest.param("none", 13, id="no-credentials"),
]


@pytest.mark.requires_local_server
@pytest.mark.parametrize(("how", "code"), WRONG_CREDENTIALS)
def test_wrong_credentials_fail_fast_with_an_auth_error_that_shows_no_password(
    auth_server: LocalMongoServer, caplog: pytest.LogCaptureFixture, how: str, code: int
) -> None:
    caplog.set_level(logging.DEBUG)
    options: dict[str, Any] = {"serverSelectionTimeoutMS": 2000}
    if how == "uri":
        uri = auth_server.uri_with_credentials("app", WRONG)
    elif how == "kwargs":
        uri, options = auth_server.uri, {**options, "username": "app", "password": WRONG, "authSource": "admin"}
    else:
        uri = auth_server.uri
    factory = MongoDBSessionManagerFactory(uri, database_name="secure", collection_name=COLLECTION, **options)
    try:
        manager = factory.create_session_manager("s")  # no I/O yet
        started = time.monotonic()
        with pytest.raises(DatabaseError) as raised:  # the driver's OperationFailure chained
            manager.update_metadata({"k": 1})
        assert time.monotonic() - started < 10
        assert isinstance(raised.value.__cause__, OperationFailure)
        assert raised.value.code == code
        assert re.search("authentication failed|requires authentication", str(raised.value))
        stats = factory.get_connection_stats()  # reports, never raises
        shown = [str(raised.value), repr(raised.value), str(stats), repr(factory), repr(manager)]
        assert_no_secret("\n".join(shown), PASSWORD, WRONG)
    finally:
        factory.close()
    assert_no_secret(caplog.text, PASSWORD, WRONG)


def test_secrets_in_connection_strings_are_masked() -> None:
    cases = {
        "mongodb://app:pw1@h:27017/db?authSource=admin": "mongodb://app:***@h:27017/db?authSource=admin",
        "mongodb+srv://app:pw1@cluster.example.net/": "mongodb+srv://app:***@cluster.example.net/",
        # Not percent-encoded (the driver rejects such a URI, but its stats must not show it either).
        "mongodb://app:p@w/1@h/": "mongodb://app:***@h/",
        "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=pw1": "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=***",
        "mongodb://app:pw1@h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:pw1&w=1": (
            "mongodb://app:***@h/?authMechanism=MONGODB-AWS&authMechanismProperties=***&w=1"
        ),
        "mongodb://app@h/": "mongodb://app@h/",
        "mongodb://h:27017/": "mongodb://h:27017/",
    }
    for uri, masked in cases.items():
        assert mask_uri(uri) == masked
    invalid = "mongodb://app:p@w/1@h/"
    with pytest.raises(InvalidInputError) as raised:  # refused when built, without repeating the password
        MongoDBSessionManagerFactory(invalid, database_name="d")
    assert_no_secret(str(raised.value), "pw1", "p@w/1")
    for uri in cases.keys() - {invalid}:
        factory = MongoDBSessionManagerFactory(uri, database_name="d")  # creating it does no I/O
        try:
            assert_no_secret(repr(factory) + repr(factory.create_session_manager("s")), "pw1", "p@w/1")
        finally:
            factory.close()


# -- TLS ----------------------------------------------------------------------------------------------


def test_tls_options_reach_the_client(mongodb_uri: str, db_name: str) -> None:
    factory = MongoDBSessionManagerFactory(
        "mongodb://127.0.0.1:1/",
        database_name=db_name,
        tls=True,
        tlsAllowInvalidCertificates=True,
        tlsAllowInvalidHostnames=True,
    )
    try:
        # No server needed: the factory's blocking client is created, not used.
        client = MongoDBConnectionPool.get_client()
        assert client is not None

        pool_options = client.options.pool_options
        assert isinstance(pool_options._ssl_context, ssl.SSLContext)
        assert pool_options._ssl_context.verify_mode == ssl.CERT_NONE
        assert pool_options.tls_allow_invalid_hostnames is True
    finally:
        factory.close()


CERT_ARGS = ("-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``(uri, ca_file)`` of a server that speaks TLS only, with a self-signed certificate."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key, log_path = directory / "cert.pem", directory / "key.pem", directory / "server.log"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), *CERT_ARGS],
        check=True,
        capture_output=True,
        timeout=60,
    )
    (directory / "secantusd.toml").write_text("# empty\n")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(find_server_executable(), "--config", str(directory / "secantusd.toml"), "--host", "127.0.0.1"),
                *("--port", "0", "--storage-path", str(directory / "data")),
                *("--tls-cert-file", str(cert), "--tls-key-file", str(key)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
    try:
        deadline = time.monotonic() + 20
        port = None
        while port is None:
            found = re.search(rb"listening on [^\s:]+:(\d+)", log_path.read_bytes())
            if found:
                port = int(found.group(1))
            elif process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the TLS server did not start: {log_path.read_text()[-2000:]}")
            else:
                time.sleep(0.02)
        yield f"mongodb://127.0.0.1:{port}/?serverMonitoringMode=poll", cert
    finally:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port or 1), timeout=0.2):
            pass  # wakes the accept loop, which then sees the shutdown request
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_factory_connects_over_tls_with_the_options_it_was_given(tls_server: tuple[str, Path]) -> None:
    uri, ca_file = tls_server
    for options in ({"tls": True, "tlsAllowInvalidCertificates": True}, {"tls": True, "tlsCAFile": str(ca_file)}):
        with MongoDBSessionManagerFactory(uri, database_name="tls", **options) as factory:
            manager = factory.create_session_manager("s")
            manager.update_metadata({"over": "tls"})
            assert manager.get_metadata()["metadata"] == {"over": "tls"}
    # Without a trusted certificate (or without TLS at all) the connection is refused, quickly.
    assert "CERTIFICATE_VERIFY_FAILED" in refusal(uri, {"tls": True})
    assert refusal(uri, {})


def refusal(uri: str, options: dict[str, Any]) -> str:
    """The error of a first call through a factory with these client options (which must fail)."""
    with (
        MongoDBSessionManagerFactory(uri, database_name="tls", serverSelectionTimeoutMS=1000, **options) as f,
        pytest.raises(ServerUnavailableError) as raised,
    ):
        f.create_session_manager("s").get_metadata()
    assert isinstance(raised.value.__cause__, ServerSelectionTimeoutError)
    return str(raised.value.__cause__)


# -- no code execution from stored data ---------------------------------------------------------------

FORBIDDEN = re.compile(r"\bpickle\b|\bcPickle\b|\bmarshal\b|\bshelve\b|\bdill\b|\beval\s*\(|\bexec\s*\(|__import__\(")


def test_the_package_never_unpickles_or_evaluates_stored_data() -> None:
    package = Path(mongodb_session_manager.__file__).parent
    sources = sorted(package.rglob("*.py"))
    assert len(sources) > 10
    hits = [
        f"{path.relative_to(package)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert hits == []


# -- application isolation ----------------------------------------------------------------------------


def test_a_session_of_one_application_is_invisible_to_another(factory: MongoDBSessionManagerFactory, db: Any) -> None:
    mine = factory.create_session_manager("shared-id", application_name="billing", isolate_application=True)
    agent = Agent(model=ScriptedModel(["secret answer"]), state={"card": "4111"}, session_manager=mine)
    agent("secret question")
    mine.update_metadata({"owner": "billing"})
    mine.add_feedback({"rating": "up"})
    before = snapshot(db)

    theirs = factory.create_session_manager("shared-id", application_name="support", isolate_application=True)
    assert theirs.get_metadata()["metadata"] == {}
    assert theirs.list_agents() == []
    assert theirs.get_feedbacks() == []
    assert theirs.get_message_count("default") == 0
    assert theirs.get_agent_config("default") is None
    with pytest.raises(AlreadyExistsError):
        Agent(model=ScriptedModel([]), session_manager=theirs)  # restoring it is refused, nothing leaks
    with pytest.raises(AlreadyExistsError):
        theirs.update_metadata({"owner": "support"})
    with pytest.raises(AlreadyExistsError):
        theirs.add_feedback({"rating": "down"})
    theirs.delete_metadata(["owner"])  # matches nothing of theirs

    repository = theirs.repository
    message = SessionMessage(message={"role": "user", "content": [{"text": "injected"}]}, message_id=9)
    for name, call, expected in [
        ("read_session", lambda: repository.read_session("shared-id"), None),
        ("read_agent", lambda: repository.read_agent("shared-id", "default"), None),
        ("read_message", lambda: repository.read_message("shared-id", "default", 0), None),
        ("list_messages", lambda: repository.list_messages("shared-id", "default"), []),
        ("count_messages", lambda: repository.count_messages("shared-id", "default"), 0),
        ("get_feedbacks", lambda: repository.get_feedbacks("shared-id"), []),
        ("get_metadata", lambda: repository.get_metadata("shared-id"), None),
        ("last_message_id", lambda: repository.last_message_id("shared-id", "default"), None),
        ("delete_session", lambda: repository.delete_session("shared-id"), None),
    ]:
        assert repository.runtime.run_blocking(call) == expected, name
    for call in (
        lambda: repository.create_message("shared-id", "default", message),
        lambda: repository.update_message(
            "shared-id", "default", SessionMessage(message=message.message, message_id=0)
        ),
        lambda: repository.redact_message("shared-id", "default", 0, message.message),
    ):
        with pytest.raises(NotFoundError):
            repository.runtime.run_blocking(call)
    assert snapshot(db) == before

    # A manager without an application name (an operator's view) still sees everything.
    admin = factory.create_session_manager("shared-id")
    assert admin.get_metadata()["metadata"] == {"owner": "billing"}
    # And the owner still reads its own session completely.
    owner = factory.create_session_manager("shared-id", application_name="billing", isolate_application=True)
    restored = Agent(model=ScriptedModel([]), session_manager=owner)
    assert restored.messages == agent.messages
    assert restored.state.get() == {"card": "4111"}


@pytest.mark.anyio
async def test_application_isolation_holds_through_the_async_api(mongodb_uri: str, db_name: str, db: Any) -> None:
    async with AsyncMongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name=COLLECTION) as f:
        mine = await f.create_session_manager("s", application_name="a", preload=True, isolate_application=True)
        await Agent(model=ScriptedModel(["x"]), session_manager=mine).invoke_async("hello")
        await mine.add_feedback_async({"rating": 1})
        theirs = await f.create_session_manager("s", application_name="b", isolate_application=True)
        assert await theirs.get_feedbacks_async() == []
        assert await theirs.get_message_count_async("default") == 0
        assert await theirs.list_agents_async() == []
        await theirs.load_async()  # a read: the other application's session is invisible, nothing is written
        intruder = Agent(model=ScriptedModel(["y"]), session_manager=theirs)
        with pytest.raises(AlreadyExistsError):
            await intruder.invoke_async("hello")  # its first write would create the session: refused
        with pytest.raises(AlreadyExistsError):
            await theirs.add_feedback_async({"rating": 0})
        assert db[COLLECTION + ".feedback"].count_documents({}) == 1
        # Each application has its own sessions under other ids, unaffected.
        other = await f.create_session_manager("s-b", application_name="b", isolate_application=True)
        await other.add_feedback_async({"rating": 2})
        assert [feedback["rating"] for feedback in await other.get_feedbacks_async()] == [2]
        assert [feedback["rating"] for feedback in await mine.get_feedbacks_async()] == [1]


def test_standalone_managers_of_two_applications_are_isolated(mongodb_uri: str, db_name: str) -> None:
    isolated = {"collection_name": COLLECTION, "isolate_application": True}
    mine = MongoDBSessionManager("s", mongodb_uri, db_name, application_name="a", **isolated)
    theirs = MongoDBSessionManager("s", mongodb_uri, db_name, application_name="b", **isolated)
    try:
        mine.add_feedback({"rating": 1})
        assert theirs.get_feedbacks() == []
        with pytest.raises(AlreadyExistsError):
            theirs.add_feedback({"rating": 2})
        assert [feedback["rating"] for feedback in mine.get_feedbacks()] == [1]
    finally:
        mine.close()
        theirs.close()
