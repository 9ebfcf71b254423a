"""Exceptions raised by the simulator package; instance errors name the file, line and field."""

from __future__ import annotations


class SimulatorError(Exception):
    """Base class of every error raised by the simulator package."""


class InstanceError(SimulatorError, ValueError):
    """A malformed instance file: `file line N, field F: message`."""

    def __init__(self, file: str, line: int | None, field: str, message: str) -> None:
        where = file if line is None else f"{file} line {line}"
        super().__init__(f"{where}, field {field}: {message}" if field else f"{where}: {message}")
        self.file = file
        self.line = line
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[InstanceError], tuple[str, int | None, str, str]]:
        return type(self), (self.file, self.line, self.field, self.message)
