"""The logger the engines write to: a task's own logger, or a standard ``logging.Logger``."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["TaskLogger"]


class TaskLogger(Protocol):
    """
    What the engines call on a logger: lazy ``%s`` messages of counts and progress, never payloads or keys.

    Both Airflow's task logger (``self.log`` of a hook or an operator) and ``logging.Logger`` are one.
    """

    def debug(self, msg: str, /, *args: Any) -> Any: ...

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...
