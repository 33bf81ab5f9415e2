"""Write docs/api.md from the public API's signatures and docstrings.

python docs/generate_api.py          # rewrite docs/api.md
python docs/generate_api.py --check  # exit 1 if docs/api.md is out of date (run by the tests)
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("api.md")

# Modules documented beyond the package's top-level ``__all__``, with the names they export.
EXTRA_MODULES: dict[str, list[str]] = {
    "mongodb_session_manager.fastapi": [
        "session_factory_lifespan",
        "get_session_factory",
        "get_session_manager",
        "SessionFactoryDep",
        "SessionManagerDep",
    ],
    "mongodb_session_manager.testing": ["LocalMongoServer", "server_uri_from_env_or_start", "CommandRecorder"],
    "mongodb_session_manager.scripted_model": ["ScriptedModel", "text", "tool_call", "redact"],
    "mongodb_session_manager.migration": [
        "migrate_sessions",
        "verify_sessions",
        "count_legacy_sessions",
        "MigrationReport",
        "VerificationReport",
    ],
    "mongodb_session_manager.hooks": [
        "NotificationHook",
        "AWSHooksUnavailableError",
        "NotificationError",
        "NotificationTargetNotFoundError",
        "NotificationAccessDeniedError",
        "InvalidNotificationError",
    ],
    "mongodb_session_manager.hooks.utils_sns": ["publish_message"],
    "mongodb_session_manager.hooks.utils_sqs": ["send_message"],
}


def public_names() -> list[tuple[str, str, Any]]:
    """(module, name, object) for everything the reference covers."""
    package = importlib.import_module("mongodb_session_manager")
    names = [("mongodb_session_manager", name, getattr(package, name)) for name in package.__all__]
    storage = "mongodb_session_manager.storage"
    if hasattr(package, "MongoDBStorage"):
        names = [entry for entry in names if entry[1] != "MongoDBStorage"]
        names.append((storage, "MongoDBStorage", package.MongoDBStorage))
    for module_name, exported in EXTRA_MODULES.items():
        module = importlib.import_module(module_name)
        names.extend((module_name, name, getattr(module, name)) for name in exported)
    return names


ALIASES = {
    "GUARDRAIL_ACTION_BLOCKED": '`"BLOCKED"`: the action `redact_latest_message` records when the caller names none.',
    "GUARDRAIL_STOP_REASONS": '`frozenset({"guardrail_intervened", "content_filtered"})`: stop reasons meaning a '
    "guardrail intervened.",
    "SessionFactoryDep": "`Annotated[AsyncMongoDBSessionManagerFactory, Depends(get_session_factory)]`: "
    "handler parameter type receiving the app's factory.",
    "SessionManagerDep": "`Annotated[MongoDBSessionManager, Depends(get_session_manager)]`: "
    "handler parameter type receiving a preloaded manager for the path's `session_id`.",
}


def _signature(obj: Any) -> str:
    try:
        signature = inspect.signature(obj, eval_str=True)
    except (NameError, TypeError, ValueError):
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):
            return "(...)"
    text = re.sub(r"\b(?:[a-z_]+\.)+(?=[A-Za-z_]+\b)", "", str(signature))  # module paths of type names
    return text.replace("NoneType", "None").replace("<factory>", "...")


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip()


def public_members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties the class defines or inherits from this package."""
    members = []
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") and name != "__init__":
            continue
        owner = next((base for base in cls.__mro__ if name in vars(base)), None)
        if owner is None or not owner.__module__.startswith("mongodb_session_manager"):
            continue
        if inspect.isfunction(member) or isinstance(member, property):
            members.append((name, member))
    return members


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python docs/generate_api.py`; a test checks it is current.",
        "",
    ]
    for module_name, name, obj in public_names():
        lines.append(f"## `{name}`")
        lines.append("")
        lines.append(f"`from {module_name} import {name}`")
        lines.append("")
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            bases = ", ".join(base.__name__ for base in obj.__bases__)
            lines += [f"```py\nclass {name}({bases})\n```", "", _doc(obj), ""]
        elif inspect.isclass(obj):
            lines += [f"```py\nclass {name}{_signature(obj)}\n```", "", _doc(obj), ""]
            if hasattr(obj, "__aenter__"):
                lines += ["Usable as `async with` (closes on exit).", ""]
            elif hasattr(obj, "__enter__"):
                lines += ["Usable as `with` (closes on exit).", ""]
            for member_name, member in public_members(obj):
                if isinstance(member, property):
                    lines += [f"- `{member_name}` (property): {_doc(member).splitlines()[0] if _doc(member) else ''}"]
                    continue
                if member_name == "__init__":
                    continue
                first = _doc(member).split("\n\n")[0].replace("\n", " ")
                lines.append(f"- `{member_name}{_signature(member)}`: {first}")
            lines.append("")
        elif name not in ALIASES and callable(obj):
            lines += [f"```py\n{name}{_signature(obj)}\n```", "", _doc(obj), ""]
        else:
            lines += [ALIASES[name], ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if OUTPUT.read_text(encoding="utf-8") != text:
            print("docs/api.md is out of date: run `python docs/generate_api.py`", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
