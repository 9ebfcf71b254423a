"""Errors of the API package: each carries the HTTP status, a code, the field it is about and a message.

Every error of every package reaches the client in one shape, `{"error": {"code", "message", "field"}}`, mapped
in one place (`api.app`'s handlers).
"""

from __future__ import annotations

from dispatch.errors import DispatchError


class ApiError(Exception):
    """An error answered with `status`: `{"error": {"code", "message", "field"}}`."""

    def __init__(self, status: int, code: str, message: str, field: str = "", *,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, code, message, field)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ConflictError(DispatchError, ValueError):
    """A command that cannot be carried out in the present state (answered 409)."""

    code = "conflict"


class StoreSpecError(ValueError):
    """A store that is neither `memory` nor a Redis URL."""
