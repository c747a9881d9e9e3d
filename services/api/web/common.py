"""What every page module uses: rendering a page, reading a form, the redirect after a post."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.datastructures import FormMultiDict
from litestar.response import Redirect, Template

from services.api import commands, queries
from services.api.auth import AuthUser
from services.api.context import Context
from services.api.errors import STATUS
from shared.errors import InvalidInput, NotFound, ShoeboxError
from shared.events import ScanMode

# The progress stream renders when something changed, at most every PROGRESS_COALESCE s, and
# says it is alive (and looks once) after PROGRESS_QUIET s without any change.
PROGRESS_COALESCE = 0.2
PROGRESS_QUIET = 15.0
SCAN_MODES = {"new": ScanMode.NEW, "modified": ScanMode.MODIFIED, "force": ScanMode.FORCE}


def page(template: str, status_code: int = 200, /, **context: Any) -> Template:
    return Template(template_name=template, context=context, status_code=status_code)


def see_other(path: str) -> Redirect:
    """The answer to a form post: the browser GETs `path` (POST/redirect/GET)."""
    return Redirect(path=path, status_code=303)


def field(form: FormMultiDict, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def fields(form: FormMultiDict, name: str) -> list[str]:
    """Every non-empty value of a repeated field, in order."""
    return [v.strip() for v in form.getall(name, []) if isinstance(v, str) and v.strip()]


async def initialized(ctx: Context) -> bool:
    async with ctx.engine.connect() as conn:
        return await queries.server_initialized(conn)


def status_of(e: ShoeboxError) -> int:
    """The status a page answers a refusal with: the API's, mapped once."""
    return next((code for cls, code in STATUS.items() if isinstance(e, cls)), 400)


async def library_or_404(
    ctx: Context, auth: AuthUser, library_id: uuid.UUID, *, counted: bool = False
) -> Any:
    """The library if the caller may see it; a page of somebody else's library is not found.
    With `counted`, its row holds its asset count (for its DTO)."""
    try:
        return await commands.visible_library(ctx, auth, library_id, counted=counted)
    except InvalidInput as e:
        raise NotFound("Library not found") from e
