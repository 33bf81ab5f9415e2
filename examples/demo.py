"""End-to-end demo: an agent conversation persisted in MongoDB and restored in a new process.

    python -m examples.demo                   # starts a local test server unless MONGODB_URI is set
    python -m examples.demo --model bedrock   # the same with a real model: bedrock, openai or ollama

Step 1 (its own process): a Strands agent with a scripted model (no LLM, no network) answers a
question by calling a tool; the session manager stores every message, the agent state and some
session metadata. Step 2 (another process): a new agent restores the session from MongoDB and
continues the conversation. Finally the stored transcript and metadata are printed.

``--model`` picks a real Strands model provider instead of the scripted model, configured by the
provider's usual environment variables (see ``examples/providers.py``); ``--model-id`` overrides
the model. When the provider's package or credentials are missing, the demo says what is missing
and runs with the scripted model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from typing import Any

from strands import Agent, tool

from mongodb_session_manager import MongoDBSessionManagerFactory, MongoDBSessionRepository
from mongodb_session_manager.scripted_model import ScriptedModel, tool_call

from .providers import PROVIDERS, ProviderUnavailable, make_model

DATABASE = "mongodb_session_manager_demo"
COLLECTION = "sessions"


@tool
def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: City name.
    """
    return f"Sunny and 21 degrees in {city}"


def first_process(uri: str, session_id: str, provider: str, model_id: str | None) -> None:
    with MongoDBSessionManagerFactory(uri, DATABASE, COLLECTION) as factory:
        manager = factory.create_session_manager(session_id)
        script = [
            tool_call("get_weather", {"city": "Lisbon"}, text="Let me check."),
            "It is sunny and 21 degrees in Lisbon.",
        ]
        model = make_model(provider, script=script, model_id=model_id)
        agent = Agent(model=model, tools=[get_weather], session_manager=manager, callback_handler=None)
        agent.state.set("home_city", "Lisbon")
        answer = agent("What's the weather like in Lisbon?")
        if provider != "scripted":
            print(f"[process {os.getpid()}] {provider} answered: {str(answer).strip()}")
        manager.update_metadata({"user": {"name": "Ada", "plan": "pro"}, "status": "active"})
        print(f"[process {os.getpid()}] stored {len(agent.messages)} messages")
        manager.close()


def second_process(uri: str, session_id: str, provider: str, model_id: str | None) -> None:
    with MongoDBSessionManagerFactory(uri, DATABASE, COLLECTION) as factory:
        manager = factory.create_session_manager(session_id)
        model = make_model(provider, script=["You asked about Lisbon: still sunny, enjoy!"], model_id=model_id)
        agent = Agent(model=model, tools=[get_weather], session_manager=manager, callback_handler=None)
        print(
            f"[process {os.getpid()}] restored {len(agent.messages)} messages, "
            f"state home_city={agent.state.get('home_city')!r}"
        )
        answer = agent("What did I ask you before?")
        if isinstance(model, ScriptedModel):
            # The model received the restored history as context:
            print(f"[process {os.getpid()}] the model saw {len(model.calls[0])} messages of history")
        else:
            print(f"[process {os.getpid()}] {provider} answered: {str(answer).strip()}")
        manager.update_metadata({"status": "resolved"})
        manager.add_feedback({"rating": "up", "comment": "helpful"})
        manager.close()


def print_transcript(uri: str, session_id: str) -> None:
    with MongoDBSessionRepository(uri, DATABASE, COLLECTION) as repository:
        messages = repository.list_messages(session_id, "default")
    print(f"\nStored transcript of session {session_id}:")
    for stored in messages:
        print(f"  #{stored.message_id} {stored.message['role']:9} {_describe(stored.message['content'])}")
    with MongoDBSessionManagerFactory(uri, DATABASE, COLLECTION) as factory:
        manager = factory.create_session_manager(session_id)
        print("Metadata:", json.dumps(manager.get_metadata()["metadata"], default=str))
        print("Feedback:", json.dumps(manager.get_feedbacks(), default=str))
        manager.close()


def _describe(content: list[Any]) -> str:
    parts = []
    for block in content:
        if "text" in block:
            parts.append(repr(block["text"]))
        elif "toolUse" in block:
            parts.append(f"toolUse {block['toolUse']['name']}({json.dumps(block['toolUse']['input'])})")
        elif "toolResult" in block:
            texts = [item.get("text", "") for item in block["toolResult"]["content"]]
            parts.append(f"toolResult {' '.join(texts)!r}")
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        choices=PROVIDERS,
        default="scripted",
        help="the model provider (default: scripted, no LLM); real ones read their usual environment variables",
    )
    parser.add_argument("--model-id", help="the provider's model id (default: the provider's usual one)")
    parser.add_argument("--step", choices=["first", "second"], help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    parser.add_argument("--session", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "first":
        first_process(args.uri, args.session, args.model, args.model_id)
        return
    if args.step == "second":
        second_process(args.uri, args.session, args.model, args.model_id)
        return

    provider = args.model
    try:
        make_model(provider, model_id=args.model_id)  # checks the package and the credentials
    except ProviderUnavailable as error:
        print(f"demo: {error}", file=sys.stderr)
        print("demo: falling back to the scripted model", file=sys.stderr)
        provider = "scripted"
    model_args = ["--model", provider, *(["--model-id", args.model_id] if args.model_id else [])]
    print(f"Model: {provider}" + (f" ({args.model_id})" if args.model_id else ""))

    from mongodb_session_manager.testing import server_uri_from_env_or_start

    uri, server = server_uri_from_env_or_start()
    print("MongoDB:", "MONGODB_URI from the environment" if server is None else f"local test server at {uri}")
    try:
        session_id = f"demo-{uuid.uuid4().hex[:8]}"
        for step in ("first", "second"):
            command = [sys.executable, "-m", "examples.demo", "--step", step, "--uri", uri, "--session", session_id]
            subprocess.run([*command, *model_args], check=True)
        print_transcript(uri, session_id)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
