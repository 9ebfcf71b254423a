"""Exceptions raised by the dispatch package; every message starts with the path of the offending field."""

from __future__ import annotations

from typing import Self


class DispatchError(Exception):
    """Base class of every error raised by the dispatch package: `field: message`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)  # SimPy re-raises a process's error as type(e)(*e.args)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def within(self, prefix: str) -> Self:
        """The same error with its field path placed under `prefix`, e.g. `orders[3]` + `items[0].qty`."""
        if not self.field:
            return type(self)(prefix, self.message)
        joiner = "" if self.field.startswith("[") else "."
        return type(self)(f"{prefix}{joiner}{self.field}", self.message)


class InvalidOrderError(DispatchError, ValueError):
    """An order or one of its items is invalid."""


class InvalidFacilityError(DispatchError, ValueError):
    """A dark store, pickup point, locker or box catalogue is invalid."""


class ReservationError(DispatchError, ValueError):
    """A reservation cannot be made (not enough stock or room) or released (unknown order)."""


class InvalidDispatchError(DispatchError, ValueError):
    """A courier, dispatch state, policy option or courier event is invalid."""
