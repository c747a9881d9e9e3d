"""Run the metadata service: `python -m services.metadata`."""

from __future__ import annotations

from faststream import FastStream

from services.metadata.app import build_app, lower_priority
from shared.health import Health
from shared.service import run_faststream
from shared.settings import Settings


def _build(settings: Settings, *, health: Health | None = None) -> FastStream:
    # Its own process only (the tests run the service inside theirs): the worker processes it
    # starts inherit the niceness.
    lower_priority(settings.metadata_nice)
    return build_app(settings, health=health)


def main() -> None:
    run_faststream("metadata", _build)


if __name__ == "__main__":
    main()
