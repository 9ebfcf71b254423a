"""Exceptions raised by the routing package; every message names the offending field or point."""


class RoutingError(Exception):
    """Base class of every error raised by the routing package."""


class NetworkLoadError(RoutingError, ValueError):
    """A road network could not be loaded, or its arrays are inconsistent."""


class SnapError(RoutingError, ValueError):
    """A point could not be attached to the road network."""


class InvalidProblemError(RoutingError, ValueError):
    """A routing request or one of its parameters is invalid."""


class UnsupportedProblemError(InvalidProblemError):
    """No backend (or not the one named) honours every feature of the problem; the message starts `backend`."""
