"""Run the metadata service: `python -m services.metadata`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.lean import leave_out_unused

if TYPE_CHECKING:
    from faststream import FastStream

    from shared.health import Health
    from shared.settings import Settings


def _build(settings: Settings, *, health: Health | None = None) -> FastStream:
    from services.metadata.app import build_app, lower_priority

    # Its own process only (the tests run the service inside theirs): the worker processes it
    # starts inherit the niceness.
    lower_priority(settings.metadata_nice)
    return build_app(settings, health=health)


def main() -> None:
    leave_out_unused()
    # Imported after: nats-py and faststream must not find what leave_out_unused left out.
    from shared.service import run_faststream

    run_faststream("metadata", _build)


if __name__ == "__main__":
    main()
