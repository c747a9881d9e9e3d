"""DeadLetterController: GET /api/admin/dead-letters, the messages consumers gave up on.

Shoebox's own route (Immich keeps failed jobs in its queue, not behind a route), beside Immich's
admin routes and asking what `GET /api/jobs` asks: an admin whose key holds `job.read`. Each
entry is a message a durable consumer could not decode, or that failed for a reason of its own
on its last allowed delivery (decision 0024); the newest first.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from services.api.auth import Permission, requires
from services.api.context import Context
from shared.deadletters import DeadLetter, list_dead_letters


class DeadLetterController(Controller):
    path = "/api/admin/dead-letters"
    tags = ["Jobs"]

    @get("/", operation_id="getDeadLetters", opt=requires(Permission.JOB_READ, admin=True))
    async def get_dead_letters(
        self,
        ctx: Context,
        consumer: str | None = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[DeadLetter]:
        """Messages a consumer gave up on, the newest first (at most `limit`)."""
        return await list_dead_letters(ctx.engine, consumer=consumer, limit=limit)
