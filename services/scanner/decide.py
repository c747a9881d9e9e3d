"""What a scan decides about one directory: pure functions over plain values."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from services.scanner.crawl import Seen
from shared import events as ev
from shared.ids import folder_id


class Known(NamedTuple):
    """An asset the read model has for a path."""

    id: uuid.UUID
    path: str
    mtime_ms: int
    is_offline: bool
    last_seq: int
    sidecar_ms: int = 0
    offline_reason: str | None = None


@dataclass(frozen=True)
class ScanContext:
    """The scan a decision belongs to."""

    scan_id: uuid.UUID
    library_id: uuid.UUID
    owner_id: uuid.UUID
    mode: ev.ScanMode


Planned = tuple[ev.BaseEvent, int | None]  # an event and the sequence its aggregate must be at


def needs_stat(mode: ev.ScanMode, known: Known | None) -> bool:
    """A *new* scan does not touch files it already knows (that is what makes it fast)."""
    return known is None or known.is_offline or mode is not ev.ScanMode.NEW


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def plan_dir(
    ctx: ScanContext,
    known: dict[str, Known],
    present: Iterable[str],
    seen: Iterable[Seen],
    excluded: set[str],
) -> list[Planned]:
    """Events for one directory.

    `present` are the eligible paths listed; `seen` the stat results of those that needed one
    (see needs_stat). Unknown -> one FilesDiscovered per folder; known and offline ->
    AssetOnline (and FileChanged when its mtime moved); *modified* with a new mtime, or
    *force* -> FileChanged; known but not present -> AssetOffline (excluded or deleted);
    known, offline and not present, for a reason that is no longer its cause (a file back in
    place but now excluded is `excluded`, no longer `deleted`) -> AssetOffline with the reason
    of now.
    """
    out: list[Planned] = []
    births: dict[str, list[ev.FolderFile]] = {}
    present_set = set(present)
    for s in seen:
        k = known.get(s.path)
        if k is None:
            folder, _, name = s.path.rpartition("/")
            births.setdefault(folder or "/", []).append(
                ev.FolderFile(name, s.type, s.mtime_ms, s.size, s.sidecar_ms)  # type: ignore[arg-type]
            )
            continue
        expected: int | None = k.last_seq
        if k.is_offline:
            out.append(
                (
                    ev.AssetOnline(
                        stream_id=k.id,
                        library_id=ctx.library_id,
                        file_modified_at=from_ms(s.mtime_ms),
                        file_size=s.size,
                        scan_id=ctx.scan_id,
                    ),
                    expected,
                )
            )
            expected = None  # chained after AssetOnline; the pair is one decision
        # A sidecar that appeared, changed or went away changes what the asset shows.
        changed = s.mtime_ms != k.mtime_ms or s.sidecar_ms != k.sidecar_ms
        if ctx.mode is ev.ScanMode.FORCE or (
            changed and (ctx.mode is ev.ScanMode.MODIFIED or k.is_offline)
        ):
            out.append(
                (
                    ev.FileChanged(
                        stream_id=k.id,
                        library_id=ctx.library_id,
                        path=s.path,
                        file_modified_at=from_ms(s.mtime_ms),
                        file_size=s.size,
                        scan_id=ctx.scan_id,
                        sidecar_mtime_ms=s.sidecar_ms,
                    ),
                    expected,
                )
            )
    for path, k in known.items():
        if path in present_set:
            continue
        reason = ev.OfflineReason.EXCLUDED if path in excluded else ev.OfflineReason.DELETED
        if k.is_offline and k.offline_reason == reason.value:
            continue
        out.append(
            (
                ev.AssetOffline(
                    stream_id=k.id,
                    library_id=ctx.library_id,
                    reason=reason,
                    # A new reason for an asset already offline is not a file gone missing.
                    scan_id=None if k.is_offline else ctx.scan_id,
                ),
                k.last_seq,
            )
        )
    # The births of a folder are one event on its subject; its expected position is the
    # folder's, filled in when it is published (publish.publish_planned).
    out += [
        (
            ev.FilesDiscovered(
                stream_id=folder_id(ctx.library_id, folder),
                library_id=ctx.library_id,
                owner_id=ctx.owner_id,
                folder=folder,
                files=files,
                scan_id=ctx.scan_id,
            ),
            None,
        )
        for folder, files in births.items()
    ]
    return out


def plan_offline(
    ctx: ScanContext, assets: Iterable[tuple[uuid.UUID, int]], reason: ev.OfflineReason
) -> list[Planned]:
    """Take a set of (online) assets offline for one reason."""
    return [
        (
            ev.AssetOffline(
                stream_id=a, library_id=ctx.library_id, reason=reason, scan_id=ctx.scan_id
            ),
            seq,
        )
        for a, seq in assets
    ]
