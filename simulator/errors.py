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


class ScenarioError(SimulatorError, ValueError):
    """A bad scenario, demand file or sweep setting: `FILE[ row N]: KEY: message`."""

    def __init__(self, key: str, message: str, *, file: str | None = None, row: int | None = None) -> None:
        where = ": ".join(p for p in (
            (file or "") + (f" row {row}" if row is not None else ""), key) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.key = key
        self.message = message
        self.file = file
        self.row = row

    def __reduce__(self) -> tuple[object, ...]:
        return _rebuild_scenario_error, (self.key, self.message, self.file, self.row)

    def in_file(self, file: str) -> ScenarioError:
        """The same error, naming `file` (unless it already names one)."""
        return self if self.file else ScenarioError(self.key, self.message, file=file, row=self.row)


def _rebuild_scenario_error(key: str, message: str, file: str | None, row: int | None) -> ScenarioError:
    return ScenarioError(key, message, file=file, row=row)
