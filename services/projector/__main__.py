"""Run the projector service: `python -m services.projector`."""

from __future__ import annotations

from services.projector.service import main

if __name__ == "__main__":
    main()
