"""Each folder's fingerprint, kept by PostgreSQL as the projector writes assets (decision 0035).

A *modified* scan compares each listed folder with what the read models know of it: the md5 of
`path|mtime ms|sidecar mtime ms` of its online assets, a line each in code-point order
(services/scanner/crawl.py, Listing.fingerprint_text), and how many there are. Computed at scan
time, that digest cost PostgreSQL about as much CPU as the scan's own listing, on the same
cores. `folder_prints` holds it instead, one row per folder that holds assets.

Triggers on `assets` note the folders a statement touched in `folder_prints_dirty` (a
statement's births or removals at once, by its transition table; an update only when it
changes what a fingerprint reads, so the metadata updates cost nothing). At commit a deferred
trigger recomputes each noted folder once, however many statements touched it. The table is a
pure function of `assets` at every commit, so a replay rebuilds it exactly; the projector is the
one writer of `assets`, one transaction at a time, so two refreshes of a folder never race.

A full replay writes into tables without the index the refresh reads by (shared/db.py,
DEFERRED_INDEXES): it drops the triggers on `assets` first, and `install` refills the table at
its end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # imported where used: the scanner reads MS without loading SQLAlchemy
    from sqlalchemy import Connection


def ms(column: str = "file_modified_at") -> str:
    """The mtime in ms as the scanner compares it (to the nearest ms), computed by PostgreSQL
    rather than through a datetime per row. date_part() is double precision where extract() is
    numeric: twice as fast, and exact for timestamps of whole ms (what the projector stores
    from a scan's ms), the only ones compared."""
    return f"floor(date_part('epoch', {column}) * 1000 + 0.5)::bigint"


MS: Final = ms()

# What one folder ({lib}, {dir}) holds, from its assets (`a`), {into} a variable or not.
_COUNTED: Final = (
    "SELECT count(*) FILTER (WHERE NOT a.is_offline) AS online, "
    "count(*) FILTER (WHERE a.is_offline) AS offline, "
    "CASE WHEN bool_or(a.is_offline) THEN NULL ELSE md5(coalesce(string_agg("
    f"a.original_path || '|' || {ms('a.file_modified_at')} "
    "|| '|' || a.sidecar_mtime_ms, E'\\n' ORDER BY a.original_path COLLATE \"C\"), '')) END "
    "AS print {into}FROM assets a WHERE a.library_id = {lib} AND a.dir = {dir}"
)

# What a fingerprint reads of an asset, and where the asset is.
_READ: Final = "library_id, dir, original_path, file_modified_at, sidecar_mtime_ms, is_offline"


def _row(alias: str) -> str:
    return ", ".join(f"{alias}.{c}" for c in _READ.split(", "))


_DDL: Final = (
    # A statement's births or removals: their folders, once each.
    """CREATE OR REPLACE FUNCTION folder_prints_note_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO folder_prints_dirty SELECT DISTINCT library_id, dir FROM n ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION folder_prints_note_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO folder_prints_dirty SELECT DISTINCT library_id, dir FROM o ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$""",
    # An update that changes what a fingerprint reads: the folder it was in, and the one it is in.
    """CREATE OR REPLACE FUNCTION folder_prints_note_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO folder_prints_dirty VALUES (OLD.library_id, OLD.dir), (NEW.library_id, NEW.dir)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$""",
    "CREATE OR REPLACE TRIGGER folder_prints_insert AFTER INSERT ON assets REFERENCING NEW TABLE "
    "AS n FOR EACH STATEMENT EXECUTE FUNCTION folder_prints_note_new()",
    "CREATE OR REPLACE TRIGGER folder_prints_delete AFTER DELETE ON assets REFERENCING OLD TABLE "
    "AS o FOR EACH STATEMENT EXECUTE FUNCTION folder_prints_note_old()",
    f"CREATE OR REPLACE TRIGGER folder_prints_update AFTER UPDATE ON assets FOR EACH ROW "
    f"WHEN (({_row('OLD')}) IS DISTINCT FROM ({_row('NEW')})) "
    "EXECUTE FUNCTION folder_prints_note_row()",
    # At commit, each noted folder once.
    """CREATE OR REPLACE FUNCTION folder_prints_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c record;
BEGIN
    DELETE FROM folder_prints_dirty WHERE library_id = NEW.library_id AND dir = NEW.dir;
    """
    + _COUNTED.format(lib="NEW.library_id", dir="NEW.dir", into="INTO c ")
    + """;
    IF c.online + c.offline = 0 THEN
        DELETE FROM folder_prints WHERE library_id = NEW.library_id AND dir = NEW.dir;
    ELSE
        INSERT INTO folder_prints (library_id, dir, online, offline, print)
        VALUES (NEW.library_id, NEW.dir, c.online, c.offline, c.print)
        ON CONFLICT (library_id, dir) DO UPDATE
        SET online = excluded.online, offline = excluded.offline, print = excluded.print;
    END IF;
    RETURN NULL;
END $$""",
    "DROP TRIGGER IF EXISTS folder_prints_refresh ON folder_prints_dirty",
    "CREATE CONSTRAINT TRIGGER folder_prints_refresh AFTER INSERT ON folder_prints_dirty "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION folder_prints_refresh()",
)

_REFILL: Final = (
    "INSERT INTO folder_prints (library_id, dir, online, offline, print) "
    "SELECT t.library_id, t.dir, x.online, x.offline, x.print "
    "FROM (SELECT DISTINCT library_id, dir FROM assets) t CROSS JOIN LATERAL ("
    + _COUNTED.format(lib="t.library_id", dir="t.dir", into="")
    + ") x"
)
_ON_ASSETS: Final = ("folder_prints_insert", "folder_prints_delete", "folder_prints_update")


def install(conn: Connection) -> None:
    """Create (or replace) the triggers; fill `folder_prints` when it is empty and assets are
    not (a database from before it, or the end of a replay). Idempotent."""
    from sqlalchemy import text

    for statement in _DDL:
        conn.execute(text(statement))
    empty = conn.execute(text("SELECT NOT EXISTS (SELECT 1 FROM folder_prints)")).scalar()
    if empty and conn.execute(text("SELECT EXISTS (SELECT 1 FROM assets)")).scalar():
        conn.execute(text(_REFILL))


def drop_triggers(conn: Connection) -> None:
    """For a replay into empty tables: `install` refills the table at its end."""
    from sqlalchemy import text

    for name in _ON_ASSETS:
        conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON assets"))
