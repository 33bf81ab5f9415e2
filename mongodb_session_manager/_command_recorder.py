"""Recording the commands a client sends, to count round trips in tests and benchmarks."""

from __future__ import annotations

import collections
import threading
from collections.abc import Collection
from typing import Any

from pymongo import monitoring


class CommandRecorder(monitoring.CommandListener):
    """Records the commands a client sends, to count round trips.

    Pass it in the client options (``event_listeners=[recorder]``, e.g. to a factory). Server
    monitoring heartbeats are not commands and are not recorded. ``only`` limits the recording to
    some command names (e.g. ``{"find", "insert", "update"}``). Thread-safe.
    """

    def __init__(self, only: Collection[str] | None = None) -> None:
        self._only = None if only is None else frozenset(only)
        self._lock = threading.Lock()
        self.commands: list[dict[str, Any]] = []

    @property
    def names(self) -> list[str]:
        """The names of the recorded commands, in order."""
        with self._lock:
            return [next(iter(command)) for command in self.commands]

    def take(self) -> list[str]:
        """The names recorded so far, forgetting them."""
        with self._lock:
            commands, self.commands = self.commands, []
        return [next(iter(command)) for command in commands]

    def clear(self) -> None:
        """Forget what was recorded so far."""
        with self._lock:
            self.commands = []

    @property
    def targets(self) -> list[tuple[str, Any]]:
        """``(name, target)`` of each recorded command; the target is the command's first value,
        e.g. the collection of a ``find`` or ``insert``."""
        with self._lock:
            return [(name, command[name]) for command in self.commands for name in (next(iter(command)),)]

    def count(self, name: str, collection: str | None = None) -> int:
        """How many ``name`` commands were recorded (on ``collection`` only, if given)."""
        return sum(1 for command, target in self.targets if command == name and collection in (None, target))

    def namespaces_of(self, name: str) -> collections.Counter[str]:
        """How many ``name`` commands went to each namespace (``database.collection``, or the database
        alone when the command's target is not a collection name)."""
        with self._lock:
            commands = [command for command in self.commands if next(iter(command)) == name]
        return collections.Counter(
            f"{command.get('$db')}.{command[name]}" if isinstance(command[name], str) else str(command.get("$db"))
            for command in commands
        )

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self._only is None or event.command_name in self._only:
            with self._lock:
                self.commands.append({**event.command, "$db": event.database_name})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
