"""A batch of folders listed for a subtree task, each file stat'ed (decision 0026).

Light on purpose: the scanner's listing helpers (services/scanner/listers.py) are forked with
this module loaded and nothing of NATS, PostgreSQL or the events.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from services.scanner.crawl import Fence, Listing, Seen, list_dir
from shared.globs import MatchTooSlow


@dataclass
class Walked:
    """One folder as the walk saw it: its listing (None when it could not be listed and
    nothing below it may change) and the stat of each of its eligible files."""

    folder: str
    listing: Listing | None
    seen: list[Seen] | None = None  # None: every file has its stat (Listing.seen makes it)
    fingerprint: str | None = None  # None: compared file by file
    problem: str | None = None
    root_lost: bool = False


def walk_batch(folders: list[str], fence: Fence, import_path: str) -> list[Walked]:
    """Blocking: list each folder and stat its files (by name, in the listed folder). Every
    listing is closed when this returns."""
    out: list[Walked] = []
    real_root = os.path.realpath(import_path)  # once a batch, not once a folder
    for folder in folders:
        try:
            listing = list_dir(folder, fence, real_root=real_root, stat_files=True)
        except FileNotFoundError:
            # Gone since its parent was listed: its files are missing, unless the whole
            # import path went (a drive unplugged mid-scan), which changes nothing.
            from services.scanner import probes  # rare; a helper loads it only then

            if probes.root_lost(fence, import_path):
                out.append(Walked(folder, None, root_lost=True))
                break
            out.append(Walked(folder, Listing(directory=folder)))
            continue
        except OSError as err:
            out.append(Walked(folder, None, problem=f"cannot read folder: {err.strerror or err}"))
            continue
        except MatchTooSlow as err:
            # Hostile patterns: the library's folders stay as they were until they change.
            out.append(Walked(folder, None, problem=f"folder skipped: {err}"))
            continue
        try:
            # Files are stat'ed while listed; only a file whose stat failed is looked at again,
            # while its folder is open.
            print_ = listing.fingerprint()
            seen = (
                None if print_ is not None else [x for x in map(listing.stat, listing.files) if x]
            )
        finally:
            listing.close()
        out.append(Walked(folder, listing, seen, print_))
    return out
