"""Run the projector service: `python -m services.projector`."""

from __future__ import annotations

from shared.lean import leave_out_unused


def main() -> None:
    leave_out_unused()
    # Imported after: nats-py must not find what leave_out_unused left out.
    from services.projector.service import main as serve

    serve()


if __name__ == "__main__":
    main()
