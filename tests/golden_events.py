"""Golden files of the event vocabulary: the JSON each event type was stored as, per version.

`python -m tests.golden_events` writes the file of every event type's current version that
does not exist yet (tests/golden/events/<Event>.v<N>.json) from tests/samples.py. It never
rewrites one: a file is what a stream written by that version holds, and every later version
of the code must still decode it (tests/unit/test_event_evolution.py).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import msgspec

from shared import events as ev
from tests.samples import NOW, SAMPLES, Refs

GOLDEN = Path(__file__).parent / "golden" / "events"


def golden_path(name: str, version: int) -> Path:
    return GOLDEN / f"{name}.v{version}.json"


def sample_event(kind: type[ev.BaseEvent]) -> ev.BaseEvent:
    """The sample of `kind` with fixed ids and time, as its golden file holds it."""
    event = SAMPLES[kind](Refs(fixed=True))
    return msgspec.structs.replace(
        event, event_id=uuid.uuid5(uuid.NAMESPACE_URL, kind.__name__), occurred_at=NOW
    )


def write_missing() -> list[Path]:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in ev.EVENT_TYPES:
        path = golden_path(kind.__name__, ev.CURRENT_VERSION[kind.__name__])
        if not path.exists():
            raw = json.loads(ev.encode(sample_event(kind)))
            path.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
            written.append(path)
    return written


if __name__ == "__main__":
    for p in write_missing():
        print(f"wrote {p}")
