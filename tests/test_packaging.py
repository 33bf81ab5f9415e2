"""The built distributions hold the whole package: every module, ``py.typed`` and the console script.

``.ci/package`` (run by ``.ci/run``) goes further: it installs the wheel into a clean virtualenv,
imports it there and runs the CLI.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "mongodb_session_manager"


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    outdir = tmp_path_factory.mktemp("dist")
    completed = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(outdir), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    (sdist,) = outdir.glob("*.tar.gz")
    (wheel,) = outdir.glob("*.whl")
    return sdist, wheel


def package_files() -> set[str]:
    """The package's sources as they must appear in the wheel: modules and the py.typed marker."""
    files = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / PACKAGE).rglob("*")
        if path.is_file() and (path.suffix == ".py" or path.name == "py.typed") and "__pycache__" not in path.parts
    }
    assert f"{PACKAGE}/py.typed" in files
    return files


def test_the_wheel_holds_every_module_and_py_typed(distributions: tuple[Path, Path]) -> None:
    _, wheel = distributions
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert package_files() <= names, sorted(package_files() - names)
    assert "mongodb-session-manager = mongodb_session_manager.cli:main" in scripts
    assert not [name for name in names if name.split("/")[0] in {"tests", "examples", "benchmarks", "docs"}]


def test_the_sdist_holds_the_sources(distributions: tuple[Path, Path]) -> None:
    sdist, _ = distributions
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", *package_files()} <= names
