"""What a service's own process leaves out: optional packages its libraries import whenever
they are installed, which it never uses. nats-py imports aiohttp for its websocket transport and
faststream imports uvicorn for its ASGI helpers; both are installed (the API serves with
uvicorn, the tests' Immich client needs aiohttp), and loaded they cost each scanner, projector,
metadata and watcher process about 12 MB of resident memory (issue 16: a scanner within 100 MB).

No import here may pull in either: this runs before nats-py or faststream is imported.
"""

from __future__ import annotations

import os
import sys


def leave_out_unused() -> None:
    """Make `import uvicorn` (and `import aiohttp`, unless NATS is reached over websockets)
    fail in this process, so the libraries take their "not installed" path. Called first in a
    service's `main`, never in a process that serves HTTP with uvicorn."""
    unused = ["uvicorn"]
    urls = os.environ.get("SHOEBOX_NATS_URL", "")
    if "ws://" not in urls and "wss://" not in urls:
        unused.append("aiohttp")
    for name in unused:
        if name not in sys.modules:  # already loaded: too late to leave out, and in use
            sys.modules[name] = None  # type: ignore[assignment]  # the import system's "no"
