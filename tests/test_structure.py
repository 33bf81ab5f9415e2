"""Structural rules of the package, checked on its source (no server needed).

* One ``Document`` alias, in ``_types``.
* No module reaches into another object's underscore names: ``x._name`` only on ``self`` or ``cls``,
  and ``from .module import _name`` nowhere. Private names of Strands, PyMongo, Motor and asyncio
  are used in ``_compat.py`` only (each with a test in ``test_private_names.py``).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mongodb_session_manager"

# The one module allowed to use private names of other projects.
COMPAT = PACKAGE / "_compat.py"

# (module, expression): why the access is not cross-class.
ALLOWED = {
    ("storage.py", "scoped._prefix"): "MongoDBStorage.namespace() sets the prefix of its own copy (copy.copy(self))",
}


def private_accesses(path: Path, source: str | None = None) -> list[tuple[str, int, str]]:
    """``(module, line, expression)`` of each access to another object's or module's underscore name."""
    module = str(path.relative_to(PACKAGE))
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                found.append((module, node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _has_private_part(node.module or ""):
            found.append((module, node.lineno, f"from {node.module} import ..."))
        elif isinstance(node, ast.Import):
            found.extend(
                (module, node.lineno, f"import {alias.name}") for alias in node.names if _has_private_part(alias.name)
            )
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if _is_private(alias.name) and not _is_internal_module(path, node, alias.name):
                    found.append(
                        (module, node.lineno, f"from {'.' * node.level}{node.module or ''} import {alias.name}")
                    )
    return found


def _has_private_part(dotted: str) -> bool:
    """``strands._async``: a private module of another project."""
    return any(_is_private(part) for part in dotted.split("."))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _is_internal_module(path: Path, node: ast.ImportFrom, name: str) -> bool:
    """``from . import _codec``: importing an internal *module* of the package is fine."""
    if node.level == 0:
        return False
    base = path.parent
    for _ in range(node.level - 1):
        base = base.parent
    for part in (node.module or "").split(".") if node.module else ():
        base = base / part
    return (base / f"{name}.py").exists() or (base / name / "__init__.py").exists()


def test_no_module_reaches_into_another_objects_underscore_names() -> None:
    violations = [
        f"{module}:{line}: {expression}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != COMPAT
        for module, line, expression in private_accesses(path)
        if (module, expression) not in ALLOWED
    ]
    assert violations == []


def test_the_allowed_exceptions_still_exist() -> None:
    accesses = {
        (module, expression)
        for path in sorted(PACKAGE.rglob("*.py"))
        for module, _, expression in private_accesses(path)
    }
    assert set(ALLOWED) <= accesses, "an allowed exception is gone: remove it from ALLOWED"


def test_the_check_finds_what_it_looks_for() -> None:
    source = (
        "from . import _codec\n"
        "from ._validation import _hidden\n"
        "from strands._async import run_async\n\n"
        "def f(self, repository):\n"
        "    return self._mine, repository._collection()\n"
    )
    found = {expression for _, _, expression in private_accesses(PACKAGE / "repository.py", source)}
    assert found == {"from ._validation import _hidden", "from strands._async import ...", "repository._collection"}


def test_one_document_alias() -> None:
    """``Document`` (a BSON document) is declared in ``_types`` only."""
    declared = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        and any(isinstance(target, ast.Name) and target.id == "Document" for target in _targets(node))
    ]
    assert declared == ["_types.py"]


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return list(node.targets) if isinstance(node, ast.Assign) else [node.target]
