"""Every ```python block of README.md and docs/*.md runs as written, twice, in any order.

Each block runs in its own interpreter with ``MONGODB_URI`` set to the test server, exactly as a
reader runs it with ``export MONGODB_URI=...``. Every block runs once in document order, then once
more in reverse order, with nothing dropped in between: an example must cope with what it and the
others left behind (unique ids, or a namespace of its own). The databases they created are dropped
after the last run. Illustrative fragments that are not meant to run are fenced as ```py instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
#: How an example names its server: the environment variable, with the default a reader expects.
URI_FROM_ENV = 'os.environ.get("MONGODB_URI", "mongodb://localhost:27017/")'


def examples() -> list[tuple[str, str]]:
    """``(id, code)`` of every runnable block, in document order."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for number, match in enumerate(BLOCK.finditer(text), start=1):
            line = text[: match.start()].count("\n") + 1
            found.append((f"{document.relative_to(ROOT)}:{line}#{number}", match.group(1)))
    return found


def runs() -> list[Any]:
    """Every example in document order, then every example again in reverse order."""
    forward = examples()
    return [pytest.param(code, id=f"first-{name}") for name, code in forward] + [
        pytest.param(code, id=f"again-{name}") for name, code in reversed(forward)
    ]


def test_the_docs_have_examples() -> None:
    assert len(examples()) >= 6


@pytest.mark.parametrize(("name", "code"), [pytest.param(name, code, id=name) for name, code in examples()])
def test_examples_read_mongodb_uri(name: str, code: str) -> None:
    """A URI in an example is the default of MONGODB_URI, never hard-coded."""
    assert "mongodb://" not in code.replace(URI_FROM_ENV, ""), f"{name} hard-codes a URI; use {URI_FROM_ENV}"


@pytest.fixture(scope="module")
def example_databases(mongodb_client: MongoClient[dict[str, Any]]) -> Iterator[None]:
    """Drops the databases the examples created, once all the runs are over."""
    before = set(mongodb_client.list_database_names())
    yield
    for name in set(mongodb_client.list_database_names()) - before:
        mongodb_client.drop_database(name)


@pytest.mark.parametrize("code", runs())
def test_example_runs(code: str, mongodb_uri: str, example_databases: None) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "MONGODB_URI": mongodb_uri},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
