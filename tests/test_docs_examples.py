"""Every ```python block of README.md and docs/*.md runs as written against the test server.

Each block runs in its own interpreter with ``MONGODB_URI`` set, and the literal
``mongodb://localhost:27017/`` replaced by the test server's URI. Databases the examples create are
dropped afterwards. Illustrative fragments that are not meant to run are fenced as ```py instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def examples() -> list[Any]:
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for number, match in enumerate(BLOCK.finditer(text), start=1):
            line = text[: match.start()].count("\n") + 1
            found.append(pytest.param(match.group(1), id=f"{document.relative_to(ROOT)}:{line}#{number}"))
    return found


def test_the_docs_have_examples() -> None:
    assert len(examples()) >= 6


@pytest.mark.parametrize("code", examples())
def test_example_runs(code: str, mongodb_uri: str, mongodb_client: MongoClient[dict[str, Any]]) -> None:
    before = set(mongodb_client.list_database_names())
    source = code.replace("mongodb://localhost:27017/", mongodb_uri)
    try:
        completed = subprocess.run(
            [sys.executable, "-c", source],
            cwd=ROOT,
            env={**os.environ, "MONGODB_URI": mongodb_uri},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
    finally:
        for name in set(mongodb_client.list_database_names()) - before:
            mongodb_client.drop_database(name)
