"""The scanner's reads of the read models: every query it runs, returning typed rows."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NamedTuple

from services.scanner.decide import Known
from shared import folderprints
from shared.ids import folder_id
from shared.pg import like_prefix

if TYPE_CHECKING:
    import asyncpg


class LibraryRow(NamedTuple):
    """A library as a scan needs it, with its owner's external path."""

    owner_id: uuid.UUID
    import_paths: tuple[str, ...]
    exclusion_patterns: tuple[str, ...]
    deleting: bool
    external_path: str | None


class AssetRef(NamedTuple):
    """An asset and the sequence its aggregate is at (what an expected-sequence publish needs)."""

    id: uuid.UUID
    last_seq: int


class ImportPathSeen(NamedTuple):
    """Where an import path led, and on which device, at the last scan that saw it."""

    device: int
    real_path: str | None


class IndexEntry(NamedTuple):
    """A folder of the folder index: its mtime when listed (0: always re-list) and the hash of
    the exclusion patterns it was listed under."""

    mtime_ns: int
    patterns_hash: str


_MS = folderprints.MS


class ScanRepository:
    """Read-only queries over the projector's tables (only the projector writes them), in
    asyncpg's own terms (shared/pg.py, decision 0036)."""

    def __init__(self, pool: asyncpg.Pool, conn: asyncpg.Connection | None = None) -> None:
        self.pool = pool
        # Where queries go: the held connection, else the pool (which has the same fetch and
        # fetchval, and takes a connection for each).
        self._on: asyncpg.Pool | asyncpg.Connection = pool if conn is None else conn

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[ScanRepository]:
        """This repository on one connection, for a folder's several reads: one checkout
        instead of one per query."""
        async with self.pool.acquire() as conn:
            yield ScanRepository(self.pool, conn)

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        return await self._on.fetch(sql, *args)  # type: ignore[no-any-return]

    async def _count(self, sql: str, *args: object) -> int:
        return int(await self._on.fetchval(sql, *args) or 0)

    async def _index(self, where: str = "", *args: object) -> dict[str, IndexEntry]:
        """Index entries of a library ($1) and `where` (its $2... are `args`)."""
        rows = await self._fetch(
            "SELECT path, mtime_ns, patterns_hash FROM library_dirs WHERE library_id = $1" + where,
            *args,
        )
        return {path: IndexEntry(mtime, patterns) for path, mtime, patterns in rows}

    async def _refs(self, where: str, *args: object) -> list[AssetRef]:
        """Online assets of a library ($1) and `where` (its $2... are `args`)."""
        rows = await self._fetch(
            "SELECT id, last_seq FROM assets WHERE library_id = $1 AND NOT is_offline" + where,
            *args,
        )
        return [AssetRef(id_, seq) for id_, seq in rows]

    async def library(self, library_id: uuid.UUID) -> LibraryRow | None:
        rows = await self._fetch(
            "SELECT l.owner_id, l.import_paths, l.exclusion_patterns, l.deleting, "
            "u.external_path FROM libraries l JOIN users u ON u.id = l.owner_id "
            "WHERE l.id = $1",
            library_id,
        )
        if not rows:
            return None
        owner, paths, patterns, deleting, external = rows[0]
        return LibraryRow(owner, tuple(paths), tuple(patterns), deleting, external)

    async def import_paths_seen(self, library_id: uuid.UUID) -> dict[str, ImportPathSeen]:
        """Each import path's device and real path at the last scan."""
        rows = await self._fetch(
            "SELECT path, device, real_path FROM library_import_paths WHERE library_id = $1",
            library_id,
        )
        return {path: ImportPathSeen(device, real) for path, device, real in rows}

    async def online_under(self, library_id: uuid.UUID, folder: str) -> list[AssetRef]:
        """Online assets at or below a folder (by real path)."""
        return await self._refs(" AND original_path LIKE $2", library_id, like_prefix(folder))

    async def count_online_under(self, library_id: uuid.UUID, folder: str) -> int:
        return await self._count(
            "SELECT count(*) FROM assets WHERE library_id = $1 "
            "AND NOT is_offline AND original_path LIKE $2",
            library_id,
            like_prefix(folder),
        )

    async def online_outside(self, library_id: uuid.UUID, folders: list[str]) -> list[AssetRef]:
        """Online assets below none of `folders`."""
        return await self._refs(
            " AND NOT (original_path LIKE ANY($2::text[]))",
            library_id,
            [like_prefix(c) for c in folders] or ["\\"],
        )

    async def folder_index(self, library_id: uuid.UUID) -> dict[str, IndexEntry]:
        return await self._index("", library_id)

    async def index_near(self, library_id: uuid.UUID, folder: str) -> dict[str, IndexEntry]:
        """Index entries of a folder and of its direct subfolders."""
        return await self._index(
            " AND (path = $2 OR (path LIKE $3 AND strpos(substr(path, $4), '/') = 0))",
            library_id,
            folder,
            like_prefix(folder),
            len(folder.rstrip("/")) + 2,
        )

    async def tree_index(self, library_id: uuid.UUID, folder: str) -> dict[str, IndexEntry]:
        """Index entries of a folder and of every folder below it."""
        return await self._index(
            " AND (path = $2 OR path LIKE $3)", library_id, folder, like_prefix(folder)
        )

    async def offline_dirs(self, library_id: uuid.UUID, reasons: list[str]) -> set[str]:
        """Folders holding assets offline for one of `reasons`."""
        rows = await self._fetch(
            "SELECT DISTINCT dir FROM assets WHERE library_id = $1 "
            "AND is_offline AND offline_reason = ANY($2::text[])",
            library_id,
            reasons,
        )
        return {dir_ for (dir_,) in rows}

    async def asset_dirs(self, library_id: uuid.UUID, folder: str) -> dict[str, int]:
        """The folders at or below `folder` that hold online assets, with how many."""
        rows = await self._fetch(
            "SELECT dir, online FROM folder_prints WHERE library_id = $1 AND online > 0 "
            "AND (dir = $2 OR dir LIKE $3)",
            library_id,
            folder,
            like_prefix(folder),
        )
        return dict(rows)

    async def count_online_in(self, library_id: uuid.UUID, folders: list[str]) -> int:
        """Online assets directly in one of `folders`."""
        return await self._count(
            "SELECT count(*) FROM assets WHERE library_id = $1 "
            "AND NOT is_offline AND dir = ANY($2::text[])",
            library_id,
            folders,
        )

    async def known(self, library_id: uuid.UUID, folder: str) -> dict[str, Known]:
        """Every asset directly in a folder, by path."""
        return (await self.known_in(library_id, [folder])).get(folder, {})

    async def known_in(
        self, library_id: uuid.UUID, folders: list[str]
    ) -> dict[str, dict[str, Known]]:
        """Every asset directly in one of `folders`: by folder, then by path. One query for a
        batch of folders (a subtree task asks once per batch, not once per folder)."""
        out: dict[str, dict[str, Known]] = {f: {} for f in folders}
        rows = await self._fetch(
            f"SELECT dir, original_path, id, {_MS}, is_offline, last_seq, sidecar_mtime_ms, "
            "offline_reason FROM assets WHERE library_id = $1 AND dir = ANY($2::text[])",
            library_id,
            folders,
        )
        for folder, path, *known in rows:
            out[folder][path] = Known(known[0], path, *known[1:])
        return out

    async def folder_positions(self, library_id: uuid.UUID, folders: list[str]) -> dict[str, int]:
        """Each folder's position (the sequence of its subject's newest FilesDiscovered as the
        projector applied it; 0 for a folder with none)."""
        ids = {folder_id(library_id, f): f for f in folders}
        rows = await self._fetch(
            "SELECT id, last_seq FROM folders WHERE id = ANY($1::uuid[])", list(ids)
        )
        out = dict.fromkeys(folders, 0)
        for id_, seq in rows:
            out[ids[id_]] = seq
        return out

    async def fingerprints(
        self, library_id: uuid.UUID, folders: list[str]
    ) -> dict[str, str | None]:
        """For each of `folders` holding assets, the fingerprint of its online assets (see
        crawl.Listing.fingerprint), or None when it also holds offline ones. One row per folder,
        kept as assets are written (shared/folderprints.py): an unchanged folder is recognised
        without a row per file read or crossing the wire."""
        rows = await self._fetch(
            "SELECT dir, print FROM folder_prints WHERE library_id = $1 AND dir = ANY($2::text[])",
            library_id,
            folders,
        )
        return {folder: fingerprint for folder, fingerprint in rows}

    async def online_children(self, library_id: uuid.UUID, folder: str) -> set[str]:
        """The direct subfolders of a folder that hold online assets somewhere below them."""
        base = folder.rstrip("/") + "/"
        rows = await self._fetch(
            "SELECT DISTINCT split_part(substr(dir, $3), '/', 1) FROM assets "
            "WHERE library_id = $1 AND dir LIKE $2 AND NOT is_offline",
            library_id,
            like_prefix(folder),
            len(base) + 1,
        )
        return {base + child for (child,) in rows}

    async def online_in_tree(self, library_id: uuid.UUID, folder: str) -> list[AssetRef]:
        """Online assets in a folder or anywhere below it (by folder)."""
        return await self._refs(
            " AND (dir = $2 OR dir LIKE $3)", library_id, folder, like_prefix(folder)
        )
