"""The DTOs' base, Immich's date format and its field rules (services/api/validation.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec

from services.api.validation import EachNotEmpty, Email, MaxItems, NotEmpty, Unique

# Immich's rules (class-validator decorators), checked by services/api/validation.py.
PathList = Annotated[list[str], EachNotEmpty(), Unique(), MaxItems(128)]
"""`importPaths` and `exclusionPatterns`: each non-empty, unique, at most 128."""
Name = Annotated[str, NotEmpty()]
EmailStr = Annotated[str, Email()]
Password = Annotated[str, NotEmpty()]


def iso(dt: datetime | None) -> str | None:
    """Immich's date-time: UTC, milliseconds, `Z`."""
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Dto(msgspec.Struct, kw_only=True, rename="camel"):
    """Base of every DTO: camelCase on the wire, unknown fields ignored (Immich whitelists)."""
