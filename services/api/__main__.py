"""Run the API service: `python -m services.api` (uvicorn on SHOEBOX_HOST:SHOEBOX_PORT)."""

from __future__ import annotations

import uvicorn

from services.api.app import build_app
from shared.metrics import start_metrics
from shared.service import setup_logging
from shared.settings import load_settings


def main() -> None:
    settings = load_settings()
    setup_logging(settings.log_level, "api")
    start_metrics("api")
    uvicorn.run(
        build_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
