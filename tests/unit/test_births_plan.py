"""A folder's new files are planned as one FilesDiscovered on the folder's subject and
published in parts (decision 0030): pure, no NATS."""

from __future__ import annotations

import uuid

from services.scanner.crawl import Seen
from services.scanner.decide import Known, ScanContext, plan_dir
from services.scanner.publish import BATCH_FILES, chunks
from shared import events as ev
from shared.ids import external_asset_id, folder_id, uuid5

LIB, OWNER = uuid.uuid4(), uuid.uuid4()
CTX = ScanContext(uuid.uuid4(), LIB, OWNER, ev.ScanMode.NEW)


def test_new_files_of_a_folder_are_one_event_on_its_subject() -> None:
    seen = [Seen(f"/m/a/{n}.jpg", "IMAGE", 1000 + i, 10 + i) for i, n in enumerate("xyz")]
    known = {"/m/a/k.jpg": Known(uuid.uuid4(), "/m/a/k.jpg", 5, False, 7)}
    present = [s.path for s in seen] + ["/m/a/k.jpg"]
    planned = plan_dir(CTX, known, present, seen, set())
    births = [(e, x) for e, x in planned if isinstance(e, ev.FilesDiscovered)]
    assert len(births) == 1 and len(planned) == 1
    ((event, expected),) = births
    assert expected is None  # the folder's position is read when it is published
    assert event.stream_id == folder_id(LIB, "/m/a") and event.folder == "/m/a"
    assert [f.name for f in event.files] == ["x.jpg", "y.jpg", "z.jpg"]
    assert [d.stream_id for d in event.discoveries()] == [
        external_asset_id(LIB, f"/m/a/{n}.jpg") for n in "xyz"
    ]
    assert [(d.path, d.file_size) for d in event.discoveries()] == [(s.path, s.size) for s in seen]


def test_a_file_at_the_root_belongs_to_the_root_folder() -> None:
    seen = [Seen("/top.jpg", "IMAGE", 1, 1)]
    ((event, _),) = plan_dir(CTX, {}, ["/top.jpg"], seen, set())
    assert isinstance(event, ev.FilesDiscovered) and event.folder == "/"
    assert event.discoveries()[0].path == "/top.jpg"


def _births(n: int, name: str = "f") -> ev.FilesDiscovered:
    return ev.FilesDiscovered(
        stream_id=folder_id(LIB, "/m"),
        library_id=LIB,
        owner_id=OWNER,
        folder="/m",
        files=[ev.FolderFile(f"{name}{i}.jpg", "IMAGE", i, i) for i in range(n)],
    )


def test_parts_keep_every_file_once_in_order_with_distinct_ids() -> None:
    event = _births(2500)
    parts = chunks(event, 1000)
    assert [len(p.files) for p in parts] == [1000, 1000, 500]
    assert [f for p in parts for f in p.files] == event.files
    assert parts[0].event_id == event.event_id and len({p.event_id for p in parts}) == 3
    # The same event is cut the same way again (a redelivered task names the same parts only
    # when it plans the same event; a new plan is a new event).
    assert [p.event_id for p in chunks(event, 1000)] == [p.event_id for p in parts]
    assert chunks(_births(3), 1000)[0].files == _births(3).files


def test_parts_of_the_longest_names_fit_a_nats_payload() -> None:
    event = _births(3000, name="é" * 120)  # 240 bytes of UTF-8, near the 255-byte limit
    parts = chunks(event, 5000)  # asked for more than the bound: BATCH_FILES
    assert [len(p.files) for p in parts] == [BATCH_FILES] * 3
    assert all(len(ev.encode(p)) < 1_000_000 for p in parts)


def test_the_fast_uuid5_is_uuid5() -> None:
    for name in ["", "a", "/m/IMG_0001.jpg", "/photos/été/ファイル.heic", "x" * 4096]:
        namespace = uuid.uuid4()
        assert uuid5(namespace, name) == uuid.uuid5(namespace, name)
