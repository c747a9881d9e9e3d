"""The correlation id the API answers is the one in its error bodies, its log lines and the
events the request published (shared/trace.py)."""

from __future__ import annotations

import json
import logging
import uuid

from shared import trace
from tests.helpers import sign_up_admin
from tests.system import System


async def test_an_error_body_carries_the_correlation_id_of_its_response(system: System) -> None:
    admin = await sign_up_admin(system)
    r = await system.client.get(f"/api/libraries/{uuid.uuid4()}", headers=admin)
    assert r.status_code in (400, 404)
    cid = r.headers["x-correlation-id"]
    assert r.json()["correlationId"] == cid
    again = await system.client.get(f"/api/libraries/{uuid.uuid4()}", headers=admin)
    assert again.headers["x-correlation-id"] != cid  # one per request
    given = await system.client.get(
        f"/api/libraries/{uuid.uuid4()}", headers={**admin, "x-correlation-id": "abc123"}
    )
    assert given.json()["correlationId"] == "abc123"
    hostile = await system.client.get("/api/server/ping", headers={"x-correlation-id": "a b\x7f"})
    assert hostile.headers["x-correlation-id"] != "a b\x7f"


def test_json_log_lines_carry_the_actor_and_correlation_id() -> None:
    formatter = trace.JsonFormatter("api")
    record = logging.LogRecord("services.api", logging.WARNING, __file__, 1, "x %s", ("y",), None)
    with trace.acting("user 42", "cafe01"):
        trace.TraceFilter().filter(record)
    line = json.loads(formatter.format(record))
    assert line["message"] == "x y" and line["service"] == "api"
    assert line["actor"] == "user 42" and line["correlation_id"] == "cafe01"
    assert trace.event_headers() == {trace.ACTOR_HEADER: trace.current_actor()}
