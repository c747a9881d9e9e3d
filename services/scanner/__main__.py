"""Run the scanner service: `python -m services.scanner`."""

from __future__ import annotations

from services.scanner.app import build_app
from shared.service import run_faststream


def main() -> None:
    run_faststream("scanner", build_app)


if __name__ == "__main__":
    main()
