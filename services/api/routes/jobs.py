"""JobController: GET /api/jobs (Immich's Jobs tag), queue counts from JetStream consumers.

Shoebox has no job queue: its work is JetStream consumers. Immich's `waiting` is a consumer's
pending count (messages not yet delivered) and `active` its ack-pending count (delivered, being
worked on), summed over the consumers that do a queue's work:

- `library`: `scanner-scans` (scan requests, decision 0022), `scanner-library` (library events:
  deletions, and scan requests recorded before 0022) and `scanner-dirs` (folder tasks);
- `metadataExtraction` and `thumbnailGeneration`: `metadata`, which reads a file's metadata and
  renders its thumbnails in one step, so both queues show the same counts, and
  `metadata-folders`, which reads the new files of external folders: there one message is a
  folder's new files, up to 1,000 (decision 0030), so its counts are of folders, not files.

Every other queue of Immich is answered idle. `completed`, `failed`, `delayed` and `paused` stay
0 (a consumer keeps no such history; failures are recorded on the asset, `metadataError`).
"""

from __future__ import annotations

import asyncio

from litestar import Controller, get
from nats.js.errors import NotFoundError

from services.api import schemas as s
from services.api.auth import Permission, requires
from services.api.context import Context

# queue -> (stream, consumer) pairs whose counts it sums
QUEUES: dict[str, tuple[tuple[str, str], ...]] = {
    "library": (
        ("EVENTS", "scanner-scans"),
        ("EVENTS", "scanner-library"),
        ("WORK", "scanner-dirs"),
    ),
    "metadata_extraction": (("EVENTS", "metadata"), ("EVENTS", "metadata-folders")),
    "thumbnail_generation": (("EVENTS", "metadata"), ("EVENTS", "metadata-folders")),
}


async def _counts(ctx: Context, stream: str, consumer: str) -> tuple[int, int]:
    """(active, waiting) of one consumer; (0, 0) when its service has never run."""
    nats = ctx.settings.nats
    try:
        info = await ctx.nc.jetstream().consumer_info(nats.name(stream), nats.name(consumer))
    except NotFoundError:
        return 0, 0
    return info.num_ack_pending or 0, info.num_pending or 0


async def queue_status(ctx: Context) -> s.QueuesResponseLegacyDto:
    """Every queue's counts, each consumer asked once."""
    consumers = sorted({c for pairs in QUEUES.values() for c in pairs})
    answers = await asyncio.gather(*(_counts(ctx, *c) for c in consumers))
    counts = dict(zip(consumers, answers, strict=True))
    queues: dict[str, s.QueueResponseLegacyDto] = {}
    for queue, pairs in QUEUES.items():
        active = sum(counts[c][0] for c in pairs)
        waiting = sum(counts[c][1] for c in pairs)
        queues[queue] = s.QueueResponseLegacyDto(
            job_counts=s.QueueStatisticsDto(active=active, waiting=waiting),
            queue_status=s.QueueStatusLegacyDto(is_active=active > 0),
        )
    return s.QueuesResponseLegacyDto(**queues)


class JobController(Controller):
    path = "/api/jobs"
    tags = ["Jobs"]

    @get("/", operation_id="getQueuesLegacy", opt=requires(Permission.JOB_READ, admin=True))
    async def get_queues(self, ctx: Context) -> s.QueuesResponseLegacyDto:
        """Queue counts and status, in Immich's shape (its e2e helpers poll this until the
        library queue has nothing active or waiting)."""
        return await queue_status(ctx)
