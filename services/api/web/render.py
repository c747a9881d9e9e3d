"""Jinja filters the templates share, and rendering a fragment to a string (for SSE)."""

from __future__ import annotations

import html
from datetime import datetime
from typing import TYPE_CHECKING, Any

from litestar.types import Empty
from litestar.utils.scope.state import ScopeState

if TYPE_CHECKING:
    from litestar import Request
    from litestar.contrib.jinja import JinjaTemplateEngine

RATIO_MIN, RATIO_MAX = 5, 30  # tenths: the CSS has one class per ratio from 0.5 to 3.0


def ratio_class(ratio: float) -> str:
    """A thumbnail's width class in the justified grid (CSS only: no inline styles)."""
    tenths = round(ratio * 10)
    return f"r{min(RATIO_MAX, max(RATIO_MIN, tenths))}"


def month_label(bucket: str) -> str:
    """`2024-12-01` -> `December 2024`."""
    return datetime.strptime(bucket[:10], "%Y-%m-%d").strftime("%B %Y")


def when(value: str | None) -> str:
    """An ISO timestamp as people read it, in UTC; `never` for none."""
    if not value:
        return "never"
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.strftime("%d %b %Y, %H:%M UTC")


def setup_environment(engine: JinjaTemplateEngine) -> None:
    env = engine.engine
    env.autoescape = True  # every user-controlled string is escaped, in every template
    env.filters["ratio_class"] = ratio_class
    env.filters["month_label"] = month_label
    env.filters["when"] = when
    env.trim_blocks = True
    env.lstrip_blocks = True


def render(request: Request[Any, Any, Any], template: str, /, **context: Any) -> str:
    """A template rendered outside a response (a server-sent event's data), with the same
    `csrf_input` and `csrf_token()` a Template response gives its forms."""
    engine = request.app.template_engine
    if engine is None:
        raise RuntimeError("the app has no template engine")
    token = ScopeState.from_scope(request.scope).csrf_token
    token = "" if token is Empty else str(token)
    csrf_input = f'<input type="hidden" name="_csrf_token" value="{html.escape(token)}" />'
    page = {"request": request, "csrf_input": csrf_input, **context}
    return str(engine.get_template(template).render(**page))
