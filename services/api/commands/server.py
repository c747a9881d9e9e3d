"""Handlers of the server aggregate: the admin's sign-up and the system configuration."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from services.api import queries
from services.api.auth import hash_password
from services.api.commands.publish import carry_out
from services.api.decide import accepted
from services.api.decide import server as decide
from services.api.decide.users import field_problems
from shared import events as ev
from shared.bus import WrongExpectedSequence
from shared.errors import InvalidInput

if TYPE_CHECKING:
    from services.api import schemas as s
    from services.api.context import Context
    from shared import sysconfig


async def admin_sign_up(ctx: Context, dto: s.SignUpDto) -> uuid.UUID:
    """The first user becomes the admin (decide.admin_sign_up); a half-finished sign-up
    is completed by the next attempt, a finished one refuses it."""
    accepted(field_problems(dto.email, dto.password, dto.name))
    async with ctx.engine.connect() as conn:
        admin_id, admin_exists, library_exists = await queries.sign_up_state(conn)
    plan = accepted(
        decide.admin_sign_up(
            decide.SignUpState(admin_id, admin_exists, library_exists),
            email=dto.email,
            name=dto.name,
            password_hash=hash_password(dto.password),
            new_id=uuid.uuid4(),
        )
    )
    seq = 0
    for event in plan.steps:
        try:
            seq = await ctx.bus.publish(event, expected_last_seq=0)
        except WrongExpectedSequence as e:
            if isinstance(event, ev.ServerInitialized):
                raise InvalidInput("The server already has an admin") from e
            # A racing attempt created this aggregate first: the step is done; wait for it.
            last, _ = await ctx.bus.last_event(event.aggregate.value, event.stream_id)
            seq = max(seq, last)
    if seq:
        await ctx.settle(seq)
    return plan.admin_id


async def update_system_config(ctx: Context, config: sysconfig.LibraryConfig) -> None:
    """Record the server's library configuration (admins only, checked by the route)."""
    await carry_out(ctx, decide.update_system_config(config))
