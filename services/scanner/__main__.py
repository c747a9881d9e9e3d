"""Run the scanner service: `python -m services.scanner`."""

from __future__ import annotations

from shared.lean import leave_out_unused


def main() -> None:
    leave_out_unused()
    # The listing helpers are forked first, while the process is small and has no thread.
    from services.scanner import listers
    from shared.settings import load_settings

    wanted = load_settings().scan.listers
    listers.start(listers.default_count() if wanted < 0 else wanted)
    # Imported after: nats-py and faststream must not find what leave_out_unused left out.
    from services.scanner.app import build_app
    from shared.service import run_faststream

    run_faststream("scanner", build_app)


if __name__ == "__main__":
    main()
