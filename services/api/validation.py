"""Immich's validation pipe: DTO rules and decoding errors answered as a list of messages.

Immich checks every request DTO with class-validator before its services run and answers 400
with `message` as an **array** of the rules' messages (`All importPaths's elements must be
unique`, `name should not be empty`, `ownerId must be a UUID`, …); what its services throw
later is one string. Shoebox does the same in one place:

* the rules a DTO field carries are `Annotated` metadata on its Struct field (`NotEmpty`,
  `EachNotEmpty`, `Unique`, `MaxItems`, `Email`); `problems(dto_type, raw)` checks a decoded JSON
  body against them (edge.py runs it on every body, before the body becomes the DTO), and
  `require(dto)` checks a DTO built in code (the web app's forms);
* what msgspec refuses while turning a body or a parameter into the DTO (a wrong type, an
  unknown enum value, a malformed UUID, an unknown field where a DTO forbids them) is reworded
  into class-validator's message for the same rule by `immich_message`.

Both end as `ValidationException`s (edge.py, Litestar) or `InvalidFields` (shared/errors.py),
which services/api/errors.py answers with the list.
"""

from __future__ import annotations

import functools
import re
import typing
from typing import Any

import msgspec

from shared.errors import InvalidFields

__all__ = [
    "MAX_ITEMS",
    "EachNotEmpty",
    "Email",
    "MaxItems",
    "NotEmpty",
    "Unique",
    "enum_values",
    "immich_message",
    "literal_values",
    "path_param_name",
    "problems",
    "require",
]

MAX_ITEMS = 128
"""Immich's `@ArrayMaxSize(128)` on import paths and exclusion patterns."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class Rule:
    """One class-validator decorator: `check` gives its message for a bad value, else None."""

    def check(self, name: str, value: Any) -> str | None:
        raise NotImplementedError


class NotEmpty(Rule):
    """`@IsNotEmpty()` (and, as Shoebox has always done, not only blanks)."""

    def check(self, name: str, value: Any) -> str | None:
        if isinstance(value, str) and not value.strip():
            return f"{name} should not be empty"
        return None


class EachNotEmpty(Rule):
    """`@IsNotEmpty({ each: true })`."""

    def check(self, name: str, value: Any) -> str | None:
        if isinstance(value, list) and any(isinstance(v, str) and not v.strip() for v in value):
            return f"each value in {name} should not be empty"
        return None


class Unique(Rule):
    """`@ArrayUnique()`."""

    def check(self, name: str, value: Any) -> str | None:
        strings = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if strings and len(set(value)) != len(value):
            return f"All {name}'s elements must be unique"
        return None


class MaxItems(Rule):
    """`@ArrayMaxSize(n)`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def check(self, name: str, value: Any) -> str | None:
        if isinstance(value, list) and len(value) > self.limit:
            return f"{name} must contain no more than {self.limit} elements"
        return None


class Email(Rule):
    """`@IsEmail()` (loosely: one `@`, something on each side, no spaces)."""

    def check(self, name: str, value: Any) -> str | None:
        if isinstance(value, str) and not _EMAIL.match(value):
            return f"{name} must be an email"
        return None


PATH_LIST_RULES = (EachNotEmpty(), Unique(), MaxItems(MAX_ITEMS))
"""Immich's rules on `importPaths` and `exclusionPatterns` (create, update and validate)."""


@functools.cache
def _rules(dto_type: type[Any]) -> tuple[tuple[str, str, tuple[Rule, ...]], ...]:
    """(attribute, wire name, rules) of every field of a DTO that carries rules."""
    if not (isinstance(dto_type, type) and issubclass(dto_type, msgspec.Struct)):
        return ()
    hints = typing.get_type_hints(dto_type, include_extras=True)
    found = []
    for field in msgspec.structs.fields(dto_type):
        rules = tuple(_annotated_rules(hints.get(field.name)))
        if rules:
            found.append((field.name, field.encode_name, rules))
    return tuple(found)


def _annotated_rules(hint: Any) -> list[Rule]:
    """Rules in an annotation, also inside `X | None` or `X | UnsetType`."""
    if hint is None:
        return []
    if typing.get_origin(hint) is typing.Annotated:
        return [m for m in hint.__metadata__ if isinstance(m, Rule)]
    return [rule for arg in typing.get_args(hint) for rule in _annotated_rules(arg)]


def problems(dto_type: Any, raw: Any) -> list[str]:
    """The rule messages for a decoded JSON body meant to become `dto_type` (`X | None` too)."""
    if not isinstance(raw, dict):
        return []
    messages: list[str] = []
    for candidate in _struct_types(dto_type):
        for _, wire, rules in _rules(candidate):  # type: ignore[arg-type]
            if wire in raw:
                messages += [m for rule in rules if (m := rule.check(wire, raw[wire])) is not None]
    return messages


def require(dto: msgspec.Struct) -> None:
    """Raise InvalidFields unless a DTO built in code keeps its rules (the web app's forms)."""
    messages = [
        message
        for attribute, wire, rules in _rules(type(dto))
        for rule in rules
        if (message := rule.check(wire, getattr(dto, attribute))) is not None
    ]
    if messages:
        raise InvalidFields(messages)


def _struct_types(annotation: Any) -> list[type[Any]]:
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return [annotation]
    return [t for arg in typing.get_args(annotation) for t in _struct_types(arg)]


# --- msgspec's words into class-validator's ------------------------------------------------

_TYPE_WORDS = {
    "str": "must be a string",
    "bool": "must be a boolean value",
    "int": "must be an integer number",
    "float": "must be a number conforming to the specified constraints",
    "array": "must be an array",
    "object": "must be an object",
}
_EXPECTED = re.compile(r"^Expected `(\w+)(?: \| [^`]*)?`, got `[^`]*`")
_BOUND = re.compile(r"^Expected `(?:int|float)` (>=|<=) (-?[\d.]+)")
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(.*)`")
_MISSING_FIELD = re.compile(r"^Object missing required field `(.*)`")
_ENUM = re.compile(r"^Invalid enum value ")
_ELEMENT = re.compile(r"^(.*)\[\d+\]$")


def path_param_name(name: str, first: bool) -> str:
    """The name Immich's param DTOs give a path parameter: the route's own id is `id`
    (`UUIDParamDto`), any other its camelCase name (`userId`)."""
    if first:
        return "id"
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def immich_message(key: str | None, message: str, allowed: tuple[str, ...] | None = None) -> str:
    """class-validator's message for what msgspec said about `key` (a wire name, maybe with
    `[i]` for an element of a list); `allowed` are the values of the field's enum, if any."""
    if match := _UNKNOWN_FIELD.match(message):
        return f"property {match.group(1)} should not exist"
    if match := _MISSING_FIELD.match(message):
        field = f"{key}.{match.group(1)}" if key else match.group(1)
        return f"{field} should not be empty"
    if not key:
        return message
    element = _ELEMENT.match(key)
    name = element.group(1) if element else key
    prefix = f"each value in {name}" if element else name
    if "UUID" in message:
        return f"{prefix} must be a UUID"
    if "datetime" in message or "date" in message:
        return f"{prefix} must be a Date instance"
    if _ENUM.match(message):
        if allowed:
            return f"{prefix} must be one of the following values: {', '.join(allowed)}"
        return f"{prefix} must be a valid enum value"
    if match := _BOUND.match(message):
        op, bound = match.groups()
        relation = "less" if op == ">=" else "greater"
        return f"{prefix} must not be {relation} than {bound}"
    if match := _EXPECTED.match(message):
        words = _TYPE_WORDS.get(match.group(1))
        if words is not None:
            return f"{prefix} {words}"
    return f"{prefix}: {message}"


def enum_values(dto_type: Any, key: str) -> tuple[str, ...] | None:
    """The values of the Literal enum of the field `key` (a wire name) of `dto_type`, if any."""
    name = _ELEMENT.sub(r"\1", key)
    for candidate in _struct_types(dto_type):
        hints = typing.get_type_hints(candidate, include_extras=True)
        for field in msgspec.structs.fields(candidate):
            if field.encode_name == name:
                return literal_values(hints.get(field.name))
    return None


def literal_values(annotation: Any) -> tuple[str, ...] | None:
    """The values of a Literal annotation, in their order (also inside `X | None`, a list, or
    `Annotated`), if it is one."""
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(v) for v in typing.get_args(annotation))
    for arg in typing.get_args(annotation):
        if (values := literal_values(arg)) is not None:
            return values
    return None
