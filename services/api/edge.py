"""The API's edge: what a request must be before a handler sees it (who, how big, how deep, what).

Litestar reads and decodes a handler's body while it gathers the handler's arguments, before it
resolves dependencies such as `auth`; so the caller is authenticated in a guard instead (guards
run first: services/api/auth.py access_guard), and a body is read only for a caller who may send
it. Every JSON body is decoded by `EdgeRequest.json`, which also checks it against its DTO's
rules (validation.py), and every query and path parameter passes `refuse_unstorable_params`:
one place refuses, for every DTO at once, values the read models cannot hold (PostgreSQL's text has
no NUL, its widest integer has 64 bits) and bodies nested deeper than any DTO, with Immich's 400.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request
from litestar.exceptions import ValidationException

from services.api import validation

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection


__all__ = ["MAX_JSON_DEPTH", "EdgeRequest", "refuse_unstorable_params", "unstorable"]

# The deepest DTO is four levels; anything far deeper is not a request, and msgspec would
# otherwise recurse until Python's limit (a RecursionError: a 500).
MAX_JSON_DEPTH = 32
_INT64 = (-(1 << 63), (1 << 63) - 1)  # PostgreSQL's bigint, the widest integer it stores


def unstorable(value: Any, where: str = "") -> list[str]:
    """Messages for every string (or key) and integer in a decoded JSON value that PostgreSQL
    cannot store, and for nesting deeper than MAX_JSON_DEPTH; empty when fine. Iterative."""
    problems: list[str] = []
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return [f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels"]
        if isinstance(item, str):
            if "\x00" in item:
                problems.append(f"{path or 'value'} must not contain NUL characters")
        elif isinstance(item, int) and not _INT64[0] <= item <= _INT64[1]:
            problems.append(f"{path or 'value'} must be an integer that fits in 64 bits")
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and "\x00" in key:
                    problems.append(f"{name!r} is not a valid field name (NUL character)")
                stack.append((child, name, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
    return sorted(problems)


def _refuse(problems: list[str]) -> None:
    if problems:
        raise ValidationException(
            detail="Invalid request", extra=[{"message": message} for message in problems]
        )


def _body_type(request: Request[Any, Any, Any]) -> Any:
    """The DTO the route turns its body into (the annotation of its `data` parameter)."""
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    return None if field is None else field.annotation


class EdgeRequest(Request[Any, Any, Any]):
    """Litestar's request, with every JSON body checked once it is decoded."""

    async def json(self) -> Any:
        try:
            value = await super().json()
        except RecursionError:
            _refuse([f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels"])
        _refuse(unstorable(value))
        _refuse(validation.problems(_body_type(self), value))
        return value


def refuse_unstorable_params(connection: ASGIConnection[Any, Any, Any, Any], _: object) -> None:
    """Guard: no query or path parameter may hold a NUL (they reach SQL and events)."""
    problems = [
        f"{key} must not contain NUL characters"
        for key, value in connection.query_params.multi_items()
        if "\x00" in value or "\x00" in key
    ]
    problems += [
        f"{key} must not contain NUL characters"
        for key, value in connection.path_params.items()
        if isinstance(value, str) and "\x00" in value
    ]
    _refuse(problems)
