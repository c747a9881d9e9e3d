"""docs/events.md, made from shared/events/: `python -m shared.eventdoc > docs/events.md`
(`make docs`). A test checks the file is current."""

from __future__ import annotations

import inspect

import msgspec

from shared import events as ev

_ENVELOPE = {f.name for f in msgspec.structs.fields(ev.BaseEvent)}

ABOUT = {
    ev.Aggregate.SERVER: "The server itself (one id, `SERVER_ID`): who the admin is, its settings.",
    ev.Aggregate.USER: "A user, with their sessions and API keys.",
    ev.Aggregate.LIBRARY: "A library's own facts: its name, import paths, exclusions, deletion.",
    ev.Aggregate.SCANS: (
        "A library's scan bookkeeping, on the library's id: requests, results, the folder "
        "index, problems met. Never guarded, so it never conflicts with an edit (decision 0022)."
    ),
    ev.Aggregate.ASSET: "One file of a library, or one upload: its life, its metadata.",
    ev.Aggregate.FOLDER: (
        "A folder of an external library: the births of its files, many to an event "
        "(decision 0030). Everything after an asset's birth is on the asset's subject."
    ),
    ev.Aggregate.ALBUM: "An album and its membership.",
    ev.Aggregate.DEAD_LETTER: (
        "A message a consumer gave up on, one per consumer and stream sequence: shown to admins "
        "(`GET /api/admin/dead-letters`, `shoebox dead-letters`), never guarded (decision 0024)."
    ),
}


def _default(field: msgspec.structs.FieldInfo) -> str:
    if field.required:
        return "required"
    if field.default_factory is not msgspec.NODEFAULT:
        return {"event_id": "a new one", "occurred_at": "now"}.get(field.name, "empty")
    value = field.default
    if isinstance(value, str):
        return f'`"{value}"`'
    if hasattr(value, "value"):
        return f"`{value.value}`"
    return "`" + {None: "null", True: "true", False: "false"}.get(value, repr(value)) + "`"


def _type(annotation: str) -> str:
    return "`" + annotation.replace("|", "\\|") + "`"


def _doc(kind: type) -> str:
    return " ".join((inspect.getdoc(kind) or "").split("\n\n")[0].split())


def render() -> str:
    lines = [
        "# Events",
        "",
        "Generated from `shared/events/` by `make docs`; do not edit by hand.",
        "",
        "Every event is a JSON object on the `EVENTS` stream, on the subject",
        "`events.<aggregate>.<stream_id>`, named by its `event` field and carrying the envelope:",
        "",
        "| field | type | default |",
        "|---|---|---|",
    ]
    hints = ev.BaseEvent.__annotations__
    for field in msgspec.structs.fields(ev.BaseEvent):
        lines.append(f"| `{field.name}` | {_type(hints[field.name])} | {_default(field)} |")
    lines += [
        "",
        "A field is added with a default; a rename or retype is a new version (`v`) with an",
        "upcaster in `shared/events/__init__.py` (decision 0023). Golden files of every version",
        "are in `tests/golden/events/`.",
    ]
    for aggregate in ev.Aggregate:
        kinds = [t for t in ev.EVENT_TYPES if t.aggregate is aggregate]
        lines += ["", f"## {aggregate.value}: `events.{aggregate.value}.<id>`", ""]
        lines.append(ABOUT[aggregate])
        for kind in kinds:
            version = ev.CURRENT_VERSION[kind.__name__]
            lines += ["", f"### {kind.__name__} (v{version})", "", _doc(kind), ""]
            own = [f for f in msgspec.structs.fields(kind) if f.name not in _ENVELOPE]
            if not own:
                lines.append("No fields beyond the envelope.")
                continue
            hints = {}
            for klass in reversed(kind.__mro__):
                hints.update(getattr(klass, "__annotations__", {}))
            lines += ["| field | type | default |", "|---|---|---|"]
            for field in own:
                lines.append(f"| `{field.name}` | {_type(hints[field.name])} | {_default(field)} |")
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text + "\n"


if __name__ == "__main__":
    print(render(), end="")
