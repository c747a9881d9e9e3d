"""Deterministic identities: the same fact always names the same aggregate."""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("5b0e8d2c-64a1-4c59-9a1e-0f5e7b5c1a11")
_ASSET_NS = uuid.uuid5(NAMESPACE, "asset")
_UPLOAD_ASSET_NS = uuid.uuid5(NAMESPACE, "upload-asset")
_UPLOAD_LIBRARY_NS = uuid.uuid5(NAMESPACE, "upload-library")
_FOLDER_NS = uuid.uuid5(NAMESPACE, "folder")


def external_asset_id(library_id: uuid.UUID, real_path: str) -> uuid.UUID:
    """An external file's asset: one per (library, resolved path)."""
    return uuid.uuid5(_ASSET_NS, f"{library_id}:{real_path}")


def upload_asset_id(library_id: uuid.UUID, sha1_hex: str) -> uuid.UUID:
    """An uploaded file's asset: one per (upload library, content)."""
    return uuid.uuid5(_UPLOAD_ASSET_NS, f"{library_id}:{sha1_hex.lower()}")


def upload_library_id(user_id: uuid.UUID) -> uuid.UUID:
    """Every user has exactly one upload library, named after them."""
    return uuid.uuid5(_UPLOAD_LIBRARY_NS, str(user_id))


def folder_id(library_id: uuid.UUID, real_path: str) -> uuid.UUID:
    """An external library's folder (the subject its files' births are stored on)."""
    return uuid.uuid5(_FOLDER_NS, f"{library_id}:{real_path.rstrip('/') or '/'}")
