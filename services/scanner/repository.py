"""The scanner's reads of the read models: every query it runs, returning typed rows."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import text

from services.scanner.decide import Known
from shared import folderprints
from shared.db import like_prefix
from shared.ids import folder_id

if TYPE_CHECKING:
    from sqlalchemy.engine import Row
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


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
    """Read-only queries over the projector's tables (only the projector writes them)."""

    def __init__(self, engine: AsyncEngine, conn: AsyncConnection | None = None) -> None:
        self.engine = engine
        self._held = conn

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[ScanRepository]:
        """This repository on one connection, for a folder's several reads: one checkout (and
        one liveness ping) instead of one per query."""
        async with self.engine.connect() as conn:
            yield ScanRepository(self.engine, conn)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        if self._held is not None:
            yield self._held
            return
        async with self.engine.connect() as conn:
            yield conn

    async def _rows(self, sql: str, **params: object) -> Sequence[Row[Any]]:
        async with self._connection() as conn:
            return (await conn.execute(text(sql), params)).all()

    async def _count(self, sql: str, **params: object) -> int:
        async with self._connection() as conn:
            return int((await conn.execute(text(sql), params)).scalar() or 0)

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        """Rows straight from asyncpg (records), for the queries a rescan runs per batch:
        SQLAlchemy's result rows cost about 15 times more."""
        async with self._connection() as conn:
            raw = await conn.get_raw_connection()
            rows: list[Any] = await raw.driver_connection.fetch(sql, *args)  # type: ignore[union-attr]
            return rows

    async def _index(self, where: str = "", *args: object) -> dict[str, IndexEntry]:
        """Index entries of a library ($1) and `where` (its $2... are `args`)."""
        rows = await self._fetch(
            "SELECT path, mtime_ns, patterns_hash FROM library_dirs WHERE library_id = $1" + where,
            *args,
        )
        return {path: IndexEntry(mtime, patterns) for path, mtime, patterns in rows}

    async def _refs(self, where: str, **params: object) -> list[AssetRef]:
        rows = await self._rows(
            "SELECT id, last_seq FROM assets WHERE library_id = :l AND NOT is_offline" + where,
            **params,
        )
        return [AssetRef(r.id, r.last_seq) for r in rows]

    async def library(self, library_id: uuid.UUID) -> LibraryRow | None:
        rows = await self._rows(
            "SELECT l.owner_id, l.import_paths, l.exclusion_patterns, l.deleting, "
            "u.external_path FROM libraries l JOIN users u ON u.id = l.owner_id "
            "WHERE l.id = :id",
            id=library_id,
        )
        if not rows:
            return None
        r = rows[0]
        return LibraryRow(
            r.owner_id,
            tuple(r.import_paths),
            tuple(r.exclusion_patterns),
            r.deleting,
            r.external_path,
        )

    async def import_paths_seen(self, library_id: uuid.UUID) -> dict[str, ImportPathSeen]:
        """Each import path's device and real path at the last scan."""
        rows = await self._rows(
            "SELECT path, device, real_path FROM library_import_paths WHERE library_id = :l",
            l=library_id,
        )
        return {r.path: ImportPathSeen(r.device, r.real_path) for r in rows}

    async def online_under(self, library_id: uuid.UUID, folder: str) -> list[AssetRef]:
        """Online assets at or below a folder (by real path)."""
        return await self._refs(" AND original_path LIKE :p", l=library_id, p=like_prefix(folder))

    async def count_online_under(self, library_id: uuid.UUID, folder: str) -> int:
        return await self._count(
            "SELECT count(*) FROM assets WHERE library_id = :l "
            "AND NOT is_offline AND original_path LIKE :p",
            l=library_id,
            p=like_prefix(folder),
        )

    async def online_outside(self, library_id: uuid.UUID, folders: list[str]) -> list[AssetRef]:
        """Online assets below none of `folders`."""
        return await self._refs(
            " AND NOT (original_path LIKE ANY(:prefixes))",
            l=library_id,
            prefixes=[like_prefix(c) for c in folders] or ["\\"],
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
        rows = await self._rows(
            "SELECT DISTINCT dir FROM assets WHERE library_id = :l "
            "AND is_offline AND offline_reason = ANY(:reasons)",
            l=library_id,
            reasons=reasons,
        )
        return {r.dir for r in rows}

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
            "SELECT count(*) FROM assets WHERE library_id = :l "
            "AND NOT is_offline AND dir = ANY(:dirs)",
            l=library_id,
            dirs=folders,
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
            " AND (dir = :d OR dir LIKE :p)", l=library_id, d=folder, p=like_prefix(folder)
        )
