"""schemathesis over the OpenAPI document, against the real app over HTTP, as an admin.

A bounded budget (a few positive and negative examples per operation, derandomized so a run is
repeatable): no answer may be a 5xx, and every answer must match the schema the document gives
for its status (errors included: that is what keeps the documented error shape honest).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from services.api.app import build_app
from shared.infra import free_port
from tests.helpers import ok, sign_up_admin
from tests.system import System, eventually

pytestmark = pytest.mark.slow

# Per operation and generation mode: about 20 s on 2 cores. A longer hunt: SHOEBOX_FUZZ_EXAMPLES.
# Derandomized, so that a run is repeatable; SHOEBOX_FUZZ_SEED=<n> explores elsewhere.
EXAMPLES = int(os.environ.get("SHOEBOX_FUZZ_EXAMPLES", "25"))
SEED = os.environ.get("SHOEBOX_FUZZ_SEED")


def fuzz(spec: dict[str, Any], base_url: str, headers: dict[str, str]) -> list[str]:
    """Run schemathesis over every operation; one line per failing operation and mode."""
    schema = schemathesis.openapi.from_dict(spec)
    session = requests.Session()
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.seed(int(SEED or 0))
            @hypothesis.settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=SEED is None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                case.call_and_validate(
                    base_url=base_url,
                    session=session,
                    headers=headers,
                    checks=[not_a_server_error, response_schema_conformance],
                    timeout=30,
                )

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                continue  # nothing to get wrong (an operation without parameters or body)
            # schemathesis raises a FailureGroup (a BaseExceptionGroup): every failing
            # operation is reported, not only the first.
            except (Exception, BaseExceptionGroup) as e:
                failures.append(f"{operation.label} ({mode.value}): {e}")
    return failures


async def test_no_operation_answers_5xx_or_outside_its_documented_schema(system: System) -> None:
    admin = await sign_up_admin(system)
    key = await ok(
        await system.client.post(
            "/api/api-keys", headers=admin, json={"name": "fuzz", "permissions": ["all"]}
        ),
        201,
    )
    app = build_app(system.settings, system.ctx)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    try:
        await eventually(started, 10, "uvicorn to listen")
        spec = app.openapi_schema.to_schema()
        # The fuzzer is synchronous (requests): it runs in a thread while this loop serves.
        failures = await asyncio.to_thread(
            fuzz, spec, f"http://127.0.0.1:{port}", {"x-api-key": key["secret"]}
        )
    finally:
        server.should_exit = True
        await serving
    assert not failures, "\n\n".join(failures)
