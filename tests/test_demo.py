"""The demo (``bash .ci/demo``) and its choice of model provider (``--model``).

Only the scripted model runs here: a real provider is asked for with its package or credentials
missing, and must say so clearly and fall back to the scripted model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from strands.models.bedrock import BedrockModel

from examples.demo import DATABASE as DEMO_DATABASE
from examples.providers import ProviderUnavailable, make_model
from mongodb_session_manager.scripted_model import ScriptedModel

ROOT = Path(__file__).resolve().parent.parent
AWS_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


def without_aws_credentials(tmp_path: Path) -> dict[str, str]:
    """The environment with no way for boto3 to find credentials (no files, no instance metadata)."""
    env = {key: value for key, value in os.environ.items() if key not in AWS_CREDENTIAL_VARIABLES}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_REGION="us-east-1",
    )
    return env


def test_the_scripted_model_is_the_default() -> None:
    model = make_model("scripted", script=["Hi!"])
    assert isinstance(model, ScriptedModel)


def test_bedrock_without_credentials_says_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in AWS_CREDENTIAL_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    for key, value in without_aws_credentials(tmp_path).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ProviderUnavailable, match=r"no AWS credentials found.*AWS_PROFILE.*AWS_ACCESS_KEY_ID"):
        make_model("bedrock")


def test_bedrock_with_credentials_is_a_bedrock_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in without_aws_credentials(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    model = make_model("bedrock", model_id="us.amazon.nova-lite-v1:0")
    assert isinstance(model, BedrockModel)
    assert model.config["model_id"] == "us.amazon.nova-lite-v1:0"


@pytest.mark.parametrize(("provider", "package"), [("openai", "openai"), ("ollama", "ollama")])
def test_a_missing_provider_package_says_how_to_install_it(
    provider: str, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # makes `import <package>` fail, installed or not
    expected = rf"needs the Python package '{package}'.*pip install 'strands-agents\[{package}\]'"
    with pytest.raises(ProviderUnavailable, match=expected):
        make_model(provider)


def test_openai_without_an_api_key_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", types.ModuleType("openai"))  # the package counts as installed
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ProviderUnavailable, match="export OPENAI_API_KEY"):
        make_model("openai")


def test_an_unknown_provider_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model provider 'gpt'"):
        make_model("gpt")


def test_demo_falls_back_to_the_scripted_model(
    mongodb_uri: str, mongodb_client: MongoClient[dict[str, Any]], tmp_path: Path
) -> None:
    """`--model bedrock` without credentials: a clear message, then the scripted demo runs through."""
    existed = DEMO_DATABASE in mongodb_client.list_database_names()
    try:
        completed = run_demo(mongodb_uri, tmp_path)
    finally:
        if not existed:
            mongodb_client.drop_database(DEMO_DATABASE)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "demo: no AWS credentials found for Bedrock" in completed.stderr
    assert "demo: falling back to the scripted model" in completed.stderr
    assert "Model: scripted" in completed.stdout
    assert "restored 4 messages, state home_city='Lisbon'" in completed.stdout
    assert "#5 assistant 'You asked about Lisbon: still sunny, enjoy!'" in completed.stdout


def run_demo(mongodb_uri: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "examples.demo", "--model", "bedrock"],
        cwd=ROOT,
        env={**without_aws_credentials(tmp_path), "MONGODB_URI": mongodb_uri},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
