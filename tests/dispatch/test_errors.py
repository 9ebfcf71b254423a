"""Dispatch errors keep their field and message however they are re-created (pickled, or re-raised by SimPy)."""

from __future__ import annotations

import pickle

from dispatch.errors import InvalidDispatchError, InvalidOrderError


def test_errors_survive_recreation_from_args_and_pickling() -> None:
    """type(e)(*e.args) (as SimPy re-raises a process's error) and a pickle round trip give the same text,
    field and message."""
    for error in (InvalidOrderError("orders[3].items[0].qty", "must be positive, got -1"),
                  InvalidDispatchError("", "no field")):
        for again in (type(error)(*error.args), pickle.loads(pickle.dumps(error))):
            assert type(again) is type(error)
            assert str(again) == str(error) and again.field == error.field and again.message == error.message
    assert str(InvalidOrderError("qty", "must be positive")) == "qty: must be positive"
