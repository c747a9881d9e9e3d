"""Run the scanner service: `python -m services.scanner`."""

from __future__ import annotations

import asyncio
import contextlib

from services.scanner.app import build_app
from shared.metrics import start_metrics
from shared.service import setup_logging
from shared.settings import load_settings


def main() -> None:
    settings = load_settings()
    setup_logging(settings.log_level, "scanner")
    start_metrics("scanner")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(build_app(settings).run())


if __name__ == "__main__":
    main()
