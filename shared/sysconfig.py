"""The server's library configuration (Immich's system-config `library` section): recorded as
events, read from the read model, with the environment's settings as its defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec

from shared.settings import ScanSettings

if TYPE_CHECKING:
    from shared.pg import Scalar

_SCAN = ScanSettings()
"""The defaults, written once in shared/settings.py (the SHOEBOX_LIBRARY_* variables)."""


class LibraryScanConfig(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Immich's `library.scan`: the nightly job."""

    enabled: bool = _SCAN.enabled
    cron_expression: str = _SCAN.cron_expression


class LibraryWatchConfig(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Immich's `library.watch` (with `usePolling` and `interval` of its earlier releases)."""

    enabled: bool = _SCAN.watch_enabled
    use_polling: bool = _SCAN.watch_use_polling
    interval: int = _SCAN.watch_interval_ms
    """Polling interval, ms."""


class LibraryConfig(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Immich's `library` section of the system config."""

    scan: LibraryScanConfig = msgspec.field(default_factory=LibraryScanConfig)
    watch: LibraryWatchConfig = msgspec.field(default_factory=LibraryWatchConfig)


def defaults(scan: ScanSettings) -> LibraryConfig:
    """The configuration the environment gives (SHOEBOX_LIBRARY_*), before any admin edit."""
    return LibraryConfig(
        scan=LibraryScanConfig(enabled=scan.enabled, cron_expression=scan.cron_expression),
        watch=LibraryWatchConfig(
            enabled=scan.watch_enabled,
            use_polling=scan.watch_use_polling,
            interval=scan.watch_interval_ms,
        ),
    )


def problems(config: LibraryConfig) -> list[str]:
    """What is wrong with a configuration, in the words of Immich's validation."""
    from croniter import croniter  # here: the services that never validate or schedule (the
    # projector, metadata, watcher) import this module through shared.events, not croniter

    out = []
    if not croniter.is_valid(config.scan.cron_expression):
        out.append("library.scan.cronExpression must be a valid cron expression")
    if not 100 <= config.watch.interval <= 86_400_000:
        out.append("library.watch.interval must be between 100 and 86400000 (ms)")
    return out


def next_scan(config: LibraryConfig, now: datetime) -> datetime | None:
    """When the nightly job runs next (cron in UTC, as the scanner reads it); None if off."""
    from croniter import croniter

    if not config.scan.enabled or not croniter.is_valid(config.scan.cron_expression):
        return None
    due: datetime = croniter(config.scan.cron_expression, now.astimezone(UTC)).get_next(datetime)
    return due


ENCODER = msgspec.json.Encoder()
DECODER = msgspec.json.Decoder(LibraryConfig)
_CURRENT = "SELECT library FROM system_config WHERE id = 1"


async def current(query: Scalar, scan: ScanSettings) -> LibraryConfig:
    """The configuration in force: the last one an admin saved, else the defaults (`query`:
    a pool's fetchval, or shared/db.py's `scalar` of an engine)."""
    stored = await query(_CURRENT)
    return DECODER.decode(stored) if stored else defaults(scan)
