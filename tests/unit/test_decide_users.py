"""Decisions on users and the server: plain values in, writes or a refusal out."""

from __future__ import annotations

import uuid

from services.api import schemas as s
from services.api.auth import AuthUser
from services.api.decide import Refusal, Write, users
from services.api.decide import server as rules
from shared import events as ev
from shared import sysconfig
from shared.errors import Forbidden, InvalidInput, Unauthorized
from shared.ids import upload_library_id

NEW = uuid.UUID(int=1)
EARLIER = uuid.UUID(int=2)


def _sign_up(state: rules.SignUpState) -> rules.AdminSignUp | Refusal:
    return rules.admin_sign_up(
        state, email="a@example.com", name="Ada", password_hash="h", new_id=NEW
    )


def _plan(state: rules.SignUpState) -> rules.AdminSignUp:
    plan = _sign_up(state)
    assert isinstance(plan, rules.AdminSignUp), plan
    return plan


def test_the_first_sign_up_initializes_the_server_creates_the_admin_and_their_library() -> None:
    plan = _plan(rules.SignUpState(None, False, False))
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
    assert _sign_up(rules.SignUpState(EARLIER, True, True)) == Refusal(
        InvalidInput, "The server already has an admin"
    )


def test_a_sign_up_stopped_after_the_server_event_is_completed_under_the_chosen_id() -> None:
    plan = _plan(rules.SignUpState(EARLIER, False, False))
    assert plan.admin_id == EARLIER
    assert [type(e) for e in plan.steps] == [ev.UserCreated, ev.LibraryCreated]
    assert all(e.stream_id in (EARLIER, upload_library_id(EARLIER)) for e in plan.steps)


def test_a_sign_up_stopped_before_the_library_only_creates_the_library() -> None:
    plan = _plan(rules.SignUpState(EARLIER, True, False))
    assert [type(e) for e in plan.steps] == [ev.LibraryCreated]


ADA = AuthUser(id=NEW, email="a@example.com", name="Ada", is_admin=False)
ADMIN = AuthUser(id=EARLIER, email="root@example.com", name="Root", is_admin=True)


def _hash(password: str) -> str:
    return f"hashed:{password}"


def _new_user(**kw: object) -> users.NewUser:
    fields: dict[str, object] = {
        "user_id": NEW,
        "email": "b@example.com",
        "password": "pw",
        "name": "Bea",
    }
    return users.NewUser(**{**fields, **kw})  # type: ignore[arg-type]


class TestCreateUser:
    def test_one_upload_library_per_user_made_with_the_user(self) -> None:
        writes = users.create_user(_new_user(), email_taken=False, hash_password=_hash)
        assert isinstance(writes, list)
        user, library = writes
        assert user.expected == 0 and library.expected == 0
        assert [type(e) for e in user.events] == [ev.UserCreated]
        (created,) = library.events
        assert isinstance(created, ev.LibraryCreated)
        assert (created.type, created.stream_id) == ("UPLOAD", upload_library_id(NEW))
        # The library's id is the user's: a second creation expects 0 on the same subject.
        again = users.create_user(_new_user(), email_taken=False, hash_password=_hash)
        assert isinstance(again, list) and again[1].events[0].stream_id == created.stream_id

    def test_the_password_is_recorded_only_as_its_hash(self) -> None:
        writes = users.create_user(_new_user(), email_taken=False, hash_password=_hash)
        assert isinstance(writes, list)
        created = writes[0].events[0]
        assert isinstance(created, ev.UserCreated) and created.password_hash == "hashed:pw"

    def test_a_taken_email_is_refused(self) -> None:
        assert users.create_user(_new_user(), email_taken=True, hash_password=_hash) == Refusal(
            InvalidInput, "User exists"
        )

    def test_broken_fields_are_refused_together_as_immichs_list(self) -> None:
        refusal = users.create_user(
            _new_user(email="nope", name=" "), email_taken=False, hash_password=_hash
        )
        assert isinstance(refusal, Refusal) and refusal.status == 400
        assert refusal.fields == ("email must be an email", "name should not be empty")

    def test_an_external_path_is_set_normalised_or_refused(self) -> None:
        writes = users.create_user(
            _new_user(external_path="/srv/photos/"), email_taken=False, hash_password=_hash
        )
        assert isinstance(writes, list)
        assert writes[0].events[1] == ev.ExternalPathSet(
            stream_id=NEW,
            external_path="/srv/photos",
            event_id=writes[0].events[1].event_id,
            occurred_at=writes[0].events[1].occurred_at,
        )
        refusal = users.create_user(
            _new_user(external_path="/srv/../etc"), email_taken=False, hash_password=_hash
        )
        assert isinstance(refusal, Refusal) and "normalised" in refusal.detail


ADA_STATE = users.UserState(NEW, 7)


def _update(
    dto: s.UserAdminUpdateDto | s.UserUpdateMeDto,
    user: users.UserState | None = ADA_STATE,
    *,
    email_owner: uuid.UUID | None = None,
    by_admin: bool = False,
) -> Write | Refusal | None:
    return users.update_user(
        user, dto, email_owner=email_owner, by_admin=by_admin, hash_password=_hash
    )


class TestUpdateUser:
    def test_an_edit_expects_the_user_as_last_read(self) -> None:
        write = _update(s.UserUpdateMeDto(name="Ada L."))
        assert isinstance(write, Write) and write.expected == 7
        (updated,) = write.events
        assert isinstance(updated, ev.UserUpdated) and updated.name == "Ada L."

    def test_only_an_admin_sets_an_external_path(self) -> None:
        dto = s.UserAdminUpdateDto(external_path="/srv/photos")
        assert _update(dto) == Refusal(Forbidden, "Only an admin can set a user's external path")
        write = _update(dto, by_admin=True)
        assert isinstance(write, Write)
        assert [type(e) for e in write.events] == [ev.ExternalPathSet]

    def test_only_an_admin_makes_an_admin(self) -> None:
        refusal = _update(s.UserAdminUpdateDto(is_admin=True))
        assert refusal == Refusal(Forbidden, "Only an admin can change is_admin")

    def test_another_users_email_is_a_conflict(self) -> None:
        refusal = _update(s.UserUpdateMeDto(email="b@example.com"), email_owner=EARLIER)
        assert isinstance(refusal, Refusal) and refusal.status == 409
        assert isinstance(_update(s.UserUpdateMeDto(email="b@example.com"), email_owner=NEW), Write)

    def test_nothing_to_change_writes_nothing(self) -> None:
        assert _update(s.UserUpdateMeDto()) is None

    def test_an_unknown_user_is_refused(self) -> None:
        refusal = _update(s.UserUpdateMeDto(name="x"), None, by_admin=True)
        assert refusal == Refusal(InvalidInput, "User not found")


def test_an_admin_cannot_delete_themself() -> None:
    assert users.delete_user(ADMIN, users.UserState(EARLIER, 3), EARLIER) == Refusal(
        InvalidInput, "Cannot delete your own account"
    )
    write = users.delete_user(ADMIN, users.UserState(NEW, 3), NEW)
    assert isinstance(write, Write) and write.expected == 3


def test_a_key_cannot_make_a_stronger_key() -> None:
    key = AuthUser(
        id=NEW,
        email="a@example.com",
        name="Ada",
        is_admin=False,
        api_key_id=EARLIER,
        permissions=("asset.read",),
    )
    assert users.create_api_key(
        key, "k", ["asset.delete"], key_id=EARLIER, key_hash="h"
    ) == Refusal(InvalidInput, "Cannot grant permissions you do not have")
    write = users.create_api_key(key, "", ["asset.read"], key_id=EARLIER, key_hash="h")
    assert isinstance(write, Write)
    (created,) = write.events
    assert isinstance(created, ev.ApiKeyCreated) and created.name == "API Key"


def test_a_wrong_password_and_an_unknown_email_answer_alike() -> None:
    assert users.password_login(None, False) == users.password_login(NEW, False)
    assert users.password_login(NEW, False) == Refusal(Unauthorized, "Incorrect email or password")
    assert users.password_login(NEW, True) is None


def test_an_unusable_library_config_is_refused() -> None:
    bad = sysconfig.LibraryConfig(
        scan=sysconfig.LibraryScanConfig(enabled=True, cron_expression="nope")
    )
    refusal = rules.update_system_config(bad)
    assert isinstance(refusal, Refusal) and refusal.status == 400
    assert isinstance(rules.update_system_config(sysconfig.LibraryConfig()), Write)
