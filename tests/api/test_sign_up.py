"""Admin sign-up writes three aggregates; one that stopped half-way is finished by the next."""

from __future__ import annotations

import uuid
from pathlib import Path

from shared import events as ev
from shared.bus import EventBus
from tests.helpers import ADMIN, login, ok
from tests.system import Infra, open_system


async def test_a_sign_up_that_stopped_after_the_server_event_is_completed(
    infra: Infra, tmp_path: Path
) -> None:
    async with open_system(infra, tmp_path) as system:
        bus = EventBus(system.ctx.nc, system.settings.nats)
        chosen = uuid.uuid4()
        # The first attempt published ServerInitialized, then its connection died.
        await system.ctx.settle(
            await bus.publish(
                ev.ServerInitialized(stream_id=ev.SERVER_ID, admin_id=chosen), expected_last_seq=0
            )
        )
        admin = await ok(await system.client.post("/api/auth/admin-sign-up", json=ADMIN), 201)
        assert admin["id"] == str(chosen) and admin["isAdmin"] is True
        headers = await login(system, ADMIN["email"], ADMIN["password"])
        libraries = await ok(await system.client.get("/api/libraries", headers=headers))
        assert [lib["type"] for lib in libraries] == ["UPLOAD"]
        again = await system.client.post(
            "/api/auth/admin-sign-up", json={**ADMIN, "email": "other@example.com"}
        )
        assert again.status_code == 400 and "already has an admin" in again.text
