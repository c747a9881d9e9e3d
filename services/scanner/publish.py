"""Publishing what a scan decided: its planned events, and its folder tasks on WORK."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared import events as ev
from shared.work import WORK_ENCODER, DirTask, dir_task_msg_id, scan_work_subject

if TYPE_CHECKING:
    from nats.js import JetStreamContext

    from services.scanner.decide import Planned
    from shared.bus import EventBus
    from shared.settings import NatsSettings


async def publish_planned(bus: EventBus, planned: list[Planned]) -> None:
    """Publish decisions; a FileDiscovered refused because the asset exists is either a
    replica's duplicate (dropped) or an asset removed earlier, which starts a new life."""
    if not planned:
        return
    _, conflicts = await bus.publish_many(planned)
    for event in conflicts:
        if not isinstance(event, ev.FileDiscovered):
            continue  # someone changed the asset since we looked; the next scan sees it
        seq, last = await bus.last_event("asset", event.stream_id)
        if isinstance(last, ev.AssetRemoved):
            await bus.publish_many([(event, seq)])


async def queue_task(js: JetStreamContext, settings: NatsSettings, task: DirTask) -> None:
    """Put a folder task on WORK (de-duplicated by its scan and path)."""
    await js.publish(
        scan_work_subject(settings, task.scan_id),
        WORK_ENCODER.encode(task),
        stream=settings.name("WORK"),
        headers={"Nats-Msg-Id": dir_task_msg_id(task)},
    )
