"""HTTP helpers for tests: sign up, log in, create users, with Immich's request shapes."""

from __future__ import annotations

from typing import Any

from tests.system import System

ADMIN = {"email": "admin@example.com", "password": "admin-pass", "name": "Admin"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


async def sign_up_admin(system: System) -> dict[str, str]:
    """Admin sign-up + login; returns auth headers."""
    await ok(await system.client.post("/api/auth/admin-sign-up", json=ADMIN), 201)
    return await login(system, ADMIN["email"], ADMIN["password"])


async def login(system: System, email: str, password: str) -> dict[str, str]:
    body = await ok(await system.client.post(
        "/api/auth/login", json={"email": email, "password": password}), 201)
    return bearer(body["accessToken"])


async def create_user(system: System, admin: dict[str, str], email: str,
                      external_path: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """An admin creates a user (optionally with an external path); returns (user, headers)."""
    payload: dict[str, Any] = {"email": email, "password": "pw-" + email, "name": email.split("@")[0]}
    user = await ok(await system.client.post("/api/admin/users", json=payload, headers=admin), 201)
    if external_path is not None:
        user = await ok(await system.client.put(
            f"/api/admin/users/{user['id']}", json={"externalPath": external_path},
            headers=admin))
    return user, await login(system, email, "pw-" + email)
