"""Map every error to Immich's NestJS-shaped body: {message, error, statusCode, correlationId}."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from services.api import validation
from shared import errors
from shared.outage import Outage, unavailable
from shared.trace import correlation_id, new_correlation_id

log = logging.getLogger(__name__)

STATUS: dict[type[errors.ShoeboxError], int] = {
    errors.NotFound: 404,
    errors.Forbidden: 403,
    errors.Unauthorized: 401,
    errors.Conflict: 409,
    errors.InvalidInput: 400,
    errors.NotReady: 503,
}


def error_body(status: int, message: str | list[str]) -> dict[str, Any]:
    return {
        "message": message,
        "error": HTTPStatus(status).phrase,
        "statusCode": status,
        # The request's id (also its X-Correlation-Id header and on its log lines and events).
        "correlationId": correlation_id.get() or new_correlation_id(),
    }


def shoebox_error_handler(_: Request[Any, Any, Any], exc: errors.ShoeboxError) -> Response[Any]:
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
    message: str | list[str] = exc.messages if isinstance(exc, errors.InvalidFields) else exc.detail
    return Response(error_body(status, message), status_code=status)


def _parameter(request: Request[Any, Any, Any], name: str) -> tuple[str, Any] | None:
    """(wire name, annotation) of the route's parameter `name` (its `data` body, a query
    parameter under its alias), if the route has one."""
    try:
        field = request.route_handler.parsed_fn_signature.parameters.get(name)
    except Exception:  # no route matched: nothing to look up
        return None
    if field is None:
        return None
    kwarg = field.kwarg_definition
    alias = getattr(kwarg, "query", None) or getattr(kwarg, "name", None) or name
    return alias, field.annotation


def _validation_messages(request: Request[Any, Any, Any], exc: ValidationException) -> list[str]:
    """Immich's (class-validator's) words for what the edge or msgspec refused."""
    messages: list[str] = []
    path_params = list(request.path_params) if "path_params" in request.scope else []
    body = _parameter(request, "data")
    for item in exc.extra or []:
        if not isinstance(item, dict):
            continue
        msg = str(item.get("message", ""))
        key = item.get("key")
        source = item.get("source")
        if key and source == "path" and key in path_params:
            name = validation.path_param_name(key, first=key == path_params[0])
            messages.append(validation.immich_message(name, msg))
        elif key and source != "body" and (param := _parameter(request, key)) is not None:
            alias, annotation = param
            allowed = validation.literal_values(annotation)
            messages.append(validation.immich_message(alias, msg, allowed))
        elif key:
            allowed = validation.enum_values(body[1], key) if body else None
            messages.append(validation.immich_message(key, msg, allowed))
        else:
            messages.append(validation.immich_message(None, msg))
    return messages or [str(exc.detail or "Bad request")]


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        return Response(error_body(400, _validation_messages(request, exc)), status_code=400)
    if isinstance(exc, RequestEntityTooLarge) and exc.detail == RequestEntityTooLarge.detail:
        limit = request.route_handler.resolve_request_max_body_size()
        message: str | list[str] = f"The request body is larger than the limit of {limit} bytes"
    elif status == 401:
        message = "Authentication required"
    elif status == 404 and not exc.detail:
        message = "Not Found"
    else:
        message = str(exc.detail or HTTPStatus(status).phrase)
    return Response(error_body(status, message), status_code=status, headers=exc.headers)


def unicode_error_handler(_: Request[Any, Any, Any], exc: UnicodeError) -> Response[Any]:
    """A body that is not UTF-8 (msgspec raises UnicodeDecodeError, which Litestar lets by)."""
    return Response(error_body(400, "Request body is not valid UTF-8"), status_code=400)


# NATS electing a stream leader or PostgreSQL restarting: said once, not a traceback a request.
_outage = Outage(log, "api")


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    what = unavailable(exc)
    if what is not None:
        # Nothing is wrong with the request: the caller may simply ask again.
        _outage.failed(what, exc, f"{request.method} {request.url.path}")
        message = f"{what} is unavailable for the moment; try again"
        return Response(error_body(503, message), status_code=503, headers={"Retry-After": "1"})
    log.exception("unhandled error: %s", exc)
    return Response(error_body(500, "Internal server error"), status_code=500)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    errors.ShoeboxError: shoebox_error_handler,
    HTTPException: http_error_handler,
    UnicodeError: unicode_error_handler,
    500: internal_error_handler,
}
