"""Run the watcher service: `python -m services.watcher`."""

from __future__ import annotations

from shared.lean import leave_out_unused


def main() -> None:
    leave_out_unused()
    # Imported after: nats-py and faststream must not find what leave_out_unused left out.
    from services.watcher.app import serve
    from shared.service import run_service

    run_service("watcher", serve)


if __name__ == "__main__":
    main()
