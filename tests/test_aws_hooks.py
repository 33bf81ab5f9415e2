"""The AWS hooks against a real AWS API endpoint over HTTP.

SNS and SQS are served by moto's server mode, started here as a separate process on a free loopback
port (like the MongoDB test server); boto3 reaches it through ``AWS_ENDPOINT_URL`` with dummy
credentials. SNS deliveries are read from an SQS queue subscribed to each topic. moto keeps what is
posted to a WebSocket connection to itself, so the API Gateway Management API is served by a small
recording HTTP endpoint of this module (POST ``/{stage}/@connections/{id}``), which also plays a
gone connection (410 GoneException) and a connection that answers only when the test lets it.

Managers are real (on the MongoDB test server), agents are real Strands agents on the scripted model.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from strands import Agent

import mongodb_session_manager
from mongodb_session_manager import (
    AsyncMongoDBSessionManagerFactory,
    MongoDBSessionError,
    MongoDBSessionManager,
    MongoDBSessionManagerFactory,
)
from mongodb_session_manager.errors import InvalidInputError
from mongodb_session_manager.hooks import (
    AWSHooksUnavailableError,
    NotificationTargetNotFoundError,
    _aws,
)
from mongodb_session_manager.hooks.feedback_sns_hook import FeedbackSNSHook, create_feedback_hook
from mongodb_session_manager.hooks.metadata_sqs_hook import MetadataSQSHook
from mongodb_session_manager.hooks.metadata_sqs_hook import create_metadata_hook as create_sqs_hook
from mongodb_session_manager.hooks.metadata_websocket_hook import MetadataWebSocketHook
from mongodb_session_manager.hooks.metadata_websocket_hook import create_metadata_hook as create_websocket_hook
from mongodb_session_manager.hooks.utils_sns import publish_message
from mongodb_session_manager.hooks.utils_sqs import send_message
from mongodb_session_manager.scripted_model import ScriptedModel, tool_call

REGION = "eu-west-1"
#: Dummy credentials; the secret must never show up in a log line.
ACCESS_KEY = "AKIAHOOKTESTS0000000"
SECRET_KEY = "hook-tests-secret-key-do-not-log"
FLUSH = 30.0

# -- a local AWS API endpoint (moto server mode) ----------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a moto server process started for the session."""
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            found = re.search(r"Running on (http://127\.0\.0\.1:\d+)", log_path.read_text(errors="replace"))
            if found:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not start:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        yield found.group(1)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture
def sqs(moto_endpoint: str) -> Any:
    return boto3.client("sqs", region_name=REGION, endpoint_url=moto_endpoint)


@pytest.fixture
def sns(moto_endpoint: str) -> Any:
    return boto3.client("sns", region_name=REGION, endpoint_url=moto_endpoint)


def new_queue(sqs: Any) -> str:
    url: str = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex}")["QueueUrl"]
    return url


def received(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Everything in the queue now (the sends were flushed before), oldest first."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def subscribed_topic(sns: Any, sqs: Any) -> tuple[str, str]:
    """A new topic with a new queue subscribed to it: ``(topic_arn, queue_url)``."""
    topic_arn: str = sns.create_topic(Name=f"t-{uuid.uuid4().hex}")["TopicArn"]
    queue_url = new_queue(sqs)
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return topic_arn, queue_url


def sns_notifications(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """The SNS envelopes delivered to a subscribed queue."""
    return [json.loads(message["Body"]) for message in received(sqs, queue_url)]


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- a recording API Gateway Management API endpoint -------------------------------------------------


@dataclass
class Post:
    path: str
    connection_id: str
    body: dict[str, Any]
    signed: bool


@dataclass
class WebSocketEndpoint:
    """Records ``post_to_connection`` calls. Ids starting with ``gone-`` answer 410 (GoneException);
    ids starting with ``held-`` answer only once :attr:`release` is set."""

    url: str
    posts: list[Post] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def websocket() -> Iterator[WebSocketEndpoint]:
    endpoint = WebSocketEndpoint(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            found = re.fullmatch(r"(?P<stage>/[^@]*)?/@connections/(?P<id>[^/?]+)", self.path)
            if found is None:
                self.send_error(404)
                return
            connection_id = found.group("id")
            endpoint.arrived.set()
            if connection_id.startswith("held-"):
                endpoint.release.wait(FLUSH)
            if connection_id.startswith("gone-"):
                self._reply(410, {"message": None}, error_type="GoneException")
                return
            endpoint.posts.append(
                Post(self.path, connection_id, json.loads(body), "Signature=" in self.headers.get("Authorization", ""))
            )
            self._reply(200, None)

        def _reply(self, status: int, payload: Any, error_type: str | None = None) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if error_type:
                self.send_header("x-amzn-ErrorType", error_type)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/prod"
    try:
        yield endpoint
    finally:
        endpoint.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


# -- managers ------------------------------------------------------------------------------------------


@pytest.fixture
def factory(mongodb_uri: str, db_name: str) -> Iterator[MongoDBSessionManagerFactory]:
    factory = MongoDBSessionManagerFactory(mongodb_uri, database_name=db_name, collection_name="sessions")
    yield factory
    factory.close()


def stored_metadata(manager: MongoDBSessionManager) -> dict[str, Any]:
    """The session's metadata, whichever shape ``get_metadata()`` answers in."""
    document = manager.get_metadata()
    if "_id" in document and isinstance(document.get("metadata"), dict):
        return dict(document["metadata"])
    return dict(document)


def metadata_agent(manager: MongoDBSessionManager, metadata: dict[str, Any]) -> Agent:
    """A real agent whose scripted model updates ``metadata`` through the manager's metadata tool."""
    metadata_tool = manager.get_metadata_tool()
    model = ScriptedModel([tool_call(metadata_tool.tool_name, {"action": "update", "metadata": metadata}), "Noted."])
    return Agent(model=model, tools=[metadata_tool], session_manager=manager, callback_handler=None)


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


def assert_iso_timestamp(value: str) -> None:
    assert datetime.fromisoformat(value).tzinfo is not None


# -- SQS ------------------------------------------------------------------------------------------------


def test_agent_metadata_update_reaches_sqs_with_the_selected_fields(
    factory: MongoDBSessionManagerFactory, sqs: Any
) -> None:
    queue_url = new_queue(sqs)
    hook = create_sqs_hook(queue_url, metadata_fields=["status", "step"])
    assert isinstance(hook, MetadataSQSHook)
    manager = factory.create_session_manager("sqs-agent", metadata_hook=hook)
    agent = metadata_agent(manager, {"status": "processing", "step": 2, "internal": "not sent"})

    agent("Start the job")

    assert hook.flush(FLUSH) == 0
    assert stored_metadata(manager) == {"status": "processing", "step": 2, "internal": "not sent"}
    [message] = received(sqs, queue_url)
    body = json.loads(message["Body"])
    assert list(body) == ["session_id", "event", "operation", "metadata", "timestamp"]
    assert body["session_id"] == "sqs-agent"
    assert body["event"] == "metadata_update"
    assert body["operation"] == "update"
    assert body["metadata"] == {"status": "processing", "step": 2}
    assert_iso_timestamp(body["timestamp"])
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes == {"session_id": "sqs-agent", "event": "metadata_update"}
    assert hook.stats == {"delivered": 1, "failed": 0, "dropped": 0, "pending": 0}


def test_sqs_hook_sends_updates_and_deletes_in_order_and_reads_send_nothing(
    factory: MongoDBSessionManagerFactory, sqs: Any
) -> None:
    queue_url = new_queue(sqs)
    hook = create_sqs_hook(queue_url)  # no field list: every changed key is sent
    assert hook is not None
    manager = factory.create_session_manager("sqs-ops", metadata_hook=hook)

    manager.update_metadata({"status": "open", "when": datetime(2026, 1, 2, 3, 4, 5)})
    stored_metadata(manager)
    manager.delete_metadata(["status"])

    assert hook.flush(FLUSH) == 0
    bodies = [json.loads(message["Body"]) for message in received(sqs, queue_url)]
    assert [(body["operation"], body["metadata"]) for body in bodies] == [
        ("update", {"status": "open", "when": "2026-01-02 03:04:05"}),
        ("delete", {"status": None}),
    ]


def test_sqs_hook_reports_deleted_fields_of_its_field_list_as_null(
    factory: MongoDBSessionManagerFactory, sqs: Any
) -> None:
    queue_url = new_queue(sqs)
    hook = MetadataSQSHook(queue_url, ["status"])
    manager = factory.create_session_manager("sqs-delete", metadata_hook=hook)
    manager.update_metadata({"status": "open", "other": 1})
    manager.delete_metadata(["status", "other"])
    assert hook.flush(FLUSH) == 0
    bodies = [json.loads(message["Body"]) for message in received(sqs, queue_url)]
    assert [body["metadata"] for body in bodies] == [{"status": "open"}, {"status": None}]


@pytest.mark.anyio
async def test_async_manager_sends_without_a_worker_thread_hop(mongodb_uri: str, db_name: str, sqs: Any) -> None:
    queue_url = new_queue(sqs)
    hook = MetadataSQSHook(queue_url, [])
    async with AsyncMongoDBSessionManagerFactory(mongodb_uri, database_name=db_name) as factory:
        manager = await factory.create_session_manager("sqs-async", metadata_hook=hook)
        calls: list[str] = []
        original_call = type(hook).__call__

        def spy(self: Any, original_func: Any, action: str, session_id: str, **kwargs: Any) -> Any:
            calls.append(threading.current_thread().name)
            return original_call(self, original_func, action, session_id, **kwargs)

        type(hook).__call__ = spy  # type: ignore[method-assign]
        try:
            await manager.update_metadata_async({"status": "async"})
        finally:
            type(hook).__call__ = original_call  # type: ignore[method-assign]
        assert calls == [threading.current_thread().name]  # called on this loop's thread
        assert await hook.flush_async(FLUSH) == 0
    [message] = received(sqs, queue_url)
    assert json.loads(message["Body"])["metadata"] == {"status": "async"}


# -- SNS ------------------------------------------------------------------------------------------------


def test_feedback_is_routed_to_the_topic_of_its_rating(
    factory: MongoDBSessionManagerFactory, sns: Any, sqs: Any
) -> None:
    good, good_queue = subscribed_topic(sns, sqs)
    bad, bad_queue = subscribed_topic(sns, sqs)
    neutral, neutral_queue = subscribed_topic(sns, sqs)
    hook = create_feedback_hook(
        topic_arn_good=good,
        topic_arn_bad=bad,
        topic_arn_neutral=neutral,
        subject_prefix_bad="[PROD] URGENT {rating}: ",
        body_prefix_bad="ALERT\nSession: {session_id}\nRating: {rating}\n---\n",
        subject_prefix_good="{unknown} ",
    )
    assert isinstance(hook, FeedbackSNSHook)
    manager = factory.create_session_manager("sns-agent", feedback_hook=hook)
    agent = Agent(model=ScriptedModel(["Here you go."]), session_manager=manager, callback_handler=None)
    agent("Help me")

    manager.add_feedback({"rating": "down", "comment": "The answer was incomplete"})
    manager.add_feedback({"rating": "up", "comment": "Great"})
    manager.add_feedback({"rating": None, "comment": "Just testing"})

    assert hook.flush(FLUSH) == 0
    assert [feedback["rating"] for feedback in manager.get_feedbacks()] == ["down", "up", None]
    password_getter = getattr(manager, "get_session_viewer_password", None)
    password = (password_getter() if password_getter else None) or "N/A"

    [bad_note] = sns_notifications(sqs, bad_queue)
    assert bad_note["TopicArn"] == bad
    assert bad_note["Subject"] == "[PROD] URGENT negative: on session sns-agent"
    assert bad_note["Message"] == (
        f"ALERT\nSession: sns-agent\nRating: negative\n---\nPassword: {password}\n\n"
        "Session: sns-agent\n\nThe answer was incomplete"
    )
    assert {name: value["Value"] for name, value in bad_note["MessageAttributes"].items()} == {
        "session_id": "sns-agent",
        "rating": "negative",
    }
    [good_note] = sns_notifications(sqs, good_queue)
    assert good_note["Subject"] == "{unknown} on session sns-agent"  # an unknown variable leaves the template as is
    assert good_note["Message"] == f"Password: {password}\n\nSession: sns-agent\n\nGreat"
    assert good_note["MessageAttributes"]["rating"]["Value"] == "positive"
    [neutral_note] = sns_notifications(sqs, neutral_queue)
    assert neutral_note["Subject"] == "on session sns-agent"
    assert neutral_note["MessageAttributes"]["rating"]["Value"] == "neutral"


def test_a_none_topic_sends_nothing_for_its_rating(factory: MongoDBSessionManagerFactory, sns: Any, sqs: Any) -> None:
    bad, bad_queue = subscribed_topic(sns, sqs)
    hook = create_feedback_hook(topic_arn_good="none", topic_arn_bad=bad, topic_arn_neutral="none")
    assert hook is not None
    manager = factory.create_session_manager("sns-none", feedback_hook=hook)
    manager.add_feedback({"rating": "up", "comment": "fine"})
    manager.add_feedback({"rating": "down", "comment": "bad"})
    assert hook.flush(FLUSH) == 0
    assert [note["Message"].rsplit("\n", 1)[-1] for note in sns_notifications(sqs, bad_queue)] == ["bad"]
    assert len(manager.get_feedbacks()) == 2


def test_long_subjects_are_cut_to_what_sns_accepts(factory: MongoDBSessionManagerFactory, sns: Any, sqs: Any) -> None:
    topic, queue = subscribed_topic(sns, sqs)
    hook = FeedbackSNSHook(topic, topic, topic, subject_prefix_neutral="line one\nline two " + "x" * 120)
    manager = factory.create_session_manager("sns-long", feedback_hook=hook)
    manager.add_feedback({"comment": "long"})
    assert hook.flush(FLUSH) == 0
    [note] = sns_notifications(sqs, queue)
    assert note["Subject"].startswith("line one line two xxx")
    assert len(note["Subject"]) == 99


# -- WebSocket (API Gateway Management API) -----------------------------------------------------------


def test_metadata_changes_are_pushed_to_the_connection_held_in_metadata(
    factory: MongoDBSessionManagerFactory, websocket: WebSocketEndpoint
) -> None:
    hook = create_websocket_hook(websocket.url, metadata_fields=["status", "progress"], region="us-east-1")
    assert isinstance(hook, MetadataWebSocketHook)
    manager = factory.create_session_manager("ws-session", metadata_hook=hook)

    manager.update_metadata({"connection_id": "conn-1", "status": "thinking", "internal": "x"})
    agent = metadata_agent(manager, {"progress": 50})  # no connection_id: the stored one is used
    agent("Go on")
    manager.delete_metadata(["status"])

    assert hook.flush(FLUSH) == 0
    assert [(post.path, post.connection_id, post.signed) for post in websocket.posts] == [
        ("/prod/@connections/conn-1", "conn-1", True)
    ] * 3
    bodies = [post.body for post in websocket.posts]
    assert [list(body) for body in bodies] == [["event", "session_id", "operation", "metadata", "timestamp"]] * 3
    assert [(body["event"], body["session_id"], body["operation"], body["metadata"]) for body in bodies] == [
        ("metadata_update", "ws-session", "update", {"status": "thinking"}),
        ("metadata_update", "ws-session", "update", {"progress": 50}),
        ("metadata_update", "ws-session", "delete", {"status": None}),
    ]
    for body in bodies:
        assert_iso_timestamp(body["timestamp"])


def test_websocket_hook_without_field_list_sends_all_but_the_connection_id(
    factory: MongoDBSessionManagerFactory, websocket: WebSocketEndpoint
) -> None:
    hook = MetadataWebSocketHook(websocket.url)
    assert hook.region == "us-east-1"  # the class default (create_metadata_hook's is eu-west-1)
    manager = factory.create_session_manager("ws-all", metadata_hook=hook)
    manager.update_metadata({"connection_id": "conn-2", "a": 1, "b": {"c": 2}})
    assert hook.flush(FLUSH) == 0
    assert [post.body["metadata"] for post in websocket.posts] == [{"a": 1, "b": {"c": 2}}]


def test_no_connection_and_gone_connection_are_logged_at_info_and_the_write_stands(
    factory: MongoDBSessionManagerFactory, websocket: WebSocketEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mongodb_session_manager")
    hook = MetadataWebSocketHook(websocket.url)
    manager = factory.create_session_manager("ws-gone", metadata_hook=hook)
    manager.update_metadata({"status": "no connection yet"})
    # (flushed first: a push without a connection id in its update uses the one stored when it is sent)
    assert hook.flush(FLUSH) == 0
    manager.update_metadata({"connection_id": "gone-1", "status": "client left"})
    assert hook.flush(FLUSH) == 0
    assert websocket.posts == []
    assert stored_metadata(manager) == {"status": "client left", "connection_id": "gone-1"}
    assert hook.stats["failed"] == 0
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert "has no connection_id" in log_text(caplog)
    assert "is gone" in log_text(caplog)


# -- guarantees: non-blocking, failures, close ---------------------------------------------------------


def test_a_slow_endpoint_does_not_hold_the_caller(
    factory: MongoDBSessionManagerFactory, websocket: WebSocketEndpoint
) -> None:
    hook = MetadataWebSocketHook(websocket.url)
    manager = factory.create_session_manager("ws-slow", metadata_hook=hook)
    manager.update_metadata({"connection_id": "held-1", "step": 1})
    manager.update_metadata({"step": 2})
    # Both writes returned while the first push is still waiting for the endpoint.
    assert websocket.arrived.wait(FLUSH)
    assert hook.pending == 2
    assert stored_metadata(manager) == {"connection_id": "held-1", "step": 2}
    websocket.release.set()
    assert hook.flush(FLUSH) == 0
    assert [post.body["metadata"] for post in websocket.posts] == [{"step": 1}, {"step": 2}]


@pytest.mark.anyio
async def test_a_slow_endpoint_does_not_hold_the_event_loop(
    mongodb_uri: str, db_name: str, websocket: WebSocketEndpoint
) -> None:
    hook = MetadataWebSocketHook(websocket.url)
    async with AsyncMongoDBSessionManagerFactory(mongodb_uri, database_name=db_name) as factory:
        manager = await factory.create_session_manager("ws-slow-async", metadata_hook=hook)
        await manager.update_metadata_async({"connection_id": "held-2", "step": 1})
        await manager.update_metadata_async({"step": 2})  # its push reads the stored connection id
        await manager.add_feedback_async({"rating": "up"})  # the loop keeps serving other work
        assert hook.pending == 2
        websocket.release.set()
        assert await hook.flush_async(FLUSH) == 0
    assert [(post.connection_id, post.body["metadata"]) for post in websocket.posts] == [
        ("held-2", {"step": 1}),
        ("held-2", {"step": 2}),
    ]


def test_session_order_is_kept_while_sessions_go_out_in_parallel(
    factory: MongoDBSessionManagerFactory, websocket: WebSocketEndpoint
) -> None:
    hook = MetadataWebSocketHook(websocket.url, ["step"])
    held = factory.create_session_manager("ws-held", metadata_hook=hook)
    held.update_metadata({"connection_id": "held-3", "step": 0})
    assert websocket.arrived.wait(FLUSH)
    manager = factory.create_session_manager("ws-ordered", metadata_hook=hook)
    manager.update_metadata({"connection_id": "conn-ordered"})
    for step in range(20):
        manager.update_metadata({"step": step})
    # The other session's pushes are not stuck behind the held one.
    assert hook.flush(FLUSH, session_id="ws-ordered") == 0
    assert [post.body["metadata"].get("step") for post in websocket.posts] == [None, *range(20)]
    websocket.release.set()
    assert hook.flush(FLUSH) == 0


def test_an_unreachable_endpoint_fails_the_notification_not_the_write(
    factory: MongoDBSessionManagerFactory,
    sns: Any,
    sqs: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    topic, _ = subscribed_topic(sns, sqs)
    queue_url = new_queue(sqs)
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_url())
    metadata_hook = MetadataSQSHook(queue_url, [])
    feedback_hook = FeedbackSNSHook(topic, topic, topic)
    manager = factory.create_session_manager("down", metadata_hook=metadata_hook, feedback_hook=feedback_hook)

    manager.update_metadata({"status": "kept"})
    manager.add_feedback({"rating": "down", "comment": "kept too"})

    assert metadata_hook.flush(FLUSH) == 0
    assert feedback_hook.flush(FLUSH) == 0
    assert stored_metadata(manager) == {"status": "kept"}
    assert [feedback["comment"] for feedback in manager.get_feedbacks()] == ["kept too"]
    assert metadata_hook.stats["failed"] == feedback_hook.stats["failed"] == 1
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert {record.name for record in warnings} == {"mongodb_session_manager.hooks._delivery"}
    assert sorted(record.getMessage().split(" for session")[0] for record in warnings) == [
        "FeedbackSNSHook: feedback notification to SNS",
        "MetadataSQSHook: metadata update to SQS",
    ]
    assert all("failed (" in record.getMessage() for record in warnings)
    everything = log_text(caplog) + "".join(record.exc_text or "" for record in caplog.records)
    assert SECRET_KEY not in everything


def test_a_rejected_call_is_logged_and_the_write_stands(
    factory: MongoDBSessionManagerFactory, sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    missing_queue = new_queue(sqs)
    sqs.delete_queue(QueueUrl=missing_queue)
    hook = MetadataSQSHook(missing_queue, [])
    manager = factory.create_session_manager("rejected", metadata_hook=hook)
    manager.update_metadata({"status": "kept"})
    assert hook.flush(FLUSH) == 0
    assert stored_metadata(manager) == {"status": "kept"}
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert "NotificationTargetNotFoundError" in warning.getMessage()


def test_standalone_manager_close_delivers_its_pending_notifications(
    mongodb_uri: str, db_name: str, websocket: WebSocketEndpoint
) -> None:
    hook = MetadataWebSocketHook(websocket.url)
    manager = MongoDBSessionManager(
        "standalone", connection_string=mongodb_uri, database_name=db_name, metadata_hook=hook
    )
    manager.update_metadata({"connection_id": "conn-close", "status": "done"})
    manager.delete_metadata(["status"])  # its push reads the stored connection id through the manager
    manager.close()
    assert hook.pending == 0
    assert [post.body["operation"] for post in websocket.posts] == ["update", "delete"]


@pytest.mark.anyio
async def test_standalone_manager_close_async_delivers_its_pending_notifications(
    mongodb_uri: str, db_name: str, sqs: Any
) -> None:
    queue_url = new_queue(sqs)
    hook = MetadataSQSHook(queue_url, [])
    manager = MongoDBSessionManager(
        "standalone-async", connection_string=mongodb_uri, database_name=db_name, metadata_hook=hook
    )
    await manager.update_metadata_async({"status": "done"})
    await manager.close_async()
    assert hook.pending == 0
    assert len(received(sqs, queue_url)) == 1


def test_hook_close_waits_then_reports_what_it_could_not_send(
    factory: MongoDBSessionManagerFactory, websocket: WebSocketEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    hook = MetadataWebSocketHook(websocket.url)
    manager = factory.create_session_manager("ws-close", metadata_hook=hook)
    manager.update_metadata({"connection_id": "held-4", "step": 1})
    manager.update_metadata({"step": 2})
    assert websocket.arrived.wait(FLUSH)

    assert hook.close(timeout=0.2) == 2
    assert "closed with 2 notification(s) not sent" in log_text(caplog)
    manager.update_metadata({"step": 3})  # a write through a closed hook still succeeds
    assert stored_metadata(manager)["step"] == 3
    assert "dropped: the hook is closed" in log_text(caplog)
    websocket.release.set()
    assert hook.flush(FLUSH) == 0
    assert [post.body["metadata"] for post in websocket.posts] == [{"step": 1}]  # the one in flight
    assert hook.stats["dropped"] == 1
    assert hook.close() == 0  # idempotent


EXITING_SCRIPT = """
import sys
from mongodb_session_manager.hooks.metadata_sqs_hook import MetadataSQSHook

hook = MetadataSQSHook(sys.argv[1], [])
for step in range(5):
    hook(lambda metadata: None, "update", "exiting", metadata={"step": step})
print(hook.pending)
"""


def test_a_script_that_ends_without_closing_still_delivers(sqs: Any, tmp_path: Path) -> None:
    queue_url = new_queue(sqs)
    script = tmp_path / "exiting.py"
    script.write_text(EXITING_SCRIPT, encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, str(script), queue_url], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert int(completed.stdout) > 0  # still pending when the script's last line ran
    bodies = [json.loads(message["Body"]) for message in received(sqs, queue_url)]
    assert [body["metadata"]["step"] for body in bodies] == list(range(5))


FORKING_SCRIPT = """
import os, sys
from mongodb_session_manager.hooks.metadata_sqs_hook import MetadataSQSHook

hook = MetadataSQSHook(sys.argv[1], [])
hook(lambda metadata: None, "update", "parent", metadata={"who": "parent"})
assert hook.flush(30) == 0
pid = os.fork()
if pid == 0:
    hook(lambda metadata: None, "update", "child", metadata={"who": "child"})
    os._exit(0 if hook.flush(30) == 0 else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_delivers_its_own_notifications(sqs: Any, tmp_path: Path) -> None:
    queue_url = new_queue(sqs)
    script = tmp_path / "forking.py"
    script.write_text(FORKING_SCRIPT, encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", str(script), queue_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    bodies = [json.loads(message["Body"]) for message in received(sqs, queue_url)]
    assert sorted(body["metadata"]["who"] for body in bodies) == ["child", "parent"]


def test_the_viewer_password_comes_from_the_session_manager_keyword(sns: Any, sqs: Any) -> None:
    topic, queue = subscribed_topic(sns, sqs)
    hook = FeedbackSNSHook(topic, topic, topic)

    class Manager:
        def get_session_viewer_password(self) -> str:
            return "viewer-token"

    hook(lambda feedback: None, "add", "keyword", feedback={"comment": "c"}, session_manager=Manager())
    assert hook.flush(FLUSH) == 0
    [note] = sns_notifications(sqs, queue)
    assert note["Message"] == "Password: viewer-token\n\nSession: keyword\n\nc"


def test_a_notification_that_cannot_be_built_is_logged_and_the_result_returned(
    sns: Any, sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    topic, queue = subscribed_topic(sns, sqs)
    hook = FeedbackSNSHook(topic, topic, topic)
    assert hook(lambda feedback: "stored", "add", "odd", feedback=["not", "a", "dict"]) == "stored"
    assert hook.flush(FLUSH) == 0
    assert sns_notifications(sqs, queue) == []
    assert "no notification for add of session 'odd' (AttributeError" in log_text(caplog)


def test_blocking_flush_and_close_refuse_to_run_on_an_event_loop(sqs: Any) -> None:
    import asyncio

    hook = MetadataSQSHook(new_queue(sqs), [])

    async def on_loop() -> None:
        with pytest.raises(MongoDBSessionError, match="close_async"):
            hook.close()
        with pytest.raises(MongoDBSessionError, match="flush_async"):
            hook.flush()
        assert await hook.close_async() == 0

    asyncio.run(on_loop())


# -- the hook contract called directly, as the earlier library's users do ------------------------------


def test_hooks_called_directly_run_the_original_first_and_notify(sns: Any, sqs: Any) -> None:
    topic, queue = subscribed_topic(sns, sqs)
    hook = create_feedback_hook(topic, topic, topic)
    assert hook is not None
    calls: list[tuple[Any, ...]] = []

    def original(*args: Any) -> str:
        calls.append(args)
        return "stored"

    assert hook(original, "add", "direct", feedback={"rating": "up", "comment": "hi"}) == "stored"
    assert hook(original, "get", "direct") == "stored"
    assert calls == [({"rating": "up", "comment": "hi"},), ()]
    assert hook.flush(FLUSH) == 0
    [note] = sns_notifications(sqs, queue)
    assert note["Message"] == "Password: N/A\n\nSession: direct\n\nhi"


def test_a_failing_original_sends_nothing(sqs: Any) -> None:
    queue_url = new_queue(sqs)
    hook = MetadataSQSHook(queue_url, [])

    def failing(metadata: Any) -> None:
        raise InvalidInputError("rejected")

    with pytest.raises(InvalidInputError):
        hook(failing, "update", "s", metadata={"a": 1})
    assert hook.flush(FLUSH) == 0
    assert received(sqs, queue_url) == []


@pytest.mark.anyio
async def test_on_change_methods_send_now(sqs: Any, websocket: WebSocketEndpoint) -> None:
    queue_url = new_queue(sqs)
    await MetadataSQSHook(queue_url, ["a"]).on_metadata_change("s", {"a": 1, "b": 2}, "update")
    [message] = received(sqs, queue_url)
    assert json.loads(message["Body"])["metadata"] == {"a": 1}
    await MetadataWebSocketHook(websocket.url).on_metadata_change("s", {"connection_id": "c", "a": 1}, "update")
    assert [post.body["metadata"] for post in websocket.posts] == [{"a": 1}]


# -- utils_sns / utils_sqs -------------------------------------------------------------------------------


def test_publish_message_and_send_message_reach_the_endpoint(sns: Any, sqs: Any) -> None:
    topic, topic_queue = subscribed_topic(sns, sqs)
    answer = publish_message(
        topic_arn=topic,
        message={"kind": "ping", "n": 1},
        subject="ping",
        message_attributes={"k": {"DataType": "String", "StringValue": "v"}},
    )
    assert "MessageId" in answer
    [note] = sns_notifications(sqs, topic_queue)
    assert json.loads(note["Message"]) == {"kind": "ping", "n": 1}
    assert note["Subject"] == "ping"

    queue_url = new_queue(sqs)
    answer = send_message(queue_url, {"hello": "world"}, {"k": {"DataType": "String", "StringValue": "v"}})
    assert "MessageId" in answer
    [message] = received(sqs, queue_url)
    assert json.loads(message["Body"]) == {"hello": "world"}
    assert message["MessageAttributes"]["k"]["StringValue"] == "v"


def test_utils_reject_bad_input_and_missing_targets_with_typed_errors(sns: Any, sqs: Any) -> None:
    with pytest.raises(InvalidInputError):
        publish_message(message="no target")
    with pytest.raises(InvalidInputError):
        publish_message(topic_arn="arn:aws:sns:eu-west-1:123456789012:t", phone_number="+34600000000", message="x")
    with pytest.raises(ValueError, match="empty"):
        publish_message(topic_arn="arn:aws:sns:eu-west-1:123456789012:t", message="")
    with pytest.raises(InvalidInputError):
        send_message("http://unused", "x", delay_seconds=901)
    missing_topic = f"arn:aws:sns:{REGION}:123456789012:missing-{uuid.uuid4().hex}"
    with pytest.raises(NotificationTargetNotFoundError) as raised:
        publish_message(topic_arn=missing_topic, message="x")
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, MongoDBSessionError)
    gone_queue = new_queue(sqs)
    sqs.delete_queue(QueueUrl=gone_queue)
    with pytest.raises(NotificationTargetNotFoundError):
        send_message(gone_queue, "x")


# -- availability and imports ----------------------------------------------------------------------------


def test_without_boto3_hooks_say_unavailable_and_refuse_clearly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # boto3 cannot really be absent (Strands itself needs it): answer as an install without it would.
    monkeypatch.setattr(_aws, "boto3_available", lambda: False)
    assert not mongodb_session_manager.is_feedback_sns_hook_available()
    assert not mongodb_session_manager.is_metadata_sqs_hook_available()
    assert not mongodb_session_manager.is_metadata_websocket_hook_available()
    for build in (
        lambda: FeedbackSNSHook("a", "b", "c"),
        lambda: MetadataSQSHook("http://q", []),
        lambda: MetadataWebSocketHook("http://ws"),
    ):
        with pytest.raises(AWSHooksUnavailableError, match=re.escape("mongodb-session-manager[aws]")) as raised:
            build()
        assert isinstance(raised.value, MongoDBSessionError)
        assert isinstance(raised.value, ImportError)
    assert create_feedback_hook("a", "b", "c") is None
    assert create_sqs_hook("http://q") is None
    assert create_websocket_hook("http://ws") is None
    assert log_text(caplog).count("mongodb-session-manager[aws]") == 3


def test_the_earlier_import_paths_and_names() -> None:
    import mongodb_session_manager.hooks as hooks
    from mongodb_session_manager.hooks import (
        feedback_sns_hook,
        metadata_sqs_hook,
        metadata_websocket_hook,
        utils_sns,
        utils_sqs,
    )

    assert mongodb_session_manager.is_feedback_sns_hook_available()
    assert mongodb_session_manager.is_metadata_sqs_hook_available()
    assert mongodb_session_manager.is_metadata_websocket_hook_available()
    assert mongodb_session_manager.FeedbackSNSHook is feedback_sns_hook.FeedbackSNSHook
    assert mongodb_session_manager.create_feedback_sns_hook is feedback_sns_hook.create_feedback_hook
    assert mongodb_session_manager.MetadataSQSHook is metadata_sqs_hook.MetadataSQSHook
    assert mongodb_session_manager.create_metadata_sqs_hook is metadata_sqs_hook.create_metadata_hook
    assert mongodb_session_manager.MetadataWebSocketHook is metadata_websocket_hook.MetadataWebSocketHook
    assert mongodb_session_manager.create_metadata_websocket_hook is metadata_websocket_hook.create_metadata_hook
    assert hooks.create_feedback_hook is feedback_sns_hook.create_feedback_hook
    assert hooks.create_metadata_sqs_hook is metadata_sqs_hook.create_metadata_hook
    assert hooks.create_metadata_websocket_hook is metadata_websocket_hook.create_metadata_hook
    assert hooks.feedback_sns_available
    assert hooks.metadata_sqs_available
    assert hooks.metadata_websocket_available
    assert callable(utils_sns.publish_message)
    assert callable(utils_sqs.send_message)
    for name in (
        "is_feedback_sns_hook_available",
        "is_metadata_sqs_hook_available",
        "is_metadata_websocket_hook_available",
        "create_feedback_sns_hook",
        "create_metadata_sqs_hook",
        "create_metadata_websocket_hook",
    ):
        assert name in mongodb_session_manager.__all__


def test_a_bad_websocket_endpoint_is_a_typed_input_error_and_create_returns_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for endpoint in ("not a url", "https://abc123.execute-api..."):
        with pytest.raises(ValueError, match=r"http|endpoint") as raised:
            MetadataWebSocketHook(endpoint)
        assert isinstance(raised.value, MongoDBSessionError)
        # The earlier library's factory answered None for a hook it could not build (its README's
        # placeholder URL included); so does ours, saying why.
        assert create_websocket_hook(endpoint) is None
    assert log_text(caplog).count("metadata WebSocket hook not created") == 2


def test_the_hook_modules_import_boto3_only_when_a_client_is_built() -> None:
    # Strands imports boto3 itself, so look at our modules: none imports boto3 or botocore at import time.
    root = Path(mongodb_session_manager.__file__).parent / "hooks"
    for module in root.glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        imported = [alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]
        imported += [node.module or "" for node in tree.body if isinstance(node, ast.ImportFrom)]
        assert not [name for name in imported if name.split(".")[0] in ("boto3", "botocore")], module.name
