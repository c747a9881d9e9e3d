"""A service's process leaves out the optional packages its libraries would load for nothing
(shared/lean.py): checked in a fresh interpreter, as `python -m services.<name>` starts one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
from shared.lean import leave_out_unused
leave_out_unused()
import nats.aio.transport as t
from faststream._internal import _compat
print(t.aiohttp is not None, _compat.HAS_UVICORN)
"""


@pytest.mark.parametrize(
    ("url", "aiohttp"), [("nats://127.0.0.1:4222", False), ("ws://127.0.0.1:8080", True)]
)
def test_a_service_process_loads_neither_uvicorn_nor_aiohttp_unless_nats_is_on_websockets(
    url: str, aiohttp: bool
) -> None:
    env = {**os.environ, "SHOEBOX_NATS_URL": url}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(aiohttp), "False"], out


SCANNER = """
import sys
from shared.lean import leave_out_unused
leave_out_unused()
from services.scanner import listers
from services.scanner.app import build_app
from shared.service import run_faststream
print(sorted({m.split(".")[0] for m in sys.modules} & {"sqlalchemy", "greenlet"}))
"""


def test_the_scanner_process_loads_no_sqlalchemy() -> None:
    """It reads PostgreSQL through asyncpg's pool alone (shared/pg.py, decision 0036): loaded,
    SQLAlchemy and its asyncio layer would cost each scanner about 21 MB (issue 16)."""
    out = subprocess.run(
        [sys.executable, "-c", SCANNER], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]", out
