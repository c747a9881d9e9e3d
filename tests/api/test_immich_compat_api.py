"""Immich compatibility details its own specs check: validation errors as lists, search filters,
the upload library's name."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.assets import extract, photo, uploaded
from tests.helpers import create_user, ok, sign_up_admin
from tests.system import System


async def search(system: System, headers: dict[str, str], **dto: Any) -> list[str]:
    """The original file names POST /api/search/metadata finds, sorted."""
    body = await ok(
        await system.client.post(
            "/api/search/metadata", headers=headers, json={"size": 1000, **dto}
        )
    )
    return sorted(a["originalFileName"] for a in body["assets"]["items"])


async def three_photos(system: System, headers: dict[str, str]) -> dict[str, str]:
    """Three uploads with different cameras, lenses and dates: name -> asset id."""
    ids = {
        "canon.jpg": await uploaded(
            system, headers, photo(1), "canon.jpg", created="2020-01-01T00:00:00.000Z"
        ),
        "nikon.jpg": await uploaded(
            system, headers, photo(2), "nikon.jpg", created="2022-01-01T00:00:00.000Z"
        ),
        "bare.jpg": await uploaded(
            system, headers, photo(3), "bare.jpg", created="2024-01-01T00:00:00.000Z"
        ),
    }
    await extract(system, ids["canon.jpg"], make="Canon", model="EOS R5", lens_model="RF 50mm")
    await extract(system, ids["nikon.jpg"], make="NIKON", model="Z 6", description="A lake")
    await extract(system, ids["bare.jpg"])
    return ids


class TestSearchFilters:
    @pytest.mark.parametrize(
        "dto, found",
        [
            ({}, ["bare.jpg", "canon.jpg", "nikon.jpg"]),
            ({"model": "EOS R5"}, ["canon.jpg"]),
            ({"make": "NIKON"}, ["nikon.jpg"]),
            ({"lensModel": "RF 50mm"}, ["canon.jpg"]),
            ({"make": None}, ["bare.jpg"]),  # Immich: null asks for assets without the value
            ({"model": "nope"}, []),
            ({"city": None}, ["bare.jpg", "canon.jpg", "nikon.jpg"]),  # no reverse geocoding
            ({"country": "France"}, []),
            ({"takenAfter": "2021-01-01T00:00:00.000Z"}, ["bare.jpg", "nikon.jpg"]),
            ({"takenBefore": "2021-01-01T00:00:00.000Z"}, ["canon.jpg"]),
            ({"createdAfter": "2000-01-01T00:00:00.000Z"}, ["bare.jpg", "canon.jpg", "nikon.jpg"]),
            ({"createdBefore": "2000-01-01T00:00:00.000Z"}, []),
            ({"updatedBefore": "2000-01-01T00:00:00.000Z"}, []),
            ({"updatedAfter": "2000-01-01T00:00:00.000Z"}, ["bare.jpg", "canon.jpg", "nikon.jpg"]),
            ({"originalFileName": "NIK"}, ["nikon.jpg"]),  # Immich: ILIKE '%…%'
            ({"description": "lake"}, ["nikon.jpg"]),
            ({"isFavorite": True}, []),
            ({"isOffline": False}, ["bare.jpg", "canon.jpg", "nikon.jpg"]),
            ({"isArchived": True}, []),
            ({"visibility": "timeline"}, ["bare.jpg", "canon.jpg", "nikon.jpg"]),
            ({"type": "VIDEO"}, []),
            ({"isNotInAlbum": True}, ["bare.jpg", "canon.jpg", "nikon.jpg"]),
        ],
    )
    async def test_each_filter_narrows_the_search(
        self, system: System, dto: dict[str, Any], found: list[str]
    ) -> None:
        admin = await sign_up_admin(system)
        await three_photos(system, admin)
        assert await search(system, admin, **dto) == found

    async def test_album_filters(self, system: System) -> None:
        admin = await sign_up_admin(system)
        ids = await three_photos(system, admin)
        album = await ok(
            await system.client.post(
                "/api/albums",
                headers=admin,
                json={"albumName": "Cameras", "assetIds": [ids["canon.jpg"], ids["nikon.jpg"]]},
            ),
            201,
        )
        assert await search(system, admin, albumIds=[album["id"]]) == ["canon.jpg", "nikon.jpg"]
        assert await search(system, admin, isNotInAlbum=True) == ["bare.jpg"]

    @pytest.mark.parametrize(
        "dto, message",
        [
            ({"cameraModel": "EOS"}, ["property cameraModel should not exist"]),
            (
                {"type": "PHOTO"},
                ["type must be one of the following values: IMAGE, VIDEO, AUDIO, OTHER"],
            ),
            ({"isFavorite": "yes"}, ["isFavorite must be a boolean value"]),
            ({"takenAfter": "yesterday"}, ["takenAfter must be a Date instance"]),
            ({"libraryId": "x"}, ["libraryId must be a UUID"]),
            ({"size": 0}, ["size must not be less than 1"]),
            ({"size": 1001}, ["size must not be greater than 1000"]),
        ],
    )
    async def test_unknown_or_malformed_filters_are_refused(
        self, system: System, dto: dict[str, Any], message: list[str]
    ) -> None:
        admin = await sign_up_admin(system)
        r = await system.client.post("/api/search/metadata", headers=admin, json=dto)
        assert r.status_code == 400 and r.json()["message"] == message, r.text


class TestValidationShape:
    async def test_user_rules_answer_lists(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await system.client.post(
            "/api/admin/users",
            headers=admin,
            json={"email": "not-an-email", "password": "pw", "name": "x"},
        )
        assert r.status_code == 400
        assert r.json() == {
            "message": ["email must be an email"],
            "error": "Bad Request",
            "statusCode": 400,
            "correlationId": r.json()["correlationId"],
        }
        r = await system.client.post(
            "/api/admin/users",
            headers=admin,
            json={"email": "a@example.com", "password": "", "name": " "},
        )
        assert r.status_code == 400
        assert r.json()["message"] == ["password should not be empty", "name should not be empty"]

    async def test_service_errors_stay_strings(self, system: System) -> None:
        admin = await sign_up_admin(system)
        r = await system.client.post(
            "/api/auth/admin-sign-up",
            json={"email": "again@example.com", "password": "pw", "name": "Again"},
        )
        assert r.status_code == 400 and r.json()["message"] == "The server already has an admin"
        assert admin


class TestUploadLibrary:
    async def test_every_user_gets_a_default_library(self, system: System) -> None:
        admin = await sign_up_admin(system)
        user, headers = await create_user(system, admin, "new@example.com")
        me = await ok(await system.client.get("/api/users/me", headers=admin))
        # An admin sees every library (Shoebox's choice): one upload library per user.
        libraries = await ok(await system.client.get("/api/libraries?type=UPLOAD", headers=admin))
        assert sorted((lib["ownerId"], lib["name"]) for lib in libraries) == sorted(
            [(me["id"], "Default Library"), (user["id"], "Default Library")]
        )
        (mine,) = await ok(await system.client.get("/api/libraries?type=UPLOAD", headers=headers))
        renamed = await ok(
            await system.client.put(
                f"/api/libraries/{mine['id']}", headers=headers, json={"name": "Phone"}
            )
        )
        assert renamed["name"] == "Phone"
