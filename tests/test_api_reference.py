"""docs/api.md documents every public name and is generated from the current docstrings."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import mongodb_session_manager

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))
import generate_api  # noqa: E402


def test_every_public_name_and_method_has_a_docstring() -> None:
    missing = []
    for module, name, obj in generate_api.public_names():
        if name in generate_api.ALIASES:
            continue
        if not inspect.getdoc(obj):
            missing.append(f"{module}.{name}")
        if inspect.isclass(obj):
            for member_name, member in generate_api.public_members(obj):
                if member_name != "__init__" and not inspect.getdoc(member):
                    missing.append(f"{module}.{name}.{member_name}")
    assert missing == []


def test_every_exported_name_is_in_the_reference() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    for name in mongodb_session_manager.__all__:
        assert f"## `{name}`" in text


def test_the_reference_is_current() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "generate_api.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
