"""A lease in NATS KV: at most one watcher replica watches a library at a time."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError

if TYPE_CHECKING:
    from nats.js.kv import KeyValue

log = logging.getLogger(__name__)

# JetStream's "wrong last sequence" codes, which kv.delete does not translate.
_WRONG_LAST = (10071, 10164)


class Lease:
    """One key in the `leases` bucket, created by its holder and kept alive by updates.

    The bucket's TTL (60 s) is the lease's lifetime: a replica that dies stops renewing, the
    key expires, and another replica's `acquire` succeeds. Every write is compare-and-set on
    the revision, so two replicas never both believe they hold it after a renewal.
    """

    def __init__(self, kv: KeyValue, key: str, owner: str) -> None:
        self.kv = kv
        self.key = key
        self.owner = owner
        self.revision: int | None = None

    @property
    def held(self) -> bool:
        return self.revision is not None

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it; True when we hold it now."""
        if self.revision is not None:
            return True
        try:
            self.revision = await self.kv.create(self.key, self.owner.encode())
        except (KeyWrongLastSequenceError, KeyNotFoundError):
            # Held by another replica (KeyNotFound: it expired between create's two steps;
            # the next attempt will get it).
            return False
        return True

    async def renew(self) -> bool:
        """Extend the lease; False when it was lost (expired and taken, or never ours)."""
        if self.revision is None:
            return False
        try:
            self.revision = await self.kv.update(self.key, self.owner.encode(), last=self.revision)
            return True
        except KeyWrongLastSequenceError:
            self.revision = None
        # It expired under us (a long pause); if nobody took it meanwhile it is ours again.
        return await self.acquire()

    async def release(self) -> None:
        """Give the lease up at once, so another replica need not wait for the TTL."""
        if self.revision is None:
            return
        revision, self.revision = self.revision, None
        try:
            await self.kv.delete(self.key, last=revision)
        except APIError as e:
            if e.err_code not in _WRONG_LAST:
                raise
            log.info("lease %s was already someone else's", self.key)
