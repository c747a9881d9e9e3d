"""Operators' logs: an idle consumer's empty fetch, or a stop amid a fetch, is not an ERROR."""

from __future__ import annotations

import logging

import anyio
import pytest

from shared.service import QuietFetchTimeouts


def record(msg: str, level: int, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord("services.scanner.app", level, __file__, 1, msg, (), exc_info)


@pytest.mark.parametrize(
    ("msg", "level", "exc", "kept"),
    [
        ("Task-22 raised an exception, retrying...", logging.ERROR, TimeoutError(), False),
        ("callback for Task-22 is being executed...", logging.INFO, None, False),
        ("Task-22 raised an exception, retrying...", logging.ERROR, RuntimeError("x"), True),
        ("scan finished", logging.INFO, None, True),
        (
            "Task exception was never retrieved",
            logging.ERROR,
            ExceptionGroup("x", [anyio.ClosedResourceError(), anyio.ClosedResourceError()]),
            False,
        ),
        (
            "Task exception was never retrieved",
            logging.ERROR,
            ExceptionGroup("x", [anyio.ClosedResourceError(), RuntimeError("x")]),
            True,
        ),
    ],
)
def test_empty_fetches_are_debug_and_real_faults_stay(
    msg: str, level: int, exc: BaseException | None, kept: bool
) -> None:
    logging.getLogger("services.scanner.app").setLevel(logging.INFO)
    r = record(msg, level, exc)
    assert QuietFetchTimeouts().filter(r) is kept
    if not kept:
        assert r.levelno == logging.DEBUG
