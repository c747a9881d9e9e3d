"""The consumer bounds (decision 0024): one default each, read from the environment."""

from __future__ import annotations

import pytest

from shared.settings import ConsumerSettings, load_settings


def test_bounds_default_to_the_structs_own_values() -> None:
    assert load_settings({}).consumer == ConsumerSettings()


def test_bounds_are_read_from_the_environment() -> None:
    bounds = load_settings(
        {"SHOEBOX_CONSUMER_MAX_DELIVER": "3", "SHOEBOX_CONSUMER_BACKOFF": "1, 5,20"}
    ).consumer
    assert (bounds.max_deliver, bounds.backoff) == (3, (1.0, 5.0, 20.0))


def test_the_back_off_steps_with_each_failure_and_its_last_step_repeats() -> None:
    bounds = ConsumerSettings(max_deliver=9, backoff=(1.0, 5.0, 20.0))
    assert [bounds.delay(n) for n in range(1, 6)] == [1.0, 5.0, 20.0, 20.0, 20.0]


@pytest.mark.parametrize(
    "env",
    [{"SHOEBOX_CONSUMER_MAX_DELIVER": "0"}, {"SHOEBOX_CONSUMER_BACKOFF": ","}],
)
def test_a_bound_that_would_never_try_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="SHOEBOX_CONSUMER_MAX_DELIVER"):
        load_settings(env)
