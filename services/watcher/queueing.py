"""Publishing the watcher's work: a one-folder reconciliation task per settled folder."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

import nats.errors

from shared.work import WORK_ENCODER, dir_task_msg_id, scan_work_subject, watch_task

if TYPE_CHECKING:
    from nats.js import JetStreamContext

    from services.watcher.folders import LibraryWatch, Root
    from shared.settings import NatsSettings

log = logging.getLogger(__name__)


class FolderQueue:
    """Queues folder tasks on WORK, one reconciliation of a folder at a time."""

    def __init__(self, js: JetStreamContext, nats_settings: NatsSettings) -> None:
        self.js = js
        self.nats = nats_settings
        # (library, folder) -> WORK subject of the reconciliation we queued for it last.
        self.inflight: dict[tuple[uuid.UUID, str], str] = {}

    async def flush(self, watches: list[LibraryWatch]) -> None:
        """Queue a one-folder reconciliation for every folder that has settled."""
        batches = [(w, ready) for w in watches if (ready := w.debouncer.due())]
        if not batches:
            return
        try:
            queued = await self.queued_subjects() if self.inflight else set()
        except nats.errors.Error as e:
            log.warning(
                "watch: cannot read the WORK backlog, holding %d folders: %s",
                sum(len(r) for _, r in batches),
                e,
            )
            for watch, ready in batches:
                for directory in ready:
                    watch.debouncer.touch(directory)
            return
        self.inflight = {k: v for k, v in self.inflight.items() if v in queued}
        for watch, ready in batches:
            plan = await asyncio.to_thread(watch.sort_out, ready)
            for directory in plan.skipped:
                log.warning(
                    "watch library %s: %s is outside its import paths; skipped",
                    watch.config.id,
                    directory,
                )
            for directory in plan.deferred:
                watch.debouncer.touch(directory)
            for directory, root in plan.publish:
                if (watch.config.id, directory) in self.inflight:
                    # One reconciliation of a folder at a time: two would race to publish the
                    # same asset's events, and the loser's change would be dropped.
                    watch.debouncer.touch(directory)
                    continue
                await self.queue(watch, directory, root)

    async def queued_subjects(self) -> set[str]:
        """Subjects of WORK with a task still queued or in flight (acked ones are gone)."""
        info = await self.js.stream_info(
            self.nats.name("WORK"), subjects_filter=self.nats.subject("work", "scan", ">")
        )
        return {s for s, n in (info.state.subjects or {}).items() if n}

    async def queue(self, watch: LibraryWatch, directory: str, root: Root) -> None:
        task = watch_task(
            watch.config.id,
            directory,
            root.import_path,
            settle_ms=int(watch.debouncer.quiet * 1000),
        )
        try:
            payload = WORK_ENCODER.encode(task)
        except UnicodeEncodeError:
            log.warning(
                "watch library %s: folder %r is not valid UTF-8; left to scans",
                watch.config.id,
                directory,
            )
            return
        subject = scan_work_subject(self.nats, task.scan_id)
        try:
            await self.js.publish(
                subject,
                payload,
                stream=self.nats.name("WORK"),
                headers={"Nats-Msg-Id": dir_task_msg_id(task)},
            )
        except nats.errors.Error as e:
            log.warning(
                "watch library %s: cannot queue %s, will retry: %s", watch.config.id, directory, e
            )
            watch.debouncer.touch(directory)
            return
        self.inflight[(watch.config.id, directory)] = subject
        log.debug(
            "watch library %s: queued %s (import path %s)",
            watch.config.id,
            directory,
            root.import_path,
        )
