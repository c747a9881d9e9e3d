"""Session tokens and API-key secrets can be passed on any command line."""

from __future__ import annotations

from services.api.auth import new_secret


def test_a_secret_is_letters_and_digits_and_long_enough() -> None:
    secrets = [new_secret() for _ in range(2000)]
    assert all(s.isascii() and s.isalnum() for s in secrets)
    assert min(len(s) for s in secrets) >= 32
    assert len(set(secrets)) == len(secrets)
