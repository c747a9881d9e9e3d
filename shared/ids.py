"""Deterministic identities: the same fact always names the same aggregate."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable

NAMESPACE = uuid.UUID("5b0e8d2c-64a1-4c59-9a1e-0f5e7b5c1a11")
_ASSET_NS = uuid.uuid5(NAMESPACE, "asset")
_UPLOAD_ASSET_NS = uuid.uuid5(NAMESPACE, "upload-asset")
_UPLOAD_LIBRARY_NS = uuid.uuid5(NAMESPACE, "upload-library")
_FOLDER_NS = uuid.uuid5(NAMESPACE, "folder")


def uuid5(namespace: uuid.UUID, name: str) -> uuid.UUID:
    """`uuid.uuid5`, in half its time (a replay computes one per file of a folder's births)."""
    digest = bytearray(hashlib.sha1(namespace.bytes + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return uuid.UUID(bytes=bytes(digest))


def external_asset_id(library_id: uuid.UUID, real_path: str) -> uuid.UUID:
    """An external file's asset: one per (library, resolved path)."""
    return uuid5(_ASSET_NS, f"{library_id}:{real_path}")


_CLEAR_VERSION = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_5 = (0x5000 << 64) | (0x8000 << 48)  # version 5, RFC 4122 variant


def external_asset_ids(library_id: uuid.UUID, real_paths: Iterable[str]) -> list[uuid.UUID]:
    """`external_asset_id` of each path of one library, in a quarter of the time: the hash of
    the shared prefix is taken once, and each UUID is made from its int without UUID()'s
    argument checks (a replay computes one per file of every folder's births)."""
    prefix = hashlib.sha1(_ASSET_NS.bytes + f"{library_id}:".encode())
    new, put, safe = object.__new__, object.__setattr__, uuid.SafeUUID.unknown
    out = []
    for path in real_paths:
        h = prefix.copy()
        h.update(path.encode("utf-8"))
        u = new(uuid.UUID)
        put(u, "int", int.from_bytes(h.digest()[:16]) & _CLEAR_VERSION | _VERSION_5)
        put(u, "is_safe", safe)
        out.append(u)
    return out


def upload_asset_id(library_id: uuid.UUID, sha1_hex: str) -> uuid.UUID:
    """An uploaded file's asset: one per (upload library, content)."""
    return uuid.uuid5(_UPLOAD_ASSET_NS, f"{library_id}:{sha1_hex.lower()}")


def upload_library_id(user_id: uuid.UUID) -> uuid.UUID:
    """Every user has exactly one upload library, named after them."""
    return uuid.uuid5(_UPLOAD_LIBRARY_NS, str(user_id))


def folder_id(library_id: uuid.UUID, real_path: str) -> uuid.UUID:
    """An external library's folder (the subject its files' births are stored on)."""
    return uuid.uuid5(_FOLDER_NS, f"{library_id}:{real_path.rstrip('/') or '/'}")
