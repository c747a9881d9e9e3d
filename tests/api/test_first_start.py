"""A first start where the API comes up before the projector has created the schema."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import httpx
import pytest
import uvicorn

from services.api.app import build_app
from services.projector.service import serve as serve_projector
from shared.infra import free_port
from tests.helpers import ADMIN
from tests.system import Infra, create_database, eventually, system_settings


async def test_api_serves_sign_up_only_after_schema_exists_when_projector_is_late(
    infra: Infra, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    namespace = "t" + uuid.uuid4().hex[:10]
    settings = system_settings(infra, namespace, await create_database(infra, namespace), tmp_path)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(build_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    caplog.set_level(logging.WARNING, logger="shared.db")
    task = asyncio.create_task(server.serve())
    stop_projector = asyncio.Event()
    projector: asyncio.Task[None] | None = None
    try:

        async def waiting() -> bool:
            return "waiting for the projector to create the read-model schema" in caplog.text

        await eventually(waiting, 30, "the API to say it waits for the schema")
        # Still waiting: nothing listens, so no sign-up can meet a missing table.
        assert not server.started
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient() as http:
                await http.get(f"http://127.0.0.1:{port}/api/server/ping")

        # The projector starts late; it creates the schema, then projects.
        projector = asyncio.create_task(serve_projector(settings, stop_projector))

        async def started() -> bool:
            return server.started

        await eventually(started, 30, "the API to serve once the schema exists")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api") as http:
            signed_up = await http.post("/auth/admin-sign-up", json=ADMIN)
            assert signed_up.status_code == 201, signed_up.text
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        stop_projector.set()
        if projector is not None:
            await asyncio.wait_for(projector, 30)
