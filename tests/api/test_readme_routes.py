"""The README's Immich compatibility table lists every route of the OpenAPI document."""

from __future__ import annotations

import re
from pathlib import Path

from services.api.app import build_app
from shared.settings import load_settings

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(
    r"^\| `(?P<method>GET|POST|PUT|DELETE|PATCH) (?P<path>/api/[^`]*)` \| `(?P<op>\w+)` \| "
    r"(?P<shape>[^|]*) \|"
)
_PARAM = re.compile(r"\{[^}]*\}")


def _rows() -> dict[str, tuple[str, str, str]]:
    """operationId -> (method, path with `{}` for every parameter, shape column)."""
    section = README.read_text().split("### Routes", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if match := ROW.match(line):
            rows[match["op"]] = (
                match["method"],
                _PARAM.sub("{}", match["path"]),
                match["shape"].strip(),
            )
    return rows


def _served() -> dict[str, tuple[str, str]]:
    spec = build_app(load_settings({})).openapi_schema.to_schema()
    return {
        op["operationId"]: (method.upper(), _PARAM.sub("{}", path))
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "delete", "patch")
    }


def test_every_served_route_is_in_the_compatibility_table() -> None:
    rows, served = _rows(), _served()
    assert len(rows) > 50, "the README's route table was not found"
    missing = sorted(op for op in served if op not in rows)
    assert not missing, f"routes missing from the README's compatibility table: {missing}"
    wrong = [
        f"{op}: README says {rows[op][:2]}, the API serves {where}"
        for op, where in served.items()
        if rows[op][:2] != where
    ]
    assert not wrong, "\n".join(wrong)
    todo = sorted(op for op in served if rows[op][2].startswith("TODO"))
    assert not todo, f"served routes still marked TODO in the README: {todo}"


def test_the_table_lists_no_route_that_is_not_served() -> None:
    served = _served()
    stale = sorted(
        op for op, (_, _, shape) in _rows().items() if op not in served and "TODO" not in shape
    )
    assert not stale, f"README rows for routes the API does not serve: {stale}"
