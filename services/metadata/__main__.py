"""Run the metadata service: `python -m services.metadata`."""

from __future__ import annotations

from services.metadata.app import build_app
from shared.service import run_faststream


def main() -> None:
    run_faststream("metadata", build_app)


if __name__ == "__main__":
    main()
