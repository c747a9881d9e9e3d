"""The OpenAPI document's error responses, made to say what the API really answers.

Litestar documents its validation errors as `{status_code, detail, extra}`; every error Shoebox
answers has NestJS's shape instead (services/api/errors.py). Once the app is built, every
operation's error responses are replaced by that one schema, for the statuses it can answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
)
from litestar.routes import HTTPRoute

from services.api.auth import access_of

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ["ERROR_SCHEMA", "document_errors"]

ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["message", "error", "statusCode"],
    properties={
        "message": Schema(
            one_of=[
                Schema(type=OpenAPIType.STRING),
                Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING)),
            ]
        ),
        "error": Schema(type=OpenAPIType.STRING),
        "statusCode": Schema(type=OpenAPIType.INTEGER),
        "correlationId": Schema(type=OpenAPIType.STRING),
    },
    description="Every error, in NestJS's (Immich's) shape",
)

_ANYONE = {
    "400": "The request is invalid (a value, a NUL character, nesting too deep)",
    "404": "Not found",
    "413": "The request body is larger than its limit",
    "503": "The read models did not catch up in time",
}
_SIGNED_IN = {
    "401": "Authentication required, or invalid credentials",
    "403": "The caller may not do this",
    "409": "The item was changed by someone else at the same time",
}


def document_errors(app: Litestar) -> None:
    """Replace every operation's error responses by Shoebox's, in the app's OpenAPI document."""
    openapi = app.openapi_schema  # built once and cached: changed in place, then served
    if openapi.components is None:
        openapi.components = Components()
    openapi.components.schemas["ErrorResponseDto"] = ERROR_SCHEMA
    signed_in = {
        handler.operation_id
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if access_of(handler).signed_in
    }
    ref = Reference(ref="#/components/schemas/ErrorResponseDto")
    for path_item in (openapi.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(path_item, method, None)
            if operation is None:
                continue
            statuses = dict(_ANYONE)
            if operation.operation_id in signed_in:
                statuses.update(_SIGNED_IN)
            responses = {
                code: response
                for code, response in (operation.responses or {}).items()
                if not code.startswith(("4", "5"))
            }
            for code, description in sorted(statuses.items()):
                responses[code] = OpenAPIResponse(
                    description=description, content={"application/json": OpenAPIMediaType(ref)}
                )
            operation.responses = responses
