"""Run the scanner service: `python -m services.scanner`."""

from __future__ import annotations

from shared.lean import leave_out_unused


def main() -> None:
    leave_out_unused()
    # Imported after: nats-py and faststream must not find what leave_out_unused left out.
    from services.scanner.app import build_app
    from shared.service import run_faststream

    run_faststream("scanner", build_app)


if __name__ == "__main__":
    main()
