"""An outage of PostgreSQL or NATS is told apart from a real fault and logged once; redelivery
stays inside the de-duplication window."""

from __future__ import annotations

import logging

import asyncpg
import pytest
from nats import errors as nats_errors

from shared.outage import Outage, unavailable
from shared.settings import load_settings


@pytest.mark.parametrize(
    ("exc", "what"),
    [
        (nats_errors.TimeoutError(), "NATS"),  # also an OSError: NATS, not the database
        (nats_errors.NoRespondersError(), "NATS"),
        (asyncpg.ConnectionDoesNotExistError("closed in the middle of operation"), "PostgreSQL"),
        (asyncpg.CannotConnectNowError("the database system is starting up"), "PostgreSQL"),
        (ConnectionRefusedError(111, "refused"), "PostgreSQL"),
        (asyncpg.UniqueViolationError("duplicate key"), None),
        (ValueError("a bug"), None),
    ],
)
def test_an_outage_is_told_from_a_fault(exc: BaseException, what: str | None) -> None:
    assert unavailable(exc) == what


def test_an_outage_is_logged_once_with_its_cause_and_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("test.outage")
    outage = Outage(log, "scanner")
    with caplog.at_level(logging.DEBUG, "test.outage"):
        for n in range(5):
            outage.failed("PostgreSQL", OSError(f"refused {n}"), f"folder /a/{n}")
        outage.warned = 0.0  # the last failure long ago: the return is said at INFO
        outage.recovered()
        outage.recovered()
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    warnings = [m for lv, m in levels if lv == "WARNING"]
    assert warnings == [
        "scanner: PostgreSQL unavailable (OSError: refused 0); retrying folder /a/0 and what "
        "follows until it is back"
    ]
    assert [lv for lv, _ in levels].count("DEBUG") == 4
    assert next(m for lv, m in levels if lv == "INFO").startswith(
        "scanner: PostgreSQL is back after"
    )
    assert len(levels) == 6


@pytest.mark.parametrize("seconds", ["0", "61", "300"])
def test_a_metadata_ack_wait_past_half_the_duplicate_window_is_refused(seconds: str) -> None:
    with pytest.raises(ValueError, match="SHOEBOX_METADATA_ACK_WAIT must be between 1 and 60"):
        load_settings({"SHOEBOX_METADATA_ACK_WAIT": seconds})


def test_the_metadata_ack_wait_is_a_setting() -> None:
    assert load_settings({}).metadata_ack_wait == 30
    assert load_settings({"SHOEBOX_METADATA_ACK_WAIT": "10"}).metadata_ack_wait == 10
