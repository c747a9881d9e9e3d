"""The API's rules as pure decisions: plain values in, events or a refusal out."""

from __future__ import annotations

import uuid

import pytest

from services.api import rules
from shared import events as ev
from shared.errors import InvalidInput
from shared.ids import upload_library_id

NEW = uuid.UUID(int=1)
EARLIER = uuid.UUID(int=2)


def _sign_up(state: rules.SignUpState) -> rules.AdminSignUp:
    return rules.decide_admin_sign_up(
        state, email="a@example.com", name="Ada", password_hash="h", new_id=NEW
    )


def test_the_first_sign_up_initializes_the_server_creates_the_admin_and_their_library() -> None:
    plan = _sign_up(rules.SignUpState(None, False, False))
    assert plan.admin_id == NEW
    assert [type(e) for e in plan.steps] == [
        ev.ServerInitialized,
        ev.UserCreated,
        ev.LibraryCreated,
    ]
    server, user, library = plan.steps
    assert isinstance(server, ev.ServerInitialized) and server.admin_id == NEW
    assert isinstance(user, ev.UserCreated) and user.is_admin and user.stream_id == NEW
    assert isinstance(library, ev.LibraryCreated)
    assert (library.type, library.owner_id, library.stream_id) == (
        "UPLOAD",
        NEW,
        upload_library_id(NEW),
    )


def test_only_the_first_user_becomes_admin() -> None:
    with pytest.raises(InvalidInput, match="already has an admin"):
        _sign_up(rules.SignUpState(EARLIER, True, True))


def test_a_sign_up_stopped_after_the_server_event_is_completed_under_the_chosen_id() -> None:
    plan = _sign_up(rules.SignUpState(EARLIER, False, False))
    assert plan.admin_id == EARLIER
    assert [type(e) for e in plan.steps] == [ev.UserCreated, ev.LibraryCreated]
    assert all(e.stream_id in (EARLIER, upload_library_id(EARLIER)) for e in plan.steps)


def test_a_sign_up_stopped_before_the_library_only_creates_the_library() -> None:
    plan = _sign_up(rules.SignUpState(EARLIER, True, False))
    assert [type(e) for e in plan.steps] == [ev.LibraryCreated]
