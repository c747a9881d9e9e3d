"""The `shoebox` operator command line (typer + rich): status, events, replay, libraries, users,
dead letters.

Every command talks to the system's own NATS and PostgreSQL (the SHOEBOX_* settings; the
embedded ones of the data folder when those are unset) and never writes the read models except
through the projector's code (replay). Each command group is a module of this package;
importing it registers its commands on `app`.
"""

from __future__ import annotations

from services.cli import deadletters, events, operate, status
from services.cli.base import app
from services.cli.replay import replay, replay_and_compare

__all__ = [
    "app",
    "deadletters",
    "events",
    "main",
    "operate",
    "replay",
    "replay_and_compare",
    "status",
]


def main() -> None:
    app()
