"""Run the watcher service: `python -m services.watcher`."""

from __future__ import annotations

from services.watcher.app import serve
from shared.service import run_service


def main() -> None:
    run_service("watcher", serve)


if __name__ == "__main__":
    main()
