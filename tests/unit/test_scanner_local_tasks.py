"""A scan's end is looked for by the last of its folder tasks handled in one scanner, whatever
way that one ends (services/scanner/app.py, LocalTasks)."""

from __future__ import annotations

import uuid

from services.scanner.app import LocalTasks

SCAN = uuid.uuid4()


def test_a_batch_of_tasks_looks_at_the_backlog_once_at_its_last() -> None:
    local = LocalTasks()
    for _ in range(3):
        local.begin(SCAN)
    looks = []
    for _ in range(3):
        assert not local.end(SCAN, settles=True)
        looks.append(local.settled(SCAN))
    assert looks == [False, False, True]
    assert not local.owed and not local.handling


def test_the_last_task_given_back_takes_the_look_another_one_left() -> None:
    """Two deliveries of one folder at once (the first outlived its ack_wait): the first is
    done and leaves the backlog while the copy is handled; the copy is then given back (its
    folder's births were refused, or NATS went away), and the message is not coming back."""
    local = LocalTasks()
    local.begin(SCAN)
    local.begin(SCAN)
    assert not local.end(SCAN, settles=True)
    assert not local.settled(SCAN)  # the copy is still being handled here
    assert local.end(SCAN, settles=False)  # so the copy looks, or the scan never finishes
    assert not local.owed and not local.handling


def test_a_task_given_back_with_nothing_owed_does_not_look() -> None:
    local = LocalTasks()
    local.begin(SCAN)
    assert not local.end(SCAN, settles=False)
    other = uuid.uuid4()
    local.begin(SCAN)
    local.begin(other)
    assert not local.end(other, settles=True)
    assert local.settled(other)  # another scan's task in hand does not hold this one's look
    assert not local.end(SCAN, settles=False)
