"""Schema evolution, guarded: every stored shape of every event still decodes (golden files),
and the one upcaster turns a v1 event into the current one."""

from __future__ import annotations

import json
import re

import msgspec
import pytest

from shared import events as ev
from tests.golden_events import GOLDEN, golden_path, sample_event

GOLDEN_FILES = sorted(GOLDEN.glob("*.json"))


def test_every_event_type_has_a_golden_file_of_its_current_version() -> None:
    missing = [
        t.__name__
        for t in ev.EVENT_TYPES
        if not golden_path(t.__name__, ev.CURRENT_VERSION[t.__name__]).exists()
    ]
    assert not missing, f"run `python -m tests.golden_events` to add: {missing}"


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_a_golden_event_still_decodes_to_its_type_at_the_current_version(path) -> None:  # type: ignore[no-untyped-def]
    name, version = re.fullmatch(r"(\w+)\.v(\d+)", path.stem).groups()  # type: ignore[union-attr]
    raw = json.loads(path.read_text())
    assert (raw["event"], raw["v"]) == (name, int(version))
    event = ev.decode(path.read_bytes())
    assert type(event).__name__ == name
    assert event.v == ev.CURRENT_VERSION[name]
    # What it decodes to is stable: encoding it and decoding again gives the same event.
    assert ev.decode(ev.encode(event)) == event


def test_golden_files_of_the_current_version_match_what_the_code_writes() -> None:
    """A field added without a default, or one retyped, changes what the code writes for the
    same sample: that is a new version, which needs an upcaster and a new golden file."""
    for kind in ev.EVENT_TYPES:
        path = golden_path(kind.__name__, ev.CURRENT_VERSION[kind.__name__])
        written = json.loads(ev.encode(sample_event(kind)))
        stored = json.loads(path.read_text())
        added = set(written) - set(stored)
        assert set(stored) <= set(written), (
            f"{kind.__name__} lost fields {set(stored) - set(written)}"
        )
        # A new field is fine only with a default (old events lack it and still decode).
        for field in added:
            info = next(f for f in msgspec.structs.fields(kind) if f.encode_name == field)
            assert not info.required, f"{kind.__name__}.{field} was added without a default"


def test_the_v1_scan_problem_is_upcast_to_v2() -> None:
    v1 = golden_path("ScanProblemFound", 1).read_bytes()
    event = ev.decode(v1)
    assert isinstance(event, ev.ScanProblemFound)
    assert (event.v, event.message, event.path) == (2, "cannot read folder", "/m/x")
    assert event == ev.decode(golden_path("ScanProblemFound", 2).read_bytes())


def test_an_upcaster_is_pure_and_names_the_next_version() -> None:
    raw = {"event": "ScanProblemFound", "v": 1, "problem": "x"}
    up = ev.UPCASTERS[("ScanProblemFound", 1)](raw)
    assert up["message"] == "x" and "problem" not in up
    assert raw == {"event": "ScanProblemFound", "v": 1, "problem": "x"}  # not changed in place


def test_a_current_event_never_goes_through_the_upcasters() -> None:
    """The fast path: a current event is decoded once, by the typed decoder."""
    calls = []
    original = ev.UPCASTERS[("ScanProblemFound", 1)]
    ev.UPCASTERS[("ScanProblemFound", 1)] = lambda raw: calls.append(raw) or original(raw)  # type: ignore[func-returns-value]
    try:
        ev.decode(golden_path("ScanProblemFound", 2).read_bytes())
        assert calls == []
        ev.decode(golden_path("ScanProblemFound", 1).read_bytes())
        assert len(calls) == 1
    finally:
        ev.UPCASTERS[("ScanProblemFound", 1)] = original


def test_the_events_document_is_current() -> None:
    from pathlib import Path

    from shared.eventdoc import render

    doc = Path(__file__).parents[2] / "docs" / "events.md"
    assert doc.read_text() == render(), "run `make docs` to regenerate docs/events.md"
