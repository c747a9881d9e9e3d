"""Pure decisions of the API's commands: typed state in, events (or a refusal) out.

No awaits, no NATS, no PostgreSQL: each rule is tested with plain values
(tests/unit/test_rules.py). The handlers in commands.py load the state, call the rule, publish
what it returns with the expected sequences it names, and wait for the read models.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from shared import events as ev
from shared.errors import InvalidInput
from shared.ids import upload_library_id

__all__ = [
    "UPLOAD_LIBRARY_NAME",
    "AdminSignUp",
    "SignUpState",
    "decide_admin_sign_up",
    "upload_library",
]


UPLOAD_LIBRARY_NAME = "Default Library"
"""What Immich v1.9x named the upload library every user got (renaming it is allowed)."""


def upload_library(user_id: uuid.UUID) -> ev.LibraryCreated:
    """Every user has one upload library, made with the user (published with expected 0)."""
    return ev.LibraryCreated(
        stream_id=upload_library_id(user_id),
        owner_id=user_id,
        name=UPLOAD_LIBRARY_NAME,
        type="UPLOAD",
    )


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
    """The events an admin sign-up publishes, each step with its expected subject sequence (0:
    the aggregate must be new). Steps already done by an earlier, half-finished attempt are
    left out, so a second attempt completes the first instead of refusing it."""

    admin_id: uuid.UUID
    steps: list[ev.BaseEvent]


def decide_admin_sign_up(
    state: SignUpState, *, email: str, name: str, password_hash: str, new_id: uuid.UUID
) -> AdminSignUp:
    """Only the first user becomes the admin.

    Sign-up writes three aggregates (the server, the admin's user, their upload library), which
    JetStream cannot commit as one. The server's `ServerInitialized` (expected 0) decides who
    the admin is, once; if a publish after it failed, nobody could sign in, so a later sign-up
    finishes the remaining steps under the admin id already chosen (whoever calls first then
    becomes that admin: nobody has signed in yet). Each step is still published with expected
    0, so two racing attempts create each aggregate once.
    """
    if state.admin_exists and state.upload_library_exists:
        raise InvalidInput("The server already has an admin")
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
