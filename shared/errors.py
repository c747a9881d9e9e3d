"""Shoebox's error hierarchy: one root and a few narrow classes, mapped to HTTP once in the API."""

from __future__ import annotations


class ShoeboxError(Exception):
    """Root of every error Shoebox raises on purpose; `detail` is safe to show to the client."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ShoeboxError):
    """Raised when the requested entity does not exist or is not visible to the caller."""


class Forbidden(ShoeboxError):
    """Raised when the caller is signed in but lacks the role or permission for the action."""


class Unauthorized(ShoeboxError):
    """Raised when credentials are missing or invalid."""


class Conflict(ShoeboxError):
    """Raised when the request clashes with the current state (duplicate name, stale version)."""


class InvalidInput(ShoeboxError):
    """Raised when a request value fails validation (bad pattern, bad import path, bad field)."""


class PathOutsideAllowedRoot(InvalidInput):
    """Raised when a path, once resolved (`..`, symlinks), escapes the root it must stay inside."""


class NotReady(ShoeboxError):
    """Raised when a read model did not catch up with a just-published event in time (503)."""


class InvalidFields(InvalidInput):
    """Raised when a request breaks a DTO rule (Immich's validation pipe): the API answers 400
    with `message` as the list of the rules' messages, as Immich does."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)
