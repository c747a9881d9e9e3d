"""Decisions on the server aggregate: the admin's sign-up and the system configuration."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.api.decide import Refusal, Write, refuse
from services.api.decide.libraries import upload_library
from shared import events as ev
from shared import sysconfig
from shared.errors import InvalidInput


def update_system_config(config: sysconfig.LibraryConfig) -> Write | Refusal:
    """The server's library configuration, if every value is usable (unguarded: the last
    admin's save wins, as in Immich)."""
    if errors := sysconfig.problems(config):
        return refuse(InvalidInput, "; ".join(errors))
    return Write((ev.SystemConfigUpdated(stream_id=ev.SERVER_ID, library=config),), None)


@dataclass(frozen=True)
class SignUpState:
    """What the read models say about the first user, as an admin sign-up meets it."""

    admin_id: uuid.UUID | None
    """From ServerInitialized: who the admin is (None: nobody signed up yet)."""
    admin_exists: bool
    """The admin's user was created."""
    upload_library_exists: bool
    """The admin's upload library was created."""


@dataclass(frozen=True)
class AdminSignUp:
    """The events an admin sign-up publishes, each a new aggregate (expected 0). Steps already
    done by an earlier, half-finished attempt are left out, so a second attempt completes the
    first instead of refusing it."""

    admin_id: uuid.UUID
    steps: list[ev.BaseEvent]


def admin_sign_up(
    state: SignUpState, *, email: str, name: str, password_hash: str, new_id: uuid.UUID
) -> AdminSignUp | Refusal:
    """Only the first user becomes the admin.

    Sign-up writes three aggregates (the server, the admin's user, their upload library), which
    JetStream cannot commit as one. The server's `ServerInitialized` (expected 0) decides who
    the admin is, once; if a publish after it failed, nobody could sign in, so a later sign-up
    finishes the remaining steps under the admin id already chosen (whoever calls first then
    becomes that admin: nobody has signed in yet). Each step is still published with expected
    0, so two racing attempts create each aggregate once.
    """
    if state.admin_exists and state.upload_library_exists:
        return refuse(InvalidInput, "The server already has an admin")
    admin_id = state.admin_id or new_id
    steps: list[ev.BaseEvent] = []
    if state.admin_id is None:
        steps.append(ev.ServerInitialized(stream_id=ev.SERVER_ID, admin_id=admin_id))
    if not state.admin_exists:
        steps.append(
            ev.UserCreated(
                stream_id=admin_id,
                email=email,
                name=name,
                password_hash=password_hash,
                is_admin=True,
            )
        )
    if not state.upload_library_exists:
        steps.append(upload_library(admin_id))
    return AdminSignUp(admin_id, steps)
