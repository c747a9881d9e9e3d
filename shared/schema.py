"""The PostgreSQL read models: tables the projector writes and everyone else reads.

No data migrations: a schema change bumps PROJECTION_VERSION and the read models are rebuilt by
replaying the event stream (`shoebox replay`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY

PROJECTION_VERSION = 6

metadata = MetaData()

TZ = DateTime(timezone=True)

server_state = Table(
    "server_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("admin_id", Uuid, nullable=False),
    Column("initialized_at", TZ, nullable=False),
)

system_config = Table(
    "system_config",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("library", Text, nullable=False),
    Column("updated_at", TZ, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("should_change_password", Boolean, nullable=False, default=False),
    Column("storage_label", Text),
    Column("quota_size_in_bytes", BigInteger),
    Column("external_path", Text),
    Column("created_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
    Column("deleted_at", TZ),
    Column("last_seq", BigInteger, nullable=False),
)
Index("users_email", users.c.email)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("created_at", TZ, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("permissions", ARRAY(Text), nullable=False),
    Column("created_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
)

libraries = Table(
    "libraries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("owner_id", Uuid, nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("import_paths", ARRAY(Text), nullable=False),
    Column("exclusion_patterns", ARRAY(Text), nullable=False),
    Column("created_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
    Column("refreshed_at", TZ),
    Column("deleting", Boolean, nullable=False, default=False),
    Column("last_seq", BigInteger, nullable=False),
)

assets = Table(
    "assets",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("owner_id", Uuid, nullable=False),
    Column("library_id", Uuid, nullable=False),
    Column("type", Text, nullable=False),
    Column("original_path", Text(collation="C"), nullable=False),
    Column("original_file_name", Text, nullable=False),
    Column("dir", Text(collation="C"), nullable=False),
    Column("checksum", Text),
    Column("file_size", BigInteger),
    Column("file_modified_at", TZ, nullable=False),
    Column("file_created_at", TZ, nullable=False),
    Column("local_date_time", TZ, nullable=False),
    Column("is_offline", Boolean, nullable=False, default=False),
    Column("offline_reason", Text),
    Column("is_favorite", Boolean, nullable=False, default=False),
    # What the user says about an asset (AssetUpdated), kept apart from what its file says:
    # `user_description` wins over the file's `description`, and `edited` marks an asset whose
    # details a user (or a move) set, so a move never carries details over them.
    Column("visibility", Text, nullable=False, server_default="timeline"),
    Column("rating", Integer),
    Column("user_description", Text),
    Column("edited", Boolean, nullable=False, server_default="false"),
    Column("deleted_at", TZ),
    Column("device_asset_id", Text, nullable=False, default=""),
    Column("device_id", Text, nullable=False, default=""),
    Column("metadata_status", Text, nullable=False, default="pending"),
    Column("metadata_error", Text),
    Column("mime_type", Text),
    Column("width", Integer),
    Column("height", Integer),
    Column("orientation", Integer),
    Column("date_time_original", TZ),
    Column("time_zone", Text),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("make", Text),
    Column("model", Text),
    Column("lens_model", Text),
    Column("iso", Integer),
    Column("exposure_time", Text),
    Column("f_number", Float),
    Column("focal_length", Float),
    Column("description", Text),
    Column("duration_seconds", Float),
    Column("sidecar_mtime_ms", BigInteger, nullable=False, default=0),
    Column("thumbnail_key", Text),
    Column("preview_key", Text),
    Column("thumbhash", LargeBinary),
    Column("created_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
)
Index("assets_library_dir", assets.c.library_id, assets.c.dir)
Index("assets_owner_taken", assets.c.owner_id, assets.c.local_date_time)
Index("assets_library_checksum", assets.c.library_id, assets.c.checksum)
# The offline assets by content, for the moves follower (services/scanner/moves.py): a batch of
# newly read files asks for offline assets with their checksums, which without it is a read of
# every asset row per batch (a million-photo import is two thousand such batches).
Index(
    "assets_offline_checksum",
    assets.c.library_id,
    assets.c.checksum,
    postgresql_where=assets.c.is_offline,
)

albums = Table(
    "albums",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("owner_id", Uuid, nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("thumbnail_asset_id", Uuid),
    Column("created_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
)

album_assets = Table(
    "album_assets",
    metadata,
    Column("album_id", Uuid, ForeignKey("albums.id", ondelete="CASCADE"), primary_key=True),
    Column("asset_id", Uuid, ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("added_at", TZ, nullable=False),
)
Index("album_assets_asset", album_assets.c.asset_id)

scan_runs = Table(
    "scan_runs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("library_id", Uuid, nullable=False, index=True),
    Column("mode", Text, nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("requested_at", TZ, nullable=False),
    Column("finished_at", TZ),
    Column("files_seen", BigInteger, nullable=False, default=0),
    Column("new", BigInteger, nullable=False, default=0),
    Column("changed", BigInteger, nullable=False, default=0),
    Column("missing", BigInteger, nullable=False, default=0),
    Column("failed", BigInteger, nullable=False, default=0),
    Column("unavailable_import_paths", ARRAY(Text), nullable=False, default=[]),
)

# The folders of external libraries whose files' births are stored on `events.folder.<id>`
# (FilesDiscovered, decision 0030): the position a scanner's next births must expect.
folders = Table(
    "folders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("library_id", Uuid, nullable=False, index=True),
    Column("path", Text(collation="C"), nullable=False),
    Column("last_seq", BigInteger, nullable=False),
)

# Removed assets' positions: the sequence of the newest event on a removed asset's subject, so
# an asset born again in a FilesDiscovered (which is stored on its folder's subject) starts
# from its subject's true position (decision 0030).
asset_tombstones = Table(
    "asset_tombstones",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("library_id", Uuid, nullable=False, index=True),
    Column("last_seq", BigInteger, nullable=False),
)

# Each folder that holds assets: how many are online and offline, and the fingerprint a
# *modified* scan compares its listing with (None while one is offline). Kept by triggers on
# `assets` (shared/folderprints.py, decision 0035), never written by a projection.
folder_prints = Table(
    "folder_prints",
    metadata,
    Column("library_id", Uuid, primary_key=True),
    Column("dir", Text(collation="C"), primary_key=True),
    Column("online", BigInteger, nullable=False),
    Column("offline", BigInteger, nullable=False),
    Column("print", Text),
)
# The folders whose assets a transaction changed, refreshed in `folder_prints` at its commit
# (empty between transactions).
folder_prints_dirty = Table(
    "folder_prints_dirty",
    metadata,
    Column("library_id", Uuid, primary_key=True),
    Column("dir", Text(collation="C"), primary_key=True),
)

library_dirs = Table(
    "library_dirs",
    metadata,
    Column("library_id", Uuid, primary_key=True),
    Column("path", Text(collation="C"), primary_key=True),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("patterns_hash", Text, nullable=False),
)

library_import_paths = Table(
    "library_import_paths",
    metadata,
    Column("library_id", Uuid, primary_key=True),
    Column("path", Text(collation="C"), primary_key=True),
    Column("device", BigInteger, nullable=False),
    Column("real_path", Text(collation="C"), nullable=False, server_default=""),
)

scan_problems = Table(
    "scan_problems",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("library_id", Uuid, nullable=False, index=True),
    Column("scan_id", Uuid, nullable=False),
    Column("path", Text, nullable=False),
    Column("problem", Text, nullable=False),
    Column("found_at", TZ, nullable=False),
)

# Events the projector passed over (it could not decode or apply them), one row per stream
# sequence. Written with the checkpoint, from the event alone, so a replay records the same rows.
projection_failures = Table(
    "projection_failures",
    metadata,
    Column("seq", BigInteger, primary_key=True),
    Column("subject", Text, nullable=False),
    Column("event_type", Text),
    Column("event_id", Uuid),
    Column("stream_id", Uuid),
    Column("occurred_at", TZ),
    Column("error", Text, nullable=False),
)

# Messages a durable consumer gave up on (DeliveryFailed, decision 0024): one row per consumer
# and stream sequence, from the event alone.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("consumer", Text, nullable=False),
    Column("stream", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("stream_seq", BigInteger, nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("failed_at", TZ, nullable=False, index=True),
)

projection_checkpoint = Table(
    "projection_checkpoint",
    metadata,
    Column("name", Text, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("version", Integer, nullable=False),
)


# Tables in an order safe for comparison and truncation.
READ_MODEL_TABLES = [t.name for t in metadata.sorted_tables]
