"""Operators' logs: an idle consumer's empty fetch, or a stop amid a fetch, is not an ERROR."""

from __future__ import annotations

import logging

import anyio
import pytest

from shared.service import QuietFetchTimeouts


def record(
    msg: str, level: int, exc: BaseException | None = None, name: str = "services.scanner.app"
) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord(name, level, __file__, 1, msg, (), exc_info)


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


@pytest.mark.parametrize(
    ("exc", "kept"), [(BrokenPipeError(32, "Broken pipe"), False), (RuntimeError("x"), True)]
)
def test_closing_a_connection_postgresql_already_cut_is_debug(
    exc: BaseException, kept: bool
) -> None:
    """SQLAlchemy's pool logs a failed goodbye on a dead socket at ERROR with a traceback."""
    name = "sqlalchemy.pool.impl.NullPool"
    logging.getLogger(name).setLevel(logging.INFO)
    r = record("Exception closing connection %r", logging.ERROR, exc, name)
    assert QuietFetchTimeouts().filter(r) is kept
